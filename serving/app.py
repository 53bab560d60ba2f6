"""The FastAPI application factory and its lifespan (first load, registry poller, log flusher)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from retrain import __version__
from retrain.layout import DatasetLayout
from retrain.spec import DatasetSpec, load_spec
from serving import messages
from serving.deps import ServingState
from serving.errors import ServingError
from serving.http_io import install_error_handlers
from serving.metrics import ServingMetrics
from serving.model_store import ModelStore
from serving.openapi import install_openapi
from serving.prediction_log import PredictionLog
from serving.routes import router
from serving.schemas import build_request_schema
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
    state.service.on_log_full = state.flush_event.set  # predict runs on the event loop: set() is safe
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
    install_error_handlers(app)
    install_openapi(app, state.service.schema, state.example_row, state.served_dates)
    return app
