"""The FastAPI application factory and its lifespan (first load, registry poller, log flusher)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from retrain import __version__
from retrain.layout import DatasetLayout
from retrain.spec import DatasetSpec, load_spec
from serving import messages
from serving.errors import FieldProblem, ServingError
from serving.metrics import NO_VERSION, ServingMetrics
from serving.model_store import ModelStore
from serving.openapi import install_openapi
from serving.prediction_log import PredictionLog
from serving.routes import error_response, request_id_of, router
from serving.schemas import build_request_schema, example_row, field_path
from serving.service import PredictionService
from serving.settings import ServingSettings

log = logging.getLogger(__name__)

DESCRIPTION = f"""Predictions of the model holding the `production` alias in the MLflow registry.

Request fields are generated from the dataset spec: entity keys, the date to forecast, and the
request-time features; lag and rolling features come from the newest online feature snapshot (it moves
with every curated day, whether or not a new version was promoted; see `snapshot_date` in GET /model).

- **Unknown entities**: {messages.UNKNOWN_ENTITY_POLICY}
- **Dates**: {messages.HORIZON_POLICY}
- **Errors**: 400 (not JSON), 413 (body or batch too large), 422 (a field is missing, extra, mistyped,
  out of range, not finite, or a date outside the window) — every error names the field, e.g. `rows[3].price`.
  503 while no model is loaded.
- **Hot swap**: the alias and the online feature snapshot are polled every RETRAIN_SERVING_POLL_SECONDS;
  a new version or a newer snapshot is loaded fully, then swapped in; requests in flight finish on the
  version and snapshot they started with.
"""


@dataclass(eq=False)
class ServingState:
    """Everything the handlers share: settings, the model store, the service, metrics and the log."""

    settings: ServingSettings
    spec: DatasetSpec
    metrics: ServingMetrics
    store: ModelStore
    service: PredictionService
    prediction_log: PredictionLog
    flush_event: asyncio.Event | None = field(default=None)

    def record_failure(self, endpoint: str, status: int, started: float) -> None:
        """Count a failed predict request under the version served at the time."""
        current = self.store.current
        label = current.label if current else NO_VERSION
        self.metrics.record_request(label, endpoint, status, time.perf_counter() - started, None)

    def wake_flusher(self) -> None:
        """Ask the log flusher to write now (the buffer is over its size)."""
        self.service.flush_wanted = False
        if self.flush_event is not None:
            self.flush_event.set()

    def example_row(self) -> dict[str, Any]:
        """A request row the current model serves (for the OpenAPI examples)."""
        current = self.store.current
        if current is None:
            return example_row(self.spec, None, date.today() + timedelta(days=1))
        features = current.features
        return example_row(self.spec, features.example_keys(), features.first_date)

    def served_dates(self) -> list[str] | None:
        """The dates the current model answers for (ISO), None while no model is loaded."""
        current = self.store.current
        return None if current is None else [d.isoformat() for d in current.features.served_dates()]


def build_state(settings: ServingSettings, spec: DatasetSpec) -> ServingState:
    """Wire the store, service, metrics and log for a spec (no I/O beyond creating objects)."""
    metrics = ServingMetrics(settings.serving_prediction_buckets, settings.prometheus_multiproc_dir)
    store = ModelStore(settings, spec, metrics)
    schema = build_request_schema(spec, settings.serving_max_batch_rows)
    prediction_log = PredictionLog(
        DatasetLayout.for_spec(settings, spec),
        spec,
        schema.fields,
        on_write_error=metrics.log_write_errors.inc,
        max_buffered_rows=settings.serving_log_max_buffered_rows,
        enabled=settings.serving_log_predictions,
    )
    service = PredictionService(store, schema, prediction_log)
    return ServingState(settings, spec, metrics, store, service, prediction_log)


async def _poll_registry(state: ServingState) -> None:
    while True:
        await asyncio.sleep(state.settings.serving_poll_seconds)
        try:
            await asyncio.to_thread(state.store.poll)
        except ServingError:
            pass  # recorded by the store (metrics, /ready); the next poll retries
        except Exception:
            log.exception("registry poll failed unexpectedly")


async def _flush_log(state: ServingState, event: asyncio.Event) -> None:
    while True:
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=state.settings.serving_log_flush_seconds)
        event.clear()
        await asyncio.to_thread(state.prediction_log.flush)


def _ensure_logging() -> None:
    """Show the service's INFO lines when nobody configured logging (uvicorn only sets up its own)."""
    logger = logging.getLogger("serving")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before serving; poll the registry and flush the log while serving; flush at the end."""
    state: ServingState = app.state.serving
    _ensure_logging()
    await asyncio.to_thread(state.store.start)
    # Everything loaded so far (MLflow, pandas, pyarrow, the model: ~350k objects) lives as long as
    # the process; a full collection scanning it stalled requests ~240 ms (the p99 at 1 connection).
    # Frozen objects are skipped by the cyclic collector (refcounting still frees them).
    gc.collect()
    gc.freeze()
    state.flush_event = asyncio.Event()
    tasks = [
        asyncio.create_task(_poll_registry(state), name="registry-poll"),
        asyncio.create_task(_flush_log(state, state.flush_event), name="log-flush"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        written = await asyncio.to_thread(state.prediction_log.flush)
        log.info(
            "serving stopped: flushed=%d logged=%d lost=%d",
            written,
            state.prediction_log.rows_written,
            state.prediction_log.rows_lost,
        )


def _install_error_handlers(app: FastAPI) -> None:
    async def invalid_parameters(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            loc = list(error.get("loc", ()))
            if loc and loc[0] in ("query", "header", "path", "body", "cookie"):
                loc = loc[1:]
            problems.append(
                FieldProblem(field_path(loc), str(error.get("msg", "invalid")), str(error.get("type")))
            )
        detail = problems[0].text() if problems else "invalid request"
        return error_response(422, detail, problems, request_id_of(request))

    async def internal_error(request: Request, exc: Exception) -> Response:
        request_id = request_id_of(request)
        log.error("internal error request_id=%s: %r", request_id, exc, exc_info=exc)
        return error_response(500, messages.INTERNAL_ERROR, [], request_id)

    app.add_exception_handler(RequestValidationError, invalid_parameters)
    app.add_exception_handler(Exception, internal_error)


def create_app(settings: ServingSettings | None = None, *, spec: DatasetSpec | None = None) -> FastAPI:
    """The prediction service for `settings` (default: from the environment) and its dataset spec."""
    settings = settings or ServingSettings()
    spec = spec or load_spec(settings.spec)
    state = build_state(settings, spec)
    app = FastAPI(
        title=f"retrain serving: {spec.name}",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.serving = state
    app.include_router(router)
    _install_error_handlers(app)
    install_openapi(app, state.service.schema, state.example_row, state.served_dates)
    return app
