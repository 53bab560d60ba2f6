"""Response bodies: documented as pydantic models in the OpenAPI schema, serialised with orjson."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictResponse(BaseModel):
    """One prediction with the model version that made it."""

    request_id: str
    model_name: str
    model_version: int
    prediction: float
    known_entity: bool = Field(description="False: the entity is not in the snapshot (fallback prediction).")
    horizon_days: int = Field(description="Days between the model's snapshot day and the requested date.")


class BatchPredictResponse(BaseModel):
    """Predictions in the order of the request rows."""

    request_id: str
    model_name: str
    model_version: int
    predictions: list[float]
    known_entity: list[bool]
    horizon_days: list[int]


class FieldError(BaseModel):
    """One rejected field: where (rows[3].price), why, and the kind of error."""

    field: str
    message: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a one-line detail, the field errors, the request id."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class HealthResponse(BaseModel):
    """Liveness: the process answers."""

    status: str


class ReadyResponse(BaseModel):
    """Readiness: a model is loaded; warnings say what is degraded (registry down, cache)."""

    ready: bool
    model_name: str
    model_version: int | None = None
    source: str | None = Field(default=None, description="registry or cache")
    registry_up: bool
    warnings: list[str] = Field(default_factory=list)
    detail: str | None = None


class ModelResponse(BaseModel):
    """The version being served and what it was trained on."""

    model_name: str
    model_version: int
    run_id: str | None
    model_uri: str
    alias: str
    source: str
    data_start: str | None
    data_end: str | None
    snapshot_date: str = Field(description="Day of the feature snapshot in use: the served dates follow it.")
    snapshot_source: str = Field(
        description="online: the dataset's newest online snapshot (moves with every curated day); "
        "model: the snapshot logged with this version's run (no newer online snapshot fits)."
    )
    model_snapshot_date: str = Field(description="Day of the snapshot logged with this version's run.")
    online_snapshot: str = Field(
        description="The online snapshot as last seen: its day and path, or why unused."
    )
    first_date: str = Field(description="First date served (snapshot day + 1).")
    last_date: str = Field(description="Last date served (snapshot day + max horizon).")
    entities: int
    feature_names: list[str]
    metrics: dict[str, float | None]
    loaded_at: str
    registry_up: bool
    fast_predict: bool


class ReloadResponse(BaseModel):
    """What an admin reload did."""

    changed: bool
    model_version: int | None
    previous_version: int | None
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    413: {"model": ErrorResponse, "description": "Body or batch larger than the configured limits."},
    422: {"model": ErrorResponse, "description": "A field is missing, extra, mistyped or out of range."},
    503: {"model": ErrorResponse, "description": "No model is loaded yet."},
}
