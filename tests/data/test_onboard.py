"""Range ingest with real GX: every good day published, bad days quarantined as the per-day path does."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from retrain import ingest, validate
from retrain.errors import CadenceError, DataInvalidError
from retrain.layout import DatasetLayout
from retrain.onboard import ingest_range
from retrain.settings import Settings
from retrain.spec import DatasetSpec
from tests.data.conftest import seattle_days, write_landing_csv
from tests.utils.files import tree_digest
from tests.utils.sim import simulate_into

START, END = date(2012, 1, 1), date(2012, 3, 10)  # three calendar months: three GX runs when all is well
BAD_DAY, GONE_DAY = date(2012, 2, 14), date(2012, 1, 20)


def _land_seattle(settings: Settings, spec: DatasetSpec, frame: pd.DataFrame) -> None:
    for day, rows in frame.groupby(pd.to_datetime(frame["date"], format="%Y/%m/%d").dt.date):
        write_landing_csv(settings, spec, day, rows)


def test_range_publishes_good_days_quarantines_bad_and_reports_missing(
    settings: Settings, seattle_spec: DatasetSpec
) -> None:
    frame = seattle_days(START.isoformat(), END.isoformat())
    frame = frame[frame["date"] != f"{GONE_DAY:%Y/%m/%d}"]
    frame.loc[frame["date"] == f"{BAD_DAY:%Y/%m/%d}", "weather"] = "hail"
    _land_seattle(settings, seattle_spec, frame)
    seen: list[tuple[date, str]] = []

    result = ingest_range(settings, seattle_spec, START, END, progress=lambda d, o: seen.append((d, o)))

    layout = DatasetLayout.for_spec(settings, seattle_spec)
    every_day = [START + timedelta(days=k) for k in range((END - START).days + 1)]
    assert result.missing == (GONE_DAY,)
    assert [q.day for q in result.quarantined] == [BAD_DAY]
    assert "expect_column_values_to_be_in_set(weather)" in result.quarantined[0].reasons
    assert set(result.published) == set(every_day) - {GONE_DAY, BAD_DAY}
    assert layout.curated_days() == sorted(result.published)
    assert (layout.quarantine_partition(BAD_DAY) / "gx_result.json").is_file()
    assert (layout.quarantine_partition(BAD_DAY) / "part.parquet").is_file()
    assert not layout.curated_partition(BAD_DAY).exists()
    assert sorted(d for d, _ in seen) == every_day
    assert result.rows == len(frame) - 1
    assert result.validated_alone == 1 and result.gx_runs <= 5
    assert result.data_docs_index is not None and result.data_docs_index.is_file()
    assert not list(layout.staging.rglob("*.parquet"))
    assert str(settings.gx_root).startswith(str(settings.resolved_home))


def test_rerunning_a_range_is_idempotent(settings: Settings, seattle_spec: DatasetSpec) -> None:
    _land_seattle(settings, seattle_spec, seattle_days("2012-01-01", "2012-01-31"))
    first = ingest_range(settings, seattle_spec, date(2012, 1, 1), date(2012, 1, 31))
    curated = tree_digest(DatasetLayout.for_spec(settings, seattle_spec).curated)
    second = ingest_range(settings, seattle_spec, date(2012, 1, 1), date(2012, 1, 31))
    assert first.published == second.published and len(second.published) == 31
    assert tree_digest(DatasetLayout.for_spec(settings, seattle_spec).curated) == curated


def test_monthly_landing_is_refused_before_anything_is_written(
    settings: Settings, seattle_spec: DatasetSpec
) -> None:
    frame = seattle_days("2012-01-01", "2012-12-31")
    monthly = frame[frame["date"].str.endswith("/01")]
    _land_seattle(settings, seattle_spec, monthly)
    with pytest.raises(CadenceError, match=r"monthly, not daily"):
        ingest_range(settings, seattle_spec, date(2012, 1, 1), date(2012, 12, 31))
    layout = DatasetLayout.for_spec(settings, seattle_spec)
    assert layout.curated_days() == [] and not layout.staging.exists()


def test_a_wrong_date_format_stops_the_range_with_the_field_named(
    settings: Settings, seattle_spec: DatasetSpec
) -> None:
    frame = seattle_days("2012-01-01", "2012-02-29")
    frame["date"] = pd.to_datetime(frame["date"], format="%Y/%m/%d").dt.strftime("%b %d %Y")
    for day, rows in zip(pd.date_range("2012-01-01", "2012-02-29"), frame.groupby(frame.index), strict=True):
        write_landing_csv(settings, seattle_spec, day.date(), rows[1])
    with pytest.raises(
        DataInvalidError, match=r"column date: 1 value\(s\) do not match format ISO 8601.*'Jan 01 2012'"
    ):
        ingest_range(settings, seattle_spec, date(2012, 1, 1), date(2012, 2, 29))
    layout = DatasetLayout.for_spec(settings, seattle_spec)
    assert layout.curated_days() == []
    assert len(list(layout.quarantine.glob("date=*"))) == 31  # January, as the per-day path; then it stops


# Chunked validation must find what per-day validation finds, for every fault the simulator injects.
SIM_START = date(2026, 3, 1)
SIM_DAYS = 40
FAULTS = {
    "missing_column": 10,
    "wrong_type": 13,
    "null_keys": 17,
    "negative_sales": 22,
    "duplicate_keys": 26,
    "empty_file": 31,
    "missing_day": 34,
    "late_day": 37,
}


def _verdicts(layout: DatasetLayout) -> dict[date, list[str]]:
    """Failed expectation types of each quarantined day, from its gx_result.json."""
    out = {}
    for folder in sorted(layout.quarantine.glob("date=*")):
        result = json.loads((folder / "gx_result.json").read_text())
        failed = [r["expectation_config"] for r in result["results"] if not r["success"]]
        out[date.fromisoformat(folder.name.removeprefix("date="))] = sorted(
            f"{c['type']}({c['kwargs'].get('column', '')})" for c in failed
        )
    return out


def test_chunked_validation_finds_the_same_failures_as_per_day_validation(tmp_path: Path) -> None:
    faults = [f"{kind}@{(SIM_START + timedelta(days=k)).isoformat()}" for kind, k in FAULTS.items()]
    end = SIM_START + timedelta(days=SIM_DAYS - 1)
    per_day, spec, per_day_layout, _ = simulate_into(tmp_path / "per_day", SIM_START, SIM_DAYS, faults=faults)
    ranged, _, ranged_layout, _ = simulate_into(tmp_path / "ranged", SIM_START, SIM_DAYS, faults=faults)

    for k in range(SIM_DAYS):
        day = SIM_START + timedelta(days=k)
        if not ingest.landing_available(per_day, spec, day):
            continue
        ingest.run(per_day, spec, day)
        validate.settle_batch(per_day, spec, day)  # publish or quarantine, as validate.run does
    result = ingest_range(ranged, spec, SIM_START, end)

    expected_bad = {SIM_START + timedelta(days=k) for kind, k in FAULTS.items() if not kind.endswith("_day")}
    assert set(_verdicts(per_day_layout)) == expected_bad
    assert _verdicts(ranged_layout) == _verdicts(per_day_layout)
    assert {q.day for q in result.quarantined} == expected_bad
    assert set(result.missing) == {SIM_START + timedelta(days=FAULTS[k]) for k in ("missing_day", "late_day")}
    assert ranged_layout.curated_days() == per_day_layout.curated_days() == sorted(result.published)
    for day in result.published:
        assert ingest.file_sha256(ranged_layout.curated_file(day)) == ingest.file_sha256(
            per_day_layout.curated_file(day)
        )
