"""History import with real public data: split into landing drops, refuse monthly data, ingest the range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from retrain.errors import CadenceError, DataInvalidError
from retrain.history_import import import_history
from retrain.layout import DatasetLayout
from retrain.onboard import ingest_range
from retrain.settings import Settings
from retrain.spec import DatasetSpec, parse_spec
from retrain.spec_draft import draft_spec
from tests.data.conftest import SEATTLE_CSV, STOCKS_CSV, births_file, seattle_days
from tests.utils.files import tree_digest

STOCKS: dict[str, Any] = {
    "name": "stocks",
    "timestamp_column": "date",
    "entity_keys": ["symbol"],
    "target": "price",
    "columns": {
        "symbol": {"type": "string"},
        "date": {"type": "date", "format": "%b %d %Y"},
        "price": {"type": "float", "min": 0},
    },
}


def test_births_import_lands_one_drop_per_day_and_ingests_cleanly(
    settings: Settings, births_spec: DatasetSpec, tmp_path: Path
) -> None:
    file = births_file(tmp_path, years=(1969, 1969), states=3)
    imported = import_history(settings, births_spec, file)
    layout = DatasetLayout.for_spec(settings, births_spec)
    assert (imported.start.isoformat(), imported.end.isoformat()) == ("1969-01-01", "1969-12-31")
    assert imported.days_written == 365 and imported.rows == 3 * 365
    first = pd.read_csv(layout.landing_pattern(births_spec.source.path, imported.start))
    assert first["date"].tolist() == ["1969-01-01T00:00:00Z"] * 3  # values land as the file has them

    result = ingest_range(settings, births_spec, imported.start, imported.end)
    assert len(result.published) == 365 and not result.quarantined and not result.missing
    assert result.rows == imported.rows


def test_reimport_is_idempotent(settings: Settings, births_spec: DatasetSpec, tmp_path: Path) -> None:
    file = births_file(tmp_path, years=(1970, 1970), states=2)
    import_history(settings, births_spec, file)
    landing = DatasetLayout.for_spec(settings, births_spec).landing
    before = tree_digest(landing)
    again = import_history(settings, births_spec, file)
    assert again.days_written == 0 and again.days_unchanged == 365
    assert tree_digest(landing) == before
    assert not list(landing.rglob("*.tmp"))


def test_parquet_landing_layout(settings: Settings, seattle_spec: DatasetSpec, tmp_path: Path) -> None:
    data = seattle_spec.model_dump(mode="json")
    data["source"] = {"format": "parquet", "path": "landing/{date}.parquet"}
    spec = parse_spec(data)
    file = tmp_path / "weather.parquet"
    seattle_days("2013-05-01", "2013-06-30").to_parquet(file)
    imported = import_history(settings, spec, file)
    assert (DatasetLayout.for_spec(settings, spec).landing / "2013-05-01.parquet").is_file()
    result = ingest_range(settings, spec, imported.start, imported.end)
    assert len(result.published) == 61 and not result.quarantined


def test_monthly_file_is_refused_and_nothing_is_written(settings: Settings, tmp_path: Path) -> None:
    spec = parse_spec(STOCKS)
    with pytest.raises(
        CadenceError, match=r"stocks.csv \(date\) is monthly, not daily.*retrain retrains daily"
    ):
        import_history(settings, spec, STOCKS_CSV)
    assert not DatasetLayout.for_spec(settings, spec).root.exists()


def test_wrong_date_format_is_named_before_anything_is_written(settings: Settings) -> None:
    data = {**STOCKS, "columns": {**STOCKS["columns"], "date": {"type": "date", "format": "%Y-%m-%d"}}}
    spec = parse_spec(data)
    with pytest.raises(
        DataInvalidError,
        match=r"column date: 560 value\(s\) do not match format '%Y-%m-%d' \(e.g. 'Jan 1 2000'\); set columns.date.format",
    ):
        import_history(settings, spec, STOCKS_CSV)
    assert not DatasetLayout.for_spec(settings, spec).root.exists()


@pytest.mark.parametrize("which", ["seattle", "births"])
def test_a_drafted_spec_loads_imports_and_ingests_cleanly(
    settings: Settings, tmp_path: Path, which: str
) -> None:
    if which == "seattle":
        file, text = SEATTLE_CSV, draft_spec(SEATTLE_CSV, "temp_max", "date", [], name="drafted_weather")
    else:
        file = births_file(tmp_path, years=(1969, 1969), states=4)
        text = draft_spec(file, "births", "date", ["state"], name="drafted_births")
    spec = parse_spec(yaml.safe_load(text))
    imported = import_history(settings, spec, file)
    result = ingest_range(settings, spec, imported.start, imported.end)
    assert not result.quarantined and not result.missing
    assert len(result.published) == imported.days
