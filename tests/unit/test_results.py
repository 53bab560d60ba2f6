"""Every stage result travels through XCom one way: `to_xcom` is JSON, `from_xcom` gives it back unchanged."""

from __future__ import annotations

import importlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrain.evaluate import EvaluationResult, ModelScores
from retrain.features import FeaturesResult, PartitionLineage
from retrain.ingest import IngestResult, PublishResult
from retrain.metrics import regression_metrics
from retrain.monitoring.drift import DriftRun
from retrain.monitoring.drift_alerts import DriftAlert, DriftSummary
from retrain.monitoring.realized import RealizedPerformance
from retrain.promote import RegisterResult
from retrain.publish import PipelineReport
from retrain.results import StageResult
from retrain.tasks import task_setup
from retrain.train import TrainResult
from retrain.validate import BatchRun, FailedExpectation, ValidationResult

DAY = date(2024, 3, 10)
STAGE_MODULES = (
    "retrain.ingest",
    "retrain.validate",
    "retrain.features",
    "retrain.train",
    "retrain.evaluate",
    "retrain.promote",
    "retrain.publish",
    "retrain.monitoring.drift",
    "retrain.monitoring.realized",
)
METRICS = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
SCORES = ModelScores(overall=METRICS, slices={"store_type": {"a": METRICS, "b": METRICS}})
STAGED = IngestResult(
    day=DAY,
    rows=12,
    path=Path("/data/staging/date=2024-03-10/part.parquet"),
    sources=("/data/landing/date=2024-03-10/part.csv",),
    uncoerced_columns=("price",),
    extra_columns=(),
    missing_columns=("promo",),
)
PUBLISHED = PublishResult(
    day=DAY, rows=12, path=Path("/data/curated/date=2024-03-10/part.parquet"), sha256="ab" * 32
)
VALIDATED = ValidationResult(
    day=DAY,
    success=False,
    rows=12,
    failures=(
        FailedExpectation(name="not_null(price)", expectation_type="x", column="price", observed="1 of 12"),
    ),
    result_path=Path("/gx/uncommitted/validations/r.json"),
    data_docs_index=None,
    parameters={"row_count_min": 1, "row_count_max": None, "partition_date": "2024-03-10T00:00:00"},
    seconds=0.25,
    published=PUBLISHED,
    date_problems=("column date: 1 value(s) do not match",),
    quarantined=Path("/data/quarantine/date=2024-03-10"),
)
TRAINED = TrainResult(
    day=DAY,
    run_id="abc123",
    model_uri="runs:/abc123/model",
    data_start=date(2023, 3, 11),
    data_end=DAY,
    holdout_start=date(2024, 2, 26),
    holdout_days=14,
    train_rows=1000,
    holdout_rows=50,
    candidate=METRICS.to_dict(),
    baseline=METRICS.to_dict(),
    fit_seconds=1.5,
    baselines={"persistence": METRICS.to_dict()},
    best_baseline="persistence",
)
EVALUATED = EvaluationResult(
    train=TRAINED,
    candidate=SCORES,
    baseline=SCORES,
    production=SCORES,
    production_version=3,
    production_data_end=date(2024, 3, 9),
    holdout_rows=50,
    baselines={"persistence": SCORES, "seasonal_naive": SCORES},
    best_baseline="persistence",
)
REGISTERED = RegisterResult(
    day=DAY,
    version=4,
    outcome="rejected",
    production_version=3,
    previous_version=2,
    failed_gates=("freshness",),
    report={"passed": False, "gates": [{"name": "freshness", "passed": False}]},
    candidate_rmse=METRICS.rmse,
)
INPUT_CHECK = DriftSummary(
    dataset="retail",
    day=DAY,
    kind="input",
    model_version=3,
    reference="curated 2023-03-11..2024-03-09",
    window_start=date(2024, 3, 4),
    window_end=DAY,
    days_with_data=7,
    rows=10,
    reference_rows=1000,
    min_rows=500,
    share_threshold=0.5,
    feature_threshold=0.1,
    key_features=("price",),
    summary_path="/data/reports/drift/date=2024-03-10/input_drift.json",
)
EXAMPLES: dict[type[StageResult], StageResult] = {
    IngestResult: STAGED,
    PublishResult: PUBLISHED,
    FailedExpectation: VALIDATED.failures[0],
    ValidationResult: VALIDATED,
    BatchRun: BatchRun(staged=STAGED, validation=VALIDATED),
    PartitionLineage: PartitionLineage(day=DAY, rows=12, sha256="cd" * 32),
    FeaturesResult: FeaturesResult(
        day=DAY,
        train_path=Path("/data/features/date=2024-03-10/train.parquet"),
        snapshot_path=Path("/data/features/date=2024-03-10/snapshot.parquet"),
        manifest_path=Path("/data/features/date=2024-03-10/manifest.json"),
        train_rows=1000,
        snapshot_entities=20,
        train_start=date(2023, 3, 11),
        train_end=DAY,
        feature_names=("lag_1", "lag_7"),
        partitions=(PartitionLineage(day=DAY, rows=12, sha256="cd" * 32),),
        vocabulary={"store_type": ("a", "b")},
        online_snapshot_date=DAY,
    ),
    TrainResult: TRAINED,
    ModelScores: SCORES,
    EvaluationResult: EVALUATED,
    RegisterResult: REGISTERED,
    PipelineReport: PipelineReport(
        dataset="retail",
        day=DAY,
        rows_ingested=12,
        version=4,
        outcome="rejected",
        candidate_rmse=METRICS.rmse,
        production_version=3,
        task_seconds={"ingest": 0.5},
        pushed=True,
    ),
    DriftRun: DriftRun(
        day=DAY,
        checks=(INPUT_CHECK, INPUT_CHECK.model_copy(update={"kind": "predictions"})),
        alert=DriftAlert(day=DAY, alert=True, reasons=("price drifted",), subject="[retrain] drift"),
    ),
    RealizedPerformance: RealizedPerformance(
        dataset="retail",
        day=DAY,
        actuals_source="/data/curated/date=2024-03-10/part.parquet",
        logged_rows=10,
        evaluated_rows=8,
        unmatched_rows=2,
        superseded_rows=0,
        model_versions=(3, 4),
        metrics=METRICS,
        max_wape=0.1,
        notes=("a note",),
    ),
}


def _every_result_class() -> set[type[StageResult]]:
    for name in STAGE_MODULES:
        importlib.import_module(name)
    found: set[type[StageResult]] = set()
    todo = list(StageResult.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("retrain.") and cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return found


def test_every_stage_result_has_an_example() -> None:
    assert _every_result_class() <= set(EXAMPLES), "add an example of the new result to EXAMPLES"


@pytest.mark.parametrize("result", list(EXAMPLES.values()), ids=[c.__name__ for c in EXAMPLES])
def test_stage_result_round_trips_through_json_xcom(result: StageResult) -> None:
    wire = json.loads(json.dumps(result.to_xcom()))  # what XCom stores: plain JSON, nothing else
    back = type(result).from_xcom(wire)
    assert back == result
    assert back.to_xcom() == wire


def test_dates_and_paths_travel_as_strings_and_come_back_typed() -> None:
    wire = EVALUATED.to_xcom()
    assert wire["train"]["day"] == "2024-03-10" and wire["production_data_end"] == "2024-03-09"
    assert STAGED.to_xcom()["path"] == "/data/staging/date=2024-03-10/part.parquet"
    back = EvaluationResult.from_xcom(wire)
    assert back.train.day == DAY and back.day == DAY
    assert IngestResult.from_xcom(STAGED.to_xcom()).path == STAGED.path


def test_stage_results_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        STAGED.rows = 1  # type: ignore[misc]


def test_xcom_keys_the_dag_publish_and_cli_read_stay() -> None:
    wire = REGISTERED.to_xcom()
    assert {"version", "outcome", "production_version", "failed_gates", "candidate_rmse"} <= set(wire)
    drift = EXAMPLES[DriftRun].to_xcom()
    assert {"day", "checks", "alert", "report_folder"} <= set(drift)
    assert [c["kind"] for c in drift["checks"]] == ["input", "predictions"]


def test_from_xcom_ignores_what_a_task_adds_around_the_result() -> None:
    wire: dict[str, Any] = {**REGISTERED.to_xcom(), "timings": {"train": 1.0}, "rows_ingested": 12}
    assert RegisterResult.from_xcom(wire) == REGISTERED


def test_task_setup_reads_settings_spec_day_and_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAIN_SPEC", raising=False)
    setup = task_setup({"params": {"date": "2024-03-10", "promote": False}})
    assert setup.day == DAY and setup.params["promote"] is False
    assert setup.spec.name and setup.settings.spec.name.endswith(".yaml")
