"""Dataset spec: the default loads, bad specs fail with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.errors import SpecError
from retrain.settings import REPO_ROOT
from retrain.spec import ColumnType, load_spec, parse_spec

DEFAULT_SPEC = REPO_ROOT / "config" / "retail_demand.yaml"


def _default_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    assert isinstance(data, dict)
    return data


def test_default_spec_loads() -> None:
    spec = load_spec(DEFAULT_SPEC)
    assert spec.name == "retail_demand"
    assert spec.entity_keys == ["store_id", "item_id"]
    assert spec.columns["date"].type is ColumnType.DATE
    assert set(spec.features.request_time) <= set(spec.feature_columns)
    assert spec.model_name == "retail_demand"


def test_single_series_spec_without_keys() -> None:
    spec = parse_spec(
        {
            "name": "web_visits",
            "timestamp_column": "day",
            "target": "visits",
            "columns": {
                "day": {"type": "date"},
                "visits": {"type": "int", "min": 0},
                "temp": {"type": "float"},
            },
            "features": {"numeric": ["temp"], "request_time": ["temp"]},
        }
    )
    assert spec.entity_keys == []
    assert spec.model_name == "web_visits"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("target"), "target"),
        (lambda d: d.__setitem__("target", "revenue"), "target"),
        (lambda d: d["features"].__setitem__("numeric", ["price", "nope"]), "features.numeric"),
        (lambda d: d["features"].__setitem__("request_time", ["store_id"]), "features.request_time"),
        (lambda d: d["columns"]["price"].__setitem__("type", "decimal"), "columns.price.type"),
        (lambda d: d["columns"]["price"].__setitem__("min", 20000.0), "columns.price"),
        (lambda d: d["training"].__setitem__("holdout_days", 500), "training"),
        (lambda d: d["training"].__setitem__("train_days", "many"), "training.train_days"),
        (lambda d: d.__setitem__("name", "Retail Demand"), "name"),
        (lambda d: d.__setitem__("colour", "blue"), "colour"),
        (lambda d: d["source"].__setitem__("path", "landing/today.csv"), "source"),
        (lambda d: d["source"].__setitem__("format", "sql"), "source"),
        (lambda d: d["columns"]["date"].__setitem__("type", "string"), "timestamp_column"),
    ],
)
def test_bad_spec_names_the_field(mutate: Any, field: str) -> None:
    data = _default_data()
    mutate(data)
    with pytest.raises(SpecError) as excinfo:
        parse_spec(data, "bad.yaml")
    assert field in str(excinfo.value)
    assert "bad.yaml" in str(excinfo.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(bad)
