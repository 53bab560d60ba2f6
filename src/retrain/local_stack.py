"""The real Airflow stack on the embedded default, without Docker: api-server, scheduler, dag-processor.

Each component is a subprocess in its own process group with its log under AIRFLOW_HOME/logs/stack/;
an optional MLflow server runs beside them. The REST helpers (token, trigger, backfill, wait) talk to
the api-server the way a user or CI job would.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import psutil

from retrain.errors import RetrainError
from retrain.orchestrate import airflow_environment, airflow_home, migrate_metadata_db
from retrain.settings import Settings

ADMIN_USER = "admin"
TERMINAL_STATES = frozenset({"success", "failed"})
_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class RunResult:
    """Final state of one DAG run as the REST API reports it."""

    dag_id: str
    run_id: str
    state: str
    logical_date: str | None
    task_states: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        """True when the run ended in success."""
        return self.state == "success"


@dataclass(frozen=True)
class BackfillCreated:
    """A backfill the api-server accepted, with the runs it queued."""

    backfill_id: int
    dag_id: str
    run_ids: list[str]


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


class LocalStack:
    """Start, query and stop a local Airflow stack (SQLite + LocalExecutor) for one retrain home."""

    def __init__(
        self,
        settings: Settings,
        port: int = 8080,
        *,
        mlflow_port: int | None = None,
        grafana_url: str | None = None,
        use_schedule: bool = True,
        refresh_interval: int = 30,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.port = port
        self.mlflow_port = mlflow_port
        self.grafana_url = grafana_url
        self.use_schedule = use_schedule
        self.refresh_interval = refresh_interval
        # Subprocesses need PATH & co.; tests pass a filtered copy so the session's Airflow home never leaks in.
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.home = airflow_home(settings)
        self.log_dir = self.home / "logs" / "stack"
        self.password_file = self.home / "simple_auth_manager_passwords.json"
        self._jwt_secret = secrets.token_urlsafe(32)
        self._components: list[_Component] = []
        self._token: str | None = None

    @property
    def url(self) -> str:
        """Base URL of the Airflow api-server (UI and REST)."""
        return f"http://127.0.0.1:{self.port}"

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

    def environment(self) -> dict[str, str]:
        """Environment of every stack subprocess: the local-mode Airflow env plus stack-only overrides."""
        env = {**self.base_env, **airflow_environment(self.settings)}
        env.update(
            {
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                # Task workers report to the execution API; a wrong URL leaves tasks hanging in `running`.
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__PARALLELISM": "2",
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
            env["AIRFLOW__RETRAIN__MLFLOW_URL"] = self.mlflow_url
        if self.grafana_url:
            env["AIRFLOW__RETRAIN__GRAFANA_URL"] = self.grafana_url
        return env

    def start(self, timeout: float = 120.0) -> None:
        """Migrate the metadata DB if needed, start every component and wait until healthy."""
        self.admin_password()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        migrate_metadata_db(env, self.home)
        airflow = str(_BIN / "airflow")
        try:
            self._spawn("api-server", [airflow, "api-server", "--port", str(self.port)], env)
            self._spawn("scheduler", [airflow, "scheduler"], env)
            self._spawn("dag-processor", [airflow, "dag-processor"], env)
            if self.mlflow_port:
                self._spawn("mlflow", _mlflow_command(self.settings, self.mlflow_port), env)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until metadatabase, scheduler and dag-processor report healthy (and MLflow answers)."""
        wanted = ("metadatabase", "scheduler", "dag_processor")
        health: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                mlflow_ok = (
                    not self.mlflow_url or httpx.get(f"{self.mlflow_url}/health", timeout=5).is_success
                )
            except httpx.HTTPError:
                health, mlflow_ok = {}, False
            if mlflow_ok and all((health.get(k) or {}).get("status") == "healthy" for k in wanted):
                return health
            time.sleep(1)
        raise RetrainError(
            f"Airflow stack not healthy after {timeout:.0f} s: {health}; logs in {self.log_dir}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every component (scheduler first) with SIGTERM to its process group, then SIGKILL."""
        for component in sorted(self._components, key=lambda c: c.name != "scheduler"):
            _terminate_tree(component.process, timeout)
            component.log.close()
        self._components.clear()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def token(self, username: str = ADMIN_USER, password: str | None = None) -> str:
        """A JWT for the REST API from POST /auth/token."""
        response = httpx.post(
            f"{self.url}/auth/token",
            json={"username": username, "password": password or self.admin_password()},
            timeout=30,
        )
        _raise_for(response, "login")
        token: str = response.json()["access_token"]
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated REST call (path under the api-server root, e.g. /api/v2/dags)."""
        if self._token is None:
            self._token = self.token()
        headers = {"Authorization": f"Bearer {self._token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed the DAG; fail fast on an import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            response = self.request("GET", f"/api/v2/dags/{dag_id}")
            if response.is_success:
                dag: dict[str, Any] = response.json()
                return dag
            errors = self.request("GET", "/api/v2/importErrors").json().get("import_errors") or []
            if errors:
                raise RetrainError(f"DAG import errors: {[e.get('stack_trace', e) for e in errors]}")
            time.sleep(1)
        raise RetrainError(f"DAG {dag_id} not parsed after {timeout:.0f} s; logs in {self.log_dir}")

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG (runs of a paused DAG stay queued)."""
        _raise_for(self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}), "unpause")

    def trigger(self, dag_id: str, day: date, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run for a day (logical date at midnight UTC, `date` in conf); return its run id."""
        body = {"logical_date": _midnight(day), "conf": {"date": day.isoformat(), **(conf or {})}}
        response = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        _raise_for(response, f"trigger {dag_id} {day}")
        run_id: str = response.json()["dag_run_id"]
        return run_id

    def backfill(self, dag_id: str, start: date, end: date, reprocess: str = "completed") -> BackfillCreated:
        """Create a backfill (one run at a time) for start..end inclusive; return the runs it queued."""
        body = {
            "dag_id": dag_id,
            "from_date": _midnight(start),
            "to_date": _midnight(end),
            "max_active_runs": 1,
            "reprocess_behavior": reprocess,
        }
        response = self.request("POST", "/api/v2/backfills", json=body)
        _raise_for(response, f"backfill {dag_id} {start}..{end}")
        params = {
            "run_type": "backfill",
            "logical_date_gte": _midnight(start),
            "logical_date_lte": _midnight(end),
            "order_by": "logical_date",
        }
        runs = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params).json()["dag_runs"]
        return BackfillCreated(response.json()["id"], dag_id, [r["dag_run_id"] for r in runs])

    def run_state(self, dag_id: str, run_id: str) -> RunResult:
        """Current state of a run and of its task instances."""
        response = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        _raise_for(response, f"get run {run_id}")
        run = response.json()
        tis = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        states = {ti["task_id"]: str(ti["state"]) for ti in tis.get("task_instances", [])}
        return RunResult(
            dag_id, run_id, run["state"], run.get("logical_date"), states, run.get("duration") or 0.0
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> RunResult:
        """Poll a run until it succeeds or fails; raise if it is still going after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            result = self.run_state(dag_id, run_id)
            if result.state in TERMINAL_STATES:
                return result
            if time.monotonic() > deadline:
                raise RetrainError(
                    f"run {run_id} still {result.state} after {timeout:.0f} s: {result.task_states}"
                )
            time.sleep(2)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value (task results are small JSON dicts)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        response = self.request("GET", path, params={"deserialize": True})
        _raise_for(response, f"xcom {task_id}")
        value = response.json()["value"]
        return json.loads(value) if isinstance(value, str) else value

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        # Own session: the whole tree can be signalled at once and Ctrl-C in a terminal reaches only us.
        process = subprocess.Popen(
            command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._components.append(_Component(name, process, log))

    def _check_alive(self) -> None:
        for component in self._components:
            code = component.process.poll()
            if code is not None:
                tail = _tail(self.log_dir / f"{component.name}.log")
                raise RetrainError(f"{component.name} exited with code {code}; last log lines:\n{tail}")


def _mlflow_command(settings: Settings, port: int) -> list[str]:
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


def _terminate_tree(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group, SIGKILL what is left; task runners sit in their own groups, so track pids."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    with suppress(ProcessLookupError, psutil.NoSuchProcess):
        os.killpg(process.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for leftover in alive:
        with suppress(ProcessLookupError, psutil.NoSuchProcess):
            leftover.kill()
    with suppress(ProcessLookupError, psutil.NoSuchProcess):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def _midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _raise_for(response: httpx.Response, action: str) -> None:
    if not response.is_success:
        raise RetrainError(f"Airflow API {action}: HTTP {response.status_code} {response.text[:500]}")


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
