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

    from retrain.monitoring.drift_summary import DriftSummary

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
    """Push per-feature scores, drift share, the 0/1 dataset drift flag and the target's score.

    A window with too few rows pushes ``model_drift_insufficient_data`` 1 and its row count but no
    scores or share: the push replaces the group, so yesterday's share does not linger and
    DataDriftDetected cannot fire on a window nobody could judge.
    Returns None when pushed, else why not (no Pushgateway configured, or the push failed).
    """
    if not settings.pushgateway_url:
        log.info("no pushgateway configured (RETRAIN_PUSHGATEWAY_URL); drift metrics not pushed")
        return NOT_CONFIGURED
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    dataset = summary.dataset

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, ["dataset"], registry=registry).labels(dataset=dataset).set(value)

    gauge(
        "model_drift_insufficient_data",
        "1 when the last drift check's window had fewer rows than drift.min_rows (no verdict).",
        1 if summary.insufficient_data else 0,
    )
    gauge("model_drift_current_rows", "Rows in the last drift check's current window.", summary.rows)
    gauge("model_drift_check_timestamp_seconds", "Unix time of the last drift check.", time.time())
    if not summary.insufficient_data and summary.share is not None:
        scores = Gauge(
            "model_feature_drift_score",
            "Drift score per feature in the last drift check (Wasserstein normed / Jensen-Shannon; "
            "higher drifts).",
            ["dataset", "feature"],
            registry=registry,
        )
        for feature in summary.features:
            scores.labels(dataset=dataset, feature=feature.column).set(feature.score)
        gauge("model_drift_share", "Share of drifted features in the last drift check.", summary.share)
        gauge(
            "model_dataset_drift",
            "1 when the share of drifted features reached the spec's share_threshold.",
            1 if summary.dataset_drift else 0,
        )
        if summary.target is not None:
            gauge(
                "model_target_drift_score",
                "Drift score of the realised target over the last drift check's window.",
                summary.target.score,
            )
    stage = None if summary.kind == "input" else PREDICTIONS_STAGE
    return push_registry(settings, registry, stage, dataset)


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
