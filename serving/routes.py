"""HTTP endpoints: thin handlers that take their collaborators as dependencies and map results to responses."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from serving import messages
from serving.deps import MetricsDep, ServiceDep, SettingsDep, StoreDep
from serving.errors import ModelUnavailableError, ServingError
from serving.http_io import (
    JSON,
    REQUEST_ID_HEADER,
    error_response,
    read_body,
    request_body,
    request_id_of,
    serving_error_response,
    status_of,
)
from serving.metrics import ServingMetrics
from serving.responses import (
    ERROR_RESPONSES,
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    ModelResponse,
    PredictResponse,
    ReadyResponse,
    ReloadResponse,
)
from serving.schemas import BATCH_SCHEMA, ROW_SCHEMA
from serving.service import PredictionService
from serving.settings import ServingSettings

router = APIRouter()
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="RETRAIN_SERVING_API_KEY of the service."
)


async def _predict(
    request: Request,
    endpoint: str,
    service: PredictionService,
    settings: ServingSettings,
    metrics: ServingMetrics,
) -> Response:
    started = time.perf_counter()
    request_id = request_id_of(request)
    try:
        body = await read_body(request, settings.serving_max_body_bytes)
        if endpoint == "predict":
            result = service.predict_row(body, request_id)
        else:
            result = service.predict_batch(body, request_id)
    except ServingError as exc:
        status = status_of(exc)
        metrics.record_request(service.served_label(), endpoint, status, time.perf_counter() - started, None)
        return serving_error_response(exc, request_id)
    except Exception:
        metrics.record_request(service.served_label(), endpoint, 500, time.perf_counter() - started, None)
        raise
    metrics.record_request(
        result.version_label, endpoint, 200, time.perf_counter() - started, result.predictions
    )
    return Response(result.body, media_type=JSON, headers={REQUEST_ID_HEADER: request_id})


@router.post(
    "/predict",
    summary="Predict one row",
    description=f"{messages.UNKNOWN_ENTITY_POLICY} {messages.HORIZON_POLICY}",
    response_model=None,
    responses={200: {"model": PredictResponse}, **ERROR_RESPONSES},
    openapi_extra=request_body(ROW_SCHEMA),
)
async def predict(
    request: Request, service: ServiceDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    """Prediction for one row (entity keys, date, request-time features)."""
    return await _predict(request, "predict", service, settings, metrics)


@router.post(
    "/predict/batch",
    summary="Predict many rows",
    description=f"Up to RETRAIN_SERVING_MAX_BATCH_ROWS rows (413 above). {messages.UNKNOWN_ENTITY_POLICY}",
    response_model=None,
    responses={200: {"model": BatchPredictResponse}, **ERROR_RESPONSES},
    openapi_extra=request_body(BATCH_SCHEMA),
)
async def predict_batch(
    request: Request, service: ServiceDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    """Predictions for a batch of rows, in row order."""
    return await _predict(request, "predict_batch", service, settings, metrics)


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> HealthResponse:
    """The process is up (says nothing about the model: see /ready)."""
    return HealthResponse(status="ok")


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "No model is loaded."}},
    summary="Readiness",
)
async def ready(store: StoreDep) -> Response:
    """Ready when a model is loaded; warnings name what is degraded (registry down, cached model)."""
    current = store.current
    body = ReadyResponse(
        ready=current is not None,
        model_name=store.model_name,
        model_version=current.version if current else None,
        source=current.source if current else None,
        registry_up=store.registry_up,
        warnings=store.warnings(),
        detail=None if current else store.not_ready_reason,
    )
    return Response(body.model_dump_json(), status_code=200 if current else 503, media_type=JSON)


@router.get(
    "/model",
    response_model=ModelResponse,
    responses={503: ERROR_RESPONSES[503]},
    summary="The served model version",
)
async def model(store: StoreDep) -> Response:
    """Name, version, run, training interval, metrics and served date window of the current model."""
    try:
        current = store.require_current()
    except ModelUnavailableError as exc:
        return serving_error_response(exc, None)
    info, features = current.info, current.features
    body = ModelResponse(
        model_name=current.name,
        model_version=current.version,
        run_id=info.get("run_id"),
        model_uri=str(info.get("model_uri", "")),
        alias=store.alias,
        source=current.source,
        data_start=info.get("data_start"),
        data_end=info.get("data_end"),
        snapshot_date=features.snapshot_date.isoformat(),
        snapshot_source=current.snapshot_source,
        model_snapshot_date=current.trained.snapshot_date.isoformat(),
        online_snapshot=store.snapshots.detail,
        first_date=features.first_date.isoformat(),
        last_date=features.last_date.isoformat(),
        entities=features.entity_count,
        feature_names=list(features.feature_names),
        metrics=dict(info.get("metrics") or {}),
        loaded_at=current.loaded_at.isoformat(),
        registry_up=store.registry_up,
        fast_predict=current.predictor.native,
    )
    return Response(body.model_dump_json(), media_type=JSON)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(serving_metrics: MetricsDep) -> Response:
    """Prometheus text exposition (aggregated over workers in multiprocess mode)."""
    body, content_type = serving_metrics.render()
    return Response(body, media_type=content_type)


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "No API key sent."},
        403: {"model": ErrorResponse, "description": "Wrong API key, or admin disabled."},
        422: ERROR_RESPONSES[422],
        503: {"model": ErrorResponse, "description": "Registry unreachable or the version does not load."},
    },
    summary="Reload the model now",
)
async def reload(
    settings: SettingsDep,
    store: StoreDep,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    force: Annotated[bool, Query(description="Reload even if the served version holds the alias.")] = False,
) -> Response:
    """Ask the registry for the alias now (instead of at the next poll) and load the version if it moved."""
    expected = settings.api_key()
    if expected is None:
        return error_response(403, messages.ADMIN_DISABLED, [], None)
    if not api_key:
        return error_response(401, messages.API_KEY_MISSING, [], None)
    if not hmac.compare_digest(api_key.encode(), expected.encode()):
        return error_response(403, messages.API_KEY_WRONG, [], None)
    try:
        outcome = await asyncio.to_thread(store.refresh, force)
    except ServingError as exc:
        return serving_error_response(exc, None)
    finally:
        await asyncio.to_thread(store.refresh_snapshot)
    body = ReloadResponse(
        changed=outcome.changed,
        model_version=outcome.version,
        previous_version=outcome.previous,
        detail=outcome.detail,
    )
    return JSONResponse(body.model_dump())
