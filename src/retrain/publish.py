"""Publish stage: pipeline metrics to the Prometheus Pushgateway (when configured)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

from pydantic import Field

from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

if TYPE_CHECKING:
    from retrain.promote import RegisterResult

log = logging.getLogger(__name__)

PUSH_JOB = "retrain_pipeline"


class PipelineReport(StageResult):
    """What one daily run did, as pushed to Prometheus, and whether the push happened."""

    dataset: str
    day: date
    rows_ingested: int
    version: int
    outcome: str
    candidate_rmse: float
    production_version: int | None
    task_seconds: dict[str, float] = Field(default_factory=dict)
    pushed: bool = False


def run(
    settings: Settings,
    spec: DatasetSpec,
    day: date,
    *,
    registered: RegisterResult,
    rows_ingested: int = 0,
    task_seconds: Mapping[str, float] | None = None,
) -> PipelineReport:
    """Report the run (rows, gate outcome, production version, task durations) to the Pushgateway."""
    report = PipelineReport(
        dataset=spec.name,
        day=day,
        rows_ingested=rows_ingested,
        version=registered.version,
        outcome=registered.outcome,
        candidate_rmse=registered.candidate_rmse,
        production_version=registered.production_version,
        task_seconds=dict(task_seconds or {}),
    )
    return report.model_copy(update={"pushed": push_pipeline_metrics(settings, report)})


def push_pipeline_metrics(settings: Settings, report: PipelineReport) -> bool:
    """Push the run's metrics to the Pushgateway; returns False (and logs) when none is configured."""
    if not settings.pushgateway_url:
        log.info("no pushgateway configured (RETRAIN_PUSHGATEWAY_URL); pipeline metrics not pushed")
        return False
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    labels = {"dataset": report.dataset}
    Gauge(
        "retrain_pipeline_last_success_timestamp_seconds",
        "Unix time of the last successful daily pipeline run.",
        ["dataset"],
        registry=registry,
    ).labels(**labels).set(time.time())
    Gauge(
        "retrain_pipeline_run_date_timestamp_seconds",
        "Run date of the last run.",
        ["dataset"],
        registry=registry,
    ).labels(**labels).set(time.mktime(report.day.timetuple()))
    Gauge(
        "retrain_rows_ingested", "Rows published to curated by the last run.", ["dataset"], registry=registry
    ).labels(**labels).set(report.rows_ingested)
    Gauge(
        "retrain_candidate_holdout_rmse",
        "Holdout RMSE of the last candidate.",
        ["dataset"],
        registry=registry,
    ).labels(**labels).set(report.candidate_rmse)
    Gauge(
        "retrain_production_model_version",
        "Version holding the production alias.",
        ["dataset"],
        registry=registry,
    ).labels(**labels).set(report.production_version or 0)
    outcome = Gauge(
        "retrain_last_gate_outcome",
        "1 for the outcome of the last run's gates.",
        ["dataset", "outcome"],
        registry=registry,
    )
    for name in ("promoted", "rejected", "registered"):
        outcome.labels(dataset=report.dataset, outcome=name).set(1 if name == report.outcome else 0)
    durations = Gauge(
        "retrain_pipeline_task_duration_seconds",
        "Duration of each task of the last run.",
        ["dataset", "task"],
        registry=registry,
    )
    for task, seconds in report.task_seconds.items():
        durations.labels(dataset=report.dataset, task=task).set(seconds)
    push_to_gateway(
        settings.pushgateway_url, job=PUSH_JOB, grouping_key={"dataset": report.dataset}, registry=registry
    )
    return True


def push_validation_metrics(settings: Settings, dataset: str, quarantined_batches: int, failed: bool) -> bool:
    """Push validation outcome under its own grouping key (a push replaces its whole group)."""
    if not settings.pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    # Counted from quarantine/ so it never goes down across pushes: one folder per failed batch.
    Gauge(
        "retrain_validation_failures_total",
        "Batches that failed validation (quarantined).",
        ["dataset"],
        registry=registry,
    ).labels(dataset=dataset).set(quarantined_batches)
    Gauge(
        "retrain_last_validation_failed",
        "1 when the last validated batch failed.",
        ["dataset"],
        registry=registry,
    ).labels(dataset=dataset).set(1 if failed else 0)
    push_to_gateway(
        settings.pushgateway_url,
        job=PUSH_JOB,
        grouping_key={"dataset": dataset, "stage": "validate"},
        registry=registry,
    )
    return True
