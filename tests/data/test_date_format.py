"""Date formats per column: strftime patterns parse, a wrong one gives a field-named error at validation."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from retrain import coerce, ingest, validate
from retrain.errors import DataInvalidError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import parse_spec
from tests.data.conftest import STOCKS_CSV, write_landing_csv

DAY = date(2000, 1, 1)


def _spec(fmt: str | None) -> Any:
    date_column: dict[str, Any] = {"type": "date"} | ({"format": fmt} if fmt else {})
    return parse_spec(
        {
            "name": "stocks_day",
            "timestamp_column": "date",
            "entity_keys": ["symbol"],
            "target": "price",
            "columns": {
                "symbol": {"type": "string"},
                "date": date_column,
                "price": {"type": "float", "min": 0},
            },
        }
    )


def _stocks_first_day() -> pd.DataFrame:
    frame = pd.read_csv(STOCKS_CSV, dtype=str)
    return frame[frame["date"] == "Jan 1 2000"].reset_index(drop=True)


def test_vega_stocks_dates_parse_with_their_format() -> None:
    days = coerce.parse_days(pd.Series(["Jan 1 2000", "Feb 1 2000", "Dec 1 2009"]), "%b %d %Y")
    assert days is not None
    assert [d.date() for d in days] == [date(2000, 1, 1), date(2000, 2, 1), date(2009, 12, 1)]


def test_a_formatted_day_validates_and_publishes(settings: Settings) -> None:
    spec = _spec("%b %d %Y")
    write_landing_csv(settings, spec, DAY, _stocks_first_day())
    ingest.run(settings, spec, DAY)
    result = validate.run(settings, spec, DAY)
    assert result.success and result.rows == 4  # the symbols quoted on that day
    curated = pd.read_parquet(DatasetLayout.for_spec(settings, spec).curated_file(DAY))
    assert curated["date"].dt.date.unique().tolist() == [DAY]


@pytest.mark.parametrize(
    ("fmt", "shown"), [("%Y-%m-%d", "'%Y-%m-%d'"), (None, "ISO 8601 (the default, e.g. '2024-03-01')")]
)
def test_a_wrong_format_names_the_field_and_the_fix(settings: Settings, fmt: str | None, shown: str) -> None:
    spec = _spec(fmt)
    write_landing_csv(settings, spec, DAY, _stocks_first_day())
    ingest.run(settings, spec, DAY)
    with pytest.raises(DataInvalidError) as caught:
        validate.run(settings, spec, DAY)
    message = str(caught.value)
    expected = (
        f"column date: 4 value(s) do not match format {shown} (e.g. 'Jan 1 2000'); set columns.date.format"
    )
    assert expected in message, message
    assert "not supported between" not in message  # no internal GX comparison error
    assert (DatasetLayout.for_spec(settings, spec).quarantine_partition(DAY) / "gx_result.json").is_file()
