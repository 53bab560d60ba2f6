"""Ingest: read a day's landing drop, normalise types per the spec, stage it; publish or quarantine it."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import shutil
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from retrain.errors import DataMissingError, SpecError
from retrain.layout import DatasetLayout, partition_name
from retrain.settings import Settings
from retrain.spec import ColumnSpec, ColumnType, DatasetSpec

PART = "part.parquet"
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


@dataclass(frozen=True)
class StageResult:
    """A typed batch written to staging/date=D, waiting for validation."""

    day: date
    rows: int
    path: Path
    sources: tuple[str, ...]
    uncoerced_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    missing_columns: tuple[str, ...]


@dataclass(frozen=True)
class PublishResult:
    """A validated batch now in curated/date=D."""

    day: date
    rows: int
    path: Path
    sha256: str


def _landing_files(layout: DatasetLayout, spec: DatasetSpec, day: date) -> tuple[str, list[Path]]:
    pattern = layout.landing_pattern(spec.source.path, day)
    # glob.glob, not Path.glob: the pattern is absolute and may have wildcards in any segment.
    return pattern, sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())  # noqa: PTH207


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _run_sql(spec: DatasetSpec, day: date, query: str) -> pd.DataFrame:
    import sqlalchemy as sa

    if not spec.source.sql_url:
        raise SpecError(f"dataset spec {spec.name}: source.sql_url is required for format sql")
    engine = sa.create_engine(spec.source.sql_url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_query(sa.text(query), conn, params={"date": day.isoformat()})
    finally:
        engine.dispose()


def landing_available(settings: Settings, spec: DatasetSpec, day: date) -> bool:
    """True when the day's drop is there (files matching the template, or SQL rows for the date)."""
    if spec.source.format == "sql":
        probe = f"SELECT 1 AS present FROM ({spec.source.sql_query}) AS drop_probe LIMIT 1"
        return not _run_sql(spec, day, probe).empty
    return bool(_landing_files(DatasetLayout.for_spec(settings, spec), spec, day)[1])


def _read_csv(path: Path, spec: DatasetSpec) -> pd.DataFrame | None:
    # Declared strings are read as text so codes like "007" keep their leading zeros.
    text = {n: str for n, c in spec.columns.items() if c.type is ColumnType.STRING}
    try:
        return pd.read_csv(path, dtype=text, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return None


def read_landing(settings: Settings, spec: DatasetSpec, day: date) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The day's raw drop as one frame, and where it came from; DataMissingError when absent."""
    layout = DatasetLayout.for_spec(settings, spec)
    if spec.source.format == "sql":
        where = _safe_url(spec.source.sql_url or "")
        frame = _run_sql(spec, day, spec.source.sql_query or "")
        if frame.empty:
            raise DataMissingError(
                f"no rows for {day} from {where} yet (query: {spec.source.sql_query}); retry later"
            )
        return frame, (where,)
    pattern, files = _landing_files(layout, spec, day)
    if not files:
        raise DataMissingError(
            f"landing drop for {spec.name} {day} not found: expected {pattern}; retry later"
        )
    frames: list[pd.DataFrame] = []
    for path in files:
        part = _read_csv(path, spec) if spec.source.format == "csv" else pd.read_parquet(path)
        if part is not None:
            frames.append(part)
    if not frames:  # only empty files: an empty batch with the declared columns, which validation fails
        return pd.DataFrame({name: pd.Series(dtype=object) for name in spec.columns}), tuple(map(str, files))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame, tuple(map(str, files))


def _as_text(values: pd.Series) -> pd.Series:
    """Left un-coerced: plain str objects (nulls as None), so Parquet can hold any mix of raw values."""
    return values.astype(str).where(values.notna(), None).astype(object)


def _lost(before: pd.Series, after: pd.Series) -> bool:
    return bool((after.isna() & before.notna()).any())


def _numbers(values: pd.Series) -> pd.Series:
    if is_bool_dtype(values):
        return values.astype("Int64")
    return values if is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")


def _to_int(values: pd.Series) -> pd.Series | None:
    numbers = _numbers(values)
    present = numbers.dropna()
    if _lost(values, numbers) or not bool((present == present.round()).all()):
        return None
    return numbers.astype("Int64" if numbers.isna().any() else "int64")


def _to_float(values: pd.Series) -> pd.Series | None:
    numbers = _numbers(values)
    return None if _lost(values, numbers) else numbers.astype("float64")


def _to_bool(values: pd.Series) -> pd.Series | None:
    if is_bool_dtype(values):
        flags = values.astype("boolean")
    else:
        text = values.astype("string").str.strip().str.lower()
        flags = pd.Series(pd.NA, index=values.index, dtype="boolean")
        flags[text.isin(_TRUE).fillna(False).astype(bool)] = True
        flags[text.isin(_FALSE).fillna(False).astype(bool)] = False
        if _lost(values, flags):
            return None
    return flags.astype("boolean" if flags.isna().any() else "bool")


def _parse_stamps(values: pd.Series, fmt: str | None) -> pd.Series:
    """Timestamps per the column's strftime format (ISO 8601 when None); unparseable values become NaT."""
    if is_datetime64_any_dtype(values):
        return values
    text = values if values.dtype == object else values.astype("string")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mixed offsets: the caller checks the dtype
        return pd.to_datetime(text, errors="coerce", format=fmt or "ISO8601")


def parse_days(values: pd.Series, fmt: str | None = None) -> pd.Series | None:
    """Calendar days (datetime64, midnight) parsed per a strftime format (ISO when None); None if any fails."""
    try:
        stamps = _parse_stamps(values, fmt)
    except (ValueError, TypeError):
        return None
    if not is_datetime64_any_dtype(stamps) or _lost(values, stamps):
        return None  # unparseable, or a mix of time zones that has no single day per value
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)  # the local calendar day is the day
    return stamps.dt.normalize().astype("datetime64[ns]")


def describe_format(fmt: str | None) -> str:
    """How a date column's format reads in messages."""
    return repr(fmt) if fmt else "ISO 8601 (the default, e.g. '2024-03-01')"


def date_format_problem(name: str, fmt: str | None, values: pd.Series) -> str | None:
    """A field-named message when a date column's values do not parse with its format, else None."""
    if parse_days(values, fmt) is not None:
        return None
    hint = f"set columns.{name}.format in the spec (a strftime pattern, e.g. '%b %d %Y')"
    try:
        stamps = _parse_stamps(values, fmt)
    except (ValueError, TypeError):
        return f"column {name}: values do not parse as dates with format {describe_format(fmt)}; {hint}"
    bad = values.notna() & pd.Series(stamps, index=values.index).isna()
    if not bad.any():
        return f"column {name}: values mix time zones, so some have no single calendar day; write one offset"
    return (
        f"column {name}: {int(bad.sum())} value(s) do not match format {describe_format(fmt)} "
        f"(e.g. {str(values[bad].iloc[0])!r}); {hint}"
    )


def date_format_problems(spec: DatasetSpec, frame: pd.DataFrame) -> dict[str, str]:
    """Column -> message for the spec's date columns that did not parse (left as text when staged)."""
    problems = {}
    for name, col in spec.columns.items():
        if col.type is ColumnType.DATE and name in frame.columns and not is_datetime64_any_dtype(frame[name]):
            problem = date_format_problem(name, col.format, frame[name])
            if problem:
                problems[name] = problem
    return problems


def _to_string(values: pd.Series) -> pd.Series:
    return values.astype("string")


_COERCE: dict[ColumnType, Callable[[pd.Series], pd.Series | None]] = {
    ColumnType.INT: _to_int,
    ColumnType.FLOAT: _to_float,
    ColumnType.BOOL: _to_bool,
    ColumnType.STRING: _to_string,
}


def coerce_column(values: pd.Series, col: ColumnSpec) -> pd.Series | None:
    """The column cast to its declared type (dates per col.format), or None when it will not cast."""
    if col.type is ColumnType.DATE:
        return parse_days(values, col.format)
    return _COERCE[col.type](values)


def normalise_frame(raw: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, list[str]]:
    """Cast each declared column to its type; return the frame and the columns that would not cast."""
    raw = raw.reset_index(drop=True)
    columns: dict[str, pd.Series] = {}
    uncoerced: list[str] = []
    for name, col in spec.columns.items():
        if name not in raw.columns:
            continue
        typed = coerce_column(raw[name], col)
        if typed is None:
            uncoerced.append(name)
            typed = _as_text(raw[name]) if raw[name].dtype == object else raw[name]
        columns[name] = typed
    for name in raw.columns:
        if name not in spec.columns:
            columns[str(name)] = _as_text(raw[name]) if raw[name].dtype == object else raw[name]
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(raw)))
    return frame, uncoerced


def _write_parquet_atomically(frame: pd.DataFrame, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
    try:
        # Fixed engine, compression and no index: identical frames give byte-identical files.
        frame.to_parquet(tmp, engine="pyarrow", compression="snappy", index=False)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def staged_file(settings: Settings, spec: DatasetSpec, day: date) -> Path:
    """Path of the staged batch for a day."""
    return DatasetLayout.for_spec(settings, spec).staging_partition(day) / PART


def stage_batch(settings: Settings, spec: DatasetSpec, day: date) -> StageResult:
    """Read the day's drop, normalise types per spec.columns and write staging/date=D/part.parquet."""
    return stage_day(settings, spec, day)[0]


def stage_day(settings: Settings, spec: DatasetSpec, day: date) -> tuple[StageResult, pd.DataFrame]:
    """stage_batch, also returning the typed frame it wrote (range ingest validates it in memory)."""
    raw, sources = read_landing(settings, spec, day)
    typed, uncoerced = normalise_frame(raw, spec)
    dest = staged_file(settings, spec, day)
    _write_parquet_atomically(typed, dest)
    result = StageResult(
        day=day,
        rows=len(typed),
        path=dest,
        sources=sources,
        uncoerced_columns=tuple(uncoerced),
        extra_columns=tuple(c for c in typed.columns if c not in spec.columns),
        missing_columns=tuple(c for c in spec.columns if c not in typed.columns),
    )
    return result, typed


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish_batch(settings: Settings, spec: DatasetSpec, day: date) -> PublishResult:
    """Move the staged batch to curated/date=D/part.parquet atomically."""
    layout = DatasetLayout.for_spec(settings, spec)
    staged = staged_file(settings, spec, day)
    if not staged.is_file():
        raise DataMissingError(f"no staged batch for {spec.name} {day} at {staged}; run stage_batch first")
    sha256 = file_sha256(staged)
    rows = pq.read_metadata(staged).num_rows
    target = layout.curated_partition(day)
    layout.curated.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        staged.replace(target / PART)  # a file rename replaces the old partition's data atomically
    else:
        tmp = layout.curated / f".{partition_name(day)}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        staged.replace(tmp / PART)
        tmp.rename(target)  # readers see the partition only once it is complete
    _remove_if_empty(staged.parent)
    return PublishResult(day=day, rows=rows, path=target / PART, sha256=sha256)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: leave it
        folder.rmdir()


def _set_aside_previous(target: Path) -> None:
    """Move an earlier quarantined attempt into target/history/<n>/ so nothing is ever lost."""
    entries = [p for p in target.iterdir() if p.name != "history"]
    if not entries:
        return
    history = target / "history"
    history.mkdir(exist_ok=True)
    slot = history / str(sum(1 for _ in history.iterdir()) + 1)
    slot.mkdir()
    for entry in entries:
        entry.rename(slot / entry.name)


def quarantine_batch(settings: Settings, spec: DatasetSpec, day: date, result_json: dict[str, Any]) -> Path:
    """Move the staged batch (and copy the raw drop) to quarantine/date=D/ with gx_result.json."""
    layout = DatasetLayout.for_spec(settings, spec)
    target = layout.quarantine_partition(day)
    layout.quarantine.mkdir(parents=True, exist_ok=True)
    tmp = layout.quarantine / f".{partition_name(day)}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    staged = staged_file(settings, spec, day)
    if staged.is_file():
        staged.replace(tmp / PART)
        _remove_if_empty(staged.parent)
    if spec.source.format == "sql":
        source = {"sql_url": _safe_url(spec.source.sql_url or ""), "sql_query": spec.source.sql_query}
        (tmp / "source.json").write_text(json.dumps(source, indent=2), encoding="utf-8")
    else:
        raw = tmp / "landing"
        raw.mkdir()
        for i, path in enumerate(_landing_files(layout, spec, day)[1]):
            name = path.name if not (raw / path.name).exists() else f"{i}_{path.name}"
            shutil.copy2(path, raw / name)
    (tmp / "gx_result.json").write_text(json.dumps(result_json, indent=2, default=str), encoding="utf-8")
    if not target.exists():
        tmp.rename(target)
        return target
    _set_aside_previous(target)
    for entry in tmp.iterdir():
        entry.rename(target / entry.name)
    tmp.rmdir()
    return target
