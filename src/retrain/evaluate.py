"""Evaluate stage: candidate, current production and every baseline on the same holdout, overall and per slice."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pandas as pd
from pydantic import Field

from retrain.baselines import all_baseline_predictions, best_baseline
from retrain.feature_maths import feature_names
from retrain.metrics import Metrics, SliceMetrics, flat_metrics, regression_metrics, slice_metrics
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec
from retrain.train import TrainResult, load_training_table, predict, time_split

log = logging.getLogger(__name__)


class ModelScores(StageResult):
    """One model's metrics on the shared holdout."""

    overall: Metrics
    slices: SliceMetrics


class EvaluationResult(StageResult):
    """Scores of candidate, baselines and (if any) production, plus what the gates need to know about them.

    `baseline` is the best baseline (lowest holdout RMSE), `baselines` every one the spec lists.
    """

    train: TrainResult
    candidate: ModelScores
    baseline: ModelScores
    production: ModelScores | None
    production_version: int | None
    production_data_end: date | None
    holdout_rows: int
    baselines: dict[str, ModelScores] = Field(default_factory=dict)
    best_baseline: str = "seasonal_naive"

    @property
    def day(self) -> date:
        """The run date the candidate was trained for."""
        return self.train.day

    def baseline_overall(self) -> dict[str, Metrics]:
        """Overall metrics of every baseline (just the best one for results written before there were several)."""
        if not self.baselines:
            return {self.best_baseline: self.baseline.overall}
        return {name: scores.overall for name, scores in self.baselines.items()}


def score(frame: pd.DataFrame, predictions: np.ndarray, spec: DatasetSpec) -> ModelScores:
    """Overall and per-slice metrics of predictions against the frame's target."""
    scored = frame[[spec.target, *spec.slices]].copy()
    scored["__prediction"] = predictions
    overall = regression_metrics(scored[spec.target].to_numpy(dtype=np.float64), predictions)
    return ModelScores(
        overall=overall, slices=slice_metrics(scored, spec.target, "__prediction", spec.slices)
    )


def run(settings: Settings, spec: DatasetSpec, day: date, *, trained: TrainResult) -> EvaluationResult:
    """Score candidate, production and the baselines on the candidate's holdout and log the comparison."""
    if trained.day != day:
        raise ValueError(f"the candidate was trained for {trained.day}, not {day}")
    import mlflow

    from retrain import tracking
    from retrain.registry import ModelRegistry

    table = load_training_table(settings, spec, trained.day)
    train, holdout = time_split(table, spec, trained.holdout_days)
    tracking.configure_mlflow(settings)

    candidate_model = tracking.load_forecast_model(trained.model_uri)
    candidate = score(holdout, predict(candidate_model, holdout, spec), spec)
    baselines = {
        name: score(holdout, values, spec)
        for name, values in all_baseline_predictions(train, holdout, spec).items()
    }
    best = best_baseline({name: scores.overall for name, scores in baselines.items()})
    baseline = baselines[best]

    production: ModelScores | None = None
    current = ModelRegistry(settings, spec.model_name).production()
    if current is not None:
        production_model = tracking.load_forecast_model(current.model_uri)
        if production_model.feature_names == feature_names(spec):
            production = score(holdout, predict(production_model, holdout, spec), spec)
        else:
            log.warning(
                "production v%s uses other features; it cannot be scored on this holdout", current.version
            )

    result = EvaluationResult(
        train=trained,
        candidate=candidate,
        baseline=baseline,
        production=production,
        production_version=current.version if current else None,
        production_data_end=current.data_end if current else None,
        holdout_rows=len(holdout),
        baselines=baselines,
        best_baseline=best,
    )
    with mlflow.start_run(run_id=trained.run_id):
        mlflow.log_metrics(flat_metrics(candidate.overall, candidate.slices, prefix="eval.candidate."))
        mlflow.log_metrics(flat_metrics(baseline.overall, baseline.slices, prefix="eval.baseline."))
        for name, scores in baselines.items():
            mlflow.log_metrics(scores.overall.to_dict(prefix=f"eval.baseline.{name}."))
        if production is not None:
            mlflow.log_metrics(flat_metrics(production.overall, production.slices, prefix="eval.production."))
        mlflow.log_dict(result.to_xcom(), "evaluation.json")
    log.info(
        "evaluate day=%s candidate_rmse=%.4f best_baseline=%s baseline_rmse=%.4f production_rmse=%s (v%s)",
        trained.day,
        candidate.overall.rmse,
        best,
        baseline.overall.rmse,
        f"{production.overall.rmse:.4f}" if production else "n/a",
        result.production_version,
    )
    return result
