"""Every fault the simulator can inject is caught at ingest/validation, quarantined, and curated stays as it was."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from retrain import ingest, validate
from retrain.errors import DataInvalidError, DataMissingError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.sim.demand import FAULT_KINDS, deliver_late
from retrain.spec import DatasetSpec
from tests.utils.files import tree_digest
from tests.utils.sim import simulate_into

START = date(2026, 3, 1)
HISTORY = 8
FAULT_DAY = START + timedelta(days=HISTORY)

# What validation must name for each content fault (the expectation label, as in the error message).
EXPECTED_FAILURE = {
    "missing_column": "expect_table_columns_to_match_set",
    "wrong_type": "expect_column_values_to_be_in_type_list(price)",
    "null_keys": "expect_column_values_to_not_be_null(",
    "negative_sales": "(sales)",
    "duplicate_keys": "expect_compound_columns_to_be_unique(date,store_id,item_id)",
    "empty_file": "expect_table_row_count_to_be_between",
}
MISSING_DROP = {"late_day", "missing_day"}


def test_every_fault_kind_is_covered() -> None:
    assert set(FAULT_KINDS) == set(EXPECTED_FAILURE) | MISSING_DROP


def _home_with_history(tmp_path: Path, fault: str) -> tuple[Settings, DatasetSpec, DatasetLayout]:
    settings, spec, layout, _ = simulate_into(
        tmp_path / "var", START, HISTORY + 1, faults=[f"{fault}@{FAULT_DAY.isoformat()}"]
    )
    for offset in range(HISTORY):
        day = START + timedelta(days=offset)
        ingest.run(settings, spec, day)
        ingest.publish_batch(settings, spec, day)  # history only feeds the row-count band: no GX needed
    return settings, spec, layout


@pytest.mark.parametrize("fault", sorted(EXPECTED_FAILURE))
def test_content_fault_is_quarantined(tmp_path: Path, fault: str) -> None:
    settings, spec, layout = _home_with_history(tmp_path, fault)
    curated_before = tree_digest(layout.curated)
    ingest.run(settings, spec, FAULT_DAY)
    with pytest.raises(DataInvalidError) as caught:
        validate.run(settings, spec, FAULT_DAY)
    message = str(caught.value)
    assert EXPECTED_FAILURE[fault] in message, message
    assert any(EXPECTED_FAILURE[fault].rstrip("(") in name for name in caught.value.failed_expectations)
    quarantine = layout.quarantine_partition(FAULT_DAY)
    assert (quarantine / "gx_result.json").is_file()
    assert any(p.is_file() and p.name != "gx_result.json" for p in quarantine.rglob("*")), "batch not kept"
    assert tree_digest(layout.curated) == curated_before
    assert not layout.curated_partition(FAULT_DAY).exists()


@pytest.mark.parametrize("fault", sorted(MISSING_DROP))
def test_missing_drop_is_a_retryable_error(tmp_path: Path, fault: str) -> None:
    settings, spec, layout = _home_with_history(tmp_path, fault)
    curated_before = tree_digest(layout.curated)
    assert not ingest.landing_available(settings, spec, FAULT_DAY)
    with pytest.raises(DataMissingError, match=str(FAULT_DAY)):
        ingest.run(settings, spec, FAULT_DAY)
    assert tree_digest(layout.curated) == curated_before
    if fault == "late_day":
        deliver_late(layout, spec, FAULT_DAY)
        assert ingest.landing_available(settings, spec, FAULT_DAY)
        ingest.run(settings, spec, FAULT_DAY)
        assert validate.run(settings, spec, FAULT_DAY).success


def test_clean_day_after_history_passes_and_reingest_is_identical(tmp_path: Path) -> None:
    settings, spec, layout = _home_with_history(tmp_path, "missing_day")
    day = START + timedelta(days=HISTORY - 1)
    before = tree_digest(layout.curated_partition(day))
    ingest.run(settings, spec, day)
    assert validate.run(settings, spec, day).success
    assert tree_digest(layout.curated_partition(day)) == before
