"""Drift stage: a window of recent days against the production version's reference.

The window is the checked day D and the ``drift.current_days - 1`` days before it.

- **Input drift** compares the spec's raw feature columns of the window's curated partitions with a
  sample of the curated partitions the production version was trained on (its ``data_start``/
  ``data_end`` tags). The realised target, which the curated batches carry, is compared too and
  reported apart (``target``): a feature share never counts it.
- **Prediction drift** compares the served request-time features and ``prediction`` of the window's
  prediction log with the production version's holdout rows and its own predictions on them; when
  those cannot be rebuilt (training table gone, model not loadable) the served features are compared
  with the training sample and prediction drift is skipped with a note.

A window with fewer than ``drift.min_rows`` rows is not compared: its verdict says so and nothing
alerts. Otherwise each column's threshold is the spec's, raised above what windows of the same
length inside the reference score against it (drift_window): the training data cannot drift against
itself, and few rows or a season do not alert on their own.

Each check writes a JSON summary (and, when compared, an Evidently HTML report) under
``reports/drift/date=D/``, logs both to the production version's MLflow run and pushes gauges to the
Pushgateway when one is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import computed_field

from retrain.errors import DataMissingError
from retrain.layout import DatasetLayout
from retrain.monitoring.drift_alerts import (
    DriftAlert,
    DriftKind,
    DriftSummary,
    alert_on_drift,
    publish_summary,
)
from retrain.monitoring.drift_metrics import clear_prediction_drift_metrics
from retrain.monitoring.drift_reference import (
    PREDICTION_COLUMN,
    ProductionReference,
    holdout_predictions,
    production_reference,
)
from retrain.monitoring.drift_report import compare_frames
from retrain.monitoring.drift_window import (
    NOISE_MARGIN,
    Window,
    curated_window,
    prediction_window,
    reference_noise,
)
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

if TYPE_CHECKING:
    from retrain.registry import VersionInfo

log = logging.getLogger(__name__)

REPORT_KIND = "drift"


def report_dir(settings: Settings, spec: DatasetSpec, day: date) -> str:
    """``reports/drift/date=D/`` for a day."""
    return str(DatasetLayout.for_spec(settings, spec).reports_partition(REPORT_KIND, day))


@dataclass(frozen=True)
class _Check:
    """What one check compares: the window, both frames, the columns and who is the target."""

    kind: DriftKind
    window: Window
    days: int
    reference: pd.DataFrame
    reference_rows: int
    described: str
    current: pd.DataFrame
    columns: list[str]
    target: str | None = None


def check_input_drift(
    settings: Settings, spec: DatasetSpec, day: date, reference: ProductionReference | None = None
) -> DriftSummary:
    """Input (and target) drift of the window's curated batches; report, MLflow, metrics."""
    layout = DatasetLayout.for_spec(settings, spec)
    path = layout.curated_file(day)
    if not path.is_file():
        raise DataMissingError(f"no curated partition for {day} at {path} yet: retrain_daily publishes it")
    reference = reference or production_reference(settings, spec)
    window = Window.ending(day, spec.drift.current_days)
    current, days = curated_window(layout, window, [*spec.feature_columns, spec.target])
    # The target is compared when the window has realised values (curated batches carry them).
    target = spec.target if current[spec.target].notna().any() else None
    columns = [*spec.feature_columns, *([target] if target else [])]
    check = _Check(
        "input",
        window,
        len(days),
        reference.frame,
        reference.rows,
        reference.describe(),
        current,
        columns,
        target,
    )
    return publish_summary(
        settings, _run_check(settings, spec, day, check, reference.version), reference.version
    )


def check_prediction_drift(
    settings: Settings, spec: DatasetSpec, day: date, reference: ProductionReference | None = None
) -> DriftSummary | None:
    """Drift of the window's prediction log (served features and predictions); None when nothing was logged."""
    layout = DatasetLayout.for_spec(settings, spec)
    served = list(spec.features.request_time)
    window = Window.ending(day, spec.drift.current_days)
    logged, days = prediction_window(layout, window)
    if logged is None:
        log.info("prediction drift window=%s skipped: no prediction log under %s", window, layout.predictions)
        return None
    reference = reference or production_reference(settings, spec)
    holdout, note = holdout_predictions(settings, spec, reference.version)
    notes: tuple[str, ...] = ()
    if holdout is not None:
        ref_frame, ref_rows = holdout, len(holdout)
        columns = [*served, PREDICTION_COLUMN]
        described = f"holdout rows of v{reference.version.version} and its predictions on them"
    else:
        ref_frame, ref_rows, columns = reference.frame, reference.rows, served
        described = reference.describe()
        notes = (f"prediction drift skipped: {note}; served features compared with the training window",)
    if not columns:
        log.info("prediction drift window=%s skipped: no served features and no holdout predictions", window)
        return None
    check = _Check("predictions", window, len(days), ref_frame, ref_rows, described, logged, columns)
    summary = _run_check(settings, spec, day, check, reference.version, notes)
    return publish_summary(settings, summary, reference.version)


def _run_check(
    settings: Settings,
    spec: DatasetSpec,
    day: date,
    check: _Check,
    version: VersionInfo,
    notes: tuple[str, ...] = (),
) -> DriftSummary:
    """Compare the check's window with its reference (unless it has too few rows) and summarise."""
    folder = DatasetLayout.for_spec(settings, spec).reports_partition(REPORT_KIND, day)
    drift = spec.drift
    base = DriftSummary(
        dataset=spec.name,
        day=day,
        kind=check.kind,
        model_version=version.version,
        reference=check.described,
        window_start=check.window.start,
        window_end=check.window.end,
        days_with_data=check.days,
        rows=len(check.current),
        reference_rows=check.reference_rows,
        min_rows=drift.min_rows,
        share_threshold=drift.share_threshold,
        feature_threshold=drift.feature_threshold,
        key_features=tuple(drift.key_features),
        summary_path=str(folder / f"{check.kind}_drift.json"),
        notes=notes,
    )
    if base.insufficient_data:
        log.info("drift kind=%s day=%s window=%s: %s", check.kind, day, check.window, base.verdict)
        return base
    numeric = [
        c for c in check.columns if c in spec.features.numeric or c in (PREDICTION_COLUMN, check.target)
    ]
    categorical = [c for c in check.columns if c in spec.features.categorical]
    noise = reference_noise(
        check.reference, check.window.days, len(check.current), numeric, categorical, settings.seed
    )
    thresholds = {
        c: noise.threshold(c, drift.feature_thresholds.get(c, drift.feature_threshold)) for c in check.columns
    }
    html_path = folder / f"{check.kind}_drift.html"
    calibration = (
        f"Thresholds: the spec's, or {NOISE_MARGIN:g}x the largest score of {noise.method} when higher "
        "(the reference's own variation)."
    )
    comparison = compare_frames(
        check.reference,
        check.current,
        numeric,
        categorical,
        threshold=drift.feature_threshold,
        thresholds=thresholds,
        share_threshold=drift.share_threshold,
        cap=drift.sample_cap,
        seed=settings.seed,
        html_path=html_path,
        banner=[
            f"retrain: {check.kind} drift of {spec.name}, window {check.window} ({check.days} days with data)",
            f"Reference: {check.described}.",
            calibration,
        ],
        reference_rows=check.reference_rows,
        noise=noise.scores,
    )
    features = tuple(f for f in comparison.features if f.column != check.target)
    target = next((f for f in comparison.features if f.column == check.target), None)
    share = sum(f.drifted for f in features) / len(features) if features else 0.0
    return base.model_copy(
        update={
            "features": features,
            "target": target,
            "share": share,
            "sampling": comparison.sampling,
            "calibration": calibration,
            "report_path": str(html_path),
        }
    )


class DriftRun(StageResult):
    """Both checks of a day and the alert they led to (what `retrain drift --date D` prints).

    ``checks`` holds the input check first, then the prediction check when one ran.
    """

    day: date
    checks: tuple[DriftSummary, ...]
    alert: DriftAlert

    @property
    def input(self) -> DriftSummary:
        """The input (and target) drift check."""
        return next(s for s in self.checks if s.kind == "input")

    @property
    def predictions(self) -> DriftSummary | None:
        """The prediction-log drift check, None when there was no prediction log to check."""
        return next((s for s in self.checks if s.kind == "predictions"), None)

    @property
    def summaries(self) -> list[DriftSummary]:
        """The checks that ran."""
        return list(self.checks)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def report_folder(self) -> Path:
        """``reports/drift/date=D/``: the HTML reports and their JSON summaries."""
        return Path(self.input.summary_path).parent


def run(settings: Settings, spec: DatasetSpec, day: date, notify: bool = True) -> DriftRun:
    """Input drift, prediction drift when the window has a prediction log, and the email when warranted.

    notify=False runs every check and decides on the alert but sends no email.
    """
    reference = production_reference(settings, spec)
    summary = check_input_drift(settings, spec, day, reference)
    predictions = check_prediction_drift(settings, spec, day, reference)
    if predictions is None:
        clear_prediction_drift_metrics(settings, spec.name)
    checks = [s for s in (summary, predictions) if s is not None]
    alert = alert_on_drift(settings, checks, day, notify=notify)
    return DriftRun(day=day, checks=tuple(checks), alert=alert)
