"""Hot swap on a live server: the production alias moves while a load loop runs; nothing fails."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import mlflow.pyfunc
import numpy as np
import pandas as pd

from retrain.feature_snapshot import online_features
from retrain.local.launcher import running_server, serving_in_background
from retrain.local.processes import wait_until
from retrain.registry import ModelRegistry
from retrain.tracking import configure_mlflow
from tests.serving.load import LoadLoop
from tests.serving.scrape import scrape, value
from tests.serving.world import SWAP_HORIZON_DAYS, ServingWorld, request_rows, rows_served_by_both, server_env

POLL_SECONDS = 2.0
# Time to fetch version 2 from the store and build its feature tables once the poll has seen it
# (~0.3 s alone; generous because the machine is shared and the load loop runs beside it).
LOAD_ALLOWANCE_SECONDS = 4.0


def test_alias_move_is_served_within_one_poll_and_no_request_fails(
    serving_world: ServingWorld, tmp_path: Path
) -> None:
    settings = serving_world.registry_copy(tmp_path)
    env = server_env(settings, poll_seconds=str(POLL_SECONDS), max_horizon_days=str(SWAP_HORIZON_DAYS))
    rows = rows_served_by_both(serving_world, 40, seed=11)
    requests = [("/predict", row) for row in rows] + [("/predict/batch", {"rows": rows[:25]})]
    with running_server(env, tmp_path / "server.log", ready_path="/ready") as server:
        with LoadLoop(server.base_url, requests, threads=4) as load:
            wait_until(lambda: load.count() >= 50, 30, "50 answers from version 1")
            ModelRegistry(settings, serving_world.model_name).promote(2, actor="tests", reason="hot swap")
            promoted = time.monotonic()
            first_v2 = wait_until(lambda: load.seen(2), 30, "an answer from version 2")
            settled = load.count()
            wait_until(lambda: load.count() >= settled + 50, 30, "50 answers after the swap")
            outcomes = load.stop()

        failed = [o for o in outcomes if o.status != 200]
        assert failed == [], failed[:5]
        assert {o.version for o in outcomes} == {1, 2}
        assert first_v2.ended - promoted <= POLL_SECONDS + LOAD_ALLOWANCE_SECONDS
        # One reference swap: once a request got version 2, no request started later got version 1.
        late_v1 = [o for o in outcomes if o.version == 1 and o.started > first_v2.ended]
        assert late_v1 == []

        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            answer = client.post("/predict/batch", json={"rows": rows}).json()
            samples = scrape(client)
            model = client.get("/model").json()

    # Version 2 really serves: its own snapshot and booster, as MLflow's pyfunc computes them.
    reference = online_features(
        serving_world.snapshot(2), pd.DataFrame(rows), serving_world.spec, max_horizon_days=SWAP_HORIZON_DAYS
    )
    configure_mlflow(serving_world.settings)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{serving_world.model_name}/2")
    expected = np.asarray(pyfunc.predict(reference.to_frame()), dtype=np.float64)
    assert answer["model_version"] == 2
    np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-6, atol=1e-6)
    assert model["run_id"] == serving_world.run_ids[2]
    assert model["snapshot_date"] == serving_world.snapshot_days[2].isoformat()

    info = {dict(labels)["version"]: v for (name, labels), v in samples.items() if name == "model_info"}
    assert info == {"2": 1.0}  # the old version's series is gone
    assert value(samples, "model_reloads_total", result="success") == 2
    assert value(samples, "model_predictions_total", model_version="1", endpoint="predict", status="200") > 0
    assert value(samples, "model_predictions_total", model_version="2", endpoint="predict", status="200") > 0


def test_serving_in_background_predicts_and_follows_a_promotion(
    serving_world: ServingWorld, tmp_path: Path
) -> None:
    settings = serving_world.registry_copy(tmp_path)
    row = request_rows(serving_world, 1, n=1, unknown=0)[0]
    with serving_in_background(settings, poll_seconds=0.5) as server:
        status, answer = server.post_json("/predict", row)
        assert status == 200 and answer["model_version"] == 1
        ModelRegistry(settings, serving_world.model_name).promote(2, actor="tests", reason="demo")
        wait_until(lambda: server.get_json("/model")[1]["model_version"] == 2, 30, "version 2 served")
        status, model = server.get_json("/model")
        status, answer = server.post_json("/predict", {**row, "date": model["first_date"]})
        assert status == 200 and answer["model_version"] == 2
        status, refused = server.post_json("/predict", row)  # version 1's dates are before version 2's window
        assert status == 422 and refused["errors"][0]["field"] == "date"
    assert server.process.poll() is not None  # stopped on leaving the block
    assert "serving stopped: flushed=" in server.output()
