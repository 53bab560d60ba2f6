"""/metrics: valid for promtool, counters move with requests, correct across two workers (multiprocess)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from retrain.local.launcher import start_server
from retrain.local.processes import free_port
from serving.metrics import observe_many
from tests.serving.scrape import promtool_check, scrape, value
from tests.serving.world import ServingWorld, request_rows, server_env

# `retrain serve` as the console script runs it.
_CLI = "from retrain.cli.app import main; main()"


def test_metrics_pass_promtool_and_counters_move(serving_world: ServingWorld, client: httpx.Client) -> None:
    rows = request_rows(serving_world, 1, n=5, unknown=0)
    before = scrape(client)
    for row in rows[:3]:
        assert client.post("/predict", json=row).status_code == 200
    assert client.post("/predict/batch", json={"rows": rows}).status_code == 200
    assert client.post("/predict", json={**rows[0], "price": -1}).status_code == 422
    assert client.post("/predict", content=b"{").status_code == 400
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"model_version": "1", "status": "200"}
    assert moved("model_predictions_total", endpoint="predict", **ok) == 3
    assert moved("model_predictions_total", endpoint="predict_batch", **ok) == 1
    assert moved("model_predictions_total", endpoint="predict", model_version="1", status="422") == 1
    assert moved("model_predictions_total", endpoint="predict", model_version="1", status="400") == 1
    assert moved("model_prediction_latency_seconds_count", endpoint="predict") == 5
    assert moved("model_prediction_value_count") == 3 + 5
    assert moved("model_prediction_value_sum") > 0
    assert (
        value(
            after, "model_info", name=serving_world.model_name, version="1", run_id=serving_world.run_ids[1]
        )
        == 1
    )
    assert value(after, "model_registry_up") == 1
    assert value(after, "model_reloads_total", result="success") >= 1
    assert value(after, "model_last_reload_timestamp_seconds") > 1.7e9
    assert ("prediction_log_write_errors_total", ()) in after

    checked = promtool_check(client.get("/metrics").text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_observe_many_equals_one_observe_per_value() -> None:
    values = np.r_[np.random.default_rng(0).gamma(2.0, 30.0, size=500), 0.0, 5.0, 1e9, np.nan]
    buckets = (0.0, 1, 5, 10, 50, 100, 1000)
    bulk, single = CollectorRegistry(), CollectorRegistry()
    observe_many(Histogram("h", "h", buckets=buckets, registry=bulk), values)
    one = Histogram("h", "h", buckets=buckets, registry=single)
    for v in values[np.isfinite(values)]:
        one.observe(float(v))
    got = {
        (s.name, s.labels.get("le")): s.value
        for m in bulk.collect()
        for s in m.samples
        if "created" not in s.name
    }
    want = {
        (s.name, s.labels.get("le")): s.value
        for m in single.collect()
        for s in m.samples
        if "created" not in s.name
    }
    assert got.keys() == want.keys()
    for key, expected in want.items():
        assert got[key] == (expected if key[0] != "h_sum" else got[key]), key
    assert (
        got[("h_sum", None)] == np.float64(want[("h_sum", None)])
        or abs(got[("h_sum", None)] - want[("h_sum", None)]) < 1e-6
    )


def test_two_workers_aggregate_metrics_through_retrain_serve(
    serving_world: ServingWorld, tmp_path: Path
) -> None:
    settings = serving_world.registry_copy(tmp_path)
    port = free_port()
    command = [sys.executable, "-c", _CLI, "serve", "--workers", "2", "--port", str(port)]
    server = start_server(command, server_env(settings), port, tmp_path / "serve.log")
    try:
        server.wait_until("/ready", timeout=120)
        rows = request_rows(serving_world, 1, n=40, unknown=0)
        with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
            for row in rows:  # new connections spread requests over both workers
                with httpx.Client(base_url=server.base_url, timeout=10.0) as fresh:
                    assert fresh.post("/predict", json=row).status_code == 200
            samples = scrape(http)
            text = http.get("/metrics").text
        ok = {"model_version": "1", "endpoint": "predict", "status": "200"}
        assert value(samples, "model_predictions_total", **ok) == 40
        assert value(samples, "model_prediction_value_count") == 40
        assert value(samples, "model_reloads_total", result="success") == 2  # one load per worker
        assert value(samples, "model_registry_up") == 1
        info = [k for k in samples if k[0] == "model_info"]
        assert len(info) == 1 and dict(info[0][1])["version"] == "1"  # one series, no pid label
        checked = promtool_check(text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert len(list((tmp_path / "serving_metrics").glob("counter_*.db"))) == 2
    finally:
        server.stop()
