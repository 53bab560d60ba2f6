"""Drift and realized-performance gauges on the Pushgateway (job ``retrain_drift``, label ``dataset``).

Input drift goes to grouping key ``dataset``, the prediction log's drift to ``dataset`` +
``stage="predictions"`` and realized metrics to ``stage="actuals"``, so no push replaces another
(a Pushgateway push replaces its whole group). Names match monitoring/prometheus/rules and the
Grafana dashboards; tests/drift checks they stay in sync.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from retrain.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from retrain.drift_alerts import DriftSummary

log = logging.getLogger(__name__)

PUSH_JOB = "retrain_drift"
PREDICTIONS_STAGE = "predictions"
NOT_CONFIGURED = "no Pushgateway configured (RETRAIN_PUSHGATEWAY_URL)"


def grouping_key(dataset: str, stage: str | None = None) -> dict[str, str]:
    """Pushgateway group of a dataset's drift (stage None), prediction-log drift or actuals metrics."""
    return {"dataset": dataset} if stage is None else {"dataset": dataset, "stage": stage}


def push_registry(
    settings: Settings, registry: CollectorRegistry, stage: str | None, dataset: str
) -> str | None:
    """Push a registry to job retrain_drift under the dataset's (stage's) group; the error text on failure.

    A Pushgateway that is configured but down must not cost the day its report and email: the caller
    notes the error in its summary and the task log, and Prometheus sees stale metrics.
    """
    from prometheus_client import push_to_gateway

    assert settings.pushgateway_url is not None
    try:
        push_to_gateway(
            settings.pushgateway_url,
            job=PUSH_JOB,
            grouping_key=grouping_key(dataset, stage),
            registry=registry,
        )
    except OSError as exc:
        log.warning("push to pushgateway %s failed: %s", settings.pushgateway_url, exc)
        return f"metrics not pushed to {settings.pushgateway_url}: {exc}"
    return None


def push_drift_metrics(settings: Settings, summary: DriftSummary) -> str | None:
    """Push per-feature scores, drift share and the 0/1 dataset drift flag.

    Returns None when pushed, else why not (no Pushgateway configured, or the push failed).
    """
    if not settings.pushgateway_url:
        log.info("no pushgateway configured (RETRAIN_PUSHGATEWAY_URL); drift metrics not pushed")
        return NOT_CONFIGURED
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    scores = Gauge(
        "model_feature_drift_score",
        "Drift score per feature in the last drift check (Wasserstein normed / Jensen-Shannon; higher drifts).",
        ["dataset", "feature"],
        registry=registry,
    )
    for feature in summary.features:
        scores.labels(dataset=summary.dataset, feature=feature.column).set(feature.score)
    Gauge(
        "model_drift_share",
        "Share of drifted columns in the last drift check.",
        ["dataset"],
        registry=registry,
    ).labels(dataset=summary.dataset).set(summary.share)
    Gauge(
        "model_dataset_drift",
        "1 when the share of drifted columns reached the spec's share_threshold.",
        ["dataset"],
        registry=registry,
    ).labels(dataset=summary.dataset).set(1 if summary.dataset_drift else 0)
    Gauge(
        "model_drift_check_timestamp_seconds",
        "Unix time of the last drift check.",
        ["dataset"],
        registry=registry,
    ).labels(dataset=summary.dataset).set(time.time())
    stage = None if summary.kind == "input" else PREDICTIONS_STAGE
    return push_registry(settings, registry, stage, summary.dataset)


def clear_prediction_drift_metrics(settings: Settings, dataset: str) -> bool:
    """Delete yesterday's prediction-log drift group when today has no prediction log."""
    if not settings.pushgateway_url:
        return False
    from prometheus_client import delete_from_gateway

    try:
        delete_from_gateway(
            settings.pushgateway_url, job=PUSH_JOB, grouping_key=grouping_key(dataset, PREDICTIONS_STAGE)
        )
    except OSError as exc:
        log.warning("could not delete the prediction drift group from %s: %s", settings.pushgateway_url, exc)
        return False
    return True
