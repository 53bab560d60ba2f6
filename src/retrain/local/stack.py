"""The real Airflow stack without Docker: api-server, scheduler, dag-processor, triggerer and an MLflow server.

Each component is a subprocess in its own session (process group) with its log under
AIRFLOW_HOME/logs/stack/. A state file (AIRFLOW_HOME/stack.json, see retrain.local.stack_state) records
ports and process ids so another shell can ask for the status or stop the stack. The REST side lives in
retrain.local.airflow_client.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

from retrain.errors import RetrainError
from retrain.local.airflow_client import AirflowClient
from retrain.local.orchestrate import airflow_environment, airflow_home, migrate_metadata_db
from retrain.local.processes import port_is_free, start_process, wait_until
from retrain.local.stack_state import (
    ProcessRecord,
    StackState,
    read_state,
    state_file,
    stop_in_order,
    write_state,
)
from retrain.settings import Settings

ADMIN_USER = "admin"
HEALTH_KEYS = ("metadatabase", "scheduler", "dag_processor", "triggerer")
_BIN = Path(sys.executable).parent


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]


class LocalStack:
    """Start, watch and stop a local Airflow stack (metadata DB from airflow.cfg, LocalExecutor) for one home."""

    def __init__(
        self,
        settings: Settings,
        port: int = 8080,
        *,
        host: str = "127.0.0.1",
        mlflow_port: int | None = None,
        grafana_url: str | None = None,
        use_schedule: bool = True,
        parallelism: int = 2,
        refresh_interval: int = 30,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.port = port
        self.host = host
        self.mlflow_port = mlflow_port
        self.grafana_url = grafana_url
        self.use_schedule = use_schedule
        self.parallelism = parallelism
        self.refresh_interval = refresh_interval
        # Subprocesses need PATH & co.; tests pass a filtered copy so their own Airflow home never leaks in.
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.home = airflow_home(settings)
        self.log_dir = self.home / "logs" / "stack"
        self.password_file = self.home / "simple_auth_manager_passwords.json"
        self._jwt_secret = secrets.token_urlsafe(32)
        self._api_secret = secrets.token_urlsafe(32)
        self._components: list[_Component] = []
        self._client: AirflowClient | None = None
        self._started_at: str | None = None

    @property
    def url(self) -> str:
        """Base URL of the Airflow api-server (UI and REST)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{shown}:{self.port}"

    @property
    def mlflow_url(self) -> str | None:
        """Base URL of the MLflow server, when this stack runs one."""
        return f"http://127.0.0.1:{self.mlflow_port}" if self.mlflow_port else None

    def admin_password(self) -> str:
        """The admin password (created on first use, kept across restarts of the same home)."""
        if not self.password_file.exists():
            self.password_file.parent.mkdir(parents=True, exist_ok=True)
            self.password_file.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}) + "\n")
            self.password_file.chmod(0o600)
        password: str = json.loads(self.password_file.read_text())[ADMIN_USER]
        return password

    def client(self) -> AirflowClient:
        """A REST client logged in as the admin user; its wait loops fail fast if a component died."""
        if self._client is None:
            self._client = AirflowClient(self.url, ADMIN_USER, self.admin_password(), alive=self.check_alive)
        return self._client

    def environment(self) -> dict[str, str]:
        """Environment of every stack subprocess: the local-mode Airflow env plus stack-only overrides."""
        env = {**self.base_env, **airflow_environment(self.settings)}
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # LocalExecutor forks `parallelism` workers, each running one task process: keep it near the cores.
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__API__HOST": self.host,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__INSTANCE_NAME": "retrain",
                "AIRFLOW__API__SECRET_KEY": self._api_secret,
                # Task processes report to the execution API: a wrong URL (the default is port 8080) leaves
                # every task queued or running forever.
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                # Scheduler and api-server must sign and verify task tokens with the same secret.
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(self.refresh_interval),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.use_schedule),
            }
        )
        if self.mlflow_url:
            # Tasks log runs and move aliases through the server, like in the Docker stack.
            env["RETRAIN_MLFLOW_TRACKING_URI"] = self.mlflow_url
            env["AIRFLOW__RETRAIN__MLFLOW_URL"] = self.mlflow_url
        if self.grafana_url:
            env["AIRFLOW__RETRAIN__GRAFANA_URL"] = self.grafana_url
        return env

    def start(self, timeout: float = 180.0) -> None:
        """Migrate the metadata DB if needed, start every component, wait until healthy, record the state."""
        running = read_state(self.settings)
        if running is not None and any(running.alive().values()):
            raise RetrainError(
                f"a stack is already running for {self.settings.resolved_home} ({running.api_url}); "
                "stop it with `retrain stack down`"
            )
        busy = [p for p in (self.port, self.mlflow_port) if p and not port_is_free(p, self.host)]
        if busy:
            raise RetrainError(f"port(s) {busy} already in use: pick others with --port / --mlflow-port")
        self.admin_password()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        migrate_metadata_db(env, self.home)
        airflow = str(_BIN / "airflow")
        try:
            if self.mlflow_port:
                self._spawn("mlflow", mlflow_server_command(self.settings, self.mlflow_port), env)
            self._spawn("api-server", [airflow, "api-server", "--port", str(self.port)], env)
            self._spawn("scheduler", [airflow, "scheduler"], env)
            self._spawn("dag-processor", [airflow, "dag-processor"], env)
            self._spawn("triggerer", [airflow, "triggerer"], env)
            self.wait_healthy(timeout)
            self._write_state()
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until every Airflow component reports healthy (and MLflow answers)."""
        last: dict[str, Any] = {}

        def healthy() -> dict[str, Any] | None:
            self.check_alive()
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            last.update(health)
            if self.mlflow_url and not httpx.get(f"{self.mlflow_url}/health", timeout=5).is_success:
                return None
            ok = all((health.get(k) or {}).get("status") == "healthy" for k in HEALTH_KEYS)
            return health if ok else None

        return wait_until(
            healthy,
            timeout,
            "the Airflow stack to be healthy",
            interval=1,
            ignore=(httpx.HTTPError, ValueError),
            detail=lambda: f"health: {last}; logs in {self.log_dir}",
        )

    def check_alive(self) -> None:
        """Raise with the log tail of the first component that exited."""
        for component in self._components:
            code = component.process.poll()
            if code is not None:
                tail = _tail(self.log_dir / f"{component.name}.log")
                raise RetrainError(f"{component.name} exited with code {code}; last log lines:\n{tail}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every component (scheduler first, so no new task starts) and forget the recorded state."""
        recorded = read_state(self.settings)
        if recorded is not None and recorded.started_at == self._started_at:
            state_file(self.settings).unlink(missing_ok=True)
        running = {}
        for component in self._components:
            with suppress(psutil.NoSuchProcess):
                running[component.name] = psutil.Process(component.process.pid)
        stop_in_order(running, timeout)
        for component in self._components:
            component.process.wait(timeout=timeout)
        self._components.clear()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        process = start_process(command, env, self.log_dir / f"{name}.log", append=True)
        self._components.append(_Component(name, process))

    def _write_state(self) -> None:
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")
        state = StackState(
            api_url=self.url,
            mlflow_url=self.mlflow_url,
            home=str(self.settings.resolved_home),
            log_dir=str(self.log_dir),
            password_file=str(self.password_file),
            started_at=self._started_at,
            processes=[ProcessRecord.of(c.name, c.process.pid) for c in self._components],
        )
        write_state(self.settings, state)


def mlflow_server_command(settings: Settings, port: int) -> list[str]:
    """`mlflow server` on 127.0.0.1:port over the store (backend + artifact root) of `settings`."""
    return [
        str(_BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        settings.artifact_root,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
