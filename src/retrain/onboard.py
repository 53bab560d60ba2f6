"""Range ingest: onboard days D1..D2 of history in one process with one GX context.

Every day ends exactly as the per-day path (`validate.settle_batch`) would leave it: published to
curated/, or quarantined with its GX result. To be fast, the days of a calendar month are validated
together in one GX run of the same spec-generated suite (the partition-date check as a first..last
range). Checks a union of days could hide are screened per day in pandas first: the column set, the
column types, every row dated its own day, and the row-count band (computed in order, from the curated
days before each day, as the per-day suite parameter is). Any day that fails a screen, or whose month
fails in GX, is validated on its own with the real per-day suite and quarantined for real. Data Docs
are built once at the end.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from retrain.cadence import date_range, require_daily
from retrain.errors import DataInvalidError, RetrainError
from retrain.expectations import PANDAS_TYPES
from retrain.ingest import landing_available, publish_batch, stage_day
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec
from retrain.validate import (
    GxHandle,
    band_from_counts,
    failure_summary,
    range_parameters,
    settle_batch,
)
from retrain.validate_pandas import pandas_checks

log = logging.getLogger(__name__)

# Called once per day of the range with the day and its outcome: published, quarantined or missing.
DayProgress = Callable[[date, str], None]


@dataclass(frozen=True)
class QuarantinedDay:
    """A day whose batch failed validation: where it was kept and why."""

    day: date
    reasons: str
    path: Path


@dataclass(frozen=True)
class RangeIngestResult:
    """What a range ingest did to each day of start..end."""

    start: date
    end: date
    published: tuple[date, ...]
    quarantined: tuple[QuarantinedDay, ...]
    missing: tuple[date, ...]
    rows: int
    seconds: float
    gx_runs: int
    validated_alone: int
    data_docs_index: Path | None

    @property
    def days(self) -> int:
        """Days in the range."""
        return (self.end - self.start).days + 1


def _dtype_name(values: pd.Series) -> str:
    dtype = values.dtype
    return type(dtype).__name__ if isinstance(dtype, pd.api.extensions.ExtensionDtype) else str(dtype)


def day_screen(spec: DatasetSpec, day: date, frame: pd.DataFrame) -> bool:
    """True when a day passes the checks a union of days could hide (schema, types, own-day rows)."""
    if frame.empty or set(frame.columns) != set(spec.columns):
        return False
    for name, col in spec.columns.items():
        if _dtype_name(frame[name]) not in PANDAS_TYPES[col.type]:
            return False
    return bool((frame[spec.timestamp_column] == pd.Timestamp(day)).all())


class _CuratedCounts:
    """Row counts of curated days in date order: the history the row-count band looks back on."""

    def __init__(self, layout: DatasetLayout) -> None:
        self.days = layout.curated_days()
        self.rows = [pq.read_metadata(layout.curated_file(d)).num_rows for d in self.days]

    def before(self, day: date, lookback: int) -> list[int]:
        at = bisect.bisect_left(self.days, day)
        return self.rows[max(0, at - lookback) : at]

    def record(self, day: date, rows: int) -> None:
        at = bisect.bisect_left(self.days, day)
        if at < len(self.days) and self.days[at] == day:
            self.rows[at] = rows
        else:
            self.days.insert(at, day)
            self.rows.insert(at, rows)


class _RangeValidator:
    """Runs the spec's GX validation definition on several days at once (no actions, results stored)."""

    def __init__(self, spec: DatasetSpec, gx: GxHandle) -> None:
        self.spec = spec
        self.validation = gx[1].validation_definitions[0]
        self.keys: list[Any] = []
        self.runs = 0

    def passes(self, frames: dict[date, pd.DataFrame]) -> bool:
        from great_expectations.core.run_identifier import RunIdentifier

        from retrain.gx_context import RESULT_FORMAT, result_identifier

        first, last = min(frames), max(frames)
        run_id = RunIdentifier(
            run_name=f"days {first.isoformat()} to {last.isoformat()}", run_time=datetime.now(UTC)
        )
        union = pd.concat(list(frames.values()), ignore_index=True)
        # Row counts are checked per day beforehand; here any count passes.
        params = range_parameters(first, last, (0, None))
        outcome = self.validation.run(
            batch_parameters={"dataframe": union},
            expectation_parameters=params,
            result_format=RESULT_FORMAT,
            run_id=run_id,
        )
        self.runs += 1
        self.keys.append(result_identifier(self.spec, run_id))
        return bool(outcome.success)

    def passing_days(self, frames: dict[date, pd.DataFrame]) -> set[date]:
        """Days proven valid (except row count) by GX runs on unions; the rest need a run of their own."""
        if not frames:
            return set()
        if self.passes(frames):
            return set(frames)
        # Point at the culprits with the pandas twin of the suite, then prove the rest with GX again.
        rest = {
            d: f
            for d, f in frames.items()
            if not pandas_checks(self.spec, f, range_parameters(d, d, (0, None)))
        }
        if rest and len(rest) < len(frames) and self.passes(rest):
            return set(rest)
        return set()


def _months(days: list[date]) -> Iterator[list[date]]:
    for _, group in groupby(days, key=lambda d: (d.year, d.month)):
        yield list(group)


def ingest_range(
    settings: Settings, spec: DatasetSpec, start: date, end: date, progress: DayProgress | None = None
) -> RangeIngestResult:
    """Stage, validate and publish (or quarantine) every day of start..end; missing drops are reported."""
    from retrain.gx_context import build_docs, prepare_checkpoint

    if end < start:
        raise RetrainError(f"range ingest: end {end} is before start {start}")
    started = time.perf_counter()
    notify = progress or (lambda _day, _outcome: None)
    layout = DatasetLayout.for_spec(settings, spec)
    present: list[date] = []
    missing: list[date] = []
    for day in date_range(start, end):
        (present if landing_available(settings, spec, day) else missing).append(day)
    require_daily(present, f"{spec.name} landing drops {start}..{end}")  # before anything is written
    for day in missing:
        notify(day, "missing")
    context, checkpoint, _ = prepare_checkpoint(settings.gx_root, spec)
    validator = _RangeValidator(spec, (context, checkpoint))
    counts = _CuratedCounts(layout)
    lookback = spec.validation.row_count_lookback_days
    published: list[date] = []
    quarantined: list[QuarantinedDay] = []
    rows = alone = 0
    for month in _months(present):
        frames = {day: stage_day(settings, spec, day)[1] for day in month}
        unparsed_dates = 0
        proven = validator.passing_days({d: f for d, f in frames.items() if day_screen(spec, d, f)})
        for day in month:
            n = len(frames[day])
            low, high = band_from_counts(spec, counts.before(day, lookback))
            if day in proven and n >= low and (high is None or n <= high):
                publish_batch(settings, spec, day)
            else:
                alone += 1
                result = settle_batch(settings, spec, day, gx=(context, checkpoint), build_docs=False)
                validator.keys.append(result.result_key)
                unparsed_dates += bool(result.date_problems)
                if not result.success:
                    assert result.quarantined is not None
                    quarantined.append(QuarantinedDay(day, failure_summary(result), result.quarantined))
                    notify(day, "quarantined")
                    continue
            counts.record(day, n)
            published.append(day)
            rows += n
            notify(day, "published")
        if unparsed_dates == len(month):
            # A wrong date format fails every day the same way: stop instead of quarantining years.
            raise DataInvalidError(
                f"{spec.name}: every day of {month[0]:%Y-%m} was quarantined, range stopped: "
                f"{quarantined[-len(month)].reasons}"
            )
    docs = build_docs(context, validator.keys)
    seconds = time.perf_counter() - started
    log.info(
        "ingest range dataset=%s start=%s end=%s published=%d quarantined=%d missing=%d gx_runs=%d "
        "alone=%d seconds=%.1f",
        spec.name, start, end, len(published), len(quarantined), len(missing), validator.runs, alone, seconds,
    )  # fmt: skip
    return RangeIngestResult(
        start=start,
        end=end,
        published=tuple(published),
        quarantined=tuple(quarantined),
        missing=tuple(missing),
        rows=rows,
        seconds=seconds,
        gx_runs=validator.runs,
        validated_alone=alone,
        data_docs_index=docs,
    )
