"""Import history: split one historical CSV/Parquet file into the spec's daily landing drops."""

from __future__ import annotations

import io
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from retrain.cadence import Cadence, require_daily
from retrain.coerce import date_format_problem, parse_days
from retrain.errors import DataInvalidError, SpecError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec

log = logging.getLogger(__name__)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ImportResult:
    """Where a history file's days landed."""

    file: Path
    start: date
    end: date
    days_written: int
    days_unchanged: int
    rows: int
    cadence: Cadence
    seconds: float

    @property
    def days(self) -> int:
        """Distinct days in the file."""
        return self.days_written + self.days_unchanged


def read_history(file: Path) -> pd.DataFrame:
    """The file as delivered: CSV values kept as text (so they land unchanged), Parquet as typed."""
    if not file.is_file():
        raise DataInvalidError(f"history file not found: {file}")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(file)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(file, dtype=str)
    raise DataInvalidError(f"{file}: unsupported history file type {suffix!r}; use .csv or .parquet")


def day_of_each_row(spec: DatasetSpec, frame: pd.DataFrame, file: Path) -> pd.Series:
    """The calendar day of every row, parsed with the spec's date format; a field-named error if not."""
    column = spec.timestamp_column
    if column not in frame.columns:
        raise DataInvalidError(
            f"{file.name}: no timestamp column {column!r} (columns: {', '.join(map(str, frame.columns))}); "
            "set timestamp_column in the spec"
        )
    fmt = spec.columns[column].format
    days = parse_days(frame[column], fmt)
    if days is None:
        raise DataInvalidError(f"{file.name}: {date_format_problem(column, fmt, frame[column])}")
    return days


def _encoded(frame: pd.DataFrame, kind: str) -> bytes:
    if kind == "csv":
        text: str = frame.to_csv(index=False)
        return text.encode("utf-8")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", compression="snappy", index=False)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write atomically unless the file already holds exactly these bytes; True when written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def import_history(settings: Settings, spec: DatasetSpec, file: Path) -> ImportResult:
    """Split a history file into one landing drop per day at spec.source.path; nothing is written unless it is daily."""
    started = time.perf_counter()
    if spec.source.format == "sql":
        raise SpecError(f"dataset spec {spec.name}: source.format is sql; import writes landing files")
    if _GLOB_CHARS & set(spec.source.path):
        raise SpecError(
            f"dataset spec {spec.name}: source.path {spec.source.path!r} is a glob; import needs one file per "
            "day, e.g. landing/date={date}/part.csv"
        )
    frame = read_history(file)
    if frame.empty:
        raise DataInvalidError(f"{file}: no rows")
    days = day_of_each_row(spec, frame, file).dt.date
    cadence = require_daily(days, f"{file.name} ({spec.timestamp_column})")
    layout = DatasetLayout.for_spec(settings, spec)
    written = unchanged = 0
    for day, rows in frame.groupby(days.to_numpy(), sort=True):
        path = Path(layout.landing_pattern(spec.source.path, day))
        if _write_if_changed(path, _encoded(rows.reset_index(drop=True), spec.source.format)):
            written += 1
        else:
            unchanged += 1
    first, last = days.min(), days.max()
    seconds = time.perf_counter() - started
    log.info(
        "import dataset=%s file=%s start=%s end=%s written=%d unchanged=%d rows=%d seconds=%.1f",
        spec.name, file, first, last, written, unchanged, len(frame), seconds,
    )  # fmt: skip
    return ImportResult(
        file=file,
        start=first,
        end=last,
        days_written=written,
        days_unchanged=unchanged,
        rows=len(frame),
        cadence=cadence,
        seconds=seconds,
    )
