"""The prediction log of a live server: every served row lands in predictions/date=D/ as Parquet."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd

from retrain.layout import DatasetLayout
from retrain.local.launcher import running_server
from retrain.local.processes import wait_until
from tests.serving.scrape import scrape, value
from tests.serving.world import ServingWorld, request_rows, server_env


def _logged(layout: DatasetLayout) -> pd.DataFrame:
    files = sorted(layout.predictions.glob("date=*/*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def test_graceful_stop_writes_every_buffered_prediction(serving_world: ServingWorld, tmp_path: Path) -> None:
    settings = serving_world.registry_copy(tmp_path)
    layout = DatasetLayout.for_spec(settings, serving_world.spec)
    rows = request_rows(serving_world, 1, n=8, seed=2, unknown=1)
    answers: dict[str, list[float]] = {}
    # An hour between flushes: only the flush at shutdown can write these rows.
    env = server_env(settings, log_flush_seconds="3600")
    with (
        running_server(env, tmp_path / "server.log", ready_path="/ready") as server,
        httpx.Client(base_url=server.base_url, timeout=10.0) as client,
    ):
        for i, row in enumerate(rows[:3]):
            answer = client.post("/predict", json=row, headers={"X-Request-ID": f"one-{i}"}).json()
            answers[f"one-{i}"] = [answer["prediction"]]
        batch = client.post("/predict/batch", json={"rows": rows[3:]}, headers={"X-Request-ID": "many"})
        answers["many"] = batch.json()["predictions"]
        assert client.post("/predict", json={**rows[0], "price": -1.0}).status_code == 422  # not logged
        assert not list(layout.predictions.glob("date=*/*.parquet"))
    assert "logged=8 lost=0" in server.output()

    logged = _logged(layout)
    assert len(logged) == 8
    assert set(logged["model_version"]) == {1}
    assert logged["endpoint"].value_counts().to_dict() == {"predict_batch": 5, "predict": 3}
    assert logged["known_entity"].tolist().count(False) == 1
    # Each row as sent, with the request id and the prediction returned for it.
    request_ids = ["one-0", "one-1", "one-2"] + ["many"] * 5
    predictions = [p for rid in ("one-0", "one-1", "one-2", "many") for p in answers[rid]]
    sent = pd.DataFrame(rows).assign(request_id=request_ids, prediction=predictions)
    logged["date"] = logged["date"].astype(str)
    key = ["request_id", "store_id", "item_id", "date"]
    got = logged[list(sent.columns)].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, sent.sort_values(key).reset_index(drop=True), check_dtype=False)
    # One partition per requested date (the day the forecast is for, where its actual will land).
    for folder in layout.predictions.glob("date=*"):
        dates = pd.concat([pd.read_parquet(f) for f in folder.glob("*.parquet")])["date"].astype(str)
        assert set(dates) == {folder.name.removeprefix("date=")}


def test_log_is_flushed_on_interval_and_write_failures_never_fail_requests(
    serving_world: ServingWorld, tmp_path: Path
) -> None:
    settings = serving_world.registry_copy(tmp_path)
    layout = DatasetLayout.for_spec(settings, serving_world.spec)
    rows = request_rows(serving_world, 1, n=4, seed=3, unknown=0)
    env = server_env(settings, log_flush_seconds="0.5")
    with (
        running_server(env, tmp_path / "server.log", ready_path="/ready") as server,
        httpx.Client(base_url=server.base_url, timeout=10.0) as client,
    ):
        assert client.post("/predict/batch", json={"rows": rows}).status_code == 200
        wait_until(lambda: len(_logged(layout)) == 4, 30, "the interval flush")  # while still serving

        # The log folder becomes a file: every write fails from now on.
        layout.predictions.rename(tmp_path / "moved-away")
        layout.predictions.write_text("not a folder")
        for row in rows:
            assert client.post("/predict", json=row).status_code == 200
        wait_until(
            lambda: value(scrape(client), "prediction_log_write_errors_total") >= 1,
            30,
            "a counted write error",
        )
        assert client.post("/predict", json=rows[0]).status_code == 200
    assert "prediction log: writing" in server.output()
