"""Every message a client or operator reads, in one place so wording stays consistent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

UNKNOWN_ENTITY_POLICY = (
    "An entity (key combination) absent from the model's feature snapshot is still predicted: its "
    "history features are missing (XGBoost's missing branch) and the prediction starts from the model's "
    'default level. The response marks such rows with `"known_entity": false`.'
)
HORIZON_POLICY = (
    "Dates must fall after the day of the feature snapshot in use (the newest curated day whose features "
    "were built, whichever model serves) and at most RETRAIN_SERVING_MAX_HORIZON_DAYS later (see GET "
    "/model for the current window); other dates get 422 naming the field."
)


def not_ready(model_name: str, alias: str, reason: str) -> str:
    """503 body when no model is loaded yet."""
    return (
        f"no model is loaded: {reason}. The service retries every poll interval; check GET /ready, "
        f"and that a version of {model_name!r} holds @{alias}"
    )


def no_version_holds_alias(model_name: str, alias: str) -> str:
    """Why nothing is loaded when the registry answers but the alias is unset."""
    return f"no version of {model_name!r} holds @{alias} (run the pipeline or `retrain promote --version N`)"


def registry_down_no_cache(cache_dir: str) -> str:
    """Why nothing is loaded on a cold start with the registry unreachable and no cache."""
    return f"the model registry is unreachable and no cached version exists under {cache_dir}"


def registry_down_warning(since: str, error: str) -> str:
    """/ready warning while the registry is unreachable but a model is served."""
    return f"model registry unreachable since {since} ({error}); serving the loaded version, retrying"


def served_from_cache_warning(version: int) -> str:
    """/ready warning when the served version came from the local cache."""
    return f"version {version} was loaded from the local cache because the registry was unreachable"


def reload_failed_warning(version: int, error: str) -> str:
    """/ready warning when a newer version could not be loaded."""
    return f"loading version {version} failed ({error}); still serving the previous version"


def online_snapshot_warning(error: str, in_use: date) -> str:
    """/ready warning when the online feature snapshot cannot feed the served model."""
    return f"{error}; serving with the feature snapshot of {in_use.isoformat()}"


def invalid_json(detail: str) -> str:
    """400: the body is not JSON at all."""
    return f"request body is not valid JSON: {detail}"


def body_too_large(size: int | None, limit: int) -> str:
    """413: the body exceeds the configured size."""
    got = f"{size} bytes" if size is not None else "the body"
    return f"{got} exceeds the limit of {limit} bytes (RETRAIN_SERVING_MAX_BODY_BYTES); split the batch"


def batch_too_large(rows: int | None, limit: int) -> str:
    """413: more rows than the batch limit."""
    got = f"{rows} rows" if rows is not None else "the batch"
    return f"{got} exceed the batch limit of {limit} rows (RETRAIN_SERVING_MAX_BATCH_ROWS); split the batch"


def extra_field(allowed: Sequence[str]) -> str:
    """422: a field the schema does not define."""
    return f"unknown field; allowed fields: {', '.join(allowed)}"


def missing_field() -> str:
    """422: a required field is absent."""
    return "field required"


def date_outside_horizon(value: date, first: date, last: date, version: int) -> str:
    """422: a date the served snapshot cannot build features for."""
    return (
        f"{value.isoformat()} is outside the forecast window of model version {version}: "
        f"dates from {first.isoformat()} to {last.isoformat()} are served"
    )


def too_many_errors(shown: int, total: int) -> str:
    """Suffix when only the first errors are listed."""
    return f"... and {total - shown} more errors"


def request_failed(status_code: int, first: str, count: int) -> str:
    """Top-level `detail` summarising field errors."""
    more = f" (+{count - 1} more)" if count > 1 else ""
    return f"{first}{more}"


ADMIN_DISABLED = "admin endpoints are disabled: set RETRAIN_SERVING_API_KEY to enable them"
API_KEY_MISSING = "missing API key: send it in the X-API-Key header"
API_KEY_WRONG = "invalid API key in the X-API-Key header"
INTERNAL_ERROR = "internal error while serving the request; it has been logged with the request id"
REGISTRY_DOWN = "the model registry is unreachable"
