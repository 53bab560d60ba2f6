"""Monitoring commands: drift (input and prediction-log drift of a day) and actuals (realized performance)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from retrain.cli.common import DateOption, cli_context, console, parse_day
from retrain.settings import Settings

if TYPE_CHECKING:
    from retrain.monitoring.drift import DriftRun
    from retrain.monitoring.drift_alerts import DriftSummary
    from retrain.monitoring.realized import RealizedPerformance

EmailFlag = Annotated[
    bool, typer.Option("--email/--no-email", help="Email when a threshold is reached (SMTP or the maildir).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")]


def _smtp_connection_for_cli(settings: Settings) -> None:
    """Outside Airflow nobody exported the SMTP connection the provider's hook reads: define it here."""
    from retrain.notify import SMTP_CONN_ID, smtp_connection_json

    conn = smtp_connection_json(settings)
    if conn:
        os.environ.setdefault(f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}", conn)


def drift_table(summary: DriftSummary) -> Table:
    """One row per compared column (the target last): score, the reference windows' max, threshold, verdict."""
    title = "input drift (curated window)" if summary.kind == "input" else "prediction log drift"
    table = Table(
        "column",
        "method",
        "score",
        "ref. windows max",
        "threshold",
        "drift",
        title=f"{title} {summary.window_start}..{summary.window_end} vs v{summary.model_version}",
        caption=f"reference: {escape(summary.reference)}",
    )
    columns = sorted(summary.features, key=lambda f: f.score, reverse=True)
    for f in [*columns, *([summary.target] if summary.target is not None else [])]:
        role = " (key)" if f.column in summary.key_features else ""
        role = " (target)" if f is summary.target else role
        table.add_row(
            escape(f.column + role),
            f.method_name,
            f"{f.score:.4f}",
            "-" if f.noise is None else f"{f.noise:.4f}",
            f"{f.threshold:.3f}",
            "[red]drift[/red]" if f.drifted else "[green]ok[/green]",
        )
    return table


def print_check(summary: DriftSummary) -> None:
    """One check: its window and rows, the table (when compared), the verdict, notes, the report."""
    label = "input" if summary.kind == "input" else "prediction log"
    console.print(
        f"{label} window {summary.window}: {summary.rows:,} rows vs {summary.reference_rows:,} reference rows",
        highlight=False,
    )
    if summary.insufficient_data:
        console.print(f"{label}: [yellow]{escape(summary.verdict)}[/yellow] (not compared)", highlight=False)
    else:
        console.print(drift_table(summary))
        share = "-" if summary.share is None else f"{summary.share:.2f}"
        dataset = "[red]dataset drift[/red]" if summary.dataset_drift else "no dataset drift"
        console.print(
            f"share of drifted features {share} (threshold {summary.share_threshold:.2f}): {dataset}",
            highlight=False,
        )
        if summary.target is not None:
            t = summary.target
            state = "[red]drift[/red]" if t.drifted else "ok"
            console.print(
                f"target {escape(t.column)}: score {t.score:.4f} (threshold {t.threshold:.3f}): {state}",
                highlight=False,
            )
        if summary.sampling is not None:
            console.print(summary.sampling.describe(), highlight=False, markup=False)
        console.print(f"{label}: {escape(summary.verdict)}", highlight=False)
    for note in summary.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    if summary.report_path:
        console.print(f"report: {summary.report_path}", highlight=False, soft_wrap=True, markup=False)
    if summary.mlflow_report:
        console.print(f"mlflow: {summary.mlflow_report}", highlight=False, soft_wrap=True, markup=False)


def print_drift(result: DriftRun) -> None:
    """Per check its window, table and verdict, then the alert and where the email went."""
    for summary in result.summaries:
        print_check(summary)
    if result.predictions is None:
        console.print("prediction log: none in this window, input drift only", highlight=False)
    alert = result.alert
    if not alert.alert:
        console.print("alert: none (no drift share, key feature or target over the spec's thresholds)")
    elif alert.emailed:
        console.print(f"alert: [red]{escape(alert.subject or '')}[/red]", highlight=False)
        console.print(f"email: {alert.delivered_to}", highlight=False, soft_wrap=True, markup=False)
    else:
        console.print(
            f"alert: [red]{escape(alert.subject or '')}[/red] (not emailed: --no-email)", highlight=False
        )
    for reason in alert.reasons:
        console.print(f"  - {reason}", highlight=False, markup=False)


def drift(ctx: typer.Context, day: DateOption, email: EmailFlag = True, as_json: JsonFlag = False) -> None:
    """Drift of a day's curated batch and prediction log against the production model's reference."""
    from retrain.monitoring import drift as drift_stage

    c = cli_context(ctx)
    _smtp_connection_for_cli(c.settings)
    result = drift_stage.run(c.settings, c.spec, parse_day(day), notify=email)
    if as_json:
        console.print_json(json.dumps(result.to_xcom()))
        return
    print_drift(result)


def realized_table(result: RealizedPerformance) -> Table:
    """Realized metrics of a day next to the threshold, with how many predictions were joined."""
    m = result.metrics
    table = Table("metric", "value", title=f"realized performance {result.day} ({result.dataset})")
    wape_limit = f" (max {result.max_wape:.3f})" if result.max_wape is not None else ""
    wape_cell = f"{m.wape:.4f}{wape_limit}"
    table.add_row("WAPE", f"[red]{wape_cell}[/red]" if result.degraded else wape_cell)
    table.add_row("RMSE", f"{m.rmse:.4f}")
    table.add_row("MAE", f"{m.mae:.4f}")
    table.add_row("bias (pred - actual)", f"{m.bias:.4f}")
    table.add_row("predictions joined", f"{result.evaluated_rows:,} of {result.logged_rows:,} logged")
    table.add_row("without actuals", f"{result.unmatched_rows:,}")
    table.add_row("superseded (asked again)", f"{result.superseded_rows:,}")
    table.add_row("model versions", ", ".join(f"v{v}" for v in result.model_versions) or "-")
    return table


def actuals(ctx: typer.Context, day: DateOption, email: EmailFlag = True, as_json: JsonFlag = False) -> None:
    """Join a day's actuals to its prediction log: realized RMSE/WAPE, pushed; email when degraded."""
    from retrain.monitoring import realized

    c = cli_context(ctx)
    _smtp_connection_for_cli(c.settings)
    result = realized.run(c.settings, c.spec, parse_day(day), notify=email)
    if as_json:
        console.print_json(result.model_dump_json())
        return
    console.print(realized_table(result))
    console.print(f"actuals: {result.actuals_source}", highlight=False, soft_wrap=True, markup=False)
    console.print(f"pushed to Pushgateway: {'yes' if result.pushed else 'no'}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    if result.degraded:
        where = result.emailed_to or "not emailed (--no-email)"
        console.print(f"[red]degraded[/red]: email {escape(where)}", highlight=False, soft_wrap=True)


COMMANDS: list[Callable[..., None]] = [drift, actuals]
