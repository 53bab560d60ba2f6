"""A live monitoring stack for the monitoring tests: Prometheus (committed config, rules) scraping a
serving metrics endpoint, a Pushgateway filled with the pipeline and drift families, and an
Alertmanager (committed config rendered by render-config.sh) mailing a local SMTP sink."""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from retrain.local.processes import free_port
from retrain.publish import PipelineReport, push_pipeline_metrics
from retrain.settings import REPO_ROOT, Settings
from tests.utils.prom import (
    LocalServer,
    alertmanager_server,
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


@pytest.fixture(scope="session")
def serving_metrics_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of the real prediction service, with traffic flowing, for Prometheus to scrape.

    A small retail model is trained and registered in a real MLflow SQLite store (the serving tests'
    world, one version), `uvicorn serving.main:app` serves it, and a thread keeps posting requests:
    single rows, batches and an invalid row now and then (a 422), so every serving family moves.
    """
    from retrain.local.launcher import running_server
    from tests.serving.world import RUN_DAYS, build_world, request_rows, server_env

    home = tmp_path_factory.mktemp("monitoring-serving")
    world = build_world(home / "world", run_days=RUN_DAYS[:1])
    rows = request_rows(world, 1, n=40, seed=7)
    requests: list[tuple[str, dict[str, Any]]] = [("/predict", row) for row in rows]
    requests += [("/predict/batch", {"rows": rows[:10]}), ("/predict", {**rows[0], "price": -1.0})]
    stop = threading.Event()

    with running_server(server_env(world.settings), home / "server.log", ready_path="/ready") as server:

        def traffic() -> None:
            with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
                for path, body in itertools.cycle(requests):
                    if stop.wait(0.02):
                        return
                    with suppress(httpx.HTTPError):
                        client.post(path, json=body)

        generator = threading.Thread(target=traffic, daemon=True)
        generator.start()
        try:
            yield server.base_url.removeprefix("http://")
        finally:
            stop.set()
            generator.join(timeout=15)


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
