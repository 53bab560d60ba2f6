"""Ingest without GX: reading drops, type normalisation, atomic staging, publish and quarantine."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from retrain import ingest
from retrain.errors import DataMissingError
from retrain.ingest import file_sha256, landing_available, publish_batch, quarantine_batch
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec, parse_spec

DAY = date(2024, 3, 1)
MakeDay = Callable[..., pd.DataFrame]
WriteDrop = Callable[..., Path]
HashTree = Callable[[Path], dict[str, str]]

CLEAN_DTYPES = {
    "date": "datetime64[ns]",
    "store_id": "int64",
    "item_id": "int64",
    "store_type": "string",
    "category": "string",
    "price": "float64",
    "promo": "int64",
    "holiday": "int64",
    "temperature": "float64",
    "sales": "int64",
}


def test_clean_drop_is_typed_per_spec(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, write_drop: WriteDrop
) -> None:
    write_drop(DAY, make_day(DAY))
    staged = pd.read_parquet(ingest.run(settings, retail_spec, DAY).path)
    assert {c: str(t) for c, t in staged.dtypes.items()} == CLEAN_DTYPES
    assert len(staged) == 12
    assert (staged["date"] == pd.Timestamp(DAY)).all()


def test_nulls_in_int_column_give_nullable_int(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, write_drop: WriteDrop
) -> None:
    frame = make_day(DAY)
    frame.loc[0, "store_id"] = None
    write_drop(DAY, frame)
    staged = pd.read_parquet(ingest.run(settings, retail_spec, DAY).path)
    assert str(staged["store_id"].dtype) == "Int64"
    assert staged["store_id"].isna().sum() == 1


def test_uncoercible_value_is_kept_not_crashing(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, write_drop: WriteDrop
) -> None:
    frame = make_day(DAY)
    frame["price"] = frame["price"].astype(object)
    frame.loc[3, "price"] = "abc"
    write_drop(DAY, frame)
    result = ingest.run(settings, retail_spec, DAY)
    staged = pd.read_parquet(result.path)
    assert result.uncoerced_columns == ("price",)
    assert staged["price"].dtype == object
    assert staged.loc[3, "price"] == "abc"
    assert str(staged["sales"].dtype) == "int64"  # the other columns are still typed


def test_extra_columns_are_kept_and_reported(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, write_drop: WriteDrop
) -> None:
    frame = make_day(DAY).drop(columns=["promo"])
    frame["note"] = "x"
    write_drop(DAY, frame)
    result = ingest.run(settings, retail_spec, DAY)
    assert result.extra_columns == ("note",)
    assert result.missing_columns == ("promo",)
    assert list(pd.read_parquet(result.path).columns)[-1] == "note"


def test_empty_csv_stages_an_empty_typed_frame(settings: Settings, retail_spec: DatasetSpec) -> None:
    path = Path(DatasetLayout.for_spec(settings, retail_spec).landing_pattern(retail_spec.source.path, DAY))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    result = ingest.run(settings, retail_spec, DAY)
    staged = pd.read_parquet(result.path)
    assert result.rows == 0 and len(staged) == 0
    assert {c: str(t) for c, t in staged.dtypes.items()} == CLEAN_DTYPES


def test_missing_drop_is_retryable_and_names_the_path(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, write_drop: WriteDrop
) -> None:
    assert not landing_available(settings, retail_spec, DAY)
    with pytest.raises(DataMissingError, match=r"expected .*/landing/date=2024-03-01/part\.csv; retry"):
        ingest.run(settings, retail_spec, DAY)
    write_drop(DAY, make_day(DAY))
    assert landing_available(settings, retail_spec, DAY)


def _with_source(spec: DatasetSpec, source: dict[str, str]) -> DatasetSpec:
    return parse_spec({**spec.model_dump(mode="json"), "source": source})


def test_glob_drop_concatenates_files_in_name_order(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay
) -> None:
    spec = _with_source(retail_spec, {"format": "csv", "path": "landing/date={date}/*.csv"})
    folder = DatasetLayout.for_spec(settings, spec).landing / f"date={DAY}"
    folder.mkdir(parents=True)
    whole = make_day(DAY, stores=4)
    whole.iloc[6:].to_csv(folder / "b.csv", index=False)
    whole.iloc[:6].to_csv(folder / "a.csv", index=False)
    result = ingest.run(settings, spec, DAY)
    assert [Path(s).name for s in result.sources] == ["a.csv", "b.csv"]
    assert pd.read_parquet(result.path)["sales"].tolist() == whole["sales"].tolist()


def test_parquet_source_normalises_dates_and_bools(settings: Settings) -> None:
    spec = parse_spec(
        {
            "name": "flags",
            "source": {"format": "parquet", "path": "in/{date}.parquet"},
            "timestamp_column": "day",
            "target": "y",
            "columns": {"day": {"type": "date"}, "y": {"type": "float"}, "open": {"type": "bool"}},
        }
    )
    path = DatasetLayout.for_spec(settings, spec).root / "in" / f"{DAY}.parquet"
    path.parent.mkdir(parents=True)
    raw = pd.DataFrame(
        {"day": [f"{DAY} 13:45:00", f"{DAY}"], "y": [1, 2], "open": ["yes", "No"]}, index=[7, 3]
    )
    raw.to_parquet(path)  # a stored non-range index must not misalign the typed columns
    staged = pd.read_parquet(ingest.run(settings, spec, DAY).path)
    assert staged["day"].tolist() == [pd.Timestamp(DAY)] * 2  # a date column holds whole days
    assert str(staged["y"].dtype) == "float64"
    assert staged["open"].tolist() == [True, False] and str(staged["open"].dtype) == "bool"


def test_sql_source_reads_only_the_day(
    settings: Settings, retail_spec: DatasetSpec, tmp_path: Path, make_day: MakeDay
) -> None:
    db = tmp_path / "feed.sqlite"
    with sqlite3.connect(db) as conn:
        for day in (DAY, date(2024, 3, 2)):
            make_day(day).to_sql("sales", conn, if_exists="append", index=False)
    query = "SELECT * FROM sales WHERE date = :date"
    spec = _with_source(retail_spec, {"format": "sql", "sql_url": f"sqlite:///{db}", "sql_query": query})
    assert landing_available(settings, spec, DAY)
    assert not landing_available(settings, spec, date(2024, 3, 9))
    result = ingest.run(settings, spec, DAY)
    staged = pd.read_parquet(result.path)
    assert result.rows == 12 and (staged["date"] == pd.Timestamp(DAY)).all()
    assert {c: str(t) for c, t in staged.dtypes.items()} == CLEAN_DTYPES
    with pytest.raises(DataMissingError, match="no rows for 2024-03-09"):
        ingest.run(settings, spec, date(2024, 3, 9))


def test_staging_and_publish_are_atomic_and_deterministic(
    settings: Settings, retail_spec: DatasetSpec, make_day: MakeDay, write_drop: WriteDrop
) -> None:
    write_drop(DAY, make_day(DAY))
    first_bytes = ingest.run(settings, retail_spec, DAY).path.read_bytes()
    assert ingest.run(settings, retail_spec, DAY).path.read_bytes() == first_bytes
    published = publish_batch(settings, retail_spec, DAY)
    layout = DatasetLayout.for_spec(settings, retail_spec)
    assert published.path == layout.curated_file(DAY)
    assert published.path.read_bytes() == first_bytes
    assert published.sha256 == file_sha256(published.path) and published.rows == 12
    assert not layout.staging_partition(DAY).exists()
    assert layout.curated_days() == [DAY]
    # Publishing over an existing partition replaces its file, leaving no temp folders behind.
    ingest.run(settings, retail_spec, DAY)
    assert publish_batch(settings, retail_spec, DAY).sha256 == published.sha256
    assert sorted(p.name for p in layout.curated.iterdir()) == [f"date={DAY}"]
    assert sorted(p.name for p in layout.curated_partition(DAY).iterdir()) == ["part.parquet"]


def test_quarantine_moves_batch_copies_raw_and_never_deletes(
    settings: Settings,
    retail_spec: DatasetSpec,
    make_day: MakeDay,
    write_drop: WriteDrop,
    hash_tree: HashTree,
    publish_history: Callable[..., None],
) -> None:
    layout = DatasetLayout.for_spec(settings, retail_spec)
    publish_history([date(2024, 2, 28)])
    landing = write_drop(DAY, make_day(DAY))
    curated_before = hash_tree(layout.curated)
    for attempt in (1, 2):
        staged = ingest.run(settings, retail_spec, DAY).path
        staged_bytes = staged.read_bytes()
        target = quarantine_batch(settings, retail_spec, DAY, {"success": False, "attempt": attempt})
        assert not staged.exists()
        assert (target / "part.parquet").read_bytes() == staged_bytes
        assert (target / "landing" / "part.csv").read_bytes() == landing.read_bytes()
        assert json.loads((target / "gx_result.json").read_text())["attempt"] == attempt
    earlier = target / "history" / "1"
    assert json.loads((earlier / "gx_result.json").read_text())["attempt"] == 1
    assert (earlier / "part.parquet").is_file() and (earlier / "landing" / "part.csv").is_file()
    assert landing.is_file()
    assert hash_tree(layout.curated) == curated_before and len(curated_before) == 1


def test_light_modules_do_not_import_great_expectations() -> None:
    code = (
        "import sys, retrain.ingest, retrain.validate, retrain.expectations, retrain.validate_pandas;"
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
