"""Run the DAGs locally on the embedded default: Airflow environment, metadata DB, dag.test() runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from retrain.errors import RetrainError
from retrain.notify import SMTP_CONN_ID, smtp_connection_json
from retrain.settings import REPO_ROOT, Settings


def airflow_home(settings: Settings) -> Path:
    """AIRFLOW_HOME for local mode: under the retrain home."""
    return settings.resolved_home / "airflow"


def airflow_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that point Airflow at this repo's config, DAGs and the local home."""
    env = {
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW_CONFIG": str(REPO_ROOT / "airflow.cfg"),
        "RETRAIN_REPO": str(REPO_ROOT),
        "RETRAIN_HOME": str(settings.resolved_home),
        "RETRAIN_SPEC": str(settings.spec.resolve()),
        "RETRAIN_GX_ROOT": str(settings.gx_root.resolve()),
        "RETRAIN_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "RETRAIN_MLFLOW_ARTIFACT_ROOT": settings.artifact_root,
        # The task SDK otherwise spends seconds per task probing for a secrets backend / plugins.
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    conn = smtp_connection_json(settings)
    if conn:
        env[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = conn
    return env


def prepare_airflow(settings: Settings, quiet: bool = False) -> dict[str, str]:
    """Export the Airflow environment into this process and migrate the metadata DB if needed.

    quiet: only warnings from Airflow's own loggers (the demo narrates instead).
    """
    env = airflow_environment(settings)
    if quiet:
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    os.environ.update(env)
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    migrate_metadata_db(os.environ, home)
    _migrate_loaded_airflow_db()
    return env


def migrate_metadata_db(env: Mapping[str, str], home: Path) -> None:
    """`airflow db migrate` once per Airflow home (a marker file records it)."""
    marker = home / ".db-migrated"
    if marker.exists():
        return
    _airflow_db_migrate(env)
    marker.write_text(datetime.now().isoformat())


def _migrate_loaded_airflow_db() -> None:
    """Airflow binds its metadata DB when first imported: if this process already imported it with
    another AIRFLOW_HOME (a test session, a notebook), dag.test() uses that DB, so migrate it too."""
    if "airflow.settings" not in sys.modules:
        return
    from airflow import settings as airflow_settings
    from sqlalchemy import inspect

    engine = airflow_settings.engine
    if engine is None or inspect(engine).has_table("dag"):
        return
    _airflow_db_migrate(
        {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": str(airflow_settings.SQL_ALCHEMY_CONN)}
    )


def _airflow_db_migrate(env: Mapping[str, str]) -> None:
    """`airflow db migrate` in a child process with `env`; RetrainError with its last line on failure."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RetrainError(f"airflow db migrate failed: {done.stderr.strip().splitlines()[-1:]}")


@dataclass(frozen=True)
class DagRunOutcome:
    """What one dag.test() run did."""

    dag_id: str
    run_date: date
    state: str
    task_states: dict[str, str] = field(default_factory=dict)
    task_seconds: dict[str, float] = field(default_factory=dict)
    xcoms: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        """True when the run ended in success and at least one task ran."""
        return self.state == "success" and self.executed

    @property
    def executed(self) -> bool:
        """True when at least one task instance ran (a run before a DAG's start_date creates none)."""
        return any(s not in ("None", "none", "scheduled", "removed") for s in self.task_states.values())

    @property
    def failed_task(self) -> str | None:
        """The task that actually failed (not those skipped because an upstream task failed)."""
        failed = [t for t, s in self.task_states.items() if s == "failed"]
        if failed:
            return failed[0]
        stuck = [t for t, s in self.task_states.items() if s not in ("success", "skipped")]
        return stuck[0] if stuck and not self.succeeded else None

    @property
    def problem(self) -> str | None:
        """One line saying why the run did not succeed (None when it did)."""
        if self.succeeded:
            return None
        if not self.executed:
            return f"{self.dag_id} executed no task for {self.run_date}: nothing was ingested, trained or promoted"
        return (
            f"{self.dag_id} failed for {self.run_date} at task {self.failed_task or '?'} (state {self.state})"
        )


def run_dag(
    dag_id: str, run_date: date, conf: dict[str, Any] | None = None, retries: int | None = 0
) -> DagRunOutcome:
    """Run one DAG for one date in this process with dag.test(); call prepare_airflow first.

    retries: a local one-shot run reports a failure at once (0) instead of sleeping through the retry
    backoff the scheduler uses (None keeps the DAG's retries).
    """
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    started = time.perf_counter()
    bag = DagBag(str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RetrainError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise RetrainError(f"no DAG named {dag_id!r} in {REPO_ROOT / 'dags'}")
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    logical = datetime(run_date.year, run_date.month, run_date.day, tzinfo=_utc())
    run = dag.test(logical_date=logical, run_conf={"date": run_date.isoformat(), **(conf or {})})
    states: dict[str, str] = {}
    seconds: dict[str, float] = {}
    xcoms: dict[str, Any] = {}
    order = [node.node_id for node in dag.task_group.topological_sort()]
    for ti in sorted(run.get_task_instances(), key=lambda t: _position(order, t.task_id)):
        states[ti.task_id] = _state_name(ti.state)
        if ti.start_date and ti.end_date:
            seconds[ti.task_id] = (ti.end_date - ti.start_date).total_seconds()
        if str(ti.state) == "success":
            xcoms[ti.task_id] = ti.xcom_pull(task_ids=ti.task_id)
    state = "success" if run.state == DagRunState.SUCCESS else str(run.state)
    return DagRunOutcome(dag_id, run_date, state, states, seconds, xcoms, time.perf_counter() - started)


def run_days(
    dag_id: str,
    days: list[date],
    conf: dict[str, Any] | None = None,
    on_done: Callable[[DagRunOutcome], None] | None = None,
) -> list[DagRunOutcome]:
    """Run a DAG for each date, in order; a failed day does not stop the others."""
    outcomes = []
    for day in days:
        outcome = run_dag(dag_id, day, conf)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def _state_name(state: Any) -> str:
    """`failed`, `success`, `upstream_failed`... (Airflow states are str enums; None when never run)."""
    return str(getattr(state, "value", state))


def _position(order: list[str], task_id: str) -> int:
    return order.index(task_id) if task_id in order else len(order)


def _utc() -> Any:
    from datetime import UTC

    return UTC
