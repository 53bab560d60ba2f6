"""Data commands: simulate, ingest, validate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from retrain.cli.common import CliContext, DateOption, cli_context, console, parse_day
from retrain.errors import RetrainError

if TYPE_CHECKING:
    from retrain.onboard import RangeIngestResult


def simulate(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
    days: Annotated[int, typer.Option("--days", min=1, help="Number of days to write.")],
    drift: Annotated[
        list[str] | None, typer.Option("--drift", help="KIND@DATE: price_shift, category_mix, level_shift.")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="KIND@DATE: missing_column, wrong_type, null_keys, negative_sales, duplicate_keys, "
            "empty_file, late_day, missing_day.",
        ),
    ] = None,
    stores: Annotated[int, typer.Option("--stores", min=1)] = 20,
    items: Annotated[int, typer.Option("--items", min=1)] = 50,
    seed: Annotated[int | None, typer.Option("--seed", help="Default: RETRAIN_SEED.")] = None,
) -> None:
    """Write simulated retail daily-demand drops to the landing folder."""
    from retrain.sim.demand import SimulationConfig, parse_injection, write_simulation

    c = cli_context(ctx)
    try:
        config = SimulationConfig(
            start=parse_day(start),
            days=days,
            n_stores=stores,
            n_items=items,
            seed=c.settings.seed if seed is None else seed,
            drifts=tuple(parse_injection(d) for d in drift or []),
            faults=tuple(parse_injection(f) for f in fault or []),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=days)
        result = write_simulation(
            c.layout, c.spec, config, progress=lambda n: progress.update(task, advance=n)
        )
    console.print(f"wrote {len(result.days_written)} day(s), {result.row_count:,} rows to {c.layout.landing}")
    if result.skipped_days:
        console.print(f"no drop (missing day): {', '.join(d.isoformat() for d in result.skipped_days)}")
    if result.late_days:
        console.print(
            f"late drops waiting in landing/_late: {', '.join(d.isoformat() for d in result.late_days)}"
        )
    console.print(f"noise floor (irreducible RMSE): {result.noise_floor_rmse:.3f}")


QUARANTINED_EXIT = 2  # a range finished but some days were quarantined (see the summary)


def ingest(
    ctx: typer.Context,
    day: Annotated[str | None, typer.Option("--date", help="Run date, YYYY-MM-DD (one day).")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First day of a range, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day of a range, YYYY-MM-DD.")] = None,
    stage_only: Annotated[
        bool, typer.Option("--stage-only", help="Stage the drop without validating (--date only).")
    ] = False,
) -> None:
    """Ingest a day's drop (--date) or a range (--start/--end): validate, publish to curated/ or quarantine.

    A range exits 2 when it finished but some days were quarantined, 1 on errors.
    """
    from retrain import ingest as ingest_stage
    from retrain import validate as validate_stage

    c = cli_context(ctx)
    if (day is None) == (start is None and end is None) or (start is None) != (end is None):
        raise RetrainError("give either --date D, or --start D1 and --end D2")
    if start is not None and end is not None:
        if stage_only:
            raise RetrainError("--stage-only applies to one --date")
        result = _ingest_range(c, parse_day(start), parse_day(end))
        if result.quarantined:
            raise typer.Exit(QUARANTINED_EXIT)
        return
    assert day is not None
    run_day = parse_day(day)
    staged = ingest_stage.run(c.settings, c.spec, run_day)
    console.print(f"staged {staged.rows:,} rows for {run_day} from {', '.join(staged.sources)}")
    if stage_only:
        return
    result_day = validate_stage.run(c.settings, c.spec, run_day)
    console.print(f"valid: published {result_day.rows:,} rows to {c.layout.curated_partition(run_day)}")


def _ingest_range(c: CliContext, start: date, end: date) -> RangeIngestResult:
    from retrain.onboard import ingest_range

    total = (end - start).days + 1
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"ingesting {c.spec.name} {start}..{end}", total=total)
        result = ingest_range(
            c.settings, c.spec, start, end, progress=lambda _day, _outcome: progress.advance(task)
        )
    print_range_summary(c, result)
    return result


def print_range_summary(c: CliContext, result: RangeIngestResult) -> None:
    """The published / quarantined / missing table of a range ingest, and what to look at."""
    table = Table(
        title=f"{c.spec.name} {result.start}..{result.end} ({result.days:,} days, {result.seconds:.1f} s)"
    )
    table.add_column("outcome")
    table.add_column("days", justify="right")
    table.add_column("detail")
    table.add_row("published", f"{len(result.published):,}", f"{result.rows:,} rows in {c.layout.curated}")
    table.add_row(
        "quarantined", f"{len(result.quarantined):,}", _days_text([q.day for q in result.quarantined])
    )
    table.add_row("missing", f"{len(result.missing):,}", _days_text(list(result.missing)))
    console.print(table)
    for q in result.quarantined[:10]:
        console.print(f"quarantined {q.day}: {q.reasons} ({q.path / 'gx_result.json'})", highlight=False)
    if len(result.quarantined) > 10:
        console.print(f"... and {len(result.quarantined) - 10} more under {c.layout.quarantine}")
    if result.data_docs_index:
        console.print(f"Data Docs: {result.data_docs_index}")


def _days_text(days: list[date], limit: int = 8) -> str:
    shown = ", ".join(d.isoformat() for d in days[:limit])
    return shown + (f", ... (+{len(days) - limit})" if len(days) > limit else "")


def import_history(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="History file (.csv or .parquet) with the spec's columns.")],
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Only split into landing drops; do not ingest the range.")
    ] = False,
) -> None:
    """Split a history file into the spec's daily landing drops, then ingest the whole range."""
    from retrain.history_import import import_history as split_history

    c = cli_context(ctx)
    imported = split_history(c.settings, c.spec, file)
    console.print(
        f"imported {imported.rows:,} rows, {imported.days:,} days ({imported.start}..{imported.end}, "
        f"{imported.cadence.name}) into {c.layout.landing}: {imported.days_written:,} written, "
        f"{imported.days_unchanged:,} unchanged"
    )
    if no_ingest:
        return
    result = _ingest_range(c, imported.start, imported.end)
    if result.quarantined:
        raise typer.Exit(QUARANTINED_EXIT)


import_history.__name__ = "import"  # the command is `retrain import`; `import` is a Python keyword


spec_app = typer.Typer(help="Dataset spec helpers.", no_args_is_help=True)


@spec_app.command("init")
def spec_init(
    file: Annotated[Path, typer.Argument(help="History file (.csv or .parquet) to draft a spec from.")],
    target: Annotated[str, typer.Option("--target", help="Column to forecast (numeric).")],
    timestamp: Annotated[str, typer.Option("--timestamp", help="Date column.")],
    keys: Annotated[
        str, typer.Option("--keys", help="Entity key columns, comma-separated (none: one series).")
    ] = "",
    name: Annotated[
        str | None, typer.Option("--name", help="Dataset name (default: from the file name).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the YAML here (default: print it).")
    ] = None,
) -> None:
    """Draft a dataset spec from a history file: types, nulls, ranges, allowed values, date format."""
    from retrain.spec_draft import draft_spec

    text = draft_spec(file, target, timestamp, [k.strip() for k in keys.split(",") if k.strip()], name)
    if output is None:
        console.print(text, markup=False, highlight=False, end="")
        return
    if output.exists():
        raise RetrainError(f"{output} exists; choose another --output or remove it")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"drafted {output}: read it, edit `features`, then `retrain import {file} --spec {output}`")


def validate(ctx: typer.Context, day: DateOption) -> None:
    """Validate a staged batch with Great Expectations; publish it or quarantine it."""
    from retrain import validate as validate_stage

    c = cli_context(ctx)
    run_day = parse_day(day)
    result = validate_stage.run(c.settings, c.spec, run_day)
    console.print(f"valid: published {result.rows:,} rows to {c.layout.curated_partition(run_day)}")


COMMANDS: list[Callable[..., None]] = [simulate, ingest, validate, import_history]
