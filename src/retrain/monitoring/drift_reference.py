"""The production version's drift references: a sample of its training window, and its holdout predictions.

Input drift compares a window with ``reference_sample`` of the curated partitions the production
version was trained on; prediction drift compares the prediction log with ``holdout_predictions``,
the version's holdout rows and its own predictions on them, rebuilt from its training table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retrain.errors import DataMissingError, RetrainError
from retrain.layout import DatasetLayout
from retrain.monitoring.drift_window import DAY_COLUMN
from retrain.settings import Settings
from retrain.spec import DatasetSpec

if TYPE_CHECKING:
    from retrain.registry import VersionInfo

PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True)
class ProductionReference:
    """The production version and a fixed-seed sample of the curated data it was trained on.

    ``frame`` holds the features, the target and :data:`DAY_COLUMN` (to cut windows).
    """

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

    Each row carries its day in :data:`DAY_COLUMN`. Row counts come from Parquet footers, so memory
    stays at the cap plus one partition however long the window is.
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
        parts.append(frame.assign(**{DAY_COLUMN: pd.Timestamp(day)}))
    sample = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*columns, DAY_COLUMN])
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
        [*spec.feature_columns, spec.target],
        spec.drift.sample_cap,
        settings.seed,
    )
    if rows == 0:
        raise DataMissingError(
            f"no curated partitions in {version.data_start}..{version.data_end}, the training window of "
            f"production v{version.version}: the drift reference needs them"
        )
    return ProductionReference(version, version.data_start, version.data_end, frame, rows)


def holdout_predictions(
    settings: Settings, spec: DatasetSpec, version: VersionInfo
) -> tuple[pd.DataFrame | None, str]:
    """The version's holdout rows with its predictions (and their day), rebuilt from its training table."""
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
    holdout[DAY_COLUMN] = pd.to_datetime(holdout[spec.timestamp_column]).dt.normalize()
    return holdout, ""
