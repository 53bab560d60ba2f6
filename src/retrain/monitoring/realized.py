"""Realized performance: the day's prediction log joined to its actuals, RMSE/WAPE pushed, email on decay.

Actuals of day D are read from ``actuals/date=D/`` when a feed lands them there (Parquet or CSV files
with the date, entity keys and target columns), else from the target column of ``curated/date=D``
(in the default feed the day's sales arrive with the day's drop). They are joined on the date and
entity keys; when an entity was asked for several times, its latest prediction (by timestamp) counts.
The degradation threshold is the promotion gate's ``gates.max_wape``: a model serving worse than the
WAPE it had to beat to be promoted is worth an email (and the RealizedPerformanceDegraded alert).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd
from pydantic import computed_field

from retrain.errors import DataMissingError, RetrainError
from retrain.layout import DatasetLayout, partition_name
from retrain.metrics import Metrics, regression_metrics
from retrain.monitoring.drift_metrics import NOT_CONFIGURED, push_registry
from retrain.notify import mail_settings
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
ACTUAL_COLUMN = "actual"
ACTUALS_STAGE = "actuals"


class RealizedPerformance(StageResult):
    """Realized metrics of one day of served predictions against what really happened."""

    dataset: str
    day: date
    actuals_source: str
    logged_rows: int
    evaluated_rows: int
    unmatched_rows: int
    superseded_rows: int
    model_versions: tuple[int, ...]
    metrics: Metrics
    max_wape: float | None
    pushed: bool = False
    emailed_to: str | None = None
    notes: tuple[str, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def degraded(self) -> bool:
        """Realized WAPE above the spec's gates.max_wape."""
        return self.max_wape is not None and self.metrics.wape > self.max_wape


def prediction_files(layout: DatasetLayout, day: date) -> list[Path]:
    """The Parquet parts of a day's prediction log, sorted."""
    folder = layout.predictions_partition(day)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def read_prediction_log(layout: DatasetLayout, day: date) -> pd.DataFrame | None:
    """Every row logged for a day (None when nothing was logged)."""
    files = prediction_files(layout, day)
    if not files:
        return None
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def actual_files(layout: DatasetLayout, day: date) -> list[Path]:
    """Files landed under ``actuals/date=D/`` (Parquet or CSV), sorted."""
    folder = layout.actuals / partition_name(day)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".parquet", ".csv") and p.is_file())


def read_actuals(layout: DatasetLayout, spec: DatasetSpec, day: date) -> tuple[pd.DataFrame, str]:
    """The day's actuals (date, keys, target) and where they came from; DataMissingError when none."""
    columns = [spec.timestamp_column, *spec.entity_keys, spec.target]
    landed = actual_files(layout, day)
    if landed:
        parts = [
            pd.read_parquet(f, columns=columns) if f.suffix == ".parquet" else pd.read_csv(f, usecols=columns)
            for f in landed
        ]
        return pd.concat(parts, ignore_index=True), str(landed[0].parent)
    curated = layout.curated_file(day)
    if curated.is_file():
        return pd.read_parquet(curated, columns=columns), str(curated)
    raise DataMissingError(
        f"no actuals for {day} yet: neither {layout.actuals / partition_name(day)} nor {curated} "
        "(published by retrain_daily) exists"
    )


def _day_key(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.dt.normalize()


def join_actuals(
    logged: pd.DataFrame, curated: pd.DataFrame, spec: DatasetSpec
) -> tuple[pd.DataFrame, int, int]:
    """Latest prediction per (date, keys) joined to the actual target: (joined, unmatched, superseded)."""
    keys = [spec.timestamp_column, *spec.entity_keys]
    missing = [c for c in (*keys, PREDICTION_COLUMN) if c not in logged.columns]
    if missing:
        raise RetrainError(f"the prediction log lacks columns {missing}: is it from this dataset's spec?")
    left = logged.assign(**{spec.timestamp_column: _day_key(logged[spec.timestamp_column])})
    if "timestamp" in left.columns:
        left = left.sort_values("timestamp", kind="stable")
    latest = left.drop_duplicates(keys, keep="last")
    superseded = len(left) - len(latest)
    right = curated[[*keys, spec.target]].rename(columns={spec.target: ACTUAL_COLUMN})
    right = right.assign(**{spec.timestamp_column: _day_key(right[spec.timestamp_column])})
    right = right.drop_duplicates(keys, keep="last")
    joined = latest.merge(right, on=keys, how="left", validate="one_to_one")
    matched = joined[ACTUAL_COLUMN].notna()
    return joined.loc[matched].reset_index(drop=True), int((~matched).sum()), superseded


def run(settings: Settings, spec: DatasetSpec, day: date, notify: bool = True) -> RealizedPerformance:
    """Join the day's prediction log to its actuals, push RMSE/WAPE, email when WAPE exceeds max_wape."""
    layout = DatasetLayout.for_spec(settings, spec)
    logged = read_prediction_log(layout, day)
    if logged is None or logged.empty:
        raise DataMissingError(
            f"no prediction log for {day} under {layout.predictions_partition(day)}: nothing was served"
        )
    actuals, source = read_actuals(layout, spec, day)
    joined, unmatched, superseded = join_actuals(logged, actuals, spec)
    if joined.empty:
        raise RetrainError(
            f"none of the {len(logged)} predictions logged for {day} matches an actual on "
            f"{[spec.timestamp_column, *spec.entity_keys]}"
        )
    versions = sorted({int(v) for v in joined["model_version"]}) if "model_version" in joined else []
    result = RealizedPerformance(
        dataset=spec.name,
        day=day,
        actuals_source=source,
        logged_rows=len(logged),
        evaluated_rows=len(joined),
        unmatched_rows=unmatched,
        superseded_rows=superseded,
        model_versions=tuple(versions),
        metrics=regression_metrics(joined[ACTUAL_COLUMN], joined[PREDICTION_COLUMN]),
        max_wape=spec.gates.max_wape,
    )
    not_pushed = push_realized_metrics(settings, result)
    notes = (not_pushed,) if not_pushed and not_pushed != NOT_CONFIGURED else ()
    result = result.model_copy(update={"pushed": not_pushed is None, "notes": notes})
    if notify and result.degraded:
        result = result.model_copy(update={"emailed_to": email_degraded(settings, result)})
    log.info(
        "realized day=%s rows=%d unmatched=%d rmse=%.4f wape=%.4f degraded=%s versions=%s",
        day,
        result.evaluated_rows,
        unmatched,
        result.metrics.rmse,
        result.metrics.wape,
        result.degraded,
        ",".join(map(str, versions)) or "-",
    )
    return result


def push_realized_metrics(settings: Settings, result: RealizedPerformance) -> str | None:
    """Push model_realized_rmse/wape (job retrain_drift, stage actuals); None when pushed, else why not."""
    if not settings.pushgateway_url:
        log.info("no pushgateway configured (RETRAIN_PUSHGATEWAY_URL); realized metrics not pushed")
        return NOT_CONFIGURED
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    for name, help_text, value in (
        (
            "model_realized_rmse",
            "RMSE of the served predictions of the last day with actuals.",
            result.metrics.rmse,
        ),
        (
            "model_realized_wape",
            "WAPE of the served predictions of the last day with actuals.",
            result.metrics.wape,
        ),
        ("model_realized_rows", "Predictions joined to actuals on the last day.", result.evaluated_rows),
    ):
        Gauge(name, help_text, ["dataset"], registry=registry).labels(dataset=result.dataset).set(value)
    return push_registry(settings, registry, ACTUALS_STAGE, result.dataset)


def email_degraded(settings: Settings, result: RealizedPerformance) -> str:
    """Email that realized WAPE exceeded the threshold; returns where it went."""
    from retrain.notify import send_email

    m = result.metrics
    subject = (
        f"[retrain] realized performance degraded in {result.dataset} on {result.day.isoformat()}: "
        f"WAPE {m.wape:.3f} > {result.max_wape:.3f}"
    )
    rows = "".join(
        f"<tr><td>{name}</td><td>{value}</td></tr>"
        for name, value in (
            ("WAPE", f"{m.wape:.4f} (threshold gates.max_wape = {result.max_wape})"),
            ("RMSE", f"{m.rmse:.4f}"),
            ("MAE", f"{m.mae:.4f}"),
            ("bias (mean pred - actual)", f"{m.bias:.4f}"),
            ("predictions evaluated", f"{result.evaluated_rows:,} of {result.logged_rows:,} logged"),
            ("without actuals", f"{result.unmatched_rows:,}"),
            ("model versions", ", ".join(f"v{v}" for v in result.model_versions) or "-"),
        )
    )
    body = (
        f"<p>Served predictions of {result.dataset} for {result.day} were worse than the promotion gate "
        "allows. Check the drift report of the same day and consider a retrain or a rollback.</p>"
        f'<table border="1" cellpadding="4" cellspacing="0">{rows}</table>'
    )
    return send_email(mail_settings(settings), subject, body)
