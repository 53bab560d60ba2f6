"""The OpenAPI document: FastAPI's, plus the spec-generated request schemas and live examples."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.routes import JSON
from serving.schemas import BATCH_FIELD, RequestSchema

# A function returning one example row (keys of a known entity, a served date), None if unknown.
ExampleRow = Callable[[], dict[str, Any] | None]


def install_openapi(app: FastAPI, schema: RequestSchema, example_row: ExampleRow) -> None:
    """Serve an OpenAPI document whose examples use an entity and a date the current model serves."""
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
