"""What a running local stack records (AIRFLOW_HOME/stack.json), and how any shell stops it from that record.

The record holds ports and process ids with their start times, so `retrain stack status|down` in another
shell finds the components and never signals a recycled pid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from retrain.local.orchestrate import airflow_home
from retrain.local.processes import stop_process_trees
from retrain.settings import Settings


@dataclass(frozen=True)
class ProcessRecord:
    """One running component: pid plus start time, so a recycled pid is never signalled."""

    name: str
    pid: int
    create_time: float

    @classmethod
    def of(cls, name: str, pid: int) -> ProcessRecord:
        """The record of a live process."""
        return cls(name, pid, psutil.Process(pid).create_time())

    def process(self) -> psutil.Process | None:
        """The recorded process if it still runs (same pid and start time)."""
        with suppress(psutil.NoSuchProcess):
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) < 0.01 and process.is_running():
                return process
        return None


@dataclass(frozen=True)
class StackState:
    """What `retrain stack up` recorded in AIRFLOW_HOME/stack.json."""

    api_url: str
    mlflow_url: str | None
    home: str
    log_dir: str
    password_file: str
    started_at: str
    processes: list[ProcessRecord] = field(default_factory=list)

    def alive(self) -> dict[str, bool]:
        """Component name → whether its recorded process still runs."""
        return {p.name: p.process() is not None for p in self.processes}


def state_file(settings: Settings) -> Path:
    """Where a running stack records itself for `retrain stack status|down`."""
    return airflow_home(settings) / "stack.json"


def read_state(settings: Settings) -> StackState | None:
    """The recorded stack of this home, or None when none was started (or the file is unreadable)."""
    path = state_file(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        processes = [ProcessRecord(**p) for p in data.pop("processes")]
        return StackState(**data, processes=processes)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_state(settings: Settings, state: StackState) -> None:
    """Record a started stack for other shells."""
    state_file(settings).write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")


def stop_recorded(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Stop the stack recorded for this home (from any shell); return the components that were running."""
    state = read_state(settings)
    if state is None:
        return []
    # Removing the file first tells a foreground `retrain stack up` that the stop was asked for.
    state_file(settings).unlink(missing_ok=True)
    running = {r.name: p for r in state.processes if (p := r.process()) is not None}
    stop_in_order(running, timeout)
    return list(running)


def stop_in_order(running: Mapping[str, psutil.Process], timeout: float) -> None:
    """The scheduler (with its workers and task processes) first, while the api-server still runs:
    a task process reports its end to the execution API and retries for minutes when that is gone.
    Then everything else at once."""
    stop_process_trees([p for name, p in running.items() if name == "scheduler"], timeout)
    stop_process_trees([p for name, p in running.items() if name != "scheduler"], timeout)
