"""A live monitoring stack for the monitoring tests: Prometheus (committed config, rules) scraping a
serving metrics endpoint, a Pushgateway filled with the pipeline and drift families, and an
Alertmanager (committed config rendered by render-config.sh) mailing a local SMTP sink."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway, start_http_server

from retrain.publish import PipelineReport, push_pipeline_metrics
from retrain.settings import REPO_ROOT, Settings
from tests.utils.prom import (
    LocalServer,
    alertmanager_server,
    free_port,
    prom_query,
    prometheus_server,
    pushgateway_server,
    wait_for,
    wait_for_targets_up,
)

MONITORING = REPO_ROOT / "monitoring"
PROMETHEUS_DIR = MONITORING / "prometheus"
ALERTMANAGER_DIR = MONITORING / "alertmanager"
GRAFANA_DIR = MONITORING / "grafana"
DATASET = "retail_demand"
FEATURES = ("price", "promo", "holiday", "temperature", "store_type", "category")
# Pushed values: drift above the 0.3 threshold (DataDriftDetected fires), realized WAPE below 0.35.
DRIFT_SHARE = 0.5
REALIZED_WAPE = 0.21


@dataclass
class SmtpSink:
    """Messages received by a local SMTP server (aiosmtpd)."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: keep the parsed message."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        """Subjects received so far."""
        return [str(m["Subject"]) for m in self.messages]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on a free localhost port collecting every message."""
    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def render_alertmanager_config(out: Path, sink: SmtpSink, group_wait: str | None = None) -> Path:
    """Render the committed alertmanager.yml with render-config.sh for the sink, as the container does.

    group_wait shortens the committed 30 s so a test sees the first email within seconds.
    """
    env = {
        "PATH": os.environ["PATH"],
        "RETRAIN_SMTP_HOST": sink.host,
        "RETRAIN_SMTP_PORT": str(sink.port),
        "RETRAIN_SMTP_STARTTLS": "false",
        "RETRAIN_MAIL_FROM": "alerts@retrain.test",
        "RETRAIN_MAIL_TO": '["oncall@retrain.test"]',
    }
    script = ALERTMANAGER_DIR / "render-config.sh"
    subprocess.run(
        ["sh", str(script), str(ALERTMANAGER_DIR / "alertmanager.yml"), str(out)], env=env, check=True
    )
    if group_wait is not None:
        config = yaml.safe_load(out.read_text())
        config["route"]["group_wait"] = group_wait
        out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


@pytest.fixture
def alertmanager_for(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """Factory: a live Alertmanager (committed config rendered for a sink); stopped at test end."""
    with ExitStack() as stack:

        def start(sink: SmtpSink, group_wait: str | None = None) -> LocalServer:
            n = len(list(tmp_path.glob("am-*")))
            config = render_alertmanager_config(tmp_path / f"alertmanager-{n}.yml", sink, group_wait)
            return stack.enter_context(alertmanager_server(tmp_path / f"am-{n}", config))

        yield start


def _fake_serving_registry() -> tuple[CollectorRegistry, Any]:
    """The serving metric families (names, types, labels of the contract) and a traffic generator."""
    registry = CollectorRegistry()
    predictions = Counter(
        "model_predictions", "Predictions.", ["model_version", "endpoint", "status"], registry=registry
    )
    latency = Histogram("model_prediction_latency_seconds", "Latency.", ["endpoint"], registry=registry)
    values = Histogram(
        "model_prediction_value",
        "Predicted values.",
        buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, float("inf")),
        registry=registry,
    )
    Gauge("model_info", "Loaded model.", ["name", "version", "run_id"], registry=registry).labels(
        DATASET, "3", "0123abcd"
    ).set(1)
    reloads = Counter("model_reloads", "Reloads.", ["result"], registry=registry)
    reloads.labels("success").inc()
    reloads.labels("failure")
    Gauge("model_last_reload_timestamp_seconds", "Last reload.", registry=registry).set(time.time())
    Gauge("model_registry_up", "Registry reachable.", registry=registry).set(1)
    Counter("prediction_log_write_errors", "Log write errors.", registry=registry)
    rng = random.Random(7)
    tick = [0]

    def one_request() -> None:
        tick[0] += 1
        endpoint = "predict_batch" if tick[0] % 5 == 0 else "predict"
        status = "503" if tick[0] % 29 == 0 else "422" if tick[0] % 11 == 0 else "200"
        predictions.labels("3", endpoint, status).inc()
        latency.labels(endpoint).observe(rng.uniform(0.005, 0.3))
        if status == "200":
            values.observe(rng.gammavariate(2.0, 8.0))

    return registry, one_request


@pytest.fixture(scope="session")
def serving_metrics_target() -> Iterator[str]:
    """host:port of a live endpoint exposing the serving metric families at /metrics, with traffic flowing.

    The real FastAPI service is being written elsewhere; until it lands this serves the contract's
    metric names with prometheus_client's start_http_server, fed by a thread that keeps observing
    requests (rates need increasing counters). Switch to the real server here (start it, keep sending
    requests, including a 422 and a 503) and every dashboard test runs against it unchanged.
    """
    registry, one_request = _fake_serving_registry()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.02):
            one_request()

    generator = threading.Thread(target=traffic, daemon=True)
    generator.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        generator.join(timeout=5)
        server.shutdown()
        thread.join(timeout=5)


def push_pipeline_and_drift(pushgateway: str) -> None:
    """Push every pipeline and drift/realized family the dashboards and rules read."""
    # The pipeline's own publisher, so the dashboards are checked against what it really pushes.
    report = PipelineReport(
        dataset=DATASET,
        day=date(2024, 3, 1),
        rows_ingested=4800,
        version=4,
        outcome="rejected",
        candidate_rmse=11.5,
        production_version=3,
        task_seconds={"ingest": 2.1, "validate": 3.4, "features": 5.0, "train": 40.2, "evaluate": 4.4},
    )
    assert push_pipeline_metrics(Settings(pushgateway_url=pushgateway), report)
    # Validation failures come from the validate task (its own grouping key, so publish's PUT keeps them).
    validate = CollectorRegistry()
    Gauge("retrain_validation_failures_total", "Failed batches.", ["dataset"], registry=validate).labels(
        DATASET
    ).set(1)
    push_to_gateway(
        pushgateway,
        job="retrain_pipeline",
        grouping_key={"dataset": DATASET, "stage": "validate"},
        registry=validate,
    )
    # Drift and realized performance: the drift module is being written elsewhere; same names and labels.
    drift = CollectorRegistry()
    scores = Gauge("model_feature_drift_score", "Drift score.", ["dataset", "feature"], registry=drift)
    for i, feature in enumerate(FEATURES):
        scores.labels(DATASET, feature).set(0.02 + 0.05 * i)
    Gauge("model_drift_share", "Drifted share.", ["dataset"], registry=drift).labels(DATASET).set(DRIFT_SHARE)
    Gauge("model_dataset_drift", "Dataset drift.", ["dataset"], registry=drift).labels(DATASET).set(1)
    push_to_gateway(pushgateway, job="retrain_drift", grouping_key={"dataset": DATASET}, registry=drift)
    realized = CollectorRegistry()
    Gauge("model_realized_rmse", "Realized RMSE.", ["dataset"], registry=realized).labels(DATASET).set(12.3)
    Gauge("model_realized_wape", "Realized WAPE.", ["dataset"], registry=realized).labels(DATASET).set(
        REALIZED_WAPE
    )
    push_to_gateway(
        pushgateway,
        job="retrain_drift",
        grouping_key={"dataset": DATASET, "stage": "actuals"},
        registry=realized,
    )


def local_prometheus_config(committed: dict[str, Any], port: int, targets: dict[str, str]) -> dict[str, Any]:
    """The committed prometheus.yml with every job's target moved to a local server and 1 s intervals."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(committed))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    targets = {**targets, "prometheus": f"127.0.0.1:{port}"}
    for scrape in config["scrape_configs"]:
        job = scrape["job_name"]
        assert job in targets, f"no local target for committed scrape job {job!r}: add one in conftest"
        scrape["static_configs"] = [{"targets": [targets[job]]}]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [targets["alertmanager"]]}]}]
    return config


@dataclass(frozen=True)
class LiveStack:
    """The running monitoring stack and the SMTP sink its Alertmanager mails."""

    prometheus: LocalServer
    pushgateway: LocalServer
    alertmanager: LocalServer
    serving: str
    smtp: SmtpSink
    dataset: str = DATASET
    drift_share: float = DRIFT_SHARE
    realized_wape: float = REALIZED_WAPE


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory, serving_metrics_target: str) -> Iterator[LiveStack]:
    """Prometheus (committed config and rules) scraping serving, Pushgateway and Alertmanager, all live."""
    workdir = tmp_path_factory.mktemp("monitoring-stack")
    sink = SmtpSink("127.0.0.1", free_port())
    smtp = Controller(sink, hostname=sink.host, port=sink.port)
    smtp.start()
    am_config = render_alertmanager_config(workdir / "alertmanager.yml", sink, group_wait="1s")
    committed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    try:
        with (
            pushgateway_server(workdir / "pushgateway") as pushgateway,
            alertmanager_server(workdir / "alertmanager", am_config) as alertmanager,
        ):
            push_pipeline_and_drift(pushgateway.address)
            port = free_port()
            targets = {
                "serving": serving_metrics_target,
                "pushgateway": pushgateway.address,
                "alertmanager": alertmanager.address,
            }
            config = local_prometheus_config(committed, port, targets)
            with prometheus_server(workdir / "prometheus", config, port=port) as prometheus:
                wait_for_targets_up(prometheus, [s["job_name"] for s in config["scrape_configs"]])
                # rate() needs two samples of an increasing counter inside its window.
                wait_for(
                    lambda: prom_query(
                        prometheus, 'sum(rate(model_predictions_total{job="serving"}[1m])) > 0'
                    ),
                    20,
                    "serving request rate in Prometheus",
                )
                yield LiveStack(prometheus, pushgateway, alertmanager, serving_metrics_target, sink)
    finally:
        smtp.stop()
