"""Validate: run the spec's GX checkpoint on the staged batch, then publish it or quarantine it."""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field

from retrain import ingest
from retrain.coerce import date_format_problems
from retrain.errors import DataInvalidError, DataMissingError
from retrain.expectations import (
    PARTITION_DATE,
    PARTITION_LAST,
    ROW_COUNT_MAX,
    ROW_COUNT_MIN,
    check_label,
    spec_checks,
)
from retrain.ingest import IngestResult, PublishResult, publish_batch, quarantine_batch, staged_file
from retrain.layout import DatasetLayout
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

if TYPE_CHECKING:
    from great_expectations import Checkpoint
    from great_expectations.data_context.data_context.file_data_context import FileDataContext

log = logging.getLogger(__name__)


class FailedExpectation(StageResult):
    """One failed expectation: its label, type, column and a short observed value."""

    name: str
    expectation_type: str
    column: str | None
    observed: str


class ValidationResult(StageResult):
    """Outcome of one GX validation run of a day's batch, and where the batch went (curated or quarantine)."""

    day: date
    success: bool
    rows: int
    failures: tuple[FailedExpectation, ...]
    result_path: Path
    data_docs_index: Path | None
    parameters: dict[str, Any]
    seconds: float
    published: PublishResult | None = None
    date_problems: tuple[str, ...] = ()
    quarantined: Path | None = None
    # GX's result identifier, for building Data Docs in the same process; it does not travel.
    result_key: Any = Field(default=None, exclude=True, repr=False)

    @property
    def failed_expectations(self) -> list[str]:
        """Labels of the failed expectations, e.g. expect_column_values_to_not_be_null(store_id)."""
        return [f.name for f in self.failures]


class BatchRun(StageResult):
    """A day's stage plus validation (and publish) results."""

    staged: IngestResult
    validation: ValidationResult


def row_count_band(settings: Settings, spec: DatasetSpec, day: date) -> tuple[int, int | None]:
    """Allowed row count for a day: median of recent curated days x (1 +- tolerance), min_rows floor."""
    layout = DatasetLayout.for_spec(settings, spec)
    recent = [d for d in layout.curated_days() if d < day][-spec.validation.row_count_lookback_days :]
    return band_from_counts(spec, [pq.read_metadata(layout.curated_file(d)).num_rows for d in recent])


def band_from_counts(spec: DatasetSpec, recent: Sequence[int]) -> tuple[int, int | None]:
    """The row-count band given the row counts of the recent curated days (none: min_rows only)."""
    floor = spec.validation.min_rows
    if not recent:
        return floor, None
    median = statistics.median(recent)
    tolerance = spec.validation.row_count_tolerance
    return max(floor, math.floor(median * (1 - tolerance))), max(floor, math.ceil(median * (1 + tolerance)))


def _stamp(day: date) -> str:
    # A full timestamp string: GX would coerce a bare "YYYY-MM-DD" into a date, which pandas
    # refuses to compare with a datetime64 column.
    return f"{day.isoformat()}T00:00:00"


def range_parameters(first: date, last: date, band: tuple[int, int | None]) -> dict[str, Any]:
    """$PARAMETER values for a batch holding the days first..last with a row-count band."""
    low, high = band
    return {
        ROW_COUNT_MIN: low,
        ROW_COUNT_MAX: high,
        PARTITION_DATE: _stamp(first),
        PARTITION_LAST: _stamp(last),
    }


def expectation_parameters(settings: Settings, spec: DatasetSpec, day: date) -> dict[str, Any]:
    """Run-time values of the suite's $PARAMETERs for a day."""
    return range_parameters(day, day, row_count_band(settings, spec, day))


def _plain_json(gx_result: Any) -> dict[str, Any]:
    """A GX result as plain JSON types (timestamps and numpy values become strings/numbers)."""
    data: dict[str, Any] = json.loads(json.dumps(gx_result.to_json_dict(), default=str))
    return data


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exception_message(info: dict[str, Any]) -> str | None:
    if info.get("raised_exception") and info.get("exception_message"):
        return str(info["exception_message"])
    for nested in info.values():  # metric failures are keyed by metric id
        if isinstance(nested, dict) and nested.get("exception_message"):
            return str(nested["exception_message"])
    return None


def _observed(outcome: dict[str, Any]) -> str:
    result = outcome.get("result") or {}
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        return _short(
            f"missing {mismatched.get('missing', [])}, unexpected {mismatched.get('unexpected', [])}"
        )
    if "observed_value" in result:
        return _short(f"observed {result['observed_value']}")
    if result.get("unexpected_count") is not None:
        examples = result.get("partial_unexpected_list", [])[:3]
        return _short(
            f"{result['unexpected_count']} of {result.get('element_count')} unexpected, e.g. {examples}"
        )
    message = _exception_message(outcome.get("exception_info") or {})
    return _short(f"error: {message.splitlines()[0]}") if message else "failed"


def failures_from_result(
    spec: DatasetSpec, result_json: dict[str, Any], columns: Iterable[str] | None = None
) -> tuple[FailedExpectation, ...]:
    """The failed expectations of a GX suite result, in the suite's order."""
    order = {check.label: i for i, check in enumerate(spec_checks(spec))}
    present = None if columns is None else set(columns)
    failures = []
    for outcome in result_json.get("results", []):
        if outcome.get("success"):
            continue
        config = outcome["expectation_config"]
        kwargs = config.get("kwargs", {})
        wanted = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list", []))
        absent = [c for c in wanted if present is not None and c not in present]
        failures.append(
            FailedExpectation(
                name=check_label(config["type"], kwargs),
                expectation_type=config["type"],
                column=kwargs.get("column"),
                observed=f"column {', '.join(absent)} missing" if absent else _observed(outcome),
            )
        )
    # Table-level failures first: a wrong row count or schema usually explains the column failures.
    return tuple(sorted(failures, key=lambda f: (f.column is not None, order.get(f.name, len(order)))))


GxHandle = tuple["FileDataContext", "Checkpoint"]


def validate_frame(
    settings: Settings,
    spec: DatasetSpec,
    day: date,
    frame: pd.DataFrame,
    gx: GxHandle | None = None,
    build_docs: bool = True,
) -> tuple[ValidationResult, dict[str, Any]]:
    """Run the spec's checkpoint once on a frame; no publish, no quarantine. Returns the GX JSON too.

    With build_docs=False the result is stored but Data Docs are left for the caller to build once
    (range ingest); `gx` reuses an open context and checkpoint.
    """
    from great_expectations.core.run_identifier import RunIdentifier

    from retrain.gx_context import RESULT_FORMAT, data_docs_index, prepare_checkpoint, result_path

    context, checkpoint = gx or prepare_checkpoint(settings.gx_root, spec)[:2]
    params = expectation_parameters(settings, spec, day)
    # Naming the run after the partition date groups results and Data Docs by day.
    run_id = RunIdentifier(run_name=day.isoformat(), run_time=datetime.now(UTC))
    started = time.perf_counter()
    if build_docs:
        outcome = checkpoint.run(
            batch_parameters={"dataframe": frame}, expectation_parameters=params, run_id=run_id
        )
        (key, suite_result), *_ = outcome.run_results.items()
    else:
        from retrain.gx_context import result_identifier

        suite_result = checkpoint.validation_definitions[0].run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params,
            result_format=RESULT_FORMAT,
            run_id=run_id,
        )
        key = result_identifier(spec, run_id)
    seconds = time.perf_counter() - started
    result_json = _plain_json(suite_result)
    problems = date_format_problems(spec, frame)
    result = ValidationResult(
        day=day,
        success=bool(suite_result.success) and not problems,
        rows=len(frame),
        failures=_explain_dates(failures_from_result(spec, result_json, frame.columns), problems),
        result_path=result_path(context, key),
        data_docs_index=data_docs_index(context),
        parameters=params,
        seconds=seconds,
        date_problems=tuple(problems.values()),
        result_key=key,
    )
    return result, result_json


def _explain_dates(
    failures: tuple[FailedExpectation, ...], problems: dict[str, str]
) -> tuple[FailedExpectation, ...]:
    """Failures on an unparsed date column observe the format mismatch, not GX's comparison error."""
    return tuple(
        f.model_copy(update={"observed": "not parsed as dates: see the format message"})
        if f.column in problems
        else f
        for f in failures
    )


def gx_check_frame(
    settings: Settings, spec: DatasetSpec, frame: pd.DataFrame, params: dict[str, Any]
) -> list[str]:
    """Failed labels from one bare GX validation run (no actions): the twin of pandas_checks."""
    from retrain.gx_context import RESULT_FORMAT, prepare_checkpoint

    _, checkpoint, _ = prepare_checkpoint(settings.gx_root, spec)
    validation = checkpoint.validation_definitions[0]
    outcome = validation.run(
        batch_parameters={"dataframe": frame}, expectation_parameters=params, result_format=RESULT_FORMAT
    )
    return [f.name for f in failures_from_result(spec, _plain_json(outcome))]


def settle_batch(
    settings: Settings, spec: DatasetSpec, day: date, gx: GxHandle | None = None, build_docs: bool = True
) -> ValidationResult:
    """Validate the staged batch and publish it, or quarantine it with its GX result; never raises on bad data."""
    staged = staged_file(settings, spec, day)
    if not staged.is_file():
        raise DataMissingError(f"no staged batch for {spec.name} {day} at {staged}; run ingest first")
    frame = pd.read_parquet(staged)
    result, result_json = validate_frame(settings, spec, day, frame, gx=gx, build_docs=build_docs)
    if result.success:
        published = publish_batch(settings, spec, day)
        log.info(
            "validate ok dataset=%s date=%s rows=%d sha256=%s gx_seconds=%.2f",
            spec.name, day, published.rows, published.sha256[:12], result.seconds,
        )  # fmt: skip
        return result.model_copy(update={"published": published})
    where = quarantine_batch(settings, spec, day, result_json)
    log.warning(
        "validate failed dataset=%s date=%s failed=%s quarantine=%s",
        spec.name,
        day,
        failure_summary(result),
        where,
    )
    return result.model_copy(update={"quarantined": where})


def failure_summary(result: ValidationResult) -> str:
    """The date-format problems and failed expectations of a result, on one line."""
    dates = "".join(f"{p}. " for p in result.date_problems)
    names = "; ".join(f"{f.name} [{f.observed}]" for f in result.failures)
    return f"{dates}{len(result.failures)} expectation(s) failed: {names}"


def run(
    settings: Settings, spec: DatasetSpec, day: date, gx: GxHandle | None = None, build_docs: bool = True
) -> ValidationResult:
    """Validate the staged batch; publish it when valid, else quarantine it and raise DataInvalidError."""
    result = settle_batch(settings, spec, day, gx=gx, build_docs=build_docs)
    if result.success:
        return result
    raise DataInvalidError(
        f"{spec.name} {day}: {failure_summary(result)}. "
        f"Batch quarantined in {result.quarantined} (gx_result.json); Data Docs: {result.data_docs_index}. "
        "Curated data is unchanged; fix the drop and re-run the day.",
        failed_expectations=result.failed_expectations,
    )


def stage_and_validate(settings: Settings, spec: DatasetSpec, day: date) -> BatchRun:
    """Stage the day's drop, validate it and publish it (or quarantine it and raise): ingest then validate."""
    staged = ingest.run(settings, spec, day)
    return BatchRun(staged=staged, validation=run(settings, spec, day))
