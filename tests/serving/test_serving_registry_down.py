"""The registry goes away: a real `mlflow server` is killed under a live service, then restarted.

The service keeps answering with the loaded version, reports `model_registry_up 0` and a warning on
/ready, and picks up a promotion made meanwhile once the tracking server is back. A cold start with
the registry unreachable serves the locally cached version if there is one, else is not ready (503).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from retrain.local.launcher import running_server
from retrain.local.processes import free_port, wait_until
from retrain.registry import ModelRegistry
from tests.serving.scrape import scrape, value
from tests.serving.world import (
    API_KEY,
    SWAP_HORIZON_DAYS,
    ServingWorld,
    request_rows,
    rows_served_by_both,
    server_env,
    start_tracking_server,
    tracking_server_settings,
)


def _registry_up(client: httpx.Client) -> float:
    return value(scrape(client), "model_registry_up")


def _predict_all(client: httpx.Client, rows: list[dict[str, object]]) -> set[int]:
    """Post every row; all must succeed; the versions that answered."""
    versions = set()
    for row in rows:
        answer = client.post("/predict", json=row)
        assert answer.status_code == 200, answer.text
        versions.add(answer.json()["model_version"])
    return versions


def test_registry_outage_keeps_serving_and_a_restart_brings_reloads_back(
    serving_world: ServingWorld, tmp_path: Path
) -> None:
    store = serving_world.registry_copy(tmp_path)  # SQLite store the tracking server runs on
    port = free_port()
    tracking = start_tracking_server(store, port, tmp_path / "mlflow-1.log")
    env = server_env(
        tracking_server_settings(store, port),
        poll_seconds="1",
        registry_timeout_seconds="2",
        max_horizon_days=str(SWAP_HORIZON_DAYS),
    )
    rows = rows_served_by_both(serving_world, 20, seed=4)
    try:
        with (
            running_server(env, tmp_path / "server.log", ready_path="/ready") as server,
            httpx.Client(base_url=server.base_url, timeout=10.0) as client,
        ):
            assert _predict_all(client, rows[:3]) == {1}
            assert _registry_up(client) == 1

            tracking.kill()  # SIGKILL to the whole tracking server: a crash, not a clean stop
            wait_until(lambda: _registry_up(client) == 0, 30, "model_registry_up 0")
            assert _predict_all(client, rows) == {1}
            ready = client.get("/ready")
            assert ready.status_code == 200
            body = ready.json()
            assert (body["ready"], body["model_version"], body["registry_up"]) == (True, 1, False)
            assert "model registry unreachable since" in body["warnings"][0]
            reload = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
            assert reload.status_code == 503
            assert reload.json()["detail"].startswith("the model registry is unreachable")

            # Promoted while the tracking server is down (straight into its store), served once it is back.
            ModelRegistry(store, serving_world.model_name).promote(2, actor="tests", reason="during outage")
            assert _predict_all(client, rows[:3]) == {1}
            tracking = start_tracking_server(store, port, tmp_path / "mlflow-2.log")
            wait_until(lambda: client.get("/model").json()["model_version"] == 2, 60, "version 2 served")
            assert _predict_all(client, rows) == {2}
            samples = scrape(client)
            assert value(samples, "model_registry_up") == 1
            assert value(samples, "model_reloads_total", result="success") == 2
            assert client.get("/ready").json()["warnings"] == []
            reload = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
            assert reload.status_code == 200 and reload.json()["model_version"] == 2
    finally:
        tracking.kill()


def test_cold_start_with_the_registry_down_uses_the_cache_else_is_not_ready(
    serving_world: ServingWorld, tmp_path: Path
) -> None:
    store = serving_world.registry_copy(tmp_path / "store")
    rows = request_rows(serving_world, 1, 5, unknown=0)
    warm_home, cold_home = tmp_path / "warm", tmp_path / "cold"
    # A first run with the registry up leaves version 1 in warm_home's cache.
    warm_env = server_env(store.model_copy(update={"home": warm_home}))
    with running_server(warm_env, tmp_path / "first.log", ready_path="/ready"):
        pass
    assert (warm_home / "serving_cache" / serving_world.model_name / "current.json").is_file()

    # The tracking server is gone: nothing listens on its port any more.
    down = tracking_server_settings(store, free_port())
    env = server_env(down.model_copy(update={"home": warm_home}), registry_timeout_seconds="2")
    with (
        running_server(env, tmp_path / "cached.log", ready_path="/ready") as server,
        httpx.Client(base_url=server.base_url, timeout=10.0) as client,
    ):
        ready = client.get("/ready").json()
        assert (ready["ready"], ready["model_version"], ready["source"]) == (True, 1, "cache")
        assert ready["registry_up"] is False
        assert any("loaded from the local cache" in w for w in ready["warnings"])
        assert any("model registry unreachable" in w for w in ready["warnings"])
        answer = client.post("/predict", json=rows[0])
        assert answer.status_code == 200 and answer.json()["model_version"] == 1
        assert client.get("/model").json()["source"] == "cache"
        assert _registry_up(client) == 0

    env = server_env(down.model_copy(update={"home": cold_home}))
    with (
        running_server(env, tmp_path / "cold.log", ready_path="/health") as server,
        httpx.Client(base_url=server.base_url, timeout=10.0) as client,
    ):
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert "registry is unreachable and no cached version exists" in ready.json()["detail"]
        for path, body in (("/predict", rows[0]), ("/predict/batch", {"rows": rows})):
            answer = client.post(path, json=body)
            assert answer.status_code == 503
            assert answer.json()["detail"].startswith("no model is loaded: the model registry is unreachable")
        assert client.get("/model").status_code == 503
        samples = scrape(client)
        assert (
            value(samples, "model_predictions_total", model_version="none", endpoint="predict", status="503")
            == 1
        )
