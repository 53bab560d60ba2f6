"""The OpenAPI document: FastAPI's, plus the spec-generated request schemas and live examples."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.http_io import JSON
from serving.schemas import BATCH_FIELD, ROW_SCHEMA, RequestSchema

# A function returning one example row (keys of a known entity, a served date), None if unknown.
ExampleRow = Callable[[], dict[str, Any] | None]
# A function returning the dates the served model answers for (None while no model is loaded).
ServedDates = Callable[[], list[str] | None]


def install_openapi(
    app: FastAPI, schema: RequestSchema, example_row: ExampleRow, served_dates: ServedDates
) -> None:
    """Serve an OpenAPI document describing the live model: its served dates and a working example.

    The date window moves with each new version, so the document is built per request from the
    version in service: the date field lists exactly the dates that version answers for, and a
    schema-valid request is one the service accepts.
    """
    base: dict[str, Any] = {}

    def document() -> dict[str, Any]:
        if not base:
            built = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            built.setdefault("components", {}).setdefault("schemas", {}).update(schema.json_schemas())
            base.update(built)
        out = copy.deepcopy(base)
        dates = served_dates()
        if dates:
            row_schema = out["components"]["schemas"][ROW_SCHEMA]
            row_schema["properties"][schema.timestamp_field]["enum"] = dates
        row = example_row()
        if row is not None:
            _example(out, "/predict", row)
            _example(out, "/predict/batch", {BATCH_FIELD: [row, row]})
        return out

    app.openapi = document  # type: ignore[method-assign]


def _example(document: dict[str, Any], path: str, value: dict[str, Any]) -> None:
    content = document["paths"][path]["post"]["requestBody"]["content"][JSON]
    content["examples"] = {
        "served": {"summary": "an entity and a date the served model covers", "value": value}
    }
