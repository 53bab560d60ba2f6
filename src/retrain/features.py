"""Features stage: the leakage-free training table and the online feature snapshot for a run date.

The maths lives in `feature_maths` (shared with serving) and the snapshot in `feature_snapshot`;
this module reads curated partitions, writes `features/date=D/{train,snapshot}.parquet` and a
`manifest.json` (lineage, vocabulary, feature names) atomically, and returns a `FeaturesResult`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrain.cadence import require_daily
from retrain.errors import DataMissingError
from retrain.feature_maths import (
    build_features,
    feature_matrix,
    feature_names,
    fit_vocabulary,
    lookback_days,
    normalise_dates,
)
from retrain.feature_snapshot import (
    FeatureSnapshot,
    OnlineFeatures,
    build_snapshot,
    online_features,
    read_snapshot,
    write_atomically,
    write_snapshot,
)
from retrain.layout import DatasetLayout
from retrain.online_snapshot import publish_online_snapshot
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

__all__ = [
    "FeatureSnapshot",
    "FeaturesResult",
    "OnlineFeatures",
    "PartitionLineage",
    "build_features",
    "build_snapshot",
    "feature_matrix",
    "feature_names",
    "fit_vocabulary",
    "online_features",
    "read_snapshot",
    "run",
    "snapshot_file",
    "train_table_file",
]

log = logging.getLogger(__name__)

# Extra days read before the lookback, so a late-starting entity still gets its first lags right.
LOOKBACK_MARGIN_DAYS = 7
TRAIN_TABLE_NAME = "train.parquet"
SNAPSHOT_NAME = "snapshot.parquet"
MANIFEST_NAME = "manifest.json"


class PartitionLineage(StageResult):
    """One curated partition read by the stage."""

    day: date
    rows: int
    sha256: str


class FeaturesResult(StageResult):
    """What the features stage wrote for a run date, and from which data."""

    day: date
    train_path: Path
    snapshot_path: Path
    manifest_path: Path
    train_rows: int
    snapshot_entities: int
    train_start: date
    train_end: date
    feature_names: tuple[str, ...]
    partitions: tuple[PartitionLineage, ...]
    vocabulary: dict[str, tuple[str, ...]]
    # The dataset's online snapshot (what serving follows) after this run: this day's, unless newer.
    online_snapshot_date: date | None = None

    def lineage(self) -> dict[str, Any]:
        """JSON-friendly lineage and schema (no absolute paths): what the manifest holds."""
        return {
            "day": self.day.isoformat(),
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "train_rows": self.train_rows,
            "snapshot_entities": self.snapshot_entities,
            "feature_names": list(self.feature_names),
            "vocabulary": {c: list(v) for c, v in self.vocabulary.items()},
            "partitions": [
                {"day": p.day.isoformat(), "rows": p.rows, "sha256": p.sha256} for p in self.partitions
            ],
            "files": {"train": TRAIN_TABLE_NAME, "snapshot": SNAPSHOT_NAME},
        }


def train_table_file(layout: DatasetLayout, day: date) -> Path:
    """The training table built on a run date."""
    return layout.features_partition(day) / TRAIN_TABLE_NAME


def snapshot_file(layout: DatasetLayout, day: date) -> Path:
    """The online feature snapshot built on a run date."""
    return layout.features_partition(day) / SNAPSHOT_NAME


def read_curated_history(
    layout: DatasetLayout, start: date, end: date
) -> tuple[pd.DataFrame, tuple[PartitionLineage, ...]]:
    """Concatenate the curated partitions in [start, end], with each partition's row count and hash."""
    frames: list[pd.DataFrame] = []
    lineage: list[PartitionLineage] = []
    for day in layout.curated_days():
        if not start <= day <= end:
            continue
        content = layout.curated_file(day).read_bytes()
        frame = pd.read_parquet(io.BytesIO(content))
        frames.append(frame)
        lineage.append(PartitionLineage(day=day, rows=len(frame), sha256=hashlib.sha256(content).hexdigest()))
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return history, tuple(lineage)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_atomically(path, lambda target: pq.write_table(table, target))


def run(settings: Settings, spec: DatasetSpec, day: date) -> FeaturesResult:
    """Build and write the training table for [day - train_days + 1, day] and the snapshot of day."""
    layout = DatasetLayout.for_spec(settings, spec)
    if not layout.curated_file(day).is_file():
        raise DataMissingError(f"no curated partition for {day}: run ingest and validate for {day} first")
    train_days = spec.training.train_days
    train_start = day - timedelta(days=train_days - 1)
    read_start = train_start - timedelta(days=lookback_days(spec) + LOOKBACK_MARGIN_DAYS)
    history, partitions = read_curated_history(layout, read_start, day)
    # Lags and rolling windows count days: on weekly or monthly partitions they would all be missing.
    require_daily((p.day for p in partitions), f"the curated history of {spec.name} up to {day}")

    dates = normalise_dates(history[spec.timestamp_column])
    in_window = (dates >= pd.Timestamp(train_start)) & (dates <= pd.Timestamp(day))
    # Only the categorical columns: a copy of the whole window just to list categories costs ~1 s at 1M rows.
    vocabulary = fit_vocabulary(history.loc[in_window, list(spec.features.categorical)], spec)
    features = build_features(history, spec, vocabulary)
    feature_dates = features[spec.timestamp_column]
    keep = (feature_dates >= pd.Timestamp(train_start)) & features[spec.target].notna()
    train = features.loc[keep]  # written without its index, so no renumbering copy
    snapshot = build_snapshot(history, spec, day, vocabulary)

    result = FeaturesResult(
        day=day,
        train_path=train_table_file(layout, day),
        snapshot_path=snapshot_file(layout, day),
        manifest_path=layout.features_partition(day) / MANIFEST_NAME,
        train_rows=len(train),
        snapshot_entities=len(snapshot.frame),
        train_start=train_start,
        train_end=day,
        feature_names=tuple(feature_names(spec)),
        partitions=partitions,
        vocabulary={c: tuple(v) for c, v in vocabulary.items()},
    )
    _write_parquet(train, result.train_path)
    write_snapshot(snapshot, result.snapshot_path)
    manifest = json.dumps(result.lineage(), indent=2, sort_keys=True) + "\n"
    write_atomically(result.manifest_path, lambda target: target.write_text(manifest, encoding="utf-8"))
    # Published whatever the gates decide later, so serving forecasts the day after the newest curated day.
    source = str(result.snapshot_path.relative_to(layout.root))
    online = publish_online_snapshot(snapshot, layout.online_snapshot, source)
    result = result.model_copy(update={"online_snapshot_date": online.online_date})
    log.info(
        "features day=%s train_rows=%d entities=%d partitions=%d features=%d online_snapshot=%s%s",
        day,
        result.train_rows,
        result.snapshot_entities,
        len(partitions),
        len(result.feature_names),
        online.online_date,
        "" if online.published else " (newer, kept)",
    )
    return result
