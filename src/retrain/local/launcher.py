"""Run the service as a child process on a free localhost port (tests, benchmarks, the demo).

For a caller holding `retrain` Settings (the demo), `serving_in_background(settings)` is the whole
story: it starts `uvicorn serving.main:app` on a free port for that home, spec and MLflow store,
waits until a model is loaded, yields a ServerProcess (`.post_json`, `.get_json`, `.base_url`) and
stops the server gracefully (the prediction log is flushed) when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.errors import RetrainError
from retrain.local.processes import free_port, start_process, stop_process, wait_until
from retrain.settings import Settings


def uvicorn_command(port: int, workers: int = 1, app: str = "serving.main:app") -> list[str]:
    """`python -m uvicorn` for the app on 127.0.0.1:port, access log off."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]


@dataclass
class ServerProcess:
    """A server child process, its URL and where its output goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, path: str = "/health", timeout: float = 60.0, status: int = 200) -> None:
        """Poll `path` until it answers `status`; RetrainError if the process dies or time runs out."""

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RetrainError(f"server exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            return http_status(self.base_url + path) == status

        wait_until(
            answers,
            timeout,
            f"{self.base_url}{path} to answer {status}",
            detail=lambda: f"server output:\n{self.output()[-3000:]}",
        )

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGINT: uvicorn drains requests and runs the shutdown); kill after `timeout`."""
        return stop_process(self.process, timeout, sig=signal.SIGINT)

    def post_json(self, path: str, body: object, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        """POST a JSON body; (status, decoded JSON answer), 4xx/5xx included."""
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return _exchange(request, timeout)

    def get_json(self, path: str, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        """GET a JSON endpoint (/model, /ready, /health); (status, decoded answer)."""
        return _exchange(urllib.request.Request(self.base_url + path), timeout)

    def kill(self) -> None:
        """Stop at once (SIGKILL to the whole process group)."""
        stop_process(self.process, sig=signal.SIGKILL)


def _exchange(request: urllib.request.Request, timeout: float) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of a GET, None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def start_server(
    command: Sequence[str], env: Mapping[str, str], port: int, log_path: Path, cwd: Path | None = None
) -> ServerProcess:
    """Start a server `command` listening on `port` (own process group, output to `log_path`)."""
    process = start_process(command, env, log_path, cwd=cwd)
    return ServerProcess(process, f"http://127.0.0.1:{port}", log_path)


@contextlib.contextmanager
def running_server(
    env: Mapping[str, str],
    log_path: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    ready_path: str = "/health",
    timeout: float = 90.0,
) -> Iterator[ServerProcess]:
    """`uvicorn serving.main:app` with `env` (the full environment), stopped gracefully on exit."""
    port = port or free_port()
    server = start_server(uvicorn_command(port, workers), env, port, log_path)
    try:
        server.wait_until(ready_path, timeout)
        yield server
    finally:
        server.stop()


def serving_env(
    settings: Settings, *, poll_seconds: float | None = None, api_key: str | None = None, workers: int = 1
) -> dict[str, str]:
    """The environment of a server on `settings`' home, spec and MLflow store (RETRAIN_* from here only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETRAIN_", "PROMETHEUS_MULTIPROC"))}
    env.update(
        RETRAIN_HOME=str(settings.resolved_home),
        RETRAIN_SPEC=str(Path(settings.spec).resolve()),
        RETRAIN_MLFLOW_TRACKING_URI=settings.tracking_uri,
        PYTHONUNBUFFERED="1",
    )
    if settings.mlflow_artifact_root:
        env["RETRAIN_MLFLOW_ARTIFACT_ROOT"] = settings.mlflow_artifact_root
    if poll_seconds is not None:
        env["RETRAIN_SERVING_POLL_SECONDS"] = str(poll_seconds)
    if api_key is not None:
        env["RETRAIN_SERVING_API_KEY"] = api_key
    if workers > 1:  # workers share counters through files there; stale files would add old counts
        env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir(settings.resolved_home / "serving_metrics"))
    return env


def fresh_metrics_dir(folder: Path) -> Path:
    """A PROMETHEUS_MULTIPROC_DIR for a starting server: created, emptied of a previous run's files."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder


@contextlib.contextmanager
def serving_in_background(
    settings: Settings,
    *,
    poll_seconds: float = 1.0,
    api_key: str | None = None,
    workers: int = 1,
    log_path: Path | None = None,
    timeout: float = 120.0,
) -> Iterator[ServerProcess]:
    """The service on a free localhost port for `settings`, ready (a model loaded), stopped on exit.

    RetrainError if it does not become ready within `timeout` (its output is in the message).
    """
    log_path = log_path or settings.resolved_home / "logs" / "serving.log"
    env = serving_env(settings, poll_seconds=poll_seconds, api_key=api_key, workers=workers)
    with running_server(env, log_path, workers=workers, ready_path="/ready", timeout=timeout) as server:
        yield server
