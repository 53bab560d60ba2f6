"""The online feature snapshot: what serving needs to build features for the days after the run date.

A snapshot taken on day D holds, per entity seen in the history, the target on D, D-1, ..., D-L+1
(`y_back_0` .. `y_back_{L-1}`, L = `lookback_days(spec)`), the last-known value of every feature the
client does not send (e.g. store_type), the day the entity was last seen, and the category vocabulary.

Serving policy, applied by `online_features` to a request for day D+h:
- 1 <= h <= max_horizon_days: features are exactly what `build_features` would give that row if the
  days D+1 .. D+h-1 were missing (so lags shorter than h are NaN, which XGBoost treats as missing);
- h <= 0 (the snapshot's own day or older) or h > max_horizon_days: the row is flagged
  `in_horizon=False` and its target features are NaN; callers must reject it;
- an entity not in the snapshot: NaN target features and NaN for attributes the client does not send
  (XGBoost's missing branch), flagged `known_entity=False`; callers may serve or reject it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrain.errors import RetrainError, SpecError
from retrain.feature_maths import (
    Vocabulary,
    calendar_features,
    code_column,
    encode_categorical,
    entity_index,
    epoch_days,
    feature_names,
    key_features,
    lookback_days,
    normalise_dates,
    require_columns,
    target_values,
    target_window_features,
)
from retrain.spec import DatasetSpec

DEFAULT_MAX_HORIZON_DAYS = 7
LAST_SEEN_COLUMN = "last_seen"
_METADATA_KEY = b"retrain.feature_snapshot"


def history_column(days_back: int) -> str:
    """Snapshot column holding the target `days_back` days before the snapshot day."""
    return f"y_back_{days_back}"


def attribute_columns(spec: DatasetSpec) -> list[str]:
    """Feature columns the client does not send, taken from the snapshot at serving time."""
    request_time = set(spec.features.request_time)
    return [c for c in spec.feature_columns if c not in request_time and c not in spec.entity_keys]


@dataclass(frozen=True, eq=False)
class FeatureSnapshot:
    """Per-entity state on `snapshot_date`: keys, last_seen, attributes and y_back_* target history."""

    snapshot_date: date
    frame: pd.DataFrame
    vocabulary: dict[str, list[str]]
    lookback_days: int
    entity_keys: tuple[str, ...]

    # Derived arrays are cached on the instance: serving builds them once per loaded snapshot.
    @cached_property
    def entity_rows(self) -> dict[tuple[Hashable, ...], int]:
        """Row number of each entity key tuple."""
        keys = zip(*(self.frame[k].tolist() for k in self.entity_keys), strict=True)
        return {key: i for i, key in enumerate(keys)}

    @cached_property
    def past_targets(self) -> np.ndarray:
        """Target history oldest first (last column: the snapshot day), plus an all-NaN last row."""
        columns = [history_column(k) for k in reversed(range(self.lookback_days))]
        return _with_missing_row(self.frame[columns].to_numpy(dtype=np.float64, na_value=np.nan))

    @cached_property
    def attribute_values(self) -> dict[str, np.ndarray]:
        """Stored attributes as model inputs (categorical ones as codes), plus an all-NaN last row."""
        history = {history_column(k) for k in range(self.lookback_days)}
        skip = {*self.entity_keys, LAST_SEEN_COLUMN, *history}
        values: dict[str, np.ndarray] = {}
        for column in self.frame.columns:
            if column in skip:
                continue
            if column in self.vocabulary:
                stored = encode_categorical(self.frame[column], self.vocabulary[column])
            else:
                stored = pd.to_numeric(self.frame[column]).to_numpy(dtype=np.float64, na_value=np.nan)
            values[str(column)] = _with_missing_row(stored)
        return values


@dataclass(frozen=True, eq=False)
class OnlineFeatures:
    """Model inputs for request rows, in `feature_names` order, with per-row flags."""

    feature_names: tuple[str, ...]
    values: np.ndarray
    known_entity: np.ndarray
    in_horizon: np.ndarray
    horizon_days: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """The inputs as a DataFrame (for logging and tests; serving uses `values`)."""
        return pd.DataFrame(self.values, columns=list(self.feature_names))


def build_snapshot(
    history: pd.DataFrame, spec: DatasetSpec, day: date, vocabulary: Vocabulary
) -> FeatureSnapshot:
    """Snapshot of every entity in the history up to and including `day` (later rows are ignored)."""
    attributes = attribute_columns(spec)
    require_columns(history, [spec.timestamp_column, spec.target, *spec.entity_keys, *attributes], "history")
    dates = normalise_dates(history[spec.timestamp_column])
    day_number = epoch_days(pd.DatetimeIndex([pd.Timestamp(day)]))[0]
    keep = epoch_days(dates) <= day_number
    frame = history.loc[keep].reset_index(drop=True)
    days = epoch_days(dates[keep])
    entities = entity_index(frame, spec)
    order = np.lexsort((days, entities))
    frame, days, entities = frame.iloc[order].reset_index(drop=True), days[order], entities[order]
    n_entities = int(entities.max()) + 1 if len(entities) else 0

    is_last = np.r_[entities[1:] != entities[:-1], True] if len(entities) else np.zeros(0, dtype=bool)
    snapshot = frame.loc[is_last, spec.entity_keys].reset_index(drop=True)
    snapshot[LAST_SEEN_COLUMN] = pd.DatetimeIndex(days[is_last].astype("datetime64[D]")).astype(
        "datetime64[ns]"
    )
    # groupby().last() skips missing values: the latest known value of each attribute.
    latest = frame[attributes].groupby(entities, sort=True).last().reset_index(drop=True)
    for column in attributes:
        snapshot[column] = latest[column]

    width = lookback_days(spec)
    back = day_number - days
    recent = back < width
    past = np.full((n_entities, width), np.nan)
    past[entities[recent], back[recent]] = target_values(frame, spec)[recent]
    for k in range(width):
        snapshot[history_column(k)] = past[:, k]
    return FeatureSnapshot(
        snapshot_date=day,
        frame=snapshot,
        vocabulary={c: list(v) for c, v in vocabulary.items()},
        lookback_days=width,
        entity_keys=tuple(spec.entity_keys),
    )


def _entity_positions(snapshot: FeatureSnapshot, requests: pd.DataFrame) -> np.ndarray:
    if not snapshot.entity_keys:
        return np.full(len(requests), 0 if len(snapshot.frame) else -1, dtype=np.int64)
    rows = snapshot.entity_rows
    wanted = zip(*(requests[k].tolist() for k in snapshot.entity_keys), strict=True)
    return np.fromiter((rows.get(key, -1) for key in wanted), dtype=np.int64, count=len(requests))


def _with_missing_row(values: np.ndarray) -> np.ndarray:
    """Append one all-NaN row, the row that unknown entities point at."""
    return np.concatenate([values, np.full((1, *values.shape[1:]), np.nan)])


def online_features(
    snapshot: FeatureSnapshot,
    requests: pd.DataFrame,
    spec: DatasetSpec,
    max_horizon_days: int = DEFAULT_MAX_HORIZON_DAYS,
) -> OnlineFeatures:
    """Features of request rows (entity keys, date, request-time features) from a snapshot, vectorised."""
    width = lookback_days(spec)
    if snapshot.lookback_days != width or list(snapshot.entity_keys) != spec.entity_keys:
        raise SpecError(
            f"snapshot (keys {list(snapshot.entity_keys)}, {snapshot.lookback_days} days of history) does"
            f" not fit the spec (keys {spec.entity_keys}, {width} days); rebuild it with this spec"
        )
    require_columns(
        requests, [spec.timestamp_column, *spec.entity_keys, *spec.features.request_time], "requests"
    )
    names = feature_names(spec)
    dates = normalise_dates(requests[spec.timestamp_column])
    snapshot_day = epoch_days(pd.DatetimeIndex([pd.Timestamp(snapshot.snapshot_date)]))[0]
    horizon = epoch_days(dates) - snapshot_day
    in_horizon = (horizon >= 1) & (horizon <= max_horizon_days)
    position = _entity_positions(snapshot, requests)
    known = position >= 0
    row = np.where(known, position, len(snapshot.frame))

    # Day D+h needs days D+h-width .. D+h-1: past_targets columns h-1 .. h+width-2, where columns
    # from `width` on are days after the snapshot, unknown, hence NaN.
    day_slot = np.where(in_horizon, horizon - 1, width)[:, None] + np.arange(width)
    window = np.where(
        day_slot < width,
        snapshot.past_targets[row[:, None], np.minimum(day_slot, width - 1)],
        np.nan,
    )

    columns: dict[str, np.ndarray] = dict(target_window_features(window, spec))
    columns.update(calendar_features(dates))
    for key in key_features(spec):
        columns[key] = pd.to_numeric(requests[key]).to_numpy(dtype=np.float64, na_value=np.nan)
    request_time = set(spec.features.request_time)
    for column in spec.features.numeric:
        if column in request_time or column in spec.entity_keys:
            values = pd.to_numeric(requests[column]).to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = snapshot.attribute_values[column][row]
        columns[column] = values
    for column in spec.features.categorical:
        if column in request_time or column in spec.entity_keys:
            values = encode_categorical(requests[column], snapshot.vocabulary[column])
        else:
            values = snapshot.attribute_values[column][row]
        columns[code_column(column)] = values

    matrix = np.empty((len(requests), len(names)), dtype=np.float64)
    for i, name in enumerate(names):
        matrix[:, i] = columns[name]
    return OnlineFeatures(
        feature_names=tuple(names),
        values=matrix,
        known_entity=known,
        in_horizon=in_horizon,
        horizon_days=horizon,
    )


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write a file through a temporary sibling and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_snapshot(snapshot: FeatureSnapshot, path: Path) -> None:
    """Write a snapshot as one Parquet file; date, lookback and vocabulary go in its schema metadata."""
    table = pa.Table.from_pandas(snapshot.frame, preserve_index=False)
    meta = {
        "snapshot_date": snapshot.snapshot_date.isoformat(),
        "lookback_days": snapshot.lookback_days,
        "entity_keys": list(snapshot.entity_keys),
        "vocabulary": snapshot.vocabulary,
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _METADATA_KEY: json.dumps(meta, sort_keys=True).encode()}
    )
    write_atomically(path, lambda target: pq.write_table(table, target))


def read_snapshot(path: Path) -> FeatureSnapshot:
    """Read a snapshot written by `write_snapshot`."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if raw is None:
        raise RetrainError(f"{path} is not a feature snapshot (no {_METADATA_KEY.decode()} metadata)")
    meta = json.loads(raw)
    return FeatureSnapshot(
        snapshot_date=date.fromisoformat(meta["snapshot_date"]),
        frame=table.to_pandas(),
        vocabulary={c: list(v) for c, v in meta["vocabulary"].items()},
        lookback_days=int(meta["lookback_days"]),
        entity_keys=tuple(meta["entity_keys"]),
    )
