"""The committed Prometheus config and rules running live: every scrape job up, pushed job labels kept,
rules evaluating without errors, and a pushed drift share travelling Prometheus -> Alertmanager -> email."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.utils.prom import http_json, prom_query, target_health, wait_for

if TYPE_CHECKING:
    from tests.monitoring.conftest import LiveStack

pytestmark = pytest.mark.slow


def test_every_committed_scrape_job_is_up(live_stack: LiveStack) -> None:
    health = target_health(live_stack.prometheus)
    assert set(health) == {"prometheus", "serving", "pushgateway", "alertmanager"}
    assert all(states == ["up"] for states in health.values()), health


def test_pushed_metrics_keep_their_job_label(live_stack: LiveStack) -> None:
    # honor_labels on the pushgateway job: rules and dashboards see job="retrain_pipeline", not exported_job.
    rows = prom_query(live_stack.prometheus, 'retrain_rows_ingested{job="retrain_pipeline"}')
    assert [(r["metric"]["dataset"], float(r["value"][1])) for r in rows] == [(live_stack.dataset, 4800.0)]
    share = prom_query(live_stack.prometheus, 'model_drift_share{job="retrain_drift"}')
    assert [float(r["value"][1]) for r in share] == [live_stack.drift_share]


def test_rules_load_and_evaluate_without_errors(live_stack: LiveStack) -> None:
    def evaluated() -> list[dict[str, object]] | None:
        groups = http_json(f"{live_stack.prometheus.url}/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        done = all(not str(r["lastEvaluation"]).startswith("0001") for r in rules)
        return rules if rules and done else None

    rules = wait_for(evaluated, 10, "every rule evaluated once")
    assert {r["name"] for r in rules} >= {"ModelServingDown", "DataDriftDetected", "RetrainingStale"}
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_pushed_drift_fires_an_alert_that_arrives_by_email(live_stack: LiveStack) -> None:
    assert live_stack.drift_share > 0.3 > live_stack.realized_wape  # what conftest pushed

    expected = {
        "DataDriftDetected": "firing",
        "RealizedPerformanceDegraded": "inactive",
        "RetrainingStale": "inactive",  # the pipeline pushed a success just now
        "ModelServingDown": "inactive",
    }

    seen: dict[str, str] = {}

    def states() -> bool:
        # Groups evaluate independently: wait for one snapshot where every group has seen the pushed data.
        groups = http_json(f"{live_stack.prometheus.url}/api/v1/rules")["data"]["groups"]
        seen.update({r["name"]: r["state"] for g in groups for r in g["rules"] if r["name"] in expected})
        return seen == expected

    try:
        wait_for(states, 15, "alert states in Prometheus")
    except TimeoutError:
        pytest.fail(f"alert states {seen}, expected {expected}")
    subject = f"[retrain] FIRING (1): DataDriftDetected on {live_stack.dataset}"
    wait_for(lambda: subject in live_stack.smtp.subjects(), 20, f"email {subject!r}")
    body = next(m for m in live_stack.smtp.messages if m["Subject"] == subject).get_body(("html", "plain"))
    assert body is not None and "runbook_url" in body.get_content()
