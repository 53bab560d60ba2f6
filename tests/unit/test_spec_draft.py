"""spec init: the drafted YAML loads, describes the file, and says what to edit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrain.errors import CadenceError, DataInvalidError, SpecError
from retrain.spec import ColumnType, parse_spec
from retrain.spec_draft import detect_date_format, draft_spec

VEGA = Path(__import__("vega_datasets").__file__).parent / "_data"


def test_seattle_draft_loads_with_types_ranges_and_allowed_values() -> None:
    text = draft_spec(VEGA / "seattle-weather.csv", "temp_max", "date", [])
    spec = parse_spec(yaml.safe_load(text))
    assert spec.name == "seattle_weather" and spec.entity_keys == [] and spec.target == "temp_max"
    assert spec.columns["date"].type is ColumnType.DATE and spec.columns["date"].format is None
    assert spec.columns["precipitation"].min == 0  # never negative in the file: stays non-negative
    temp = spec.columns["temp_max"]
    assert temp.type is ColumnType.FLOAT and temp.min is not None and temp.max is not None
    assert temp.min < -1.6 and temp.max > 35.6  # the observed range, widened
    assert spec.columns["weather"].allowed == ["drizzle", "fog", "rain", "snow", "sun"]
    assert spec.feature_columns == []  # nothing guessed that could leak the day's readings
    assert "# " in text and "edit `features`" in text


def test_entity_keys_become_categorical_features_without_ranges(tmp_path: Path) -> None:
    file = tmp_path / "sales.csv"
    days = pd.date_range("2024-01-01", periods=30).strftime("%d/%m/%Y")
    pd.DataFrame(
        {"day": list(days) * 2, "shop": ["a"] * 30 + ["b"] * 30, "units": range(60), "note": [None, "x"] * 30}
    ).to_csv(file, index=False)
    spec = parse_spec(yaml.safe_load(draft_spec(file, "units", "day", ["shop"], name="Shop Sales")))
    assert spec.name == "shop_sales"
    assert spec.columns["day"].format == "%d/%m/%Y"
    assert spec.columns["shop"].type is ColumnType.STRING and spec.columns["shop"].allowed is None
    assert spec.columns["units"].type is ColumnType.INT and spec.columns["units"].min == 0
    assert spec.columns["note"].nullable
    assert spec.features.categorical == ["shop"]


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["2024-03-01", "2024-03-02"], None),
        (["1969-01-01T00:00:00Z"], None),
        (["Jan 1 2000", "Feb 1 2000"], "%b %d %Y"),
        (["31/01/2024", "01/02/2024"], "%d/%m/%Y"),
        (["01/31/2024"], "%m/%d/%Y"),
    ],
)
def test_date_formats_are_detected(values: list[str], fmt: str | None) -> None:
    assert detect_date_format(pd.Series(values)) == fmt


def test_undetectable_dates_and_bad_arguments_are_named() -> None:
    with pytest.raises(DataInvalidError, match="could not read the dates"):
        detect_date_format(pd.Series(["someday", "later"]))
    with pytest.raises(SpecError, match=r"--target 'tmax' is not a column of seattle-weather.csv"):
        draft_spec(VEGA / "seattle-weather.csv", "tmax", "date", [])
    with pytest.raises(SpecError, match=r"--target 'weather' is not numeric"):
        draft_spec(VEGA / "seattle-weather.csv", "weather", "date", [])


def test_monthly_file_is_refused_with_the_cadence_found() -> None:
    with pytest.raises(CadenceError, match=r"monthly, not daily"):
        draft_spec(VEGA / "stocks.csv", "price", "date", ["symbol"])
