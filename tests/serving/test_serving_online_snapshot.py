"""Serving follows the online feature snapshot: production trained on D still forecasts the day after the
newest curated day (features built, candidates not promoted), a backfill never moves it back, categories
keep the model's codes, and without a usable online snapshot the model's own snapshot serves.

Real components: the session world's MLflow store (copied), the features stage on curated partitions,
the FastAPI app in process through TestClient with its real lifespan and poller.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from retrain import features
from retrain.feature_maths import code_column
from retrain.feature_snapshot import online_features, read_snapshot
from retrain.layout import DatasetLayout
from retrain.local.processes import wait_until
from retrain.online_snapshot import marker_file, online_snapshot_date, publish_online_snapshot
from retrain.tracking import configure_mlflow
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.scrape import scrape, value
from tests.serving.world import ServingWorld, request_rows

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Deployment:
    """A private home: the world's curated days and a copy of its registry (version 1 in production)."""

    settings: ServingSettings
    layout: DatasetLayout
    trained_on: date  # the production version's snapshot day


@pytest.fixture
def deployment(serving_world: ServingWorld, tmp_path: Path) -> Deployment:
    home = tmp_path / "home"
    store = serving_world.registry_copy(home)
    layout = DatasetLayout.for_spec(store, serving_world.spec)
    world_layout = DatasetLayout.for_spec(serving_world.settings, serving_world.spec)
    shutil.copytree(world_layout.curated, layout.curated)
    settings = ServingSettings(
        home=home,
        spec=serving_world.spec_path,
        mlflow_tracking_uri=store.tracking_uri,
        serving_poll_seconds=POLL_SECONDS,
        serving_log_predictions=False,
    )
    return Deployment(settings, layout, serving_world.snapshot_days[1])


@pytest.fixture
def client_for(serving_world: ServingWorld) -> Iterator[Any]:
    """Start the app on a deployment's settings (lifespan, poller) and hand back its TestClient."""
    clients: list[TestClient] = []

    def start(settings: ServingSettings) -> TestClient:
        client = TestClient(create_app(settings, spec=serving_world.spec))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def _row(world: ServingWorld, day: date, **changes: Any) -> dict[str, Any]:
    row = request_rows(world, 1, n=10, unknown=0)[4]
    return {**row, "date": day.isoformat(), **changes}


def _model(client: TestClient) -> dict[str, Any]:
    answer = client.get("/model")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def test_production_forecasts_the_day_after_the_newest_curated_day(
    serving_world: ServingWorld, deployment: Deployment, client_for: Any
) -> None:
    settings, spec, d = deployment.settings, serving_world.spec, deployment.trained_on
    for offset in (1, 2, 3):  # curated days whose candidates were never promoted
        built = features.run(settings, spec, d + timedelta(days=offset))
        assert built.online_snapshot_date == d + timedelta(days=offset)

    client = client_for(settings)
    served = _model(client)
    assert (served["model_version"], served["snapshot_source"]) == (1, "online")
    assert (served["snapshot_date"], served["model_snapshot_date"]) == (str(d + timedelta(3)), str(d))
    assert served["first_date"] == str(d + timedelta(4))
    assert str(deployment.layout.online_snapshot) in served["online_snapshot"]

    row = _row(serving_world, d + timedelta(days=4))
    answer = client.post("/predict", json=row)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_version"], body["horizon_days"], body["known_entity"]) == (1, 1, True)
    # The production version's own pyfunc on the fresh snapshot's features gives the same number.
    fresh = read_snapshot(deployment.layout.online_snapshot)
    reference = online_features(fresh, pd.DataFrame([row]), spec)
    configure_mlflow(settings)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{serving_world.model_name}/1")
    expected = float(np.asarray(pyfunc.predict(reference.to_frame()))[0])
    assert body["prediction"] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    stale = client.post("/predict", json=_row(serving_world, d + timedelta(days=1)))
    assert stale.status_code == 422 and "date" in stale.json()["errors"][0]["field"]

    # A backfill of an older day rebuilds its partition but leaves the online snapshot where it was.
    backfill = features.run(settings, spec, d + timedelta(days=2))
    assert backfill.online_snapshot_date == d + timedelta(days=3)
    assert online_snapshot_date(deployment.layout.online_snapshot) == d + timedelta(days=3)
    assert read_snapshot(deployment.layout.online_snapshot).snapshot_date == d + timedelta(days=3)
    client.app.state.serving.store.poll()  # type: ignore[attr-defined]
    assert _model(client)["snapshot_date"] == str(d + timedelta(3))

    # The next curated day reaches the running service at the next poll, beside the same version.
    features.run(settings, spec, d + timedelta(days=4))
    wait_until(lambda: _model(client)["snapshot_date"] == str(d + timedelta(4)), 10, "the D+4 snapshot")
    answer = client.post("/predict", json=_row(serving_world, d + timedelta(days=5)))
    assert answer.status_code == 200 and answer.json()["model_version"] == 1, answer.text
    samples = scrape(client)
    assert value(samples, "model_feature_snapshot_date_seconds") == _midnight(d + timedelta(days=4))
    assert value(samples, "model_feature_snapshot_online") == 1
    assert value(samples, "model_feature_snapshot_reloads_total", result="success") == 1
    assert client.get("/ready").json()["warnings"] == []


def test_new_category_after_training_keeps_the_model_codes(
    serving_world: ServingWorld, deployment: Deployment, client_for: Any
) -> None:
    settings, spec, d = deployment.settings, serving_world.spec, deployment.trained_on
    trained = serving_world.snapshot(1)
    vocabulary = trained.vocabulary["store_type"]
    # A later snapshot in which one store changed to a type the model never saw, listed first in that
    # snapshot's own vocabulary: every other type's code would shift by one if serving used it.
    built = features.run(settings, spec, d + timedelta(days=1))
    later = read_snapshot(built.snapshot_path)
    later.frame.loc[later.frame["store_id"] == later.frame["store_id"].iloc[0], "store_type"] = "mega"
    later.vocabulary["store_type"] = ["mega", *vocabulary]
    publish_online_snapshot(later, deployment.layout.online_snapshot, "test")

    client = client_for(settings)
    assert (_model(client)["snapshot_source"], _model(client)["snapshot_date"]) == (
        "online",
        str(d + timedelta(days=1)),
    )
    loaded = client.app.state.serving.store.current  # type: ignore[attr-defined]
    keys = later.frame[list(spec.entity_keys)].to_dict("records")
    day = d + timedelta(days=2)
    rows = [_row(serving_world, day, store_id=int(k["store_id"]), item_id=int(k["item_id"])) for k in keys]
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    matrix = loaded.features.build(columns, [day] * len(rows)).matrix
    codes = matrix[:, loaded.features.feature_names.index(code_column("store_type"))]
    types = later.frame["store_type"].tolist()
    for code, kind in zip(codes.tolist(), types, strict=True):
        if kind == "mega":
            assert np.isnan(code)  # unknown to the model: missing, as any unseen value
        else:
            assert code == vocabulary.index(kind)
    assert "mega" in types and any(t != "mega" for t in types)

    mega = rows[types.index("mega")]
    answer = client.post("/predict", json=mega)
    assert answer.status_code == 200 and answer.json()["known_entity"] is True, answer.text


def test_without_a_usable_online_snapshot_the_model_snapshot_serves(
    serving_world: ServingWorld, deployment: Deployment, client_for: Any
) -> None:
    settings, d = deployment.settings, deployment.trained_on
    client = client_for(settings)
    served = _model(client)
    assert (served["snapshot_source"], served["snapshot_date"]) == ("model", str(d))
    assert served["online_snapshot"].startswith("none published at ")
    assert client.get("/ready").json()["warnings"] == []
    assert client.post("/predict", json=_row(serving_world, d + timedelta(days=1))).status_code == 200
    assert value(scrape(client), "model_feature_snapshot_online") == 0

    # A newer date is announced but the file is not a snapshot: keep serving, say so on /ready.
    path = deployment.layout.online_snapshot
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not parquet")
    newer = {"snapshot_date": str(d + timedelta(days=5))}
    marker_file(path).write_text(json.dumps(newer), encoding="utf-8")
    warnings = wait_until(lambda: client.get("/ready").json()["warnings"], 10, "the unreadable warning")
    assert len(warnings) == 1 and str(path) in warnings[0] and str(d) in warnings[0]
    assert _model(client)["snapshot_date"] == str(d)
    assert client.post("/predict", json=_row(serving_world, d + timedelta(days=1))).status_code == 200

    # Followed off: the model's own snapshot even when a good online one is published (a rerun of the
    # announced day replaces the broken file).
    features.run(settings, serving_world.spec, d + timedelta(days=5))
    pinned = client_for(settings.model_copy(update={"serving_follow_online_snapshot": False}))
    assert (_model(pinned)["snapshot_source"], _model(pinned)["snapshot_date"]) == ("model", str(d))
    # The first service picks the now readable snapshot up and drops the warning.
    wait_until(lambda: _model(client)["snapshot_source"] == "online", 10, "the fixed snapshot")
    assert client.get("/ready").json()["warnings"] == []
