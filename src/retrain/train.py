"""Train stage: XGBoost (hist) on the rolling window with a time-based holdout, plus the spec's baselines.

The registered model is the one fitted on the training part only, so the holdout metrics the gates read
are honest out-of-sample numbers for exactly the model that would be promoted. The baselines (persistence,
seasonal naive, training mean: see `retrain.baselines`) are scored on the same holdout rows from the same
lag features the model sees; `baseline.*` metrics are the best of them, `baseline.<name>.*` each one.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from retrain.baselines import all_baseline_predictions, baseline_metrics, best_baseline
from retrain.errors import DataMissingError, RetrainError
from retrain.feature_maths import feature_matrix, feature_names
from retrain.features import snapshot_file, train_table_file
from retrain.layout import DatasetLayout
from retrain.metrics import regression_metrics
from retrain.model import ForecastModel, compute_margin, offset_features, offset_link, resolve_offset
from retrain.results import StageResult
from retrain.settings import Settings
from retrain.spec import DatasetSpec

log = logging.getLogger(__name__)

DEFAULT_PARAMS: dict[str, Any] = {"objective": "reg:squarederror", "tree_method": "hist"}


class TrainResult(StageResult):
    """What the train stage produced: the MLflow run and model, the split, holdout metrics."""

    day: date
    run_id: str
    model_uri: str
    data_start: date
    data_end: date
    holdout_start: date
    holdout_days: int
    train_rows: int
    holdout_rows: int
    candidate: dict[str, float]
    baseline: dict[str, float]
    fit_seconds: float
    baselines: dict[str, dict[str, float]] = Field(default_factory=dict)
    best_baseline: str = "seasonal_naive"


def as_datetimes(values: pd.Series) -> pd.Series:
    """A date column as datetime64 (already-typed columns are returned as they are, not converted again)."""
    return values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values)


def _rows(table: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The rows at positions, renumbered from 0 (one copy of the data, not two)."""
    part = table.take(positions)
    part.index = pd.RangeIndex(len(positions))
    return part


def time_split(
    table: pd.DataFrame, spec: DatasetSpec, holdout_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a training table by date: the last `holdout_days` days are the holdout."""
    dates = as_datetimes(table[spec.timestamp_column])
    cutoff = dates.max() - pd.Timedelta(days=holdout_days - 1)
    is_holdout = (dates >= cutoff).to_numpy(dtype=bool)
    train, holdout = _rows(table, np.flatnonzero(~is_holdout)), _rows(table, np.flatnonzero(is_holdout))
    if train.empty or holdout.empty:
        raise RetrainError(
            f"not enough history to split: {dates.nunique()} day(s) for a {holdout_days}-day holdout; "
            "simulate or ingest more days first"
        )
    return train, holdout


def seasonal_naive(frame: pd.DataFrame, fallback: float) -> np.ndarray:
    """Same weekday last week (lag_7), then yesterday (lag_1), then `fallback` when both are missing."""
    prediction = np.full(len(frame), np.nan)
    for column in ("lag_7", "lag_1"):
        if column in frame:
            values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
            prediction = np.where(np.isnan(prediction), values, prediction)
    return np.where(np.isnan(prediction), fallback, prediction)


def xgboost_params(spec: DatasetSpec, seed: int, nthread: int | None = None) -> dict[str, Any]:
    """XGBoost parameters: defaults, then the spec's, then the seed (determinism) and threads."""
    params = {**DEFAULT_PARAMS, **spec.training.params, "seed": seed}
    if nthread is not None:
        params["nthread"] = nthread
    return params


def fit_model(train: pd.DataFrame, spec: DatasetSpec, seed: int, nthread: int | None = None) -> ForecastModel:
    """Fit the booster (starting each row from the spec's offset, see retrain.model) on a training frame."""
    import xgboost as xgb

    names = feature_names(spec)
    matrix = feature_matrix(train, spec)
    target = train[spec.target].to_numpy(dtype=np.float64)
    default_level = float(target.mean())
    kind = resolve_offset(spec, matrix, names, target, default_level)
    margin = compute_margin(
        matrix, [names.index(n) for n in offset_features(spec, kind)], offset_link(spec, kind), default_level
    )
    dtrain = xgb.QuantileDMatrix(matrix, label=target, base_margin=margin, feature_names=names)
    booster = xgb.train(
        xgboost_params(spec, seed, nthread), dtrain, num_boost_round=spec.training.num_boost_round
    )
    ForecastModel.configure(booster, spec, kind, default_level)
    return ForecastModel(booster)


def predict(model: ForecastModel, frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """Model predictions on a feature frame."""
    return model.predict(feature_matrix(frame, spec))


def load_training_table(
    settings: Settings, spec: DatasetSpec, day: date, columns: list[str] | None = None
) -> pd.DataFrame:
    """The training table the features stage wrote for a day (only `columns`, in that order, if given)."""
    path = train_table_file(DatasetLayout.for_spec(settings, spec), day)
    if not path.is_file():
        raise DataMissingError(f"no training table for {day} at {path}: run the features stage first")
    return pd.read_parquet(path, columns=columns)


def model_columns(spec: DatasetSpec) -> list[str]:
    """The training-table columns fitting and the baselines need: date, target, entity keys, features."""
    return list(dict.fromkeys([spec.timestamp_column, spec.target, *spec.entity_keys, *feature_names(spec)]))


def run(settings: Settings, spec: DatasetSpec, day: date, holdout_days: int | None = None) -> TrainResult:
    """Fit the candidate and score the baselines on the window ending at `day`, log everything to MLflow."""
    import mlflow

    from retrain import tracking

    holdout_days = holdout_days or spec.training.holdout_days
    layout = DatasetLayout.for_spec(settings, spec)
    # Only what fitting reads: the text columns (store type, category...) cost most to load.
    table = load_training_table(settings, spec, day, model_columns(spec))
    train, holdout = time_split(table, spec, holdout_days)

    started = time.perf_counter()
    model = fit_model(train, spec, settings.seed)
    fit_seconds = time.perf_counter() - started
    y_holdout = holdout[spec.target].to_numpy(dtype=np.float64)
    candidate = regression_metrics(y_holdout, predict(model, holdout, spec))
    baselines = baseline_metrics(y_holdout, all_baseline_predictions(train, holdout, spec))
    best = best_baseline(baselines)
    baseline = baselines[best]

    manifest_path = layout.features_partition(day) / "manifest.json"
    lineage = json.loads(manifest_path.read_text(encoding="utf-8"))
    dates = as_datetimes(table[spec.timestamp_column])
    data_start, data_end = dates.min().date(), dates.max().date()
    holdout_start = data_end - timedelta(days=holdout_days - 1)

    tracking.configure_mlflow(settings)
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(settings, spec.name),
        run_name=f"{spec.name}-{day.isoformat()}",
        tags={
            "retrain.run_date": day.isoformat(),
            "retrain.data_start": data_start.isoformat(),
            "retrain.data_end": data_end.isoformat(),
            "retrain.holdout_start": holdout_start.isoformat(),
            "retrain.code_version": tracking.code_version(),
            "retrain.dataset": spec.name,
            "retrain.partitions": str(len(lineage["partitions"])),
            "retrain.best_baseline": best,
        },
    ) as active:
        mlflow.log_params(
            {
                **{f"xgb.{k}": v for k, v in xgboost_params(spec, settings.seed).items()},
                "num_boost_round": spec.training.num_boost_round,
                "offset": spec.training.offset,
                "offset_used": model.offset,
                "baselines": ",".join(baselines),
                "train_days": spec.training.train_days,
                "holdout_days": holdout_days,
                "n_features": len(feature_names(spec)),
                "train_rows": len(train),
                "holdout_rows": len(holdout),
            }
        )
        mlflow.log_metrics(
            {
                **candidate.to_dict(prefix="holdout."),
                **baseline.to_dict(prefix="baseline."),
                **{k: v for name, m in baselines.items() for k, v in m.to_dict(f"baseline.{name}.").items()},
                "fit_seconds": fit_seconds,
            }
        )
        mlflow.log_dict(lineage, "lineage.json")
        mlflow.log_dict(_importance(model.booster), "feature_importance.json")
        mlflow.log_artifact(str(snapshot_file(layout, day)), "features")
        mlflow.log_artifact(str(manifest_path), "features")
        example = holdout[feature_names(spec)].head(5).astype("float64")
        model_uri = tracking.log_forecast_model(model, input_example=example)
        run_id = active.info.run_id

    result = TrainResult(
        day=day,
        run_id=run_id,
        model_uri=model_uri,
        data_start=data_start,
        data_end=data_end,
        holdout_start=holdout_start,
        holdout_days=holdout_days,
        train_rows=len(train),
        holdout_rows=len(holdout),
        candidate=candidate.to_dict(),
        baseline=baseline.to_dict(),
        fit_seconds=round(fit_seconds, 3),
        baselines={name: m.to_dict() for name, m in baselines.items()},
        best_baseline=best,
    )
    log.info(
        "train day=%s run_id=%s rows=%d holdout_rmse=%.4f best_baseline=%s baseline_rmse=%.4f fit=%.1fs",
        day,
        run_id,
        len(train),
        candidate.rmse,
        best,
        baseline.rmse,
        fit_seconds,
    )
    return result


def _importance(booster: Any) -> dict[str, float]:
    scores = booster.get_score(importance_type="gain")
    return {name: float(scores.get(name, 0.0)) for name in booster.feature_names}
