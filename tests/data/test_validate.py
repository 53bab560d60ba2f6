"""Validation with real GX on tmp dirs: clean days publish, every defect is quarantined and named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from retrain.errors import DataInvalidError, DataMissingError
from retrain.expectations import build_suite, canonical_suite
from retrain.gx_context import ensure_context, write_suite
from retrain.ingest import file_sha256
from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import DatasetSpec, parse_spec
from retrain.validate import expectation_parameters, row_count_band, run, stage_and_validate
from retrain.validate_pandas import pandas_checks

DAY = date(2024, 3, 10)
HISTORY = [DAY - timedelta(days=k) for k in (3, 2, 1)]  # 12 rows each: band 6..18
MakeDay = Callable[..., pd.DataFrame]
WriteDrop = Callable[..., Path]
HashTree = Callable[[Path], dict[str, str]]


def _missing_column(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["promo"])


def _wrong_type(frame: pd.DataFrame) -> pd.DataFrame:
    frame["price"] = frame["price"].astype(object)
    frame.loc[2, "price"] = "abc"
    return frame


def _null_key(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[0, "store_id"] = None
    return frame


def _negative_target(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[4, "sales"] = -5
    return frame


def _duplicate_keys(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[1]]], ignore_index=True)


def _unknown_category(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[5, "category"] = "toys"
    return frame


def _other_date(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[7, "date"] = (DAY + timedelta(days=1)).isoformat()
    return frame


DEFECTS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set[str]]] = {
    "missing_column": (
        _missing_column,
        {
            "expect_table_columns_to_match_set",
            "expect_column_values_to_be_in_type_list(promo)",
            "expect_column_values_to_not_be_null(promo)",
            "expect_column_min_to_be_between(promo)",
            "expect_column_max_to_be_between(promo)",
        },
    ),
    "wrong_type": (
        _wrong_type,
        {
            "expect_column_values_to_be_in_type_list(price)",
            "expect_column_min_to_be_between(price)",
            "expect_column_max_to_be_between(price)",
        },
    ),
    "null_key": (_null_key, {"expect_column_values_to_not_be_null(store_id)"}),
    "negative_target": (_negative_target, {"expect_column_min_to_be_between(sales)"}),
    "duplicate_keys": (_duplicate_keys, {"expect_compound_columns_to_be_unique(date,store_id,item_id)"}),
    "category_not_allowed": (_unknown_category, {"expect_column_values_to_be_in_set(category)"}),
    "date_not_partition": (_other_date, {"expect_column_values_to_be_between(date)"}),
}


@pytest.fixture
def with_history(publish_history: Callable[..., None]) -> None:
    """Three clean curated days of 12 rows before DAY."""
    publish_history(HISTORY)


def _assert_quarantined(
    settings: Settings,
    spec: DatasetSpec,
    err: DataInvalidError,
    curated_before: dict[str, str],
    hashes: HashTree,
) -> dict[str, object]:
    layout = DatasetLayout.for_spec(settings, spec)
    for name in err.failed_expectations:
        assert name in str(err)
    folder = layout.quarantine_partition(DAY)
    assert (folder / "part.parquet").is_file()
    result = json.loads((folder / "gx_result.json").read_text())
    assert result["success"] is False
    assert not layout.staging_partition(DAY).exists()
    assert hashes(layout.curated) == curated_before
    assert DAY not in layout.curated_days()
    return dict(result)


def _pandas_verdict(settings: Settings, spec: DatasetSpec, day: date, batch: Path) -> list[str]:
    return pandas_checks(spec, pd.read_parquet(batch), expectation_parameters(settings, spec, day))


def test_clean_day_passes_and_is_published(
    settings: Settings,
    retail_spec: DatasetSpec,
    make_day: MakeDay,
    write_drop: WriteDrop,
    with_history: None,
) -> None:
    write_drop(DAY, make_day(DAY))
    outcome = stage_and_validate(settings, retail_spec, DAY)
    result = outcome.validation
    assert result.success and result.failures == () and result.rows == 12
    assert result.parameters["row_count_min"] == 6 and result.parameters["row_count_max"] == 18
    assert result.published is not None
    curated = DatasetLayout.for_spec(settings, retail_spec).curated_file(DAY)
    assert result.published.path == curated and result.published.sha256 == file_sha256(curated)
    assert json.loads(result.result_path.read_text())["success"] is True
    assert result.result_path.parent.parent.name == DAY.isoformat()  # GX run named after the partition
    assert result.data_docs_index is not None and result.data_docs_index.is_file()
    assert outcome.staged.rows == 12
    assert _pandas_verdict(settings, retail_spec, DAY, curated) == []


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_is_quarantined_and_named(
    defect: str,
    settings: Settings,
    retail_spec: DatasetSpec,
    make_day: MakeDay,
    write_drop: WriteDrop,
    hash_tree: HashTree,
    with_history: None,
) -> None:
    corrupt, expected = DEFECTS[defect]
    landing = write_drop(DAY, corrupt(make_day(DAY)))
    curated_before = hash_tree(DatasetLayout.for_spec(settings, retail_spec).curated)
    with pytest.raises(DataInvalidError) as caught:
        stage_and_validate(settings, retail_spec, DAY)
    assert set(caught.value.failed_expectations) == expected
    _assert_quarantined(settings, retail_spec, caught.value, curated_before, hash_tree)
    folder = DatasetLayout.for_spec(settings, retail_spec).quarantine_partition(DAY)
    assert (folder / "landing" / "part.csv").read_bytes() == landing.read_bytes()
    # The vectorised pandas twin reaches the same verdict on the quarantined batch.
    assert set(_pandas_verdict(settings, retail_spec, DAY, folder / "part.parquet")) == expected


def test_empty_file_fails_on_row_count(
    settings: Settings, retail_spec: DatasetSpec, hash_tree: HashTree, with_history: None
) -> None:
    layout = DatasetLayout.for_spec(settings, retail_spec)
    path = Path(layout.landing_pattern(retail_spec.source.path, DAY))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    before = hash_tree(layout.curated)
    with pytest.raises(
        DataInvalidError, match=r"expect_table_row_count_to_be_between \[observed 0\]"
    ) as caught:
        stage_and_validate(settings, retail_spec, DAY)
    # Row count leads; min/max of the (required) numeric columns observe nothing and fail too.
    assert caught.value.failed_expectations[0] == "expect_table_row_count_to_be_between"
    assert all("_min_" in n or "_max_" in n for n in caught.value.failed_expectations[1:])
    _assert_quarantined(settings, retail_spec, caught.value, before, hash_tree)
    batch = layout.quarantine_partition(DAY) / "part.parquet"
    assert sorted(_pandas_verdict(settings, retail_spec, DAY, batch)) == sorted(
        caught.value.failed_expectations
    )


def test_row_count_far_outside_band_fails(
    settings: Settings,
    retail_spec: DatasetSpec,
    make_day: MakeDay,
    write_drop: WriteDrop,
    hash_tree: HashTree,
    with_history: None,
) -> None:
    assert row_count_band(settings, retail_spec, DAY) == (6, 18)
    write_drop(DAY, make_day(DAY, stores=10))  # 40 rows, all valid on their own
    before = hash_tree(DatasetLayout.for_spec(settings, retail_spec).curated)
    with pytest.raises(DataInvalidError, match="observed 40") as caught:
        stage_and_validate(settings, retail_spec, DAY)
    assert caught.value.failed_expectations == ["expect_table_row_count_to_be_between"]
    _assert_quarantined(settings, retail_spec, caught.value, before, hash_tree)
    batch = DatasetLayout.for_spec(settings, retail_spec).quarantine_partition(DAY) / "part.parquet"
    assert _pandas_verdict(settings, retail_spec, DAY, batch) == ["expect_table_row_count_to_be_between"]


def test_row_count_band_without_history_uses_min_rows(settings: Settings, retail_spec: DatasetSpec) -> None:
    assert row_count_band(settings, retail_spec, DAY) == (retail_spec.validation.min_rows, None)


def test_missing_drop_raises_data_missing(settings: Settings, retail_spec: DatasetSpec) -> None:
    with pytest.raises(DataMissingError, match=r"date=2024-03-10/part\.csv"):
        stage_and_validate(settings, retail_spec, DAY)
    with pytest.raises(DataMissingError, match="run ingest first"):
        run(settings, retail_spec, DAY)


def test_reingesting_a_day_gives_byte_identical_curated_output(
    settings: Settings,
    retail_spec: DatasetSpec,
    make_day: MakeDay,
    write_drop: WriteDrop,
    hash_tree: HashTree,
) -> None:
    write_drop(DAY, make_day(DAY))
    first = stage_and_validate(settings, retail_spec, DAY).validation.published
    curated = hash_tree(DatasetLayout.for_spec(settings, retail_spec).curated)
    second = stage_and_validate(settings, retail_spec, DAY).validation.published
    assert first is not None and second is not None and first.sha256 == second.sha256
    assert hash_tree(DatasetLayout.for_spec(settings, retail_spec).curated) == curated


def test_sql_source_validates_and_publishes(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, tmp_path: Path
) -> None:
    import sqlite3

    db = tmp_path / "feed.sqlite"
    with sqlite3.connect(db) as conn:
        make_day(DAY).to_sql("sales", conn, index=False)
    source = {
        "format": "sql",
        "sql_url": f"sqlite:///{db}",
        "sql_query": "SELECT * FROM sales WHERE date = :date",
    }
    spec = parse_spec({**retail_spec.model_dump(mode="json"), "source": source})
    published = stage_and_validate(settings, spec, DAY).validation.published
    assert published is not None and published.rows == 12


def _visitors_spec() -> DatasetSpec:
    return parse_spec(
        {
            "name": "daily_visitors",
            "source": {"format": "csv", "path": "drops/visitors_{date}.csv"},
            "timestamp_column": "date",
            "target": "visitors",
            "columns": {
                "date": {"type": "date"},
                "visitors": {"type": "int", "min": 0},
                "temperature": {"type": "float", "nullable": True, "min": -40, "max": 50},
                "weekday_flag": {"type": "bool"},
            },
            "features": {"numeric": ["temperature", "weekday_flag"]},
            "training": {"train_days": 60, "holdout_days": 7},
        }
    )


def test_single_series_spec_ingests_validates_and_catches_a_defect(
    settings: Settings, write_drop: WriteDrop, hash_tree: HashTree
) -> None:
    spec = _visitors_spec()
    write_drop(
        DAY,
        pd.DataFrame({"date": [DAY], "visitors": [120], "temperature": [None], "weekday_flag": ["true"]}),
        spec,
    )
    result = stage_and_validate(settings, spec, DAY).validation
    assert result.success and result.published is not None and result.rows == 1
    staged = pd.read_parquet(result.published.path)
    assert str(staged["weekday_flag"].dtype) == "bool" and str(staged["visitors"].dtype) == "int64"

    bad_day = DAY + timedelta(days=1)
    write_drop(
        bad_day,
        pd.DataFrame(
            {"date": [bad_day] * 2, "visitors": [90, 95], "temperature": [3.0, 4.0], "weekday_flag": [1, 1]}
        ),
        spec,
    )
    before = hash_tree(DatasetLayout.for_spec(settings, spec).curated)
    with pytest.raises(DataInvalidError, match=r"expect_column_values_to_be_unique\(date\)") as caught:
        stage_and_validate(settings, spec, bad_day)
    assert caught.value.failed_expectations == ["expect_column_values_to_be_unique(date)"]
    batch = DatasetLayout.for_spec(settings, spec).quarantine_partition(bad_day) / "part.parquet"
    assert _pandas_verdict(settings, spec, bad_day, batch) == ["expect_column_values_to_be_unique(date)"]
    assert hash_tree(DatasetLayout.for_spec(settings, spec).curated) == before
    assert (DatasetLayout.for_spec(settings, spec).quarantine_partition(bad_day) / "gx_result.json").is_file()


def test_written_suite_matches_the_spec(retail_spec: DatasetSpec, tmp_path: Path) -> None:
    generated = json.loads(json.dumps(build_suite(retail_spec).to_json_dict()))
    written = json.loads(write_suite(retail_spec, tmp_path / "fresh_gx").read_text())
    assert canonical_suite(written) == canonical_suite(generated)


def test_gx_state_lives_under_the_home(settings: Settings, retail_spec: DatasetSpec) -> None:
    committed = REPO_ROOT / "gx"
    before = {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()}
    assert settings.gx_root == settings.resolved_home / "gx"
    first = ensure_context(settings, retail_spec)
    assert first.root == settings.gx_root and "suite" in first.changed
    # A second sync finds everything in place: nothing is rewritten.
    assert ensure_context(settings, retail_spec).changed == ()
    for folder in ("checkpoints", "validation_definitions", "expectations"):
        assert (settings.gx_root / folder / "retail_demand.json").is_file()
    assert {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()} == before
    assert not list(committed.glob("*/retail_demand.json")), "per-dataset GX state is not committed"


def test_settings_put_gx_under_the_home_unless_told_otherwise(tmp_path: Path) -> None:
    assert Settings(home=tmp_path / "h").gx_root == (tmp_path / "h" / "gx").resolve()
    assert Settings(home=tmp_path / "h", gx_root=tmp_path / "g").gx_root == tmp_path / "g"


def test_ensure_context_updates_a_drifted_suite(settings: Settings, retail_spec: DatasetSpec) -> None:
    ensure_context(settings, retail_spec)
    data = retail_spec.model_dump(mode="json")
    data["columns"]["category"]["allowed"] = [*data["columns"]["category"]["allowed"], "toys"]
    changed = ensure_context(settings, parse_spec(data))
    assert changed.changed == ("suite",)
    stored = json.loads(changed.suite_path.read_text())
    in_set = [
        e
        for e in stored["expectations"]
        if e["kwargs"].get("column") == "category" and "value_set" in e["kwargs"]
    ]
    assert "toys" in in_set[0]["kwargs"]["value_set"]
