"""Draft a dataset spec from a user's history file: a starting point to read, edit and commit."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from retrain.cadence import require_daily
from retrain.coerce import parse_days
from retrain.errors import DataInvalidError, SpecError
from retrain.history_import import read_history
from retrain.spec import ColumnType, parse_spec

# Non-ISO date layouts seen in exports, tried in order when ISO 8601 does not parse every value.
DATE_FORMATS = (
    "%b %d %Y",
    "%B %d %Y",
    "%d %b %Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d/%m/%y",
    "%m/%d/%y",
)
MAX_ALLOWED = 20  # text columns with at most this many distinct values get an allowed set
RANGE_MARGIN = 0.5  # ranges are widened by half the observed span on each side
_NAME = re.compile(r"[^a-z0-9_]+")


def detect_date_format(values: pd.Series) -> str | None:
    """None when ISO 8601 parses every value, else the first common format that does."""
    if parse_days(values) is not None:
        return None
    for fmt in DATE_FORMATS:
        if parse_days(values, fmt) is not None:
            return fmt
    raise DataInvalidError(
        f"could not read the dates (e.g. {str(values.dropna().iloc[0])!r}) as ISO 8601 or any of "
        f"{', '.join(DATE_FORMATS)}; draft with another column or set columns.<timestamp>.format yourself"
    )


def _number_kind(values: pd.Series) -> ColumnType | None:
    numbers = pd.to_numeric(values, errors="coerce")
    if bool((numbers.isna() & values.notna()).any()):
        return None
    present = numbers.dropna()
    if present.empty:
        return None
    return ColumnType.INT if bool((present == present.round()).all()) else ColumnType.FLOAT


def _nice(value: float, kind: ColumnType, down: bool) -> float | int:
    rounded = math.floor(value) if down else math.ceil(value)
    return int(rounded) if kind is ColumnType.INT or rounded == value or abs(value) >= 10 else round(value, 2)


def _range(values: pd.Series, kind: ColumnType) -> dict[str, float | int]:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    low, high = float(numbers.min()), float(numbers.max())
    margin = (high - low) * RANGE_MARGIN or abs(high) * RANGE_MARGIN or 1.0
    lower = low - margin
    if low >= 0 and lower < 0:
        lower = 0.0  # a count or amount that was never negative stays non-negative
    return {"min": _nice(lower, kind, down=True), "max": _nice(high + margin, kind, down=False)}


def _column(name: str, values: pd.Series, timestamp: str, key_like: bool) -> tuple[dict[str, Any], str]:
    """The column's spec entry and a comment about it."""
    entry: dict[str, Any] = {}
    note = ""
    nulls = int(values.isna().sum())
    if name == timestamp:
        entry["type"] = "date"
        fmt = detect_date_format(values)
        if fmt:
            entry["format"] = fmt
            note = f"dates written as {fmt!r}"
        return entry, note
    kind = _number_kind(values)
    if kind is not None:
        entry["type"] = kind.value
        if not key_like:
            entry.update(_range(values, kind))
            note = f"observed {values.astype(float).min():g}..{values.astype(float).max():g}; range widened"
    else:
        entry["type"] = "string"
        distinct = values.dropna().unique()
        if len(distinct) <= MAX_ALLOWED and not key_like:
            entry["allowed"] = sorted(map(str, distinct))
            note = "allowed: the values seen; add any the future may bring"
    if nulls:
        entry["nullable"] = True
        note = f"{nulls} empty value(s) seen" + (f"; {note}" if note else "")
    return entry, note


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()


def _spec_name(file: Path, name: str | None) -> str:
    raw = name or file.name.split(".")[0]
    clean = _NAME.sub("_", raw.lower()).strip("_")
    if not clean or not clean[0].isalpha():
        clean = f"dataset_{clean}".rstrip("_")
    return clean


def draft_spec(file: Path, target: str, timestamp: str, keys: list[str], name: str | None = None) -> str:
    """A commented YAML spec for the file: columns, types, nulls, ranges, allowed sets, date format."""
    frame = read_history(file)
    for role, column in [("target", target), ("timestamp", timestamp), *(("key", k) for k in keys)]:
        if column not in frame.columns:
            raise SpecError(
                f"--{role} {column!r} is not a column of {file.name} (columns: {', '.join(map(str, frame.columns))})"
            )
    if frame.empty:
        raise DataInvalidError(f"{file}: no rows to draft a spec from")
    spec_name = _spec_name(file, name)
    columns: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    for column in map(str, frame.columns):
        columns[column], notes[column] = _column(column, frame[column], timestamp, column in keys)
    if columns[target]["type"] not in ("int", "float"):
        raise SpecError(f"--target {target!r} is not numeric in {file.name}; a forecasting target must be")
    days = parse_days(frame[timestamp], columns[timestamp].get("format"))
    assert days is not None  # detect_date_format found a format that parses every value
    cadence = require_daily(days.dt.date, f"{file.name} ({timestamp})")
    categorical = [k for k in keys if columns[k]["type"] == "string"]
    lines = [
        f"# Drafted by `retrain spec init` from {file.name}: {len(frame):,} rows, {cadence.days:,} days",
        f"# ({days.min():%Y-%m-%d} to {days.max():%Y-%m-%d}, {cadence.name}). Read it before use: ranges and",
        "# allowed sets describe only the history seen; features are left conservative (edit `features`).",
        f"name: {spec_name}",
        f"description: Drafted from {file.name}.",
        "source:",
        "  format: csv",
        "  path: landing/date={date}/part.csv",
        f"timestamp_column: {timestamp}",
        f"entity_keys: {_dump(keys)}",
        f"target: {target}",
        "columns:",
    ]
    for column, entry in columns.items():
        comment = f"  # {notes[column]}" if notes[column] else ""
        lines.append(f"  {_dump({column: entry})[1:-1]}{comment}".replace(": {", ": {", 1))
    lines += [
        "features:",
        "  # Only columns known before the day starts may be features: a reading taken during the day",
        "  # (like the target's companions) is not known when forecasting tomorrow. Add them here if they are.",
        "  numeric: []",
        f"  categorical: {_dump(categorical)}",
        "  request_time: []",
        "  lags: [1, 7, 14, 28]",
        "  rolling_windows: [7, 28]",
        f"registered_model_name: {spec_name}",
        "training:",
        f"  train_days: {max(60, min(730, cadence.days - 28))}",
        "  holdout_days: 28",
        "  min_history_days: 60",
        "validation:",
        "  row_count_tolerance: 0.5",
        "  row_count_lookback_days: 7",
        "  min_rows: 1",
    ]
    text = "\n".join(lines) + "\n"
    parse_spec(yaml.safe_load(text), origin=f"draft for {file.name}")  # the draft must load as it is
    return text
