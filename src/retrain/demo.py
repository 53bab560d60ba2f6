"""`retrain demo`: the whole story on the embedded default (SQLite + files), narrated step by step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from retrain.errors import DataInvalidError, DataMissingError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec

DEMO_START = date(2026, 1, 1)


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


@dataclass
class DemoReport:
    """What happened, for the summary table and the tests."""

    ingested: list[tuple[date, str, str]] = field(default_factory=list)
    scenes: list[tuple[str, date, str, str]] = field(default_factory=list)


def ingest_history(
    settings: Settings, spec: DatasetSpec, days: list[date], on_day: Callable[[date, str, str], None]
) -> None:
    """Stage, validate and publish (or quarantine) each day, reporting the outcome of each."""
    from retrain import ingest, validate

    for day in days:
        try:
            ingest.stage_batch(settings, spec, day)
            result = validate.validate_batch(settings, spec, day)
            on_day(day, "published", f"{result.rows:,} rows")
        except DataInvalidError as exc:
            on_day(day, "quarantined", "; ".join(exc.failed_expectations) or str(exc))
        except DataMissingError as exc:
            on_day(day, "missing", str(exc))


def run_demo(
    settings: Settings, spec: DatasetSpec, console: Console, plan: DemoPlan | None = None
) -> DemoReport:
    """Simulate, ingest with validation, then run the daily DAG through four scenes."""
    from retrain.simulate import Injection, SimulationConfig, write_simulation

    plan = plan or DemoPlan()
    layout = DatasetLayout.for_spec(settings, spec)
    report = DemoReport()
    scene_days = [plan.first_run + timedelta(days=i) for i in range(4)]
    config = SimulationConfig(
        start=plan.start,
        days=plan.history_days + len(scene_days),
        n_stores=plan.stores,
        n_items=plan.items,
        seed=settings.seed,
        faults=(Injection("null_keys", plan.bad_history_day), Injection("duplicate_keys", scene_days[2])),
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

    from retrain.orchestrate import prepare_airflow, run_dag

    prepare_airflow(settings, quiet=True)
    scenes: list[tuple[str, date, dict[str, object]]] = [
        ("first model", scene_days[0], {}),
        ("one more day of data", scene_days[1], {}),
        ("bad batch (duplicate keys)", scene_days[2], {}),
        ("degraded candidate (2 boosting rounds)", scene_days[3], {"num_boost_round": 2}),
    ]
    for number, (title, day, conf) in enumerate(scenes, start=3):
        console.rule(f"[bold]{number}. retrain_daily {day}: {title}")
        outcome = run_dag("retrain_daily", day, conf)
        register = outcome.xcoms.get("register") or {}
        if outcome.succeeded:
            verdict = str(register.get("outcome"))
            detail = ", ".join(register.get("failed_gates") or []) or "all gates passed"
            for gate in (register.get("report") or {}).get("gates", []):
                mark = "[green]PASS[/green]" if gate["passed"] else "[red]FAIL[/red]"
                console.print(f"  {mark} {gate['name']}: {gate['reason']}")
        else:
            failed = [t for t, s in outcome.task_states.items() if s == "failed"]
            verdict = f"failed at {', '.join(failed) or outcome.state}"
            detail = "production unchanged"
        report.scenes.append((title, day, verdict, detail))
    _print_summary(settings, spec, console, report)
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
