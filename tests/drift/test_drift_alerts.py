"""Alert decisions and the drift DAG's sensors, on hand-made summaries and contexts (no Airflow run)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from retrain.monitoring.drift_alerts import DriftSummary, alert_on_drift, alert_reasons
from retrain.monitoring.drift_email import MAX_ATTACHMENT_BYTES, split_attachments
from retrain.monitoring.drift_report import FeatureDrift, Sampling
from retrain.notify import SMTP_CONN_ID
from retrain.settings import Settings
from tests.utils.smtp import attachment_names, html_body, smtp_server

DAY = date(2026, 3, 12)
CONN_VAR = f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"


@pytest.fixture(autouse=True)
def no_smtp(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SMTP from the environment (other drift tests may have configured one): the maildir sink."""
    for name in ("RETRAIN_SMTP_HOST", "RETRAIN_SMTP_PORT", CONN_VAR):
        monkeypatch.delenv(name, raising=False)


def summary(
    report: Path,
    scores: dict[str, float],
    key: tuple[str, ...] = ("price",),
    rows: int = 5000,
    target: float | None = None,
) -> DriftSummary:
    features = tuple(
        FeatureDrift(column=c, kind="numeric", method="wasserstein", score=s, threshold=0.1, drifted=s >= 0.1)
        for c, s in scores.items()
    )
    sales = None
    if target is not None:
        sales = FeatureDrift(
            column="sales",
            kind="numeric",
            method="wasserstein",
            score=target,
            threshold=0.1,
            drifted=target >= 0.1,
        )
    return DriftSummary(
        dataset="retail_demand",
        day=DAY,
        kind="input",
        model_version=3,
        reference="curated 2026-01-01..2026-02-26",
        window_start=date(2026, 3, 6),
        window_end=DAY,
        days_with_data=7,
        rows=rows,
        reference_rows=56_000,
        min_rows=30,
        features=features,
        target=sales,
        share=sum(f.drifted for f in features) / len(features) if features else None,
        share_threshold=0.3,
        feature_threshold=0.1,
        key_features=key,
        sampling=Sampling(cap=10, seed=1, reference_rows=5, reference_used=5, current_rows=5, current_used=5),
        summary_path=str(report.with_suffix(".json")),
        report_path=str(report),
    )


def test_key_feature_alone_alerts_and_reaches_the_maildir(tmp_path: Path) -> None:
    report = tmp_path / "input_drift.html"
    report.write_text("<html><body>report</body></html>", encoding="utf-8")
    checked = summary(report, {"price": 0.6, "promo": 0.0, "holiday": 0.0, "temperature": 0.05})
    assert not checked.dataset_drift and checked.alert
    assert alert_reasons(checked) == ["input: key feature price score 0.600 reached 0.100"]
    alert = alert_on_drift(Settings(home=tmp_path), [checked], DAY)
    assert alert.emailed and alert.attachments == ("input_drift.html.gz",)
    mail = Path(alert.delivered_to or "").read_text(encoding="utf-8")
    assert "Subject: [retrain] drift detected in retail_demand on 2026-03-12: 1 of 4 features" in mail
    assert 'filename="input_drift.html.gz"' in mail


def test_minor_drift_on_other_features_does_not_alert(tmp_path: Path) -> None:
    checked = summary(tmp_path / "r.html", {"price": 0.01, "promo": 0.2, "holiday": 0.0, "temperature": 0.0})
    alert = alert_on_drift(Settings(home=tmp_path), [checked], DAY)
    assert not alert.alert and not alert.emailed and not (tmp_path / "mail").exists()


def test_no_email_flag_decides_but_sends_nothing(tmp_path: Path) -> None:
    checked = summary(tmp_path / "r.html", {"price": 0.5, "promo": 0.5})
    alert = alert_on_drift(Settings(home=tmp_path), [checked], DAY, notify=False)
    assert alert.alert and alert.subject and not alert.emailed and not (tmp_path / "mail").exists()


def test_reports_over_the_size_limit_are_linked_not_attached(tmp_path: Path) -> None:
    small, big, gone = tmp_path / "small.html", tmp_path / "big.html", tmp_path / "gone.html"
    small.write_bytes(b"x" * 10_000)  # compresses to a few dozen bytes
    big.write_bytes(np.random.default_rng(1).bytes(2000))  # random: does not compress
    packed = tmp_path / "packed"
    packed.mkdir()
    attached, linked = split_attachments([str(small), str(big), str(gone)], packed, limit=1000)
    assert [p.name for p in attached] == ["small.html.gz"] and linked == [str(big), str(gone)]
    assert gzip.decompress(attached[0].read_bytes()) == small.read_bytes()


def test_insufficient_window_has_a_verdict_and_never_alerts(tmp_path: Path) -> None:
    checked = summary(tmp_path / "r.html", {}, rows=12).model_copy(
        update={"features": (), "share": None, "sampling": None, "report_path": None}
    )
    assert checked.insufficient_data and checked.verdict == "insufficient data: 12 rows < min_rows 30"
    assert not checked.alert and not checked.dataset_drift
    alert = alert_on_drift(Settings(home=tmp_path), [checked], DAY)
    assert not alert.alert and not (tmp_path / "mail").exists()
    back = DriftSummary.model_validate_json(checked.model_dump_json())
    assert back == checked and back.verdict == checked.verdict


def test_target_drift_alone_alerts(tmp_path: Path) -> None:
    checked = summary(tmp_path / "r.html", {"price": 0.01, "promo": 0.0}, target=0.4)
    assert not checked.dataset_drift and checked.target_drift and checked.alert
    assert alert_reasons(checked) == ["input: target sales score 0.400 reached 0.100"]
    assert checked.headline() == "0 of 2 features, target sales"
    assert checked.verdict == "drift: target sales"


def test_email_size_is_bounded_over_real_smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6 MB report that compresses badly is named, a small one attached gzipped: the message stays small."""
    rng = np.random.default_rng(2)
    big = tmp_path / "input_drift.html"
    big.write_bytes(b"<html><body>" + rng.bytes(6 * 1024 * 1024).hex().encode()[: 6 * 1024 * 1024])
    small = tmp_path / "predictions_drift.html"
    small.write_text("<html><body>" + "row " * 50_000 + "</body></html>", encoding="utf-8")
    checks = [
        summary(big, {"price": 0.6, "promo": 0.0}, target=0.2),
        summary(small, {"price": 0.5}).model_copy(update={"kind": "predictions"}),
    ]
    with smtp_server() as server:
        monkeypatch.setenv("RETRAIN_SMTP_HOST", server.host)
        monkeypatch.setenv("RETRAIN_SMTP_PORT", str(server.port))
        from retrain.notify import smtp_connection_json

        settings = Settings(home=tmp_path)
        monkeypatch.setenv(CONN_VAR, smtp_connection_json(settings) or "")
        alert = alert_on_drift(settings, checks, DAY)
        [message] = server.wait_for(1)
    size = len(message.as_bytes())
    assert size < 2 * MAX_ATTACHMENT_BYTES and size < big.stat().st_size / 10, size
    assert attachment_names(message) == ["predictions_drift.html.gz"]
    assert alert.linked == (str(big),)
    body = html_body(message)
    assert str(big) in body and "2026-03-06..2026-03-12 (7 days with data)" in body
    assert "5,000 vs 56,000" in body and "price 0.600" in body and "sales 0.200 <b>drift</b>" in body


def sensor_context(day: date, started: datetime, wait: int) -> dict[str, object]:
    return {
        "params": {"date": day.isoformat(), "predictions_wait_minutes": wait},
        "dag_run": SimpleNamespace(start_date=started),
    }


def test_predictions_sensor_waits_then_falls_back_to_input_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrain.monitoring.drift_tasks import predictions_ready

    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path))
    started = datetime(2026, 3, 13, 0, 5, tzinfo=UTC)
    context = sensor_context(DAY, started, wait=60)
    assert predictions_ready(context, now=started + timedelta(minutes=10)).is_done is False
    late = predictions_ready(context, now=started + timedelta(minutes=61))
    assert late.is_done and late.xcom_value["found"] is False
    folder = tmp_path / "retail_demand" / "predictions" / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"")
    found = predictions_ready(context, now=started + timedelta(minutes=1))
    assert found.is_done and found.xcom_value == {"found": True, "files": 1}


def test_airflow_smtp_connection_alone_sends_through_smtp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "input_drift.html"
    report.write_text("<html><body>report</body></html>", encoding="utf-8")
    checked = summary(report, {"price": 0.6, "promo": 0.0})
    with smtp_server() as server:
        conn = {"conn_type": "smtp", "host": server.host, "port": server.port}
        conn["extra"] = {"disable_ssl": True, "disable_tls": True, "from_email": "retrain@localhost"}
        monkeypatch.setenv(CONN_VAR, json.dumps(conn))
        alert = alert_on_drift(Settings(home=tmp_path), [checked], DAY)  # no RETRAIN_SMTP_HOST
        assert alert.delivered_to == f"smtp://{server.host}:{server.port}"
        assert server.subjects() == [alert.subject]
        assert "price (key)" in html_body(server.messages[0])
    assert not (tmp_path / "mail").exists()
