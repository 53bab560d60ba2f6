"""HTTP plumbing shared by the routes, the app's error handlers and the OpenAPI document.

Request ids, bounded body reads, the ErrorResponse body and the one mapping from serving errors to
HTTP status codes (nothing below the routes knows status codes).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from serving import messages
from serving.errors import (
    FieldProblem,
    InvalidRequestError,
    ModelLoadError,
    ModelUnavailableError,
    RegistryUnavailableError,
    ServingError,
)
from serving.schemas import field_path

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
JSON = "application/json"
_KIND_STATUS = {"malformed": 400, "too_large": 413, "invalid": 422}


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


def install_error_handlers(app: FastAPI) -> None:
    """422 for parameters FastAPI validates (query, headers), 500 with a request id for anything unexpected."""

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
