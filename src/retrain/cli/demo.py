"""`retrain demo`: the whole story on the embedded default (SQLite + files), narrated step by step."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from retrain.cli import demo_scenes
from retrain.errors import DataInvalidError, DataMissingError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec

DEMO_START = date(2026, 1, 1)
REPORT_FILE = "demo_report.json"


@dataclass(frozen=True)
class DemoPlan:
    """Dates of the demo: ingested history, then one pipeline run per scene."""

    start: date = DEMO_START
    history_days: int = 70
    bad_history_offset: int = 40  # a faulty day inside the history: quarantined, history goes on
    stores: int = 20
    items: int = 50

    @property
    def first_run(self) -> date:
        """The first pipeline run date (the day after the history)."""
        return self.start + timedelta(days=self.history_days)

    @property
    def bad_history_day(self) -> date:
        """The faulty day inside the history."""
        return self.start + timedelta(days=self.bad_history_offset)


class DemoReport(BaseModel):
    """What happened, for the summary table; saved in the home (REPORT_FILE) for the tests and the curious."""

    ingested: list[tuple[date, str, str]] = Field(default_factory=list)
    scenes: list[tuple[str, date, str, str]] = Field(default_factory=list)
    served: list[demo_scenes.ServedBatch] = Field(default_factory=list)
    drift: demo_scenes.DriftScene | None = None

    @staticmethod
    def path(settings: Settings) -> Path:
        """Where `retrain demo` leaves its report."""
        return settings.resolved_home / REPORT_FILE

    def write(self, settings: Settings) -> Path:
        """Save the report as JSON in the home."""
        path = self.path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def read(cls, settings: Settings) -> DemoReport:
        """The report the last `retrain demo` on this home left."""
        return cls.model_validate_json(cls.path(settings).read_text(encoding="utf-8"))


def short_check(label: str) -> str:
    """A failed check as the demo prints it: `unique(date,store_id)` for
    `expect_compound_columns_to_be_unique(date,store_id)` (the full names are in gx_result.json)."""
    return re.sub(r"^expect_(?:table_|compound_columns_|column_values_|column_)?(?:to_)?(?:be_)?", "", label)


def ingest_history(
    settings: Settings, spec: DatasetSpec, days: list[date], on_day: Callable[[date, str, str], None]
) -> None:
    """Stage, validate and publish (or quarantine) each day, reporting the outcome of each."""
    from retrain import ingest, validate

    for day in days:
        try:
            ingest.run(settings, spec, day)
            result = validate.run(settings, spec, day)
            on_day(day, "published", f"{result.rows:,} rows")
        except DataInvalidError as exc:
            on_day(day, "quarantined", "; ".join(map(short_check, exc.failed_expectations)) or str(exc))
        except DataMissingError as exc:
            on_day(day, "missing", str(exc))


def gate_lines(verdict: str, gates: list[dict[str, Any]]) -> list[str]:
    """One line for the gates that passed, then one per failed gate with its reason."""
    passed = [g for g in gates if g["passed"]]
    skipped = sum(1 for g in passed if g.get("skipped"))
    colour = "green" if verdict == "promoted" else "yellow"
    head = f"  [{colour}]{verdict}[/{colour}]: {len(passed)} of {len(gates)} gates passed"
    head += f" ({skipped} skipped)" if skipped else ""
    return [head, *(f"  [red]FAIL[/red] {g['name']}: {g['reason']}" for g in gates if not g["passed"])]


def run_demo(
    settings: Settings, spec: DatasetSpec, console: Console, plan: DemoPlan | None = None
) -> DemoReport:
    """Simulate, ingest with validation, then run the daily DAG through four scenes."""
    from retrain.sim.demand import Injection, SimulationConfig, write_simulation

    plan = plan or DemoPlan()
    layout = DatasetLayout.for_spec(settings, spec)
    report = DemoReport()
    scene_days = [plan.first_run + timedelta(days=i) for i in range(5)]
    config = SimulationConfig(
        start=plan.start,
        days=plan.history_days + len(scene_days),
        n_stores=plan.stores,
        n_items=plan.items,
        seed=settings.seed,
        faults=(Injection("null_keys", plan.bad_history_day), Injection("duplicate_keys", scene_days[2])),
        drifts=(Injection("price_shift", scene_days[4]),),
    )
    console.rule("[bold]1. Simulate retail daily demand")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=config.days)
        sim = write_simulation(layout, spec, config, progress=lambda n: progress.update(task, completed=n))
    console.print(
        f"{len(sim.days_written)} daily drops ({plan.stores} stores x {plan.items} items) in {layout.landing}; "
        f"noise floor (irreducible RMSE) {sim.noise_floor_rmse:.3f}"
    )

    console.rule("[bold]2. Ingest and validate the history (Great Expectations)")
    history = [plan.start + timedelta(days=i) for i in range(plan.history_days)]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("ingesting", total=len(history))

        def on_day(day: date, outcome: str, detail: str) -> None:
            report.ingested.append((day, outcome, detail))
            progress.advance(task)
            if outcome != "published":
                console.print(f"[yellow]{day}: {outcome}[/yellow] — {detail}")

        ingest_history(settings, spec, history, on_day)
    published = sum(1 for _, outcome, _ in report.ingested if outcome == "published")
    console.print(
        f"{published} day(s) published to {layout.curated}; bad batches kept in {layout.quarantine}"
    )

    from retrain.local.orchestrate import prepare_airflow, run_dag

    prepare_airflow(settings, quiet=True)
    scenes: list[tuple[str, date, dict[str, object]]] = [
        ("first model", scene_days[0], {}),
        ("one more day of data", scene_days[1], {}),
        ("bad batch (duplicate keys)", scene_days[2], {}),
        ("degraded candidate (2 boosting rounds)", scene_days[3], {"num_boost_round": 2}),
    ]

    def run_scene(number: int, title: str, day: date, conf: dict[str, object]) -> dict[str, Any]:
        console.rule(f"[bold]{number}. retrain_daily {day}: {title}")
        outcome = run_dag("retrain_daily", day, conf)
        register: dict[str, Any] = outcome.xcoms.get("register") or {}
        if outcome.succeeded:
            verdict = str(register.get("outcome"))
            detail = ", ".join(register.get("failed_gates") or []) or "all gates passed"
            for line in gate_lines(verdict, (register.get("report") or {}).get("gates", [])):
                console.print(line)
        else:
            failed = [t for t, s in outcome.task_states.items() if s == "failed"]
            verdict = f"failed at {', '.join(failed) or outcome.state}"
            detail = "production unchanged"
            console.print(f"  [red]{verdict}[/red]: nothing registered, {detail}")
        report.scenes.append((title, day, verdict, detail))
        return register

    run_scene(3, *scenes[0])
    console.rule("[bold]4. Serving follows the production alias")

    def promote_next_day() -> int | None:
        register = run_scene(5, *scenes[1])
        return int(register["version"]) if register.get("outcome") == "promoted" else None

    report.served = demo_scenes.serve_across_promotion(
        settings, spec, console, source_day=scene_days[0], ask_for=scene_days[2], promote=promote_next_day
    )
    for number, scene in enumerate(scenes[2:], start=6):
        run_scene(number, *scene)

    console.rule(f"[bold]8. Monitoring {scene_days[4]}: prices shifted (Evidently drift check)")
    ingest_history(
        settings, spec, [scene_days[4]], lambda d, o, detail: console.print(f"  {d}: {o}, {detail}")
    )
    report.drift = demo_scenes.check_drift(settings, spec, scene_days[4], console)
    verdict = "drift alert" if report.drift.alerted else "no drift"
    report.scenes.append(
        ("price shift (drift check)", scene_days[4], verdict, ", ".join(report.drift.drifted))
    )
    _print_summary(settings, spec, console, report)
    report.write(settings)
    return report


def _print_summary(settings: Settings, spec: DatasetSpec, console: Console, report: DemoReport) -> None:
    from retrain.registry import ModelRegistry

    table = Table("scene", "run date", "outcome", "detail", title="retrain demo")
    for title, day, verdict, detail in report.scenes:
        table.add_row(title, day.isoformat(), verdict, detail)
    console.print(table)
    status = ModelRegistry(settings, spec.model_name).status()
    aliases = ", ".join(f"{a} → v{v.version}" for a, v in sorted(status.aliases.items()))
    layout = DatasetLayout.for_spec(settings, spec)
    console.print(f"registry: {aliases}")
    console.print("where to look:")
    console.print(f"  curated data      {layout.curated}")
    console.print(f"  quarantine        {layout.quarantine}  (each with gx_result.json)")
    console.print(
        f"  GX Data Docs      {settings.gx_root / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}"
    )
    console.print(f"  MLflow UI         .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}")
    console.print("  registry status   .venv/bin/retrain status")
    if report.drift is not None:
        console.print(f"  drift report      {report.drift.report}")
        console.print(f"  drift email       {report.drift.email or '(none sent)'}")
    console.print("  serve it yourself .venv/bin/retrain serve   (then open http://127.0.0.1:8000/docs)")
