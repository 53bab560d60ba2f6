"""What the route handlers depend on: the state `create_app` builds, served through `Annotated` dependencies.

Handlers declare `service: ServiceDep`, `store: StoreDep`, ... and never read `request.app.state`
themselves, so a test can swap any piece with `app.dependency_overrides[get_service] = ...`.
The providers are `async def`: FastAPI runs plain `def` dependencies in a thread pool, a hop the
predict path should not pay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from retrain.spec import DatasetSpec
from serving.metrics import ServingMetrics
from serving.model_store import ModelStore
from serving.prediction_log import PredictionLog
from serving.schemas import example_row
from serving.service import PredictionService
from serving.settings import ServingSettings


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


def serving_state(request: Request) -> ServingState:
    """The state `create_app` attached to the application."""
    state: ServingState = request.app.state.serving
    return state


async def get_settings(request: Request) -> ServingSettings:
    """The service's settings."""
    return serving_state(request).settings


async def get_service(request: Request) -> PredictionService:
    """The prediction service (parse, features, predict, log)."""
    return serving_state(request).service


async def get_store(request: Request) -> ModelStore:
    """The model store (the served version, registry health, reloads)."""
    return serving_state(request).store


async def get_metrics(request: Request) -> ServingMetrics:
    """The Prometheus metrics of the service."""
    return serving_state(request).metrics


SettingsDep = Annotated[ServingSettings, Depends(get_settings)]
ServiceDep = Annotated[PredictionService, Depends(get_service)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
