"""docs/configuration.md and docs/deployment.md against the code they describe.

Every setting, spec field, compose service and stack variable must be documented, documented defaults
must be the code's defaults, and the example spec must load: docs that drift from the code fail here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from retrain.settings import REPO_ROOT
from retrain.spec import (
    ColumnSpec,
    DatasetSpec,
    DriftSpec,
    FeatureSpec,
    GateSpec,
    SourceSpec,
    TrainingSpec,
    ValidationSpec,
    parse_spec,
)
from serving.settings import ServingSettings
from tests.deployment.helpers import ENV_EXAMPLE, read_env_file

CONFIGURATION = REPO_ROOT / "docs" / "configuration.md"
DEPLOYMENT = REPO_ROOT / "docs" / "deployment.md"


def _table_rows(path: Path) -> dict[str, list[str]]:
    """First-cell code name -> remaining cells, for every markdown table row of a page."""
    rows: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows.setdefault(name, cells[1:])
    return rows


def _all_table_rows(path: Path) -> dict[str, list[list[str]]]:
    """Like _table_rows, keeping every row of a name (spec sections may share a field name, e.g. min_rows)."""
    rows: dict[str, list[list[str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows.setdefault(name, []).append(cells[1:])
    return rows


def _documented_default(cell: str) -> Any:
    match = re.match(r"`([^`]*)`", cell)
    if match is None:
        return None
    text = match.group(1)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def test_every_setting_is_documented_with_its_default() -> None:
    rows = _table_rows(CONFIGURATION)
    for name, field in ServingSettings.model_fields.items():
        variable = (
            "PROMETHEUS_MULTIPROC_DIR" if name == "prometheus_multiproc_dir" else f"RETRAIN_{name.upper()}"
        )
        assert variable in rows, f"{variable} is missing from docs/configuration.md"
        default = field.get_default(call_default_factory=True)
        cell = rows[variable][0]
        if default is None:
            assert cell.startswith("unset"), f"{variable}: documented default {cell!r}, code has none"
        elif isinstance(default, bool | int | float | str | list):
            assert _documented_default(cell) == default, f"{variable}: documented {cell!r}, code {default!r}"


SPEC_SECTIONS: list[type[BaseModel]] = [
    DatasetSpec,
    ColumnSpec,
    SourceSpec,
    FeatureSpec,
    TrainingSpec,
    GateSpec,
    ValidationSpec,
    DriftSpec,
]


@pytest.mark.parametrize("model", SPEC_SECTIONS, ids=lambda m: m.__name__)
def test_every_spec_field_is_documented_with_its_default(model: type[BaseModel]) -> None:
    all_rows = _all_table_rows(CONFIGURATION)
    for name, field in model.model_fields.items():
        assert name in all_rows, f"{model.__name__}.{name} is missing from docs/configuration.md"
        cells = [row[0] for row in all_rows[name]]
        if field.is_required():
            assert "required" in cells, f"{model.__name__}.{name} is required"
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, bool | int | float | str) and not isinstance(default, BaseModel):
            documented = [d for d in map(_documented_default, cells) if d is not None]
            if documented and name not in {"path"}:
                assert default in documented, f"{model.__name__}.{name}: documented {cells!r}"


def test_the_example_spec_in_the_docs_loads() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    specs = [yaml.safe_load(b) for b in blocks if "timestamp_column" in b]
    assert specs, "docs/configuration.md has no example spec"
    for data in specs:
        spec = parse_spec(data, "docs/configuration.md")
        assert spec.entity_keys == [], "the example is the single-series case"
        assert set(spec.features.request_time) <= set(spec.feature_columns)


def test_deployment_doc_covers_every_service_and_variable() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    rows = _table_rows(DEPLOYMENT)
    for service in compose["services"]:
        assert service in rows, f"service {service} missing from the services table of docs/deployment.md"
    documented = set(rows) | set(_table_rows(CONFIGURATION))
    for variable in read_env_file(ENV_EXAMPLE, commented=True):
        assert variable in documented, f"{variable} (.env.example) is documented in neither page"
