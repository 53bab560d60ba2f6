"""Pipeline and registry commands: run, backfill, status, promote, rollback."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from retrain.cli.common import DateOption, cli_context, console, parse_day
from retrain.errors import DataMissingError, RetrainError
from retrain.settings import Settings
from retrain.spec import DatasetSpec

PromoteFlag = Annotated[
    bool, typer.Option("--promote/--no-promote", help="Allow promotion when every gate passes.")
]


def outcome_table(outcomes: list[Any]) -> Table:
    """One row per DAG run: date, state, version, gate outcome, failed task or gates."""
    table = Table("date", "run", "version", "outcome", "production", "detail", title="retrain_daily runs")
    for outcome in outcomes:
        register = outcome.xcoms.get("register") or {}
        if not outcome.executed:
            run_state, detail = "[red]no task ran[/red]", "nothing executed"
        elif outcome.succeeded:
            run_state, detail = "[green]success[/green]", ", ".join(register.get("failed_gates") or [])
        else:
            run_state, detail = f"[red]{outcome.state}[/red]", f"failed at {outcome.failed_task or '?'}"
        table.add_row(
            outcome.run_date.isoformat(),
            run_state,
            str(register.get("version", "-")),
            str(register.get("outcome", "-")),
            str(register.get("production_version", "-")),
            detail,
        )
    return table


def require_drop(settings: Settings, spec: DatasetSpec, day: date) -> None:
    """DataMissingError at once when the day has no landing drop (a local run has nothing to wait for)."""
    from retrain.ingest import landing_available, landing_location

    if not landing_available(settings, spec, day):
        where = landing_location(settings, spec, day)
        raise DataMissingError(f"no landing drop for {day}: looked for {where}")


def run(ctx: typer.Context, day: DateOption, promote: PromoteFlag = True) -> None:
    """Run retrain_daily for one date in-process (Airflow dag.test) on the configured home."""
    from retrain.local.orchestrate import prepare_airflow, run_dag

    c = cli_context(ctx)
    run_day = parse_day(day)
    require_drop(c.settings, c.spec, run_day)
    prepare_airflow(c.settings)
    outcome = run_dag("retrain_daily", run_day, {"promote": promote})
    console.print(outcome_table([outcome]))
    if outcome.problem:
        raise RetrainError(outcome.problem)


def backfill(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="First date, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last date, YYYY-MM-DD (inclusive).")],
    promote: PromoteFlag = True,
) -> None:
    """Run retrain_daily for every date of a range, oldest first (dag.test per date); days without a drop
    are reported and skipped."""
    from retrain.cadence import date_range
    from retrain.ingest import landing_available
    from retrain.local.orchestrate import prepare_airflow, run_days

    c = cli_context(ctx)
    days = date_range(parse_day(start), parse_day(end))
    missing = [d for d in days if not landing_available(c.settings, c.spec, d)]
    if missing:
        console.print(f"no landing drop, skipped: {', '.join(d.isoformat() for d in missing)}")
    prepare_airflow(c.settings)
    outcomes = run_days(
        "retrain_daily",
        [d for d in days if d not in missing],
        {"promote": promote},
        on_done=lambda o: console.print(f"{o.run_date}: {o.problem or 'success'} ({o.seconds:.0f} s)"),
    )
    console.print(outcome_table(outcomes))
    failed = [f"{o.run_date} at {o.failed_task or 'no task'}" for o in outcomes if o.problem]
    failed += [f"{d} (no drop)" for d in missing]
    if failed:
        raise RetrainError(f"{len(failed)} of {len(days)} day(s) failed: {'; '.join(failed)}")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (top-level `aliases` object).")] = False,
) -> None:
    """Show aliases, versions, their data intervals, metrics and gate outcomes."""
    from retrain.registry import ModelRegistry

    c = cli_context(ctx)
    state = ModelRegistry(c.settings, c.spec.model_name).status()
    if as_json:
        console.out(json.dumps(state.to_dict(), indent=2), highlight=False)
        return
    aliases = ", ".join(f"{a} → v{v.version}" for a, v in sorted(state.aliases.items())) or "none"
    console.print(f"model [bold]{state.model_name}[/bold]: {aliases}")
    table = Table("version", "aliases", "data interval", "holdout RMSE", "WAPE", "gates", "failed gates")
    for info in state.versions:
        tags = info.tags
        table.add_row(
            str(info.version),
            ", ".join(info.aliases),
            f"{info.data_start} → {info.data_end}",
            tags.get("holdout.rmse", "-"),
            tags.get("holdout.wape", "-"),
            info.gate_decision or "-",
            tags.get("gate.failed", "-"),
        )
    console.print(table)


def promote(
    ctx: typer.Context,
    version: Annotated[int, typer.Option("--version", min=1, help="Version to put in production.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded on the version).")
    ] = "manual override",
) -> None:
    """Manually move the production alias to a version (recorded as an override)."""
    from retrain.registry import ModelRegistry

    c = cli_context(ctx)
    record = ModelRegistry(c.settings, c.spec.model_name).promote(
        version, actor=f"cli:{getpass.getuser()}", reason=f"manual override: {reason}"
    )
    console.print(f"production → v{record.version} (was v{record.replaced}); previous → v{record.previous}")


def rollback(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded on the versions).")
    ] = "manual rollback",
) -> None:
    """Move production back to the previous version (recorded)."""
    from retrain.registry import ModelRegistry

    c = cli_context(ctx)
    record = ModelRegistry(c.settings, c.spec.model_name).rollback(
        actor=f"cli:{getpass.getuser()}", reason=reason
    )
    console.print(f"production → v{record.version} (rolled back from v{record.replaced})")


def demo(ctx: typer.Context) -> None:
    """The whole story on the embedded default: simulate, validate, train, gate, promote, reject."""
    from retrain.cli.demo import run_demo

    c = cli_context(ctx)
    console.print(f"retrain demo — home {c.settings.resolved_home}, spec {c.settings.spec}")
    run_demo(c.settings, c.spec, console)


COMMANDS: list[Callable[..., None]] = [run, backfill, status, promote, rollback, demo]
