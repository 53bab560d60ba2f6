"""Grafana provisioning and dashboards, and every panel's PromQL run against a live Prometheus.

No Grafana binary is available in the test environment (no Debian package), so Grafana itself is not
started: the provisioning files and dashboard JSON are checked structurally, and every query Grafana
would send is executed against the live Prometheus of the `live_stack` fixture, which scrapes a
serving metrics endpoint and a Pushgateway holding the pipeline and drift families.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from retrain.settings import REPO_ROOT
from tests.utils.prom import prom_query

if TYPE_CHECKING:
    from tests.monitoring.conftest import LiveStack

GRAFANA_DIR = REPO_ROOT / "monitoring" / "grafana"
DASHBOARDS = {p.stem: p for p in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}
# Grafana's interval variables, as it would expand them for a 15 s scrape interval.
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
REQUIRED_METRICS = {
    "serving": {
        "model_predictions_total",
        "model_prediction_latency_seconds_bucket",
        "model_info",
        "model_reloads_total",
    },
    "model_quality": {
        "model_drift_share",
        "model_feature_drift_score",
        "model_realized_rmse",
        "model_realized_wape",
        "model_prediction_value_bucket",
    },
    "pipeline": {
        "retrain_pipeline_last_success_timestamp_seconds",
        "retrain_pipeline_task_duration_seconds",
        "retrain_rows_ingested",
        "retrain_validation_failures_total",
        "retrain_last_gate_outcome",
    },
}


def provisioned_datasource_uid() -> str:
    """The uid of the single provisioned Prometheus datasource."""
    files = sorted((GRAFANA_DIR / "provisioning" / "datasources").glob("*.yml"))
    datasources = [d for f in files for d in yaml.safe_load(f.read_text())["datasources"]]
    assert len(datasources) == 1 and datasources[0]["type"] == "prometheus"
    uid: str = datasources[0]["uid"]
    return uid


def load(name: str) -> dict[str, Any]:
    """A dashboard's JSON model."""
    board: dict[str, Any] = json.loads(DASHBOARDS[name].read_text())
    return board


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def query_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels that query a datasource (rows do not)."""
    return [p for p in all_panels(board["panels"]) if p["type"] != "row"]


def expand(expr: str, board: dict[str, Any]) -> str:
    """Substitute dashboard variables (their 'All' value) and Grafana's interval variables."""
    values = dict(BUILTIN_VARIABLES)
    values.update({v["name"]: v.get("allValue") or ".*" for v in board["templating"]["list"]})

    def value(match: re.Match[str]) -> str:
        return values[match.group(1) or match.group(2)]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def variable_query(variable: dict[str, Any]) -> str:
    """The PromQL selector behind a label_values(metric, label) variable."""
    query = variable["query"]
    text = query["query"] if isinstance(query, dict) else query
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text.strip())
    assert match, f"unsupported variable query {text!r}"
    return match.group(1)


def test_all_three_dashboards_exist() -> None:
    assert set(DASHBOARDS) == {"serving", "model_quality", "pipeline"}


def test_dashboard_provider_loads_the_mounted_dashboards_folder() -> None:
    (path,) = (GRAFANA_DIR / "provisioning" / "dashboards").glob("*.yml")
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_uids_are_unique() -> None:
    uids = [load(name)["uid"] for name in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_is_valid_with_unique_ids_and_the_provisioned_datasource(name: str) -> None:
    uid = provisioned_datasource_uid()
    board = load(name)
    panels = list(all_panels(board["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    assert query_panels(board), name
    for panel in query_panels(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip(), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid, variable["name"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_shows_its_required_metrics(name: str) -> None:
    exprs = " ".join(t["expr"] for p in query_panels(load(name)) for t in p["targets"])
    used = set(re.findall(r"[a-z_:][a-z0-9_:]*", exprs))
    assert REQUIRED_METRICS[name] <= used, REQUIRED_METRICS[name] - used


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_query_returns_data_from_live_prometheus(name: str, live_stack: LiveStack) -> None:
    board = load(name)
    failures = []
    queries = 0
    for panel in query_panels(board):
        for target in panel["targets"]:
            promql = expand(target["expr"], board)
            result = prom_query(live_stack.prometheus, promql)
            queries += 1
            values = [float(r["value"][1]) for r in result]
            if not any(math.isfinite(v) for v in values):
                failures.append(f"{panel['title']!r}: {promql} -> {values or 'no data'}")
    for variable in board["templating"]["list"]:
        result = prom_query(live_stack.prometheus, variable_query(variable))
        queries += 1
        if not any(r["metric"].get("dataset") == live_stack.dataset for r in result):
            failures.append(f"variable {variable['name']}: no {live_stack.dataset} value")
    assert queries >= len(query_panels(board))
    assert not failures, "\n".join(failures)


def test_expand_substitutes_dashboard_and_interval_variables() -> None:
    board = {"templating": {"list": [{"name": "dataset", "allValue": ".*"}]}}
    expr = 'rate(m{dataset=~"$dataset"}[$__rate_interval]) + on() x{d=~"${dataset:regex}"}'
    assert expand(expr, board) == 'rate(m{dataset=~".*"}[1m]) + on() x{d=~".*"}'
