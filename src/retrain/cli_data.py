"""Data commands: simulate, ingest, validate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import Progress

from retrain.cli_common import DateOption, cli_context, console, parse_day


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
    from retrain.simulate import SimulationConfig, parse_injection, write_simulation

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


def ingest(
    ctx: typer.Context,
    day: DateOption,
    stage_only: Annotated[
        bool, typer.Option("--stage-only", help="Stage the drop without validating.")
    ] = False,
) -> None:
    """Ingest a day's drop: stage it, validate it, publish it to curated/ or quarantine it."""
    from retrain import ingest as ingest_stage
    from retrain import validate as validate_stage

    c = cli_context(ctx)
    run_day = parse_day(day)
    staged = ingest_stage.stage_batch(c.settings, c.spec, run_day)
    console.print(f"staged {staged.rows:,} rows for {run_day} from {', '.join(staged.sources)}")
    if stage_only:
        return
    result = validate_stage.validate_batch(c.settings, c.spec, run_day)
    console.print(f"valid: published {result.rows:,} rows to {c.layout.curated_partition(run_day)}")


def validate(ctx: typer.Context, day: DateOption) -> None:
    """Validate a staged batch with Great Expectations; publish it or quarantine it."""
    from retrain import validate as validate_stage

    c = cli_context(ctx)
    run_day = parse_day(day)
    result = validate_stage.validate_batch(c.settings, c.spec, run_day)
    console.print(f"valid: published {result.rows:,} rows to {c.layout.curated_partition(run_day)}")


COMMANDS: list[Callable[..., None]] = [simulate, ingest, validate]
