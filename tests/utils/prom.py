"""Start real Prometheus, Pushgateway and Alertmanager binaries (Debian packages) on free localhost ports.

Each server gets its own temp config and data directory under the caller's workdir, logs to a file
there, and is stopped (terminate, then kill) when its context manager exits. `make system-deps`
installs the binaries.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from retrain.local.processes import free_port, start_process, stop_process, wait_until

PROMETHEUS = "prometheus"
PUSHGATEWAY = "prometheus-pushgateway"
ALERTMANAGER = "prometheus-alertmanager"
PROMTOOL = "promtool"
AMTOOL = "amtool"

T = TypeVar("T")


@dataclass(frozen=True)
class LocalServer:
    """A running server binary: its address, process and log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        """host:port, as a scrape target or a Pushgateway URL for prometheus_client."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://{self.address}"

    def log(self) -> str:
        """Everything the server wrote to stdout/stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def binary(name: str) -> str:
    """Absolute path of a Debian-packaged binary, or a clear error naming the fix."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found on PATH: run `make system-deps` (scripts/system-deps.sh)")
    return path


def run_tool(name: str, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool/amtool (or any binary) and capture its output; never raises on a non-zero exit."""
    argv = [binary(name), *(str(a) for a in args)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def http_get(url: str, timeout: float = 5.0) -> bytes:
    """GET a URL and return the body (raises urllib errors)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def http_json(url: str, payload: Any = None, timeout: float = 5.0) -> Any:
    """GET (or POST JSON when payload is given) and decode the JSON answer."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """`wait_until` for HTTP checks: a connection or decoding error counts as "not yet" (still starting)."""
    return wait_until(check, timeout, what, interval=interval, ignore=(OSError, ValueError))


def _start(name: str, argv: Sequence[str], port: int, workdir: Path, timeout: float) -> LocalServer:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    process = start_process(argv, None, log_path, cwd=workdir)
    server = LocalServer(name, port, process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log()}")
        return http_get(f"{server.url}/-/ready", timeout=1.0) is not None

    try:
        wait_for(ready, timeout, f"{name} on {server.address} to be ready")
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: LocalServer) -> None:
    """Terminate the server and wait; kill it if it does not exit within 10 s."""
    stop_process(server.process, timeout=10)


@contextmanager
def prometheus_server(
    workdir: Path, config: dict[str, Any], port: int | None = None, timeout: float = 30.0
) -> Iterator[LocalServer]:
    """Prometheus with the given config (written to workdir/prometheus.yml) and a fresh TSDB.

    Pass port when the config must name it beforehand (Prometheus scraping itself).
    """
    port = port or free_port()
    config_path = workdir / "prometheus.yml"
    workdir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        binary(PROMETHEUS),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    server = _start("prometheus", argv, port, workdir, timeout)
    try:
        yield server
    finally:
        stop(server)


@contextmanager
def pushgateway_server(workdir: Path, timeout: float = 20.0) -> Iterator[LocalServer]:
    """An empty Pushgateway (no persistence file)."""
    port = free_port()
    # The Debian build persists to /var/lib/prometheus by default: a test gateway must start empty.
    argv = [binary(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    server = _start("pushgateway", argv, port, workdir, timeout)
    try:
        yield server
    finally:
        stop(server)


@contextmanager
def alertmanager_server(workdir: Path, config_file: Path, timeout: float = 20.0) -> Iterator[LocalServer]:
    """Alertmanager with the given config file, its own storage and clustering off."""
    port = free_port()
    argv = [
        binary(ALERTMANAGER),
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: single local instance
    ]
    server = _start("alertmanager", argv, port, workdir, timeout)
    try:
        yield server
    finally:
        stop(server)


def prom_query(prometheus: LocalServer, promql: str) -> list[dict[str, Any]]:
    """Instant query at now; returns the result list (vector samples or a one-item scalar list)."""
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        answer = http_json(url)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"query failed ({exc.code}): {promql}\n{exc.read().decode()}") from exc
    data = answer["data"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


def target_health(prometheus: LocalServer) -> dict[str, list[str]]:
    """Health ("up", "down", "unknown") of every active target, by job."""
    answer = http_json(f"{prometheus.url}/api/v1/targets?state=active")
    health: dict[str, list[str]] = {}
    for target in answer["data"]["activeTargets"]:
        health.setdefault(target["labels"]["job"], []).append(target["health"])
    return health


def wait_for_targets_up(prometheus: LocalServer, jobs: Sequence[str], timeout: float = 20.0) -> None:
    """Block until every target of every job has been scraped successfully."""

    def all_up() -> bool:
        health = target_health(prometheus)
        return all(health.get(job) and all(h == "up" for h in health[job]) for job in jobs)

    wait_for(all_up, timeout, f"targets {list(jobs)} up in {prometheus.url}")
