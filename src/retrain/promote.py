"""Register stage: register the candidate, smoke-test it, apply the promotion gates, move the aliases."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any, Literal

from retrain.evaluate import EvaluationResult
from retrain.gates import GateContext, GateReport, evaluate_gates
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

log = logging.getLogger(__name__)

Outcome = Literal["promoted", "rejected", "registered"]


class RegisterResult(StageResult):
    """The version registered for a run date, what the gates decided, and where production points now."""

    day: date
    version: int
    outcome: Outcome
    production_version: int | None
    previous_version: int | None
    failed_gates: tuple[str, ...]
    report: dict[str, Any]
    candidate_rmse: float


def gate_context(spec: DatasetSpec, evaluation: EvaluationResult, smoke: tuple[bool, str]) -> GateContext:
    """The gates' input, built from the evaluation and the smoke test."""
    production = evaluation.production
    return GateContext(
        candidate=evaluation.candidate.overall,
        baselines=evaluation.baseline_overall(),
        production=production.overall if production else None,
        candidate_slices=evaluation.candidate.slices,
        production_slices=production.slices if production else None,
        candidate_data_end=evaluation.train.data_end,
        production_data_end=evaluation.production_data_end,
        smoke_test_passed=smoke[0],
        smoke_test_message=smoke[1],
        thresholds=spec.gates,
    )


def version_tags(evaluation: EvaluationResult) -> dict[str, str]:
    """Tags every registered version carries: data interval, run date, headline metrics, every baseline's RMSE."""
    trained = evaluation.train
    from retrain.tracking import code_version

    return {
        "data_start": trained.data_start.isoformat(),
        "data_end": trained.data_end.isoformat(),
        "run_date": trained.day.isoformat(),
        "holdout_start": trained.holdout_start.isoformat(),
        "code_version": code_version(),
        "validation": "passed",
        "holdout.rmse": f"{evaluation.candidate.overall.rmse:.6g}",
        "holdout.wape": f"{evaluation.candidate.overall.wape:.6g}",
        "baseline.rmse": f"{evaluation.baseline.overall.rmse:.6g}",
        "baseline.best": evaluation.best_baseline,
        **{f"baseline.{name}.rmse": f"{m.rmse:.6g}" for name, m in evaluation.baseline_overall().items()},
    }


def run(
    settings: Settings,
    spec: DatasetSpec,
    day: date,
    *,
    evaluation: EvaluationResult,
    allow_promotion: bool = True,
    actor: str = "retrain_daily",
) -> RegisterResult:
    """Register the candidate (alias `candidate`), run the gates, and promote only if every gate passes."""
    from retrain.registry import ModelRegistry

    if evaluation.day != day:
        raise ValueError(f"the evaluation is of the candidate for {evaluation.day}, not {day}")
    registry = ModelRegistry(settings, spec.model_name)
    trained = evaluation.train
    version = registry.register(trained.model_uri, trained.run_id, version_tags(evaluation))
    smoke = registry.smoke_test(version)
    report: GateReport = evaluate_gates(gate_context(spec, evaluation, smoke))
    registry.record_gate_report(version, report.to_json(), report.to_tags())
    log.info("gates for %s v%d (run date %s):\n%s", spec.model_name, version, trained.day, report.summary())

    outcome: Outcome = "rejected"
    if report.passed and allow_promotion:
        registry.promote(version, actor=actor, reason=f"all gates passed for run date {trained.day}")
        outcome = "promoted"
    elif report.passed:
        outcome = "registered"
        log.info("v%d passed every gate but promotion is disabled for this run", version)
    production = registry.production()
    previous = registry.alias("previous")
    return RegisterResult(
        day=trained.day,
        version=version,
        outcome=outcome,
        production_version=production.version if production else None,
        previous_version=previous.version if previous else None,
        failed_gates=tuple(report.failed),
        report=json.loads(report.to_json()),
        candidate_rmse=evaluation.candidate.overall.rmse,
    )
