"""The prediction log: every served row appended, buffered in memory, written as Parquet in the background.

Requests only append a reference to their columns (no I/O on the hot path). A flush, run every
RETRAIN_SERVING_LOG_FLUSH_SECONDS in a worker thread and once more at shutdown, writes one file per
requested date: `predictions/date=D/part-<uuid>.parquet`, D being the date the row asks a forecast
for, so realised actuals of D join one partition. A failed write is counted in
`prediction_log_write_errors_total` and logged; it never fails a request.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retrain.feature_snapshot import write_atomically
from retrain.layout import DatasetLayout
from retrain.spec import ColumnType, DatasetSpec

log = logging.getLogger(__name__)

_ARROW_TYPES = {
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOL: pa.bool_(),
    ColumnType.STRING: pa.string(),
    ColumnType.DATE: pa.date32(),
}


@dataclass(frozen=True, eq=False)
class LogChunk:
    """The rows of one request: its inputs as columns and what the model answered."""

    request_id: str
    timestamp: float
    model_version: int
    endpoint: str
    columns: dict[str, list[Any]]
    predictions: np.ndarray
    known_entity: np.ndarray


def log_schema(spec: DatasetSpec, fields: Sequence[str]) -> pa.Schema:
    """Columns of the log: request id, time, version, the request fields, prediction, flags, endpoint."""
    inputs = [pa.field(name, _ARROW_TYPES[spec.columns[name].type]) for name in fields]
    return pa.schema(
        [
            pa.field("request_id", pa.string()),
            pa.field("timestamp", pa.timestamp("us", tz="UTC")),
            pa.field("model_version", pa.int64()),
            *inputs,
            pa.field("prediction", pa.float64()),
            pa.field("known_entity", pa.bool_()),
            pa.field("endpoint", pa.string()),
        ]
    )


class PredictionLog:
    """Buffered, thread-safe appender of LogChunks; `flush` writes them and returns the rows written."""

    def __init__(
        self,
        layout: DatasetLayout,
        spec: DatasetSpec,
        fields: Sequence[str],
        on_write_error: Callable[[], None],
        max_buffered_rows: int,
        enabled: bool = True,
    ) -> None:
        self.layout = layout
        self.fields = tuple(fields)
        self.date_field = spec.timestamp_column
        self.schema = log_schema(spec, self.fields)
        self.enabled = enabled
        self.max_buffered_rows = max_buffered_rows
        self._on_write_error = on_write_error
        self._lock = threading.Lock()
        self._chunks: list[LogChunk] = []
        self._rows = 0
        self._flush_lock = threading.Lock()
        self.rows_written = 0
        self.rows_lost = 0

    def append(self, chunk: LogChunk) -> bool:
        """Buffer one request's rows; True when the buffer is over its size and should be flushed early."""
        if not self.enabled:
            return False
        with self._lock:
            self._chunks.append(chunk)
            self._rows += len(chunk.predictions)
            return self._rows >= self.max_buffered_rows

    @property
    def buffered_rows(self) -> int:
        """Rows waiting for the next flush."""
        return self._rows

    def flush(self) -> int:
        """Write every buffered row (one file per requested date); failures are counted, never raised."""
        with self._flush_lock:
            with self._lock:
                chunks, self._chunks, self._rows = self._chunks, [], 0
            if not chunks:
                return 0
            try:
                table = self._table(chunks)
            except Exception:
                log.exception("prediction log: could not assemble %d chunks; rows dropped", len(chunks))
                self._lost(sum(len(c.predictions) for c in chunks))
                return 0
            written = 0
            for day, part in self._by_date(table):
                target = self.layout.predictions_partition(day) / f"part-{uuid.uuid4().hex}.parquet"
                try:
                    write_atomically(target, lambda path, part=part: pq.write_table(part, path))  # type: ignore[misc]
                except Exception as exc:
                    log.warning(
                        "prediction log: writing %d rows to %s failed: %s", part.num_rows, target, exc
                    )
                    self._lost(part.num_rows)
                    continue
                written += part.num_rows
            self.rows_written += written
            return written

    def _lost(self, rows: int) -> None:
        self.rows_lost += rows
        self._on_write_error()

    def _table(self, chunks: list[LogChunk]) -> pa.Table:
        # Runs beside the event loop and holds the GIL: per-chunk work stays in C (itertools, numpy,
        # pyarrow take) so a flush of a few thousand requests costs milliseconds, not tens of them.
        count = len(chunks)
        sizes = np.fromiter((len(c.predictions) for c in chunks), np.int64, count)
        owner = pa.array(np.repeat(np.arange(count), sizes))  # chunk of each row
        stamps = np.fromiter((c.timestamp for c in chunks), np.float64, count)
        micros = np.repeat(np.rint(stamps * 1_000_000).astype(np.int64), sizes)
        data: dict[str, Any] = {
            "request_id": pa.array([c.request_id for c in chunks], pa.string()).take(owner),
            "timestamp": pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "model_version": np.repeat(
                np.fromiter((c.model_version for c in chunks), np.int64, count), sizes
            ),
        }
        for name in self.fields:
            data[name] = list(chain.from_iterable(c.columns[name] for c in chunks))
        data["prediction"] = np.concatenate([c.predictions for c in chunks])
        data["known_entity"] = np.concatenate([c.known_entity for c in chunks])
        data["endpoint"] = pa.array([c.endpoint for c in chunks], pa.string()).take(owner)
        arrays = [
            pa.array(data[f.name], type=f.type) if not isinstance(data[f.name], pa.Array) else data[f.name]
            for f in self.schema
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _by_date(self, table: pa.Table) -> list[tuple[date, pa.Table]]:
        days = table[self.date_field]
        return [(day, table.filter(pc.equal(days, day))) for day in sorted(pc.unique(days).to_pylist())]
