"""Helpers for the real-Airflow-stack tests: a small simulated history in a throw-away home, free ports,
process-leak checks, and a headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import signal
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from websockets.sync.client import ClientConnection, connect

from retrain.layout import DatasetLayout
from retrain.local.processes import free_port, start_process, stop_process, wait_until
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import DatasetSpec, load_spec
from tests.utils.sim import sim_config


@dataclass(frozen=True)
class History:
    """A home with `history_days` of curated data published and landing drops for the days after."""

    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout
    first_day: date  # the first day without curated data: the first pipeline run


def small_spec(target: Path, num_boost_round: int) -> Path:
    """A copy of the default spec with fewer boosting rounds (same data contract, faster training)."""
    data = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text(encoding="utf-8"))
    data["training"]["num_boost_round"] = num_boost_round
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def prepare_history(
    root: Path,
    start: date,
    history_days: int,
    extra_days: int = 1,
    n_stores: int = 8,
    n_items: int = 10,
    num_boost_round: int = 60,
) -> History:
    """Simulate history + extra days under root, publish the history to curated/, copy gx/ beside it."""
    from retrain import ingest
    from retrain.sim.demand import write_simulation

    gx_root = root / "gx"
    shutil.copytree(REPO_ROOT / "gx", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
    spec_file = small_spec(root / "spec.yaml", num_boost_round)
    settings = Settings(home=root / "var", gx_root=gx_root, spec=spec_file)
    spec = load_spec(spec_file)
    layout = DatasetLayout.for_spec(settings, spec)
    config = sim_config(start, history_days + extra_days, n_stores, n_items, seed=settings.seed)
    write_simulation(layout, spec, config)
    for offset in range(history_days):
        day = start + timedelta(days=offset)
        ingest.run(settings, spec, day)
        ingest.publish_batch(settings, spec, day)
    return History(settings, spec, layout, start + timedelta(days=history_days))


def subprocess_base_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The parent environment without Airflow/retrain variables: the stack sets its own, for itself only."""
    return {k: v for k, v in environ.items() if not k.startswith(("AIRFLOW", "RETRAIN_"))}


def stack_processes(airflow_home: Path) -> list[psutil.Process]:
    """Every live process started for this Airflow home (components, workers, task processes, MLflow)."""
    found = []
    for process in psutil.process_iter():
        with suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get("AIRFLOW_HOME") == str(
                airflow_home
            ):
                found.append(process)
    return found


def listening(ports: Iterable[int]) -> list[int]:
    """The ports of `ports` something still listens on."""
    wanted = set(ports)
    return sorted(
        {
            c.laddr.port
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in wanted
        }
    )


def kill_all(processes: Iterable[psutil.Process]) -> None:
    """SIGKILL a leftover set of processes and reap them (test teardown safety net)."""
    processes = list(processes)
    for process in processes:
        with suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


class CdpPage:
    """One headless Chromium tab driven over the DevTools protocol (what Playwright does, minus the library)."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        command_id = next(self._ids)
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def set_cookie(self, url: str, name: str, value: str) -> None:
        """Store a cookie for a URL, as a login response would."""
        assert self.call("Network.setCookie", url=url, name=name, value=value).get("success")

    def open(self, url: str) -> None:
        """Navigate the tab."""
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        """The rendered text of the page (after JavaScript ran)."""
        result = self.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
        return str(result["result"].get("value") or "")

    def wait_for_text(self, *needles: str, timeout: float = 45.0) -> str:
        """Poll the rendered text until it contains every needle; return it (raise with it otherwise)."""
        shown = [""]

        def showing() -> str | None:
            shown[0] = self.text()
            return shown[0] if all(n in shown[0] for n in needles) else None

        return wait_until(
            showing,
            timeout,
            f"the page to show {needles}",
            interval=0.5,
            detail=lambda: f"it shows:\n{shown[0][:2000]}",
        )

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport."""
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path


@contextmanager
def chromium_page(profile: Path, width: int = 1400, height: int = 900) -> Iterator[CdpPage]:
    """A headless Debian `chromium` with one blank tab; the browser is killed on exit."""
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: run scripts/system-deps.sh"
    port = free_port()
    command = [
        binary,
        "--headless",
        "--no-sandbox",  # tests run as root in a container
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    browser = start_process(command, None, profile / "chromium.log")
    try:
        socket_url = _page_socket(port, browser)
        with connect(socket_url, max_size=64 * 2**20) as socket:
            yield CdpPage(socket)
    finally:
        stop_process(browser, sig=signal.SIGKILL)


def _page_socket(port: int, browser: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    def page() -> str | None:
        assert browser.poll() is None, f"chromium exited with code {browser.returncode}"
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
        pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
        return str(pages[0]) if pages else None

    return wait_until(
        page, timeout, "chromium's DevTools endpoint", interval=0.2, ignore=(httpx.HTTPError, ValueError)
    )
