"""Metric maths: hand-computed examples, degenerate-input conventions, NaN rejection, slices, names."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from mlflow.utils.validation import _validate_metric_name
from pydantic import ValidationError
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from retrain.metrics import (
    MISSING_SLICE,
    Metrics,
    flat_metrics,
    metric_name_part,
    regression_metrics,
    slice_metrics,
)


def test_regression_metrics_hand_computed() -> None:
    # errors (pred - true): 0, 1, 0, -2 ; |y| sums to 10 ; mean(y) = 2.5, ss_tot = 5, sse = 5
    m = regression_metrics([1, 2, 3, 4], [1, 3, 3, 2])
    assert m.rmse == pytest.approx(math.sqrt(5 / 4))
    assert m.mae == pytest.approx(0.75)
    assert m.wape == pytest.approx(0.3)
    assert m.r2 == pytest.approx(0.0)
    assert m.bias == pytest.approx(-0.25)
    assert m.n == 4


def test_regression_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(7)
    y = rng.gamma(2.0, 10.0, size=500)
    p = y + rng.normal(0.5, 3.0, size=500)
    m = regression_metrics(pd.Series(y), p)
    assert m.rmse == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert m.mae == pytest.approx(mean_absolute_error(y, p))
    assert m.r2 == pytest.approx(r2_score(y, p))
    assert m.wape == pytest.approx(np.abs(p - y).sum() / np.abs(y).sum())
    assert m.bias == pytest.approx(np.mean(p - y))
    assert m.bias > 0  # predictions were shifted up by 0.5 on average


def test_bias_sign_means_over_forecasting() -> None:
    assert regression_metrics([10, 10], [12, 12]).bias == pytest.approx(2.0)
    assert regression_metrics([10, 10], [7, 7]).bias == pytest.approx(-3.0)


def test_wape_uses_absolute_truth_in_denominator() -> None:
    # sum|e| = 2, sum|y| = 4 (not sum(y) = 0)
    assert regression_metrics([-2, 2], [-1, 3]).wape == pytest.approx(0.5)


def test_wape_zero_denominator_perfect_is_zero() -> None:
    assert regression_metrics([0, 0, 0], [0, 0, 0]).wape == 0.0


def test_wape_zero_denominator_with_errors_is_infinite() -> None:
    m = regression_metrics([0, 0, 0], [0, 1, 0])
    assert math.isinf(m.wape) and m.wape > 0


def test_r2_constant_target_perfect_is_one() -> None:
    # 0.1 * 3 / 3 != 0.1 in floats: ss_tot would be a rounding crumb, not zero.
    assert regression_metrics([0.1, 0.1, 0.1], [0.1, 0.1, 0.1]).r2 == 1.0


def test_r2_constant_target_imperfect_is_zero() -> None:
    assert regression_metrics([0.1, 0.1, 0.1], [0.2, 0.1, 0.1]).r2 == 0.0
    assert regression_metrics([5.0], [7.0]).r2 == 0.0


def test_r2_can_be_negative() -> None:
    assert regression_metrics([1, 2, 3], [3, 2, 1]).r2 == pytest.approx(-3.0)


@pytest.mark.parametrize("side", ["y_true", "y_pred"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_raise_naming_side_and_position(side: str, bad: float) -> None:
    good = [1.0, 2.0, 3.0]
    broken = [1.0, bad, 3.0]
    args = (broken, good) if side == "y_true" else (good, broken)
    with pytest.raises(ValueError, match=rf"{side} has 1 NaN or infinite value\(s\) \(first at position 1\)"):
        regression_metrics(*args)


def test_pandas_nullable_missing_value_raises() -> None:
    with pytest.raises(ValueError, match="y_true has 1 NaN"):
        regression_metrics(pd.Series([1, None, 3], dtype="Float64"), [1.0, 2.0, 3.0])


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="y_true has 3 values but y_pred has 2"):
        regression_metrics([1, 2, 3], [1, 2])


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="zero rows"):
        regression_metrics([], [])


def test_two_dimensional_input_raises() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        regression_metrics([[1, 2]], [[1, 2]])


def test_non_numeric_input_raises() -> None:
    with pytest.raises(ValueError, match="y_pred must be numeric"):
        regression_metrics([1, 2], ["a", "b"])


def test_metrics_to_dict_and_prefix() -> None:
    m = regression_metrics([1, 2, 3, 4], [1, 3, 3, 2])
    assert set(m.to_dict()) == {"rmse", "mae", "wape", "r2", "bias", "n"}
    assert m.to_dict("candidate.")["candidate.n"] == 4.0
    assert all(isinstance(v, float) for v in m.to_dict().values())


def test_metrics_are_frozen_and_validated() -> None:
    m = regression_metrics([1, 2], [1, 2])
    with pytest.raises(ValidationError):
        m.rmse = 3.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Metrics(rmse=-1.0, mae=0.0, wape=0.0, r2=1.0, bias=0.0, n=1)
    with pytest.raises(ValidationError):
        Metrics(rmse=0.0, mae=0.0, wape=0.0, r2=1.0, bias=0.0, n=0)


def test_metrics_json_round_trip_keeps_infinite_wape() -> None:
    m = regression_metrics([0, 0], [1, 0])
    text = m.model_dump_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert Metrics.model_validate_json(text) == m


def _hand_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_type": ["hyper", "hyper", "hyper", "super", "super", "express"],
            "promo": [1, 0, 1, 0, 0, 1],
            "y": [10.0, 20.0, 30.0, 4.0, 4.0, 0.0],
            "p": [12.0, 18.0, 30.0, 5.0, 3.0, 2.0],
        }
    )


def test_slice_metrics_hand_computed() -> None:
    result = slice_metrics(_hand_frame(), "y", "p", ["store_type", "promo"])
    assert set(result) == {"store_type", "promo"}
    assert set(result["store_type"]) == {"hyper", "super", "express"}

    # hyper: errors 2, -2, 0 ; |y| sum 60 ; mean 20, ss_tot 200, sse 8
    hyper = result["store_type"]["hyper"]
    assert hyper.n == 3
    assert hyper.rmse == pytest.approx(math.sqrt(8 / 3))
    assert hyper.mae == pytest.approx(4 / 3)
    assert hyper.wape == pytest.approx(4 / 60)
    assert hyper.r2 == pytest.approx(1 - 8 / 200)
    assert hyper.bias == pytest.approx(0.0)

    # super: constant target 4 with errors 1, -1 -> r2 convention 0.0
    sup = result["store_type"]["super"]
    assert (sup.n, sup.rmse, sup.mae, sup.wape, sup.r2, sup.bias) == (2, 1.0, 1.0, 0.25, 0.0, 0.0)

    # express: zero volume with an error -> infinite WAPE
    exp = result["store_type"]["express"]
    assert (exp.n, exp.rmse, exp.bias, exp.r2) == (1, 2.0, 2.0, 0.0)
    assert math.isinf(exp.wape)

    # promo=1: y 10, 30, 0 ; errors 2, 0, 2 ; mean 40/3
    promo1 = result["promo"]["1"]
    ss_tot = sum((v - 40 / 3) ** 2 for v in (10.0, 30.0, 0.0))
    assert promo1.n == 3
    assert promo1.rmse == pytest.approx(math.sqrt(8 / 3))
    assert promo1.wape == pytest.approx(4 / 40)
    assert promo1.r2 == pytest.approx(1 - 8 / ss_tot)
    assert promo1.bias == pytest.approx(4 / 3)
    assert result["promo"]["0"].n == 3


def test_slice_metrics_match_regression_metrics_on_each_subset() -> None:
    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame(
        {
            "store_type": rng.choice(["hyper", "super", "express"], size=n),
            "category": pd.Categorical(rng.choice(["grocery", "frozen"], size=n)),
            "store_id": rng.integers(0, 5, size=n),
            "y": rng.poisson(20, size=n).astype(float),
        }
    )
    frame["p"] = frame["y"] + rng.normal(0, 2, size=n)
    result = slice_metrics(frame, "y", "p", ["store_type", "category", "store_id"])
    for col in ("store_type", "category", "store_id"):
        assert sum(m.n for m in result[col].values()) == n
        for value, m in result[col].items():
            subset = frame[frame[col].astype(str) == value]
            expected = regression_metrics(subset["y"], subset["p"])
            for field in ("rmse", "mae", "wape", "r2", "bias"):
                assert getattr(m, field) == pytest.approx(getattr(expected, field), rel=1e-9), (col, value)
            assert m.n == expected.n


def test_slice_constant_float_target_detected_per_group() -> None:
    frame = pd.DataFrame({"s": ["a", "a", "a", "b", "b"], "y": [0.1, 0.1, 0.1, 1.0, 3.0]})
    frame["p"] = frame["y"]
    result = slice_metrics(frame, "y", "p", ["s"])
    assert result["s"]["a"].r2 == 1.0
    assert result["s"]["b"].r2 == 1.0


def test_slice_null_values_form_missing_slice() -> None:
    frame = pd.DataFrame(
        {"s": ["a", None, np.nan, "a"], "y": [1.0, 2.0, 3.0, 4.0], "p": [1.0, 2.0, 4.0, 4.0]}
    )
    result = slice_metrics(frame, "y", "p", ["s"])
    assert set(result["s"]) == {"a", MISSING_SLICE}
    assert result["s"][MISSING_SLICE].n == 2
    assert result["s"][MISSING_SLICE].mae == pytest.approx(0.5)


def test_slice_unused_categories_are_not_reported() -> None:
    frame = pd.DataFrame(
        {"c": pd.Categorical(["x", "x"], categories=["x", "y", "z"]), "y": [1.0, 2.0], "p": [1.0, 2.0]}
    )
    assert set(slice_metrics(frame, "y", "p", ["c"])["c"]) == {"x"}


def test_slice_metrics_no_slice_columns_is_empty() -> None:
    assert slice_metrics(_hand_frame(), "y", "p", []) == {}


def test_slice_metrics_missing_column_raises() -> None:
    with pytest.raises(ValueError, match=r"no column\(s\) \['region'\]"):
        slice_metrics(_hand_frame(), "y", "p", ["region"])


def test_slice_metrics_nan_prediction_raises_naming_column() -> None:
    frame = _hand_frame()
    frame.loc[2, "p"] = np.nan
    with pytest.raises(ValueError, match=r"p has 1 NaN or infinite value\(s\) \(first at position 2\)"):
        slice_metrics(frame, "y", "p", ["store_type"])


def test_slice_metrics_empty_frame_raises() -> None:
    with pytest.raises(ValueError, match="empty frame"):
        slice_metrics(_hand_frame().iloc[0:0], "y", "p", ["store_type"])


def test_flat_metrics_names() -> None:
    frame = _hand_frame()
    overall = regression_metrics(frame["y"], frame["p"])
    flat = flat_metrics(overall, slice_metrics(frame, "y", "p", ["store_type"]), prefix="candidate.")
    assert flat["candidate.rmse"] == overall.rmse
    assert flat["candidate.slice.store_type.hyper.rmse"] == pytest.approx(math.sqrt(8 / 3))
    assert flat["candidate.slice.store_type.super.n"] == 2.0
    assert len(flat) == 6 * (1 + 3)


def test_flat_metric_names_are_valid_mlflow_names() -> None:
    frame = pd.DataFrame(
        {"odd col.x": ["a b", "c.d/e", "", "f=g"], "y": [1.0, 2.0, 3.0, 4.0], "p": [1.0, 2.0, 3.0, 5.0]}
    )
    flat = flat_metrics(
        regression_metrics(frame["y"], frame["p"]), slice_metrics(frame, "y", "p", ["odd col.x"])
    )
    assert "slice.odd_col_x.c_d_e.rmse" in flat
    assert "slice.odd_col_x._.rmse" in flat
    for name in flat:
        _validate_metric_name(name)  # type: ignore[no-untyped-call]  # raises on a bad name


def test_metric_name_part() -> None:
    assert metric_name_part("personal_care") == "personal_care"
    assert metric_name_part("a.b c") == "a_b_c"
    assert metric_name_part("") == "_"
