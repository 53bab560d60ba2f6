"""Baseline forecasts every candidate must beat: pure maths on the feature table, no I/O.

Each baseline predicts a holdout row from what the model itself sees for that row: the target lags the
features stage computed from the curated history before the row's day. On a holdout the lags hold the
actual values of the previous days, so `persistence` is the honest one-day-ahead "yesterday's value"
forecast, on the same footing as the model (which serves one day ahead with lag_1 = yesterday's actual).

| baseline | prediction | when missing, falls back to |
|---|---|---|
| `persistence` | lag_1 (the last observed value) | the shortest rolling mean, then the training mean |
| `seasonal_naive` | lag_7 (same weekday last week) | lag_1, then the training mean |
| `training_mean` | mean target of the row's entity over the training part | the overall training mean |

A lag column the spec does not compute counts as missing. The training mean is per entity because
entities of one dataset differ in level by orders of magnitude (a global mean is no baseline at all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import get_args

import numpy as np
import pandas as pd

from retrain.feature_maths import rolling_windows
from retrain.metrics import Metrics, regression_metrics
from retrain.spec import BaselineName, DatasetSpec

BASELINE_NAMES: tuple[BaselineName, ...] = get_args(BaselineName)


def _first_present(frame: pd.DataFrame, columns: Sequence[str], fallback: np.ndarray) -> np.ndarray:
    """Per row, the first non-missing value among columns (absent columns skipped), else the fallback."""
    prediction = np.full(len(frame), np.nan)
    for column in columns:
        if column in frame:
            values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
            prediction = np.where(np.isnan(prediction), values, prediction)
    return np.where(np.isnan(prediction), fallback, prediction)


def training_means(train: pd.DataFrame, frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """Per row of frame, its entity's mean target over train (the overall mean for unseen entities)."""
    overall = float(train[spec.target].mean())
    if not spec.entity_keys:
        return np.full(len(frame), overall)
    means = train.groupby(spec.entity_keys, dropna=False, observed=True)[spec.target].mean().rename("__mean")
    joined = frame[spec.entity_keys].merge(
        means, left_on=spec.entity_keys, right_index=True, how="left", sort=False
    )
    values = joined["__mean"].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(values), overall, values)


def baseline_predictions(
    name: BaselineName, frame: pd.DataFrame, spec: DatasetSpec, means: np.ndarray
) -> np.ndarray:
    """One baseline's predictions for the rows of a feature frame; `means` is `training_means` of them."""
    if name == "persistence":
        shortest_first = [f"roll_mean_{w}" for w in rolling_windows(spec)]
        return _first_present(frame, ["lag_1", *shortest_first], means)
    if name == "seasonal_naive":
        return _first_present(frame, ["lag_7", "lag_1"], means)
    if name == "training_mean":
        return means.astype(np.float64, copy=True)
    raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINE_NAMES}")


def all_baseline_predictions(
    train: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec
) -> dict[str, np.ndarray]:
    """Predictions on the holdout of every baseline the spec's gates list, in that order."""
    means = training_means(train, holdout, spec)
    return {name: baseline_predictions(name, holdout, spec, means) for name in spec.gates.baselines}


def best_baseline(scores: Mapping[str, Metrics]) -> str:
    """Name of the baseline with the lowest RMSE (the first listed wins a tie)."""
    if not scores:
        raise ValueError("no baseline scores: the spec lists at least one baseline")
    return min(scores, key=lambda name: scores[name].rmse)


def baseline_metrics(y_true: np.ndarray, predictions: Mapping[str, np.ndarray]) -> dict[str, Metrics]:
    """Each baseline's metrics against the truth."""
    return {name: regression_metrics(y_true, values) for name, values in predictions.items()}
