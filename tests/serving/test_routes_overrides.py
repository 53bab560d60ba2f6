"""The route contract (status codes, 4xx messages, response shapes) with dependencies overridden.

The app is built for the default spec but never started (no lifespan, no MLflow): the real store holds no
model, and tests swap in a service or store stand-in through `app.dependency_overrides`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from retrain.settings import REPO_ROOT
from retrain.spec import DatasetSpec, load_spec
from serving import messages
from serving.app import create_app
from serving.deps import get_service, get_settings, get_store
from serving.errors import RegistryUnavailableError
from serving.model_store import RefreshOutcome
from serving.responses import BatchPredictResponse, ErrorResponse, PredictResponse, ReadyResponse
from serving.schemas import BATCH_FIELD, RequestSchema, example_row
from serving.service import Prediction
from serving.settings import ServingSettings

SPEC = REPO_ROOT / "config" / "retail_demand.yaml"
API_KEY = "s3cret"


class SchemaOnlyService:
    """A PredictionService stand-in: the real request schema, a fixed answer from version 7, no model."""

    def __init__(self, schema: RequestSchema) -> None:
        self.schema = schema

    def predict_row(self, body: bytes, request_id: str) -> Prediction:
        self.schema.parse_row(body)
        return self._answer(request_id, np.array([1.5]), batch=False)

    def predict_batch(self, body: bytes, request_id: str) -> Prediction:
        rows = self.schema.parse_batch(body)
        return self._answer(request_id, np.full(len(rows), 1.5), batch=True)

    def served_label(self) -> str:
        return "7"

    @staticmethod
    def _answer(request_id: str, values: np.ndarray, *, batch: bool) -> Prediction:
        n = len(values)
        payload: dict[str, Any] = {"request_id": request_id, "model_name": "stub", "model_version": 7}
        if batch:
            payload |= {"predictions": values.tolist(), "known_entity": [True] * n, "horizon_days": [1] * n}
        else:
            payload |= {"prediction": float(values[0]), "known_entity": True, "horizon_days": 1}
        return Prediction(orjson.dumps(payload), "7", values)


class ReloadingStore:
    """A ModelStore stand-in for /admin/reload: moves from version 1 to 2, or finds the registry down."""

    def __init__(self, registry_up: bool = True) -> None:
        self.registry_up = registry_up
        self.forced: list[bool] = []
        self.snapshot_refreshes = 0

    def refresh(self, force: bool = False) -> RefreshOutcome:
        self.forced.append(force)
        if not self.registry_up:
            raise RegistryUnavailableError(messages.REGISTRY_DOWN)
        return RefreshOutcome(True, 2, 1, "loaded version 2")

    def refresh_snapshot(self) -> None:
        self.snapshot_refreshes += 1


@pytest.fixture(scope="module")
def spec() -> DatasetSpec:
    return load_spec(SPEC)


@pytest.fixture
def app(spec: DatasetSpec, tmp_path: Path) -> Iterator[FastAPI]:
    settings = ServingSettings(home=tmp_path, spec=SPEC, serving_max_body_bytes=2048)
    app = create_app(settings, spec=spec)
    yield app
    app.dependency_overrides.clear()


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    """A client that does not run the lifespan: nothing is loaded, MLflow is never asked."""
    return TestClient(app)


@pytest.fixture
def stub_service(app: FastAPI) -> SchemaOnlyService:
    service = SchemaOnlyService(app.state.serving.service.schema)
    app.dependency_overrides[get_service] = lambda: service
    return service


def row(spec: DatasetSpec, **changes: Any) -> dict[str, Any]:
    return {**example_row(spec, None, date.today() + timedelta(days=1)), **changes}


def error_of(response: Any) -> ErrorResponse:
    return ErrorResponse.model_validate(response.json())


@pytest.mark.usefixtures("stub_service")
def test_predict_answers_the_service_body_with_the_request_id(client: TestClient, spec: DatasetSpec) -> None:
    response = client.post("/predict", json=row(spec), headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-1"
    body = PredictResponse.model_validate(response.json())
    assert (body.request_id, body.model_version, body.prediction) == ("req-1", 7, 1.5)


@pytest.mark.usefixtures("stub_service")
def test_predict_batch_answers_one_prediction_per_row(client: TestClient, spec: DatasetSpec) -> None:
    response = client.post("/predict/batch", json={BATCH_FIELD: [row(spec), row(spec)]})
    assert response.status_code == 200
    assert BatchPredictResponse.model_validate(response.json()).predictions == [1.5, 1.5]


@pytest.mark.usefixtures("stub_service")
def test_predict_counts_requests_under_the_served_version(client: TestClient, spec: DatasetSpec) -> None:
    client.post("/predict", json=row(spec))
    client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    exposition = client.get("/metrics").text
    assert 'model_predictions_total{endpoint="predict",model_version="7",status="200"} 1.0' in exposition
    assert 'model_predictions_total{endpoint="predict",model_version="7",status="400"} 1.0' in exposition


@pytest.mark.usefixtures("stub_service")
def test_body_that_is_not_json_is_a_400_naming_the_body(client: TestClient) -> None:
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_of(response).errors[0].field == "body"


@pytest.mark.usefixtures("stub_service")
def test_missing_field_is_a_422_naming_the_field(client: TestClient, spec: DatasetSpec) -> None:
    missing = spec.timestamp_column
    body = {k: v for k, v in row(spec).items() if k != missing}
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error.errors[0].field == missing
    assert error.detail.startswith(f"{missing}: ")
    assert error.request_id == response.headers["X-Request-ID"]


@pytest.mark.usefixtures("stub_service")
def test_batch_field_errors_name_the_row(client: TestClient, spec: DatasetSpec) -> None:
    rows = [row(spec), row(spec, **{spec.timestamp_column: "not-a-date"})]
    response = client.post("/predict/batch", json={BATCH_FIELD: rows})
    assert response.status_code == 422
    assert error_of(response).errors[0].field == f"{BATCH_FIELD}[1].{spec.timestamp_column}"


@pytest.mark.usefixtures("stub_service")
def test_body_over_the_limit_is_a_413(client: TestClient) -> None:
    response = client.post(
        "/predict/batch", content=b" " * 4096, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    error = error_of(response)
    assert error.errors[0].field == "body" and "2048" in error.detail


def test_without_a_loaded_model_predict_and_model_are_503(client: TestClient, spec: DatasetSpec) -> None:
    for response in (client.post("/predict", json=row(spec)), client.get("/model")):
        assert response.status_code == 503
        assert error_of(response).detail.startswith("no model is loaded")


def test_ready_is_503_with_the_reason_until_a_model_loads(client: TestClient, spec: DatasetSpec) -> None:
    response = client.get("/ready")
    assert response.status_code == 503
    ready = ReadyResponse.model_validate(response.json())
    assert (ready.ready, ready.model_name, ready.detail) == (False, spec.model_name, "the model is loading")
    assert client.get("/health").json() == {"status": "ok"}


def test_reload_is_403_while_admin_is_disabled(client: TestClient) -> None:
    response = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert (response.status_code, error_of(response).detail) == (403, messages.ADMIN_DISABLED)


@pytest.fixture
def admin(app: FastAPI, tmp_path: Path) -> ReloadingStore:
    settings = ServingSettings(home=tmp_path, spec=SPEC, serving_api_key=API_KEY)
    store = ReloadingStore()
    app.dependency_overrides[get_settings] = lambda: settings
    app.dependency_overrides[get_store] = lambda: store
    return store


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [({}, 401, messages.API_KEY_MISSING), ({"X-API-Key": "wrong"}, 403, messages.API_KEY_WRONG)],
)
def test_reload_refuses_a_missing_or_wrong_key(
    client: TestClient, admin: ReloadingStore, headers: dict[str, str], status: int, detail: str
) -> None:
    response = client.post("/admin/reload", headers=headers)
    assert (response.status_code, error_of(response).detail) == (status, detail)
    assert admin.forced == []


def test_reload_with_the_key_reports_the_version_change(client: TestClient, admin: ReloadingStore) -> None:
    response = client.post("/admin/reload?force=true", headers={"X-API-Key": API_KEY})
    assert response.status_code == 200
    assert response.json() == {
        "changed": True,
        "model_version": 2,
        "previous_version": 1,
        "detail": "loaded version 2",
    }
    assert (admin.forced, admin.snapshot_refreshes) == ([True], 1)


def test_reload_with_the_registry_down_is_503_and_still_refreshes_the_snapshot(
    client: TestClient, admin: ReloadingStore
) -> None:
    admin.registry_up = False
    response = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert (response.status_code, error_of(response).detail) == (503, messages.REGISTRY_DOWN)
    assert admin.snapshot_refreshes == 1


def test_reload_force_must_be_a_boolean(client: TestClient, admin: ReloadingStore) -> None:
    response = client.post("/admin/reload?force=maybe", headers={"X-API-Key": API_KEY})
    assert response.status_code == 422
    assert error_of(response).errors[0].field == "force"
