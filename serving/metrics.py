"""Prometheus metrics of the service (prometheus-client), one registry per app.

Multi-worker: with PROMETHEUS_MULTIPROC_DIR set (`retrain serve --workers N` sets it), every worker
writes its values to files there and /metrics aggregates them (counters and histograms summed, the
gauges report the most recent value any worker set). With one worker the in-process registry is used.

`model_predictions_total` counts requests to the predict endpoints (a batch is one), labelled with the
served version, the endpoint and the HTTP status code, so "5xx share" is one PromQL ratio.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# 0.5 ms .. 1 s: the fast path answers in ~1 ms, a slow batch in tens of ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
NO_VERSION = "none"


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """Observe many values at once: one bucket count per bucket instead of one observe per value."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    values = values[np.isfinite(values)]
    if bounds is None or buckets is None or total is None or len(values) < 4:
        for value in values.tolist():
            histogram.observe(value)
        return
    # observe() puts a value in the first bucket whose bound is >= the value: searchsorted 'left'.
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    total.inc(float(values.sum()))
    for index in np.flatnonzero(counts).tolist():
        buckets[index].inc(float(counts[index]))


class ServingMetrics:
    """The metric objects and how /metrics renders them."""

    def __init__(self, prediction_buckets: tuple[float, ...], multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        registry = self.registry
        self.predictions = Counter(
            "model_predictions",
            "Prediction requests by served model version, endpoint and HTTP status code.",
            ["model_version", "endpoint", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "model_prediction_latency_seconds",
            "Time to answer a prediction request, from the body read to the response bytes.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.values = Histogram(
            "model_prediction_value",
            "Predicted values (every row of every request).",
            buckets=tuple(sorted(set(prediction_buckets))),
            registry=registry,
        )
        self.info = Gauge(
            "model_info",
            "The served model: 1 for the version in service.",
            ["name", "version", "run_id"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.reloads = Counter(
            "model_reloads", "Model loads by result (success, error).", ["result"], registry=registry
        )
        self.last_reload = Gauge(
            "model_last_reload_timestamp_seconds",
            "Unix time of the last successful model load.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.registry_up = Gauge(
            "model_registry_up",
            "1 when the last poll of the model registry succeeded, else 0.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.snapshot_date = Gauge(
            "model_feature_snapshot_date_seconds",
            "Unix time (00:00 UTC) of the day of the feature snapshot in use; dates after it are served.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.snapshot_online = Gauge(
            "model_feature_snapshot_online",
            "1 when the dataset's online feature snapshot is in use, 0 for the one logged with the model.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.snapshot_reloads = Counter(
            "model_feature_snapshot_reloads",
            "Swaps to a newer online feature snapshot beside the served version, by result (success, error).",
            ["result"],
            registry=registry,
        )
        self.log_write_errors = Counter(
            "prediction_log_write_errors",
            "Failed writes of the prediction log (the requests themselves succeeded).",
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._info_labels: tuple[str, str, str] | None = None

    def record_request(
        self, version: str, endpoint: str, status: int, seconds: float, predictions: np.ndarray | None
    ) -> None:
        """Count one predict request, its latency and (on success) its predicted values."""
        key = (version, endpoint, str(status))
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.predictions.labels(*key)
        counter.inc()
        latency = self._latency_children.get(endpoint)
        if latency is None:
            latency = self._latency_children[endpoint] = self.latency.labels(endpoint)
        latency.observe(seconds)
        if predictions is not None:
            observe_many(self.values, predictions)

    def model_loaded(self, name: str, version: int, run_id: str | None) -> None:
        """Point model_info at a newly served version and count the reload."""
        labels = (name, str(version), run_id or "")
        old = self._info_labels
        if old is not None and old != labels:
            # Multiprocess files cannot drop a series, so there the old version reads 0.
            if self.multiprocess_dir is None:
                self.info.remove(*old)
            else:
                self.info.labels(*old).set(0)
        self.info.labels(*labels).set(1)
        self._info_labels = labels
        self.reloads.labels("success").inc()
        self.last_reload.set(time.time())

    def snapshot_in_use(self, day: date, online: bool, swapped: bool = False) -> None:
        """Record the feature snapshot now feeding the served version (and count a swap to it)."""
        self.snapshot_date.set(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        self.snapshot_online.set(1 if online else 0)
        if swapped:
            self.snapshot_reloads.labels("success").inc()

    def snapshot_load_failed(self) -> None:
        """Count an online snapshot that could not be swapped in (the one in use keeps serving)."""
        self.snapshot_reloads.labels("error").inc()

    def model_load_failed(self) -> None:
        """Count a failed load (the previous version keeps serving)."""
        self.reloads.labels("error").inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (aggregated over workers in multiprocess mode)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
