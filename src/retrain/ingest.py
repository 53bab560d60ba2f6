"""Ingest: read a day's landing drop, normalise types per the spec (`retrain.coerce`), stage it; publish or quarantine it."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from retrain.coerce import normalise_frame
from retrain.errors import DataMissingError, SpecError
from retrain.layout import DatasetLayout, partition_name
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import ColumnType, DatasetSpec

PART = "part.parquet"


class IngestResult(StageResult):
    """A typed batch written to staging/date=D, waiting for validation."""

    day: date
    rows: int
    path: Path
    sources: tuple[str, ...]
    uncoerced_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    missing_columns: tuple[str, ...]


class PublishResult(StageResult):
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


def landing_location(settings: Settings, spec: DatasetSpec, day: date) -> str:
    """Where the day's drop is looked for: the file pattern, or the SQL query with its date."""
    if spec.source.format == "sql":
        return f"SQL query {spec.source.sql_query!r} with date={day.isoformat()}"
    return DatasetLayout.for_spec(settings, spec).landing_pattern(spec.source.path, day)


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


def run(settings: Settings, spec: DatasetSpec, day: date) -> IngestResult:
    """Read the day's drop, normalise types per spec.columns and write staging/date=D/part.parquet."""
    return stage_day(settings, spec, day)[0]


def stage_day(settings: Settings, spec: DatasetSpec, day: date) -> tuple[IngestResult, pd.DataFrame]:
    """`run`, also returning the typed frame it wrote (range ingest validates it in memory)."""
    raw, sources = read_landing(settings, spec, day)
    typed, uncoerced = normalise_frame(raw, spec)
    dest = staged_file(settings, spec, day)
    _write_parquet_atomically(typed, dest)
    result = IngestResult(
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
        raise DataMissingError(f"no staged batch for {spec.name} {day} at {staged}; run ingest first")
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
