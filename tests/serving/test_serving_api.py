"""The live service (real uvicorn on localhost, real MLflow store): predictions, errors, health, admin."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from retrain.feature_snapshot import online_features
from retrain.tracking import configure_mlflow
from tests.serving.world import API_KEY, ServingWorld, request_rows


def test_predictions_match_mlflow_pyfunc(serving_world: ServingWorld, client: httpx.Client) -> None:
    rows = request_rows(serving_world, 1, n=240, seed=1, unknown=6)
    answer = client.post("/predict/batch", json={"rows": rows}, headers={"X-Request-ID": "batch-1"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_name"], body["model_version"], body["request_id"]) == (
        serving_world.model_name,
        1,
        "batch-1",
    )
    assert answer.headers["x-request-id"] == "batch-1"

    reference = online_features(serving_world.snapshot(1), pd.DataFrame(rows), serving_world.spec)
    configure_mlflow(serving_world.settings)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{serving_world.model_name}/1")
    expected = np.asarray(pyfunc.predict(reference.to_frame()), dtype=np.float64)
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6, atol=1e-6)
    assert body["known_entity"] == reference.known_entity.tolist()
    assert body["horizon_days"] == reference.horizon_days.tolist()
    assert body["known_entity"].count(False) == 6

    for i in (0, 7, 100, 239):  # the single-row endpoint agrees with the batch and the reference
        single = client.post("/predict", json=rows[i]).json()
        assert single["prediction"] == pytest.approx(expected[i], rel=1e-6, abs=1e-6)
        assert single["known_entity"] is bool(reference.known_entity[i])
        assert single["horizon_days"] == int(reference.horizon_days[i])


def _row(world: ServingWorld, **changes: Any) -> dict[str, Any]:
    row = request_rows(world, 1, n=10, unknown=0)[4]
    row.update(changes)
    return {k: v for k, v in row.items() if v is not _DROP}


_DROP = object()


def _bad_cases(world: ServingWorld) -> list[tuple[str, str, Any, int, str]]:
    """(name, path, body (dict or raw bytes), expected status, field named in the error)."""
    good = _row(world)
    day0 = world.snapshot_days[1]
    late = (day0 + timedelta(days=8)).isoformat()
    rows = request_rows(world, 1, n=4, unknown=0)
    return [
        ("malformed json", "/predict", b'{"store_id": 1,', 400, "body"),
        ("not an object", "/predict", b"[1, 2]", 422, "body"),
        ("missing field", "/predict", _row(world, price=_DROP), 422, "price"),
        ("extra field", "/predict", {**good, "colour": "red"}, 422, "colour"),
        ("wrong type", "/predict", _row(world, store_id="3"), 422, "store_id"),
        ("bool for int", "/predict", _row(world, promo=True), 422, "promo"),
        (
            "nan",
            "/predict",
            json.dumps(good).replace('"price": ' + json.dumps(good["price"]), '"price": NaN').encode(),
            422,
            "price",
        ),
        (
            "infinity",
            "/predict",
            json.dumps(good)
            .replace('"temperature": ' + json.dumps(good["temperature"]), '"temperature": 1e999')
            .encode(),
            422,
            "temperature",
        ),
        ("below minimum", "/predict", _row(world, price=-1.0), 422, "price"),
        ("above maximum", "/predict", _row(world, promo=2), 422, "promo"),
        ("not a date", "/predict", _row(world, date="2024-13-45"), 422, "date"),
        ("date after window", "/predict", _row(world, date=late), 422, "date"),
        ("date of the snapshot", "/predict", _row(world, date=day0.isoformat()), 422, "date"),
        (
            "batch row type",
            "/predict/batch",
            {"rows": [rows[0], {**rows[1], "price": "1.5"}]},
            422,
            "rows[1].price",
        ),
        (
            "batch row date",
            "/predict/batch",
            {"rows": [rows[0], rows[1], {**rows[2], "date": late}]},
            422,
            "rows[2].date",
        ),
        ("batch extra key", "/predict/batch", {"rows": rows, "model": "x"}, 422, "model"),
        ("empty batch", "/predict/batch", {"rows": []}, 422, "rows"),
        ("oversize batch", "/predict/batch", {"rows": [good] * 1001}, 413, "rows"),
        ("oversize body", "/predict/batch", b'{"rows": [' + b" " * 1_100_000 + b"]}", 413, "body"),
    ]


def test_every_bad_input_gets_a_4xx_naming_the_field(
    serving_world: ServingWorld, client: httpx.Client
) -> None:
    for name, path, body, status, field in _bad_cases(serving_world):
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = client.post(path, content=content, headers={"content-type": "application/json"})
        assert answer.status_code == status, (name, answer.status_code, answer.text)
        error = answer.json()
        assert set(error) == {"detail", "errors", "request_id"}, name
        fields = [e["field"] for e in error["errors"]]
        assert fields[0] == field, (name, fields)
        assert error["detail"].startswith(f"{field}: "), (name, error["detail"])
    window = client.post("/predict", json=_row(serving_world, date="2024-06-01")).json()
    assert "2024-03-04 to 2024-03-10" in window["detail"]


def test_chunked_oversize_body_is_refused(client: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 32_768

    answer = client.post("/predict/batch", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["errors"][0]["field"] == "body"


def test_unknown_entity_is_predicted_and_flagged(serving_world: ServingWorld, client: httpx.Client) -> None:
    known = client.post("/predict", json=_row(serving_world)).json()
    unknown = client.post("/predict", json=_row(serving_world, store_id=77_777, item_id=5)).json()
    assert known["known_entity"] is True and unknown["known_entity"] is False
    assert np.isfinite(unknown["prediction"]) and unknown["prediction"] >= 0


def test_health_ready_and_model(serving_world: ServingWorld, client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() | {"warnings": None} == {
        "ready": True,
        "model_name": serving_world.model_name,
        "model_version": 1,
        "source": "registry",
        "registry_up": True,
        "warnings": None,
        "detail": None,
    }
    model = client.get("/model").json()
    day0 = serving_world.snapshot_days[1]
    assert model["run_id"] == serving_world.run_ids[1]
    assert model["snapshot_date"] == day0.isoformat()
    assert model["first_date"] == (day0 + timedelta(days=1)).isoformat()
    assert model["last_date"] == (day0 + timedelta(days=7)).isoformat()
    assert model["entities"] == 50 and model["fast_predict"] is True
    assert model["metrics"]["holdout.rmse"] > 0


def test_admin_reload_needs_the_api_key(client: httpx.Client) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"X-API-Key": "nope"}).status_code == 403
    bad_param = client.post("/admin/reload?force=maybe", headers={"X-API-Key": API_KEY})
    assert bad_param.status_code == 422 and bad_param.json()["errors"][0]["field"] == "force"
    done = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert done.status_code == 200
    assert done.json() == {
        "changed": False,
        "model_version": 1,
        "previous_version": 1,
        "detail": "version 1 is already served",
    }


def test_openapi_documents_generated_schema_with_a_working_example(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    row_schema = document["components"]["schemas"]["PredictRequest"]
    assert row_schema["additionalProperties"] is False
    assert set(row_schema["required"]) == {
        "store_id",
        "item_id",
        "date",
        "price",
        "promo",
        "holiday",
        "temperature",
    }
    assert row_schema["properties"]["price"]["minimum"] == 0.01
    content = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    example = content["examples"]["served"]["value"]
    answer = client.post("/predict", json=example)
    assert answer.status_code == 200 and answer.json()["known_entity"] is True
    batch = document["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert client.post("/predict/batch", json=batch["examples"]["served"]["value"]).status_code == 200
    assert "known_entity" in document["paths"]["/predict"]["post"]["description"]
