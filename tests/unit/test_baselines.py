"""Baseline maths: each baseline's prediction, its documented fallback order, and picking the best."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain.baselines import (
    BASELINE_NAMES,
    all_baseline_predictions,
    baseline_metrics,
    baseline_predictions,
    best_baseline,
    training_means,
)
from retrain.metrics import Metrics
from retrain.settings import REPO_ROOT
from retrain.spec import DatasetSpec, load_spec

NAN = np.nan


def _spec(**gates: Any) -> DatasetSpec:
    spec = load_spec(REPO_ROOT / "config" / "retail_demand.yaml")
    return spec.model_copy(update={"gates": spec.gates.model_copy(update=gates)}) if gates else spec


def _single_series() -> DatasetSpec:
    spec = _spec()
    return spec.model_copy(update={"entity_keys": []})


def _m(rmse: float) -> Metrics:
    return Metrics(rmse=rmse, mae=rmse, wape=0.1, r2=0.5, bias=0.0, n=10)


def _frame(**columns: list[float]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_names_are_the_specs_choices() -> None:
    assert BASELINE_NAMES == ("persistence", "seasonal_naive", "training_mean")


def test_persistence_is_lag_1_then_the_shortest_rolling_mean_then_the_training_mean() -> None:
    frame = _frame(
        lag_1=[10.0, NAN, NAN],
        roll_mean_7=[99.0, 7.0, NAN],
        roll_mean_28=[99.0, 28.0, 28.0],
        roll_mean_56=[99.0, 56.0, 56.0],
    )
    means = np.array([1.0, 2.0, 3.0])
    # Row 3 has no 7-day mean: the next shortest window (28) comes before the training mean.
    got = baseline_predictions("persistence", frame, _spec(), means)
    np.testing.assert_array_equal(got, [10.0, 7.0, 28.0])
    empty = _frame(lag_1=[NAN], roll_mean_7=[NAN], roll_mean_28=[NAN], roll_mean_56=[NAN])
    np.testing.assert_array_equal(baseline_predictions("persistence", empty, _spec(), np.array([4.5])), [4.5])


def test_seasonal_naive_is_lag_7_then_lag_1_then_the_training_mean() -> None:
    frame = _frame(lag_7=[7.0, NAN, NAN], lag_1=[1.0, 1.0, NAN])
    got = baseline_predictions("seasonal_naive", frame, _spec(), np.array([0.5, 0.5, 0.5]))
    np.testing.assert_array_equal(got, [7.0, 1.0, 0.5])


def test_a_lag_the_spec_does_not_compute_counts_as_missing() -> None:
    frame = _frame(lag_7=[7.0, 8.0])  # no lag_1 or rolling means at all
    got = baseline_predictions("persistence", frame, _spec(), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(got, [3.0, 4.0])


def test_training_mean_is_per_entity_with_the_overall_mean_for_unseen_entities() -> None:
    spec = _spec()
    train = pd.DataFrame(
        {"store_id": [1, 1, 2, 2], "item_id": [1, 1, 1, 1], "sales": [10.0, 20.0, 100.0, 300.0]}
    )
    holdout = pd.DataFrame({"store_id": [2, 1, 3], "item_id": [1, 1, 1], "sales": [0.0, 0.0, 0.0]})
    np.testing.assert_allclose(training_means(train, holdout, spec), [200.0, 15.0, 107.5])
    np.testing.assert_allclose(
        baseline_predictions("training_mean", holdout, spec, training_means(train, holdout, spec)),
        [200.0, 15.0, 107.5],
    )


def test_training_mean_of_a_single_series_is_the_overall_mean() -> None:
    spec = _single_series()
    train = pd.DataFrame({"sales": [1.0, 2.0, 6.0]})
    np.testing.assert_allclose(training_means(train, pd.DataFrame({"sales": [0.0, 0.0]}), spec), [3.0, 3.0])


def test_all_baselines_follow_the_spec_list_and_order() -> None:
    spec = _spec(baselines=["training_mean", "persistence"])
    train = pd.DataFrame({"store_id": [1], "item_id": [1], "sales": [5.0]})
    holdout = pd.DataFrame({"store_id": [1], "item_id": [1], "sales": [6.0], "lag_1": [4.0], "lag_7": [3.0]})
    got = all_baseline_predictions(train, holdout, spec)
    assert list(got) == ["training_mean", "persistence"]
    assert got["persistence"][0] == 4.0 and got["training_mean"][0] == 5.0


def test_baseline_metrics_and_the_best_one() -> None:
    y = np.array([10.0, 11.0, 12.0, 13.0])
    scores = baseline_metrics(
        y, {"persistence": y - 1.0, "seasonal_naive": y + 3.0, "training_mean": y * 0 + 11.5}
    )
    assert scores["persistence"].rmse == pytest.approx(1.0)
    assert scores["seasonal_naive"].rmse == pytest.approx(3.0)
    assert best_baseline(scores) == "persistence"


def test_best_baseline_ties_go_to_the_first_listed_and_needs_one() -> None:
    assert best_baseline({"seasonal_naive": _m(2.0), "persistence": _m(2.0)}) == "seasonal_naive"
    with pytest.raises(ValueError, match="no baseline"):
        best_baseline({})


def test_unknown_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_predictions("drift", _frame(lag_1=[1.0]), _spec(), np.array([0.0]))  # type: ignore[arg-type]
