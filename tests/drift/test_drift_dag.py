"""retrain_drift through Airflow's dag.test() on simulated data, with a real MLflow store (the production
model retrain_daily promoted), a real Pushgateway and a real SMTP server.

Days (see tests/utils/drift_data.py): the model is trained up to 2026-02-26; prices rise 30 % on
2026-03-12. Each check compares the 7 days ending on its day (drift.current_days), so the window of
2026-03-14 holds three shifted days. Temperature moves with the season, which is why the spec gives it
a looser threshold.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from retrain.local.orchestrate import DagRunOutcome
from retrain.settings import REPO_ROOT, Settings
from tests.utils.drift_data import (
    TrainedWorld,
    pushed_samples,
    pushed_value,
    served_rows,
    write_prediction_log,
)
from tests.utils.prom import LocalServer
from tests.utils.smtp import SmtpServer, attachment_names, html_body

pytestmark = pytest.mark.slow

NO_DRIFT_DAY = date(2026, 3, 5)
INSIDE_TRAINING_DAY = date(2026, 2, 20)  # its whole window was training data of the production model
SHIFT_CHECK_DAY = date(2026, 3, 14)
TRIGGER_DAY = date(2026, 3, 13)
UNCHANGED_INPUTS = {"promo", "holiday", "temperature", "store_type", "category"}


@dataclass(frozen=True)
class DayRun:
    """A drift DAG run and the emails the SMTP server received during it."""

    outcome: DagRunOutcome
    messages: list[EmailMessage]

    @property
    def drift(self) -> dict[str, Any]:
        """The drift task's XCom."""
        result: dict[str, Any] = self.outcome.xcoms["drift"]
        return result

    def check(self, kind: str) -> dict[str, Any]:
        """One check's summary (input or predictions)."""
        return next(c for c in self.drift["checks"] if c["kind"] == kind)


def run_drift_day(day: date, smtp: SmtpServer, **conf: Any) -> DayRun:
    from retrain.local.orchestrate import run_dag

    smtp.clear()
    outcome = run_dag("retrain_drift", day, {"predictions_wait_minutes": 0, **conf})
    return DayRun(outcome, list(smtp.messages))


def scores(check: dict[str, Any]) -> dict[str, float]:
    return {f["column"]: f["score"] for f in check["features"]}


@pytest.fixture(scope="module")
def quiet_day(drift_env: Settings, smtp: SmtpServer) -> DayRun:
    """A day before the price shift, nobody asked forecasts for it."""
    return run_drift_day(NO_DRIFT_DAY, smtp)


@pytest.fixture(scope="module")
def shift_day(drift_env: Settings, trained_world: TrainedWorld, smtp: SmtpServer) -> DayRun:
    """Three days into the price shift, with a prediction log written as serving writes it."""
    world = trained_world.world
    write_prediction_log(world, SHIFT_CHECK_DAY, served_rows(world, SHIFT_CHECK_DAY), trained_world.version)
    return run_drift_day(SHIFT_CHECK_DAY, smtp)


def test_no_drift_day_sends_no_email(quiet_day: DayRun, trained_world: TrainedWorld) -> None:
    outcome = quiet_day.outcome
    assert outcome.succeeded, outcome.task_states
    assert outcome.task_states["wait_for_curated"] == "success"
    # No prediction log: the sensor gives up after the (zero) wait and the run checks input drift only.
    assert outcome.xcoms["wait_for_predictions"]["found"] is False
    assert outcome.task_states["realized"] == "skipped"
    assert outcome.task_states["signal_retrain"] == "skipped"
    assert [c["kind"] for c in quiet_day.drift["checks"]] == ["input"]
    check = quiet_day.check("input")
    assert check["model_version"] == trained_world.version
    assert (check["window_start"], check["window_end"]) == ("2026-02-27", "2026-03-05")
    assert check["rows"] == 7000 and check["verdict"] == "no drift"
    assert check["target"]["column"] == "sales" and check["target"]["drifted"] is False
    assert check["drifted_features"] == []
    assert check["alert"] is False
    assert quiet_day.drift["alert"] == {**quiet_day.drift["alert"], "alert": False, "delivered_to": None}
    assert quiet_day.messages == []
    report = Path(check["report_path"])
    assert report.parent == trained_world.world.layout.reports_partition("drift", NO_DRIFT_DAY)
    assert report.is_file() and 'id="retrain-banner"' in report.read_text(encoding="utf-8")
    assert json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))["share"] == check["share"]


def test_price_shift_is_found_on_price_only(quiet_day: DayRun, shift_day: DayRun) -> None:
    outcome = shift_day.outcome
    assert outcome.succeeded, outcome.task_states
    assert outcome.xcoms["wait_for_predictions"]["found"] is True
    check = shift_day.check("input")
    assert check["drifted_features"] == ["price"]
    assert check["key_drift"] == ["price"] and check["alert"] is True
    before, after = scores(quiet_day.check("input")), scores(check)
    assert after["price"] > 10 * before["price"]
    for column in UNCHANGED_INPUTS:
        assert after[column] < 2 * before[column] + 0.02, (column, before[column], after[column])
    assert check["sampling"]["current_rows"] == 7000 and check["logged_to_mlflow"] is True
    assert check["mlflow_report"].endswith("drift/date=2026-03-14/input_drift.html")


def test_prediction_log_drift_covers_served_inputs_and_predictions(shift_day: DayRun) -> None:
    check = shift_day.check("predictions")
    assert {f["column"] for f in check["features"]} == {
        "price",
        "promo",
        "holiday",
        "temperature",
        "prediction",
    }
    # The served price drifts; the predictions move with it (dearer items sell less), on this day
    # by less than the spec's threshold.
    assert check["drifted_features"] == ["price"]
    assert 0 < scores(check)["prediction"] < scores(check)["price"]
    assert check["rows"] == 1000 and check["window_start"] == "2026-03-08"
    assert "holdout rows of v" in check["reference"]
    assert Path(check["report_path"]).name == "predictions_drift.html"


def test_drift_email_arrives_with_summary_and_reports(shift_day: DayRun) -> None:
    assert len(shift_day.messages) == 1, [m["Subject"] for m in shift_day.messages]
    message = shift_day.messages[0]
    subject = str(message["Subject"])
    assert subject == shift_day.drift["alert"]["subject"]
    assert subject.startswith("[retrain] drift detected in retail_demand on 2026-03-14:")
    assert "1 of 6 features" in subject and "prediction log: 1 of 5 columns" in subject
    body = html_body(message)
    assert "key feature price score" in body
    price_row = re.search(r"<tr><td>price \(key\)</td>.*?</tr>", body)
    assert price_row is not None and "<b>drift</b>" in price_row.group(0)
    assert re.search(r"<tr><td>category</td>.*?<td>ok</td></tr>", body)
    assert "2026-03-08..2026-03-14 (7 days with data)" in body and "7,000 vs 56,000" in body
    reports = [Path(shift_day.check(kind)["report_path"]) for kind in ("input", "predictions")]
    for report in reports:
        assert str(report) in body and f"{report.parent.name}/{report.name}" in body  # path and MLflow copy
    # An Evidently report is ~4 MB (~1.2 MB gzipped): named, not attached; attached ones are gzipped.
    assert all(name.endswith(".html.gz") for name in attachment_names(message))
    raw = sum(report.stat().st_size for report in reports)
    assert len(message.as_bytes()) < 2.5 * 1024 * 1024 and len(message.as_bytes()) < raw / 3


def test_drift_report_is_logged_to_the_production_run(shift_day: DayRun, drift_env: Settings) -> None:
    from mlflow import MlflowClient

    from retrain.registry import ModelRegistry

    production = ModelRegistry(drift_env, "retail_demand").require_production()
    client = MlflowClient(tracking_uri=drift_env.tracking_uri)
    logged = {a.path for a in client.list_artifacts(production.run_id, "drift/date=2026-03-14")}
    assert {
        "drift/date=2026-03-14/input_drift.html",
        "drift/date=2026-03-14/input_drift.json",
        "drift/date=2026-03-14/predictions_drift.html",
    } <= logged


def test_metrics_are_pushed_under_the_names_monitoring_reads(
    shift_day: DayRun, pushgateway: LocalServer
) -> None:
    samples = pushed_samples(pushgateway.url)
    check, served = shift_day.check("input"), shift_day.check("predictions")
    for feature in check["features"]:
        value = pushed_value(
            samples, "model_feature_drift_score", dataset="retail_demand", feature=feature["column"]
        )
        assert value == pytest.approx(feature["score"])
    assert pushed_value(samples, "model_drift_share", dataset="retail_demand") == pytest.approx(
        check["share"]
    )
    assert pushed_value(
        samples, "model_drift_share", dataset="retail_demand", stage="predictions"
    ) == pytest.approx(served["share"])
    realized = shift_day.outcome.xcoms["realized"]
    assert pushed_value(
        samples, "model_realized_wape", dataset="retail_demand", stage="actuals"
    ) == pytest.approx(realized["metrics"]["wape"])
    # Every model-quality family the alert rules and dashboards query is one the DAG pushed.
    pushed_names = {name for name, _ in samples}
    assert referenced_model_quality_metrics() <= pushed_names


def referenced_model_quality_metrics() -> set[str]:
    """Drift and realized-performance metric names the Prometheus rules and Grafana dashboards query."""
    rules = REPO_ROOT / "monitoring" / "prometheus" / "rules"
    texts = [p.read_text(encoding="utf-8") for p in rules.glob("*.yml")]
    for path in (REPO_ROOT / "monitoring" / "grafana" / "dashboards").glob("*.json"):
        texts += [t["expr"] for t in _targets(json.loads(path.read_text(encoding="utf-8")))]
    family = re.compile(r"\bmodel_(?:feature_drift_\w+|drift_\w+|dataset_drift\w*|realized_\w+)\b")
    found = {name for text in texts for name in family.findall(text)}
    assert {
        "model_feature_drift_score",
        "model_drift_share",
        "model_realized_rmse",
        "model_realized_wape",
    } <= found
    return found


def _targets(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("expr"), str) else []
        return found + [t for value in node.values() for t in _targets(value)]
    if isinstance(node, list):
        return [t for item in node for t in _targets(item)]
    return []


def test_a_window_of_training_data_does_not_alert(drift_env: Settings, smtp: SmtpServer) -> None:
    run = run_drift_day(INSIDE_TRAINING_DAY, smtp)
    assert run.outcome.succeeded, run.outcome.task_states
    check = run.check("input")
    assert check["verdict"] == "no drift" and check["alert"] is False and run.messages == []
    for feature in [*check["features"], check["target"]]:
        assert feature["score"] < feature["threshold"], feature


def test_too_few_rows_pushes_the_verdict_not_a_share(
    drift_env: Settings,
    trained_world: TrainedWorld,
    pushgateway: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrain.monitoring import drift
    from retrain.spec import load_spec

    spec = load_spec(trained_world.world.spec_with("min-rows", min_rows=10_000))
    result = drift.run(drift_env, spec, NO_DRIFT_DAY)
    assert result.input.verdict == "insufficient data: 7000 rows < min_rows 10000"
    assert not result.alert.alert
    samples = pushed_samples(pushgateway.url)
    assert pushed_value(samples, "model_drift_insufficient_data", dataset="retail_demand") == 1
    assert pushed_value(samples, "model_drift_current_rows", dataset="retail_demand") == 7000
    assert pushed_value(samples, "model_drift_share", dataset="retail_demand") is None
    drift.run(drift_env, trained_world.world.spec, NO_DRIFT_DAY, notify=False)  # leave a judged check behind
    samples = pushed_samples(pushgateway.url)
    assert pushed_value(samples, "model_drift_insufficient_data", dataset="retail_demand") == 0
    assert pushed_value(samples, "model_drift_share", dataset="retail_demand") is not None


def test_drift_triggers_retrain_asset_when_the_spec_asks(
    drift_env: Settings, trained_world: TrainedWorld, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    monkeypatch.setenv("RETRAIN_SPEC", str(trained_world.world.spec_with("trigger", trigger_retrain=True)))
    run = run_drift_day(TRIGGER_DAY, smtp)
    assert run.outcome.succeeded, run.outcome.task_states
    assert run.outcome.task_states["signal_retrain"] == "success"
    assert run.drift["alert"]["alert"] is True and len(run.messages) == 1
    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "retrain_drift_detected")
        ).all()
    assert any(extra.get("date") == TRIGGER_DAY.isoformat() for extra in extras), extras
