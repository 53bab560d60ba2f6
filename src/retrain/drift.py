"""Drift stage: the day's curated batch and prediction log against the production version's reference.

- **Input drift** compares the spec's raw feature columns of ``curated/date=D`` with a sample of the
  curated partitions the production version was trained on (its ``data_start``/``data_end`` tags).
- **Prediction drift** compares the served request-time features and ``prediction`` of
  ``predictions/date=D`` with the production version's holdout rows and its own predictions on them;
  when those cannot be rebuilt (training table gone, model not loadable) the served features are
  compared with the training sample and prediction drift is skipped with a note.

Each check writes an Evidently HTML report and a JSON summary under ``reports/drift/date=D/``, logs both
to the production version's MLflow run and pushes gauges to the Pushgateway when one is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.drift_alerts import DriftAlert, DriftKind, DriftSummary, alert_on_drift, publish_summary
from retrain.drift_metrics import clear_prediction_drift_metrics
from retrain.drift_report import DriftComparison, compare_frames
from retrain.errors import DataMissingError, RetrainError
from retrain.layout import DatasetLayout
from retrain.realized import read_prediction_log
from retrain.settings import Settings
from retrain.spec import DatasetSpec

if TYPE_CHECKING:
    from retrain.registry import VersionInfo

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
REPORT_KIND = "drift"


@dataclass(frozen=True)
class ProductionReference:
    """The production version and a fixed-seed sample of the curated data it was trained on."""

    version: VersionInfo
    start: date
    end: date
    frame: pd.DataFrame
    rows: int

    def describe(self) -> str:
        """Where the reference comes from."""
        return f"curated {self.start}..{self.end} (training window of v{self.version.version})"


def reference_sample(
    layout: DatasetLayout, start: date, end: date, columns: list[str], cap: int, seed: int
) -> tuple[pd.DataFrame, int]:
    """Up to ``cap`` rows of the curated partitions in [start, end] (each day in proportion) and the total.

    Row counts come from Parquet footers, so memory stays at the cap plus one partition however long
    the window is.
    """
    import pyarrow.parquet as pq

    days = [d for d in layout.curated_days() if start <= d <= end]
    counts = {d: pq.ParquetFile(layout.curated_file(d)).metadata.num_rows for d in days}
    total = sum(counts.values())
    parts = []
    for day in days:
        frame = pd.read_parquet(layout.curated_file(day), columns=columns)
        if total > cap:
            quota = min(len(frame), round(cap * counts[day] / total))
            rng = np.random.default_rng([seed, day.toordinal()])
            frame = frame.iloc[np.sort(rng.choice(len(frame), size=quota, replace=False))]
        parts.append(frame)
    sample = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return sample, total


def production_reference(settings: Settings, spec: DatasetSpec) -> ProductionReference:
    """The production version's training-window sample; NoProductionModelError when there is none."""
    from retrain.registry import ModelRegistry

    version = ModelRegistry(settings, spec.model_name).require_production()
    if version.data_start is None or version.data_end is None:
        raise RetrainError(
            f"production v{version.version} of {spec.model_name!r} has no data_start/data_end tags: "
            "register it through the pipeline so drift knows its training window"
        )
    layout = DatasetLayout.for_spec(settings, spec)
    frame, rows = reference_sample(
        layout,
        version.data_start,
        version.data_end,
        spec.feature_columns,
        spec.drift.sample_cap,
        settings.seed,
    )
    if rows == 0:
        raise DataMissingError(
            f"no curated partitions in {version.data_start}..{version.data_end}, the training window of "
            f"production v{version.version}: the drift reference needs them"
        )
    return ProductionReference(version, version.data_start, version.data_end, frame, rows)


def report_dir(settings: Settings, spec: DatasetSpec, day: date) -> str:
    """``reports/drift/date=D/`` for a day."""
    return str(DatasetLayout.for_spec(settings, spec).reports_partition(REPORT_KIND, day))


def check_input_drift(
    settings: Settings, spec: DatasetSpec, day: date, reference: ProductionReference | None = None
) -> DriftSummary:
    """Input drift of the day's curated batch; report written, logged to MLflow, metrics pushed."""
    layout = DatasetLayout.for_spec(settings, spec)
    path = layout.curated_file(day)
    if not path.is_file():
        raise DataMissingError(f"no curated partition for {day} at {path} yet: retrain_daily publishes it")
    reference = reference or production_reference(settings, spec)
    current = pd.read_parquet(path, columns=spec.feature_columns)
    comparison = _compare(
        settings, spec, day, "input", reference.frame, current, reference.rows, reference.describe()
    )
    summary = _summary(spec, day, "input", reference, comparison, reference.describe())
    return publish_summary(settings, summary, reference.version)


def check_prediction_drift(
    settings: Settings, spec: DatasetSpec, day: date, reference: ProductionReference | None = None
) -> DriftSummary | None:
    """Drift of the day's prediction log (served features and predictions); None when nothing was logged."""
    layout = DatasetLayout.for_spec(settings, spec)
    served = list(spec.features.request_time)
    logged = read_prediction_log(layout, day)
    if logged is None or logged.empty:
        log.info("prediction drift day=%s skipped: no prediction log under %s", day, layout.predictions)
        return None
    reference = reference or production_reference(settings, spec)
    holdout, note = holdout_predictions(settings, spec, reference.version)
    notes: list[str] = []
    if holdout is not None:
        ref_frame, ref_rows = holdout, len(holdout)
        columns = [*served, PREDICTION_COLUMN]
        described = f"holdout rows of v{reference.version.version} and its predictions on them"
    else:
        ref_frame, ref_rows, columns = reference.frame, reference.rows, served
        described = reference.describe()
        notes.append(f"prediction drift skipped: {note}; served features compared with the training window")
    comparison = _compare(
        settings, spec, day, "predictions", ref_frame[columns], logged[columns], ref_rows, described
    )
    summary = _summary(spec, day, "predictions", reference, comparison, described, tuple(notes))
    return publish_summary(settings, summary, reference.version)


def holdout_predictions(
    settings: Settings, spec: DatasetSpec, version: VersionInfo
) -> tuple[pd.DataFrame | None, str]:
    """The version's holdout rows with its predictions, rebuilt from its training table; else why not."""
    from retrain.features import train_table_file
    from retrain.tracking import load_forecast_model
    from retrain.train import predict

    run_date, holdout_start = version.tags.get("run_date"), version.tags.get("holdout_start")
    if not run_date or not holdout_start:
        return None, f"v{version.version} has no run_date/holdout_start tags"
    path = train_table_file(DatasetLayout.for_spec(settings, spec), date.fromisoformat(run_date))
    if not path.is_file():
        return None, f"the training table of v{version.version} ({path}) is gone"
    table = pd.read_parquet(path)
    dates = pd.to_datetime(table[spec.timestamp_column])
    holdout = table.loc[dates >= pd.Timestamp(holdout_start)].reset_index(drop=True)
    if holdout.empty:
        return None, f"the training table of v{version.version} has no rows from {holdout_start}"
    try:
        model = load_forecast_model(version.model_uri, nthread=1)
    except RetrainError as exc:
        return None, f"cannot load {version.model_uri}: {exc}"
    holdout[PREDICTION_COLUMN] = predict(model, holdout, spec)
    return holdout, ""


def _compare(
    settings: Settings,
    spec: DatasetSpec,
    day: date,
    kind: DriftKind,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reference_rows: int,
    described: str,
) -> DriftComparison:
    columns = list(current.columns)
    numeric = [c for c in columns if c in spec.features.numeric or c == PREDICTION_COLUMN]
    categorical = [c for c in columns if c in spec.features.categorical]
    layout = DatasetLayout.for_spec(settings, spec)
    return compare_frames(
        reference,
        current,
        numeric,
        categorical,
        threshold=spec.drift.feature_threshold,
        thresholds=spec.drift.feature_thresholds,
        share_threshold=spec.drift.share_threshold,
        cap=spec.drift.sample_cap,
        seed=settings.seed,
        html_path=layout.reports_partition(REPORT_KIND, day) / f"{kind}_drift.html",
        banner=[f"retrain: {kind} drift of {spec.name} on {day}", f"Reference: {described}."],
        reference_rows=reference_rows,
    )


def _summary(
    spec: DatasetSpec,
    day: date,
    kind: DriftKind,
    reference: ProductionReference,
    comparison: DriftComparison,
    described: str,
    notes: tuple[str, ...] = (),
) -> DriftSummary:
    return DriftSummary(
        dataset=spec.name,
        day=day,
        kind=kind,
        model_version=reference.version.version,
        reference=described,
        features=comparison.features,
        share=comparison.share,
        share_threshold=spec.drift.share_threshold,
        feature_threshold=spec.drift.feature_threshold,
        key_features=tuple(spec.drift.key_features),
        sampling=comparison.sampling,
        report_path=str(comparison.html_path),
        notes=notes,
    )


@dataclass(frozen=True)
class DriftRun:
    """Both checks of a day and the alert they led to (what `retrain drift --date D` prints)."""

    day: date
    input: DriftSummary
    predictions: DriftSummary | None
    alert: DriftAlert

    @property
    def summaries(self) -> list[DriftSummary]:
        """The checks that ran."""
        return [s for s in (self.input, self.predictions) if s is not None]

    @property
    def report_folder(self) -> Path:
        """``reports/drift/date=D/``: the HTML reports and their JSON summaries."""
        return Path(self.input.report_path).parent

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-ready result for XCom and ``--json``: verdicts, scores, paths (no data)."""
        return {
            "day": self.day.isoformat(),
            "report_folder": str(self.report_folder),
            "checks": [s.model_dump(mode="json") for s in self.summaries],
            "alert": self.alert.model_dump(mode="json"),
        }


def run(settings: Settings, spec: DatasetSpec, day: date, notify: bool = True) -> DriftRun:
    """Input drift, prediction drift when the day has a prediction log, and the email when warranted.

    notify=False runs every check and decides on the alert but sends no email.
    """
    reference = production_reference(settings, spec)
    summary = check_input_drift(settings, spec, day, reference)
    predictions = check_prediction_drift(settings, spec, day, reference)
    if predictions is None:
        clear_prediction_drift_metrics(settings, spec.name)
    checks = [s for s in (summary, predictions) if s is not None]
    alert = alert_on_drift(settings, checks, day, notify=notify)
    return DriftRun(day, summary, predictions, alert)
