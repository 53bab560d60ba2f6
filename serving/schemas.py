"""Request schemas generated from the dataset spec, and the fast JSON parsing path built on them.

A row has the entity keys, the date and the request-time features of the spec, typed and bounded as
the spec's columns declare; extra fields are forbidden, numbers must be finite, nothing is coerced
(strict mode: "3" is not an integer). Rows are TypedDicts validated straight from the request bytes
by pydantic-core (`TypeAdapter.validate_json`): one pass, no intermediate `json.loads`, no model objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError
from typing_extensions import TypedDict

from retrain.spec import ColumnSpec, ColumnType, DatasetSpec
from serving import messages
from serving.errors import FieldProblem, InvalidRequestError

ROW_SCHEMA = "PredictRequest"
BATCH_SCHEMA = "BatchPredictRequest"
BATCH_FIELD = "rows"
MAX_PROBLEMS = 20
_BOUND_ERRORS = frozenset({"greater_than_equal", "less_than_equal"})
_STRICT = ConfigDict(extra="forbid", strict=True)
# Field names come from the spec at run time, so the TypedDicts are built dynamically.
_typed_dict: Any = TypedDict


def _column_type(name: str, column: ColumnSpec, role: str) -> Any:
    """The annotated type of one request field from its spec column."""
    bounds: dict[str, Any] = {"description": f"{role} `{name}` ({column.type.value})"}
    if column.type in (ColumnType.INT, ColumnType.FLOAT):
        whole = column.type is ColumnType.INT
        if column.min is not None:
            bounds["ge"] = math.ceil(column.min) if whole else column.min
        if column.max is not None:
            bounds["le"] = math.floor(column.max) if whole else column.max
    base: Any
    if column.type is ColumnType.INT:
        whole = _whole_number(bounds)
        return whole | None if column.nullable else whole
    if column.type is ColumnType.FLOAT:
        base, bounds["allow_inf_nan"] = float, False
    elif column.type is ColumnType.BOOL:
        base = bool
    elif column.type is ColumnType.DATE:
        base = date
    elif column.allowed:
        base = Literal[tuple(column.allowed)]
    else:
        base, bounds["max_length"] = str, 256
    annotated = Annotated[base, Field(**bounds)]
    return annotated | None if column.nullable else annotated


def _exact_int(value: float) -> int:
    """1.0 -> 1; refuses any fractional part (pydantic's multiple_of has a tolerance: 1e-42 would pass)."""
    if not value.is_integer():
        raise PydanticCustomError(
            "int_from_float", "Input should be a valid integer, got a number with a fractional part"
        )
    return int(value)


def _whole_number(bounds: dict[str, Any]) -> Any:
    """An integer field: JSON integers, and numbers without a fractional part (JSON Schema's "integer"
    admits 1.0). Strings and booleans stay refused. The exact-int branch is tried first, so the usual
    request pays nothing for the float branch."""
    limits = {k: v for k, v in bounds.items() if k in ("ge", "le")}
    exact = Annotated[int, Field(**limits)]
    whole_float = Annotated[float, Field(allow_inf_nan=False, **limits), AfterValidator(_exact_int)]
    schema: dict[str, Any] = {"type": "integer", "description": bounds["description"]}
    if "ge" in limits:
        schema["minimum"] = limits["ge"]
    if "le" in limits:
        schema["maximum"] = limits["le"]
    return Annotated[exact | whole_float, WithJsonSchema(schema)]


def request_fields(spec: DatasetSpec) -> dict[str, Any]:
    """Field name -> annotated type: entity keys, the date, then the request-time features."""
    fields: dict[str, Any] = {k: _column_type(k, spec.columns[k], "Entity key") for k in spec.entity_keys}
    window = "Day to forecast (YYYY-MM-DD), within the served window (GET /model)"
    fields[spec.timestamp_column] = Annotated[date, Field(description=window)]
    for name in spec.features.request_time:
        if name not in fields:
            fields[name] = _column_type(name, spec.columns[name], "Request-time feature")
    return fields


@dataclass(frozen=True, eq=False)
class RequestSchema:
    """The row and batch request types of a spec, their validators and JSON schemas."""

    fields: tuple[str, ...]
    timestamp_field: str
    max_batch_rows: int
    row_adapter: TypeAdapter[Any]
    batch_adapter: TypeAdapter[Any]

    def parse_row(self, body: bytes) -> dict[str, Any]:
        """One validated row from a JSON body; InvalidRequestError naming the fields otherwise."""
        try:
            row: dict[str, Any] = self.row_adapter.validate_json(body)
        except ValidationError as exc:
            raise self._invalid(exc, ()) from None
        return row

    def parse_batch(self, body: bytes) -> list[dict[str, Any]]:
        """Validated rows from a JSON batch body ({"rows": [...]})."""
        try:
            parsed: dict[str, list[dict[str, Any]]] = self.batch_adapter.validate_json(body)
        except ValidationError as exc:
            raise self._invalid(exc, (BATCH_FIELD,)) from None
        return parsed[BATCH_FIELD]

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Rows as columns (field -> values), the shape feature assembly and the log take."""
        return {name: [row[name] for row in rows] for name in self.fields}

    def json_schemas(self) -> dict[str, Any]:
        """OpenAPI component schemas of the request bodies (references under #/components/schemas)."""
        template = "#/components/schemas/{model}"
        schemas = {}
        for adapter in (self.row_adapter, self.batch_adapter):
            schema = adapter.json_schema(ref_template=template)
            schemas.update(schema.pop("$defs", {}))
            schemas[schema["title"]] = schema
        return schemas

    def _invalid(self, exc: ValidationError, batch_loc: tuple[str, ...]) -> InvalidRequestError:
        errors = _one_error_per_field(exc.errors(include_url=False), len(batch_loc) + (2 if batch_loc else 1))
        kind = "invalid"
        if any(e["type"] == "json_invalid" for e in errors):
            kind = "malformed"
        elif batch_loc and any(e["type"] == "too_long" and tuple(e["loc"]) == batch_loc for e in errors):
            kind = "too_large"
        problems = [self._problem(e, batch_loc) for e in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            problems.append(FieldProblem("body", messages.too_many_errors(MAX_PROBLEMS, len(errors)), "many"))
        return InvalidRequestError(problems, kind=kind)

    def _problem(self, error: ErrorDetails, batch_loc: tuple[str, ...]) -> FieldProblem:
        kind = error["type"]
        field = field_path(error["loc"])
        if kind == "json_invalid":
            return FieldProblem(
                "body", messages.invalid_json(str(error.get("ctx", {}).get("error", ""))), kind
            )
        if kind == "too_long" and tuple(error["loc"]) == batch_loc:
            rows = error.get("ctx", {}).get("actual_length")
            return FieldProblem(field, messages.batch_too_large(rows, self.max_batch_rows), kind)
        if kind == "extra_forbidden":
            allowed = self.fields if not batch_loc or len(error["loc"]) > 1 else batch_loc
            return FieldProblem(field, messages.extra_field(allowed), kind)
        if kind == "missing":
            return FieldProblem(field, messages.missing_field(), kind)
        return FieldProblem(field, f"{error['msg']} (got {_short(error.get('input'))})", kind)


def _one_error_per_field(errors: list[ErrorDetails], field_depth: int) -> list[ErrorDetails]:
    """Errors located at the request field (union branch names cut off), the first one per field.

    An integer field is a union (exact int | whole float): a bad value fails both branches, and the
    client needs one message for `promo`, not one per branch (`promo.constrained-int`, ...).
    """
    kept: dict[tuple[int | str, ...], ErrorDetails] = {}
    for error in errors:
        loc = tuple(error["loc"][:field_depth])
        # A bound beats "not an integer": -1.0 for a field >= 0 is out of range, whatever its spelling.
        if loc not in kept or (error["type"] in _BOUND_ERRORS and kept[loc]["type"] not in _BOUND_ERRORS):
            kept[loc] = {**error, "loc": loc}
    return list(kept.values())


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A pydantic error location as a client reads it: rows[3].price, date, or body for the root."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_request_schema(spec: DatasetSpec, max_batch_rows: int) -> RequestSchema:
    """Row and batch request types generated from the spec's keys, date and request-time features."""
    fields = request_fields(spec)
    row_type = _typed_dict(ROW_SCHEMA, fields)
    row_type.__pydantic_config__ = _STRICT
    row_type.__doc__ = "One row to predict: entity keys, the date and the request-time features."
    rows = Annotated[list[row_type], Field(min_length=1, max_length=max_batch_rows)]  # type: ignore[valid-type]
    batch_type = _typed_dict(BATCH_SCHEMA, {BATCH_FIELD: rows})
    batch_type.__pydantic_config__ = _STRICT
    batch_type.__doc__ = f"Up to {max_batch_rows} rows to predict in one call."
    return RequestSchema(
        fields=tuple(fields),
        timestamp_field=spec.timestamp_column,
        max_batch_rows=max_batch_rows,
        row_adapter=TypeAdapter(row_type),
        batch_adapter=TypeAdapter(batch_type),
    )


def example_row(spec: DatasetSpec, keys: Mapping[str, Any] | None, day: date) -> dict[str, Any]:
    """A plausible request row for the docs: given entity keys (else the columns' minimum) and a date."""
    row: dict[str, Any] = {}
    for name in request_fields(spec):
        column = spec.columns[name]
        if name == spec.timestamp_column:
            row[name] = day.isoformat()
        elif keys is not None and name in keys:
            row[name] = keys[name]
        elif column.type in (ColumnType.INT, ColumnType.FLOAT):
            low = column.min if column.min is not None else 0.0
            high = column.max if column.max is not None else max(low, 1.0)
            value = min(max(1.0, low), high)
            row[name] = int(value) if column.type is ColumnType.INT else value
        elif column.type is ColumnType.BOOL:
            row[name] = False
        elif column.type is ColumnType.DATE:
            row[name] = day.isoformat()
        else:
            row[name] = (column.allowed or ["a"])[0]
    return row
