"""The prediction service: parse -> features -> predict -> log -> response bytes, for one row or a batch.

This is the hot path: one pass of pydantic-core over the request bytes, feature rows gathered from
tables precomputed at load time, the booster's in-place predict, one orjson call. No pandas, no
MLflow, no I/O (the log is appended in memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import orjson

from serving import messages
from serving.errors import FieldProblem, InvalidRequestError
from serving.metrics import NO_VERSION
from serving.model_store import LoadedModel, ModelStore
from serving.prediction_log import LogChunk, PredictionLog
from serving.schemas import BATCH_FIELD, RequestSchema

MAX_DATE_PROBLEMS = 20


@dataclass(frozen=True, eq=False)
class Prediction:
    """A served request: the response body, the version that answered, the predicted values."""

    body: bytes
    version_label: str
    predictions: np.ndarray


class PredictionService:
    """Answers predict requests with whatever version the store serves at the time the request starts."""

    def __init__(self, store: ModelStore, schema: RequestSchema, prediction_log: PredictionLog) -> None:
        self.store = store
        self.schema = schema
        self.prediction_log = prediction_log
        self._date = schema.timestamp_field
        self._fields = schema.fields
        # Called when the log buffer is over its size; the app points it at its flusher's wake-up event.
        self.on_log_full: Callable[[], None] = _nothing

    def served_label(self) -> str:
        """The served version as a metric label ("none" while no model is loaded)."""
        current = self.store.current
        return current.label if current else NO_VERSION

    def predict_row(self, body: bytes, request_id: str) -> Prediction:
        """One row: {"store_id": ..., "date": ..., ...}."""
        loaded = self.store.require_current()
        row = self.schema.parse_row(body)
        columns = {name: [row[name]] for name in self._fields}
        rows = loaded.features.build(columns, columns[self._date])
        if not rows.in_window[0]:
            raise InvalidRequestError([self._outside(self._date, row[self._date], loaded)])
        predictions = loaded.predictor.predict(rows.matrix)
        self._log(request_id, loaded, "predict", columns, predictions, rows.known_entity)
        payload = {
            "request_id": request_id,
            "model_name": loaded.name,
            "model_version": loaded.version,
            "prediction": float(predictions[0]),
            "known_entity": bool(rows.known_entity[0]),
            "horizon_days": int(rows.horizon_days[0]),
        }
        return Prediction(orjson.dumps(payload), loaded.label, predictions)

    def predict_batch(self, body: bytes, request_id: str) -> Prediction:
        """Many rows: {"rows": [{...}, ...]}; predictions come back in row order."""
        loaded = self.store.require_current()
        parsed = self.schema.parse_batch(body)
        columns = self.schema.columns(parsed)
        rows = loaded.features.build(columns, columns[self._date])
        if not rows.in_window.all():
            bad = np.flatnonzero(~rows.in_window)
            problems = [
                self._outside(f"{BATCH_FIELD}[{i}].{self._date}", parsed[i][self._date], loaded)
                for i in bad[:MAX_DATE_PROBLEMS].tolist()
            ]
            if len(bad) > MAX_DATE_PROBLEMS:
                problems.append(
                    FieldProblem(BATCH_FIELD, messages.too_many_errors(MAX_DATE_PROBLEMS, len(bad)), "many")
                )
            raise InvalidRequestError(problems)
        predictions = loaded.predictor.predict(rows.matrix)
        self._log(request_id, loaded, "predict_batch", columns, predictions, rows.known_entity)
        payload = {
            "request_id": request_id,
            "model_name": loaded.name,
            "model_version": loaded.version,
            "predictions": predictions,
            "known_entity": rows.known_entity,
            "horizon_days": rows.horizon_days,
        }
        return Prediction(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), loaded.label, predictions)

    def _log(
        self,
        request_id: str,
        loaded: LoadedModel,
        endpoint: str,
        columns: dict[str, list[Any]],
        predictions: np.ndarray,
        known: np.ndarray,
    ) -> None:
        chunk = LogChunk(request_id, time.time(), loaded.version, endpoint, columns, predictions, known)
        if self.prediction_log.append(chunk):
            self.on_log_full()

    @staticmethod
    def _outside(field: str, value: date, loaded: LoadedModel) -> FieldProblem:
        features = loaded.features
        text = messages.date_outside_horizon(value, features.first_date, features.last_date, loaded.version)
        return FieldProblem(field, text, "date_out_of_window")


def _nothing() -> None:
    pass
