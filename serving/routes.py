"""HTTP endpoints: thin handlers that map service results and errors to responses and metrics."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from serving import messages
from serving.errors import (
    FieldProblem,
    InvalidRequestError,
    ModelLoadError,
    ModelUnavailableError,
    RegistryUnavailableError,
    ServingError,
)
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

if TYPE_CHECKING:
    from serving.app import ServingState

REQUEST_ID_HEADER = "X-Request-ID"
JSON = "application/json"
_KIND_STATUS = {"malformed": 400, "too_large": 413, "invalid": 422}

router = APIRouter()
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="RETRAIN_SERVING_API_KEY of the service."
)


def request_body(schema_name: str) -> dict[str, Any]:
    """OpenAPI requestBody for a body the handler parses itself (the schema is generated from the spec)."""
    schema = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


def status_of(exc: ServingError) -> int:
    """The HTTP status of a serving error."""
    if isinstance(exc, InvalidRequestError):
        return _KIND_STATUS.get(exc.kind, 422)
    if isinstance(exc, ModelUnavailableError | RegistryUnavailableError | ModelLoadError):
        return 503
    return 500


def error_response(
    status: int, detail: str, problems: list[FieldProblem], request_id: str | None
) -> Response:
    """An ErrorResponse body with the request id header."""
    body = {
        "detail": detail,
        "errors": [{"field": p.field, "message": p.message, "type": p.type} for p in problems],
        "request_id": request_id,
    }
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def serving_error_response(exc: ServingError, request_id: str | None) -> Response:
    """The response for a ServingError: field errors listed, the first one as the detail."""
    problems = exc.problems if isinstance(exc, InvalidRequestError) else []
    detail = messages.request_failed(0, problems[0].text(), len(problems)) if problems else str(exc)
    return error_response(status_of(exc), detail, problems, request_id)


def request_id_of(request: Request) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given and len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) above `limit` bytes without reading more than that."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
        return await request.body()  # HTTP framing bounds a body to its declared length
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _too_large(None, limit)
    return bytes(received)


def _too_large(size: int | None, limit: int) -> InvalidRequestError:
    problem = FieldProblem("body", messages.body_too_large(size, limit), "body_too_large")
    return InvalidRequestError([problem], kind="too_large")


def _state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


async def _predict(request: Request, endpoint: str) -> Response:
    started = time.perf_counter()
    state = _state(request)
    request_id = request_id_of(request)
    try:
        body = await read_body(request, state.settings.serving_max_body_bytes)
        if endpoint == "predict":
            result = state.service.predict_row(body, request_id)
        else:
            result = state.service.predict_batch(body, request_id)
    except ServingError as exc:
        state.record_failure(endpoint, status_of(exc), started)
        return serving_error_response(exc, request_id)
    except Exception:
        state.record_failure(endpoint, 500, started)
        raise
    state.metrics.record_request(
        result.version_label, endpoint, 200, time.perf_counter() - started, result.predictions
    )
    if state.service.flush_wanted:
        state.wake_flusher()
    return Response(result.body, media_type=JSON, headers={REQUEST_ID_HEADER: request_id})


@router.post(
    "/predict",
    summary="Predict one row",
    description=f"{messages.UNKNOWN_ENTITY_POLICY} {messages.HORIZON_POLICY}",
    response_model=None,
    responses={200: {"model": PredictResponse}, **ERROR_RESPONSES},
    openapi_extra=request_body(ROW_SCHEMA),
)
async def predict(request: Request) -> Response:
    """Prediction for one row (entity keys, date, request-time features)."""
    return await _predict(request, "predict")


@router.post(
    "/predict/batch",
    summary="Predict many rows",
    description=f"Up to RETRAIN_SERVING_MAX_BATCH_ROWS rows (413 above). {messages.UNKNOWN_ENTITY_POLICY}",
    response_model=None,
    responses={200: {"model": BatchPredictResponse}, **ERROR_RESPONSES},
    openapi_extra=request_body(BATCH_SCHEMA),
)
async def predict_batch(request: Request) -> Response:
    """Predictions for a batch of rows, in row order."""
    return await _predict(request, "predict_batch")


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
async def ready(request: Request) -> Response:
    """Ready when a model is loaded; warnings name what is degraded (registry down, cached model)."""
    state = _state(request)
    store = state.store
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
async def model(request: Request) -> Response:
    """Name, version, run, training interval, metrics and served date window of the current model."""
    state = _state(request)
    try:
        current = state.store.require_current()
    except ModelUnavailableError as exc:
        return serving_error_response(exc, None)
    info, features = current.info, current.features
    body = ModelResponse(
        model_name=current.name,
        model_version=current.version,
        run_id=info.get("run_id"),
        model_uri=str(info.get("model_uri", "")),
        alias=state.store.alias,
        source=current.source,
        data_start=info.get("data_start"),
        data_end=info.get("data_end"),
        snapshot_date=features.snapshot_date.isoformat(),
        snapshot_source=current.snapshot_source,
        model_snapshot_date=current.trained.snapshot_date.isoformat(),
        online_snapshot=state.store.snapshots.detail,
        first_date=features.first_date.isoformat(),
        last_date=features.last_date.isoformat(),
        entities=features.entity_count,
        feature_names=list(features.feature_names),
        metrics=dict(info.get("metrics") or {}),
        loaded_at=current.loaded_at.isoformat(),
        registry_up=state.store.registry_up,
        fast_predict=current.predictor.native,
    )
    return Response(body.model_dump_json(), media_type=JSON)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition (aggregated over workers in multiprocess mode)."""
    body, content_type = _state(request).metrics.render()
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
    request: Request,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    force: Annotated[bool, Query(description="Reload even if the served version holds the alias.")] = False,
) -> Response:
    """Ask the registry for the alias now (instead of at the next poll) and load the version if it moved."""
    state = _state(request)
    expected = state.settings.api_key()
    if expected is None:
        return error_response(403, messages.ADMIN_DISABLED, [], None)
    if not api_key:
        return error_response(401, messages.API_KEY_MISSING, [], None)
    if not hmac.compare_digest(api_key.encode(), expected.encode()):
        return error_response(403, messages.API_KEY_WRONG, [], None)
    try:
        outcome = await asyncio.to_thread(state.store.refresh, force)
    except ServingError as exc:
        return serving_error_response(exc, None)
    finally:
        await asyncio.to_thread(state.store.refresh_snapshot)
    body = ReloadResponse(
        changed=outcome.changed,
        model_version=outcome.version,
        previous_version=outcome.previous,
        detail=outcome.detail,
    )
    return JSONResponse(body.model_dump())
