"""Regression metrics, overall and per slice: pure maths on arrays and frames, no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

MISSING_SLICE = "__missing__"
"""Slice value used for rows whose slice column is null."""

_UNSAFE_NAME_CHARS = re.compile(r"[^\w\-]")


class Metrics(BaseModel):
    """Error metrics of one set of predictions against the truth.

    Conventions for degenerate inputs (all documented, none produce NaN):
    - wape: sum|e| / sum|y|; when sum|y| == 0 it is 0.0 for perfect predictions, else +inf.
    - r2: when the target is constant it is 1.0 for perfect predictions, else 0.0
      (the scikit-learn ``force_finite`` convention).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    rmse: float = Field(ge=0)
    mae: float = Field(ge=0)
    wape: float = Field(ge=0)
    r2: float
    bias: float = Field(description="mean(pred - true): positive means over-forecasting.")
    n: int = Field(ge=1)

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{prefix + name: value}`` mapping, ready for ``mlflow.log_metrics``."""
        return {f"{prefix}{name}": float(value) for name, value in self.model_dump().items()}


SliceMetrics = dict[str, dict[str, Metrics]]
"""Per slice column, per slice value (as a string), the metrics of that slice."""


def _as_finite_1d(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    _check_finite(array, name)
    return array


def _check_finite(array: npt.NDArray[np.float64], name: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN or infinite value(s) (first at position {first}); "
            "drop or impute them before computing metrics"
        )


def _wape(sum_abs_err: float, sum_abs_true: float) -> float:
    if sum_abs_true > 0:
        return sum_abs_err / sum_abs_true
    # Any error on zero volume is infinitely bad relative to it; a perfect forecast is perfect.
    return 0.0 if sum_abs_err == 0 else math.inf


def _r2(sum_sq_err: float, ss_tot: float, constant_target: bool) -> float:
    # min == max detects a constant target exactly; ss_tot alone can be a rounding crumb.
    if constant_target or ss_tot <= 0:
        return 1.0 if sum_sq_err == 0 else 0.0
    return 1.0 - sum_sq_err / ss_tot


def _metrics_from_sums(
    n: int,
    sum_err: float,
    sum_abs_err: float,
    sum_sq_err: float,
    sum_abs_true: float,
    ss_tot: float,
    *,
    constant_target: bool,
) -> Metrics:
    # Both public functions go through here so overall and per-slice numbers agree exactly.
    wape = _wape(sum_abs_err, sum_abs_true)
    r2 = _r2(sum_sq_err, ss_tot, constant_target)
    return Metrics(
        rmse=math.sqrt(sum_sq_err / n),
        mae=sum_abs_err / n,
        wape=wape,
        r2=r2,
        bias=sum_err / n,
        n=n,
    )


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> Metrics:
    """RMSE, MAE, WAPE, R², bias and count of predictions against the truth."""
    truth = _as_finite_1d(y_true, "y_true")
    pred = _as_finite_1d(y_pred, "y_pred")
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has {truth.size} values but y_pred has {pred.size}")
    if truth.size == 0:
        raise ValueError("cannot compute metrics on zero rows")
    err = pred - truth
    return _metrics_from_sums(
        n=int(truth.size),
        sum_err=float(err.sum()),
        sum_abs_err=float(np.abs(err).sum()),
        sum_sq_err=float(np.square(err).sum()),
        sum_abs_true=float(np.abs(truth).sum()),
        ss_tot=float(np.square(truth - truth.mean()).sum()),
        constant_target=bool(truth.min() == truth.max()),
    )


def _slice_labels(column: pd.Series) -> pd.Series:
    labels = column.astype("object").where(column.notna(), MISSING_SLICE)
    return labels.map(str)


def slice_metrics(
    frame: pd.DataFrame, y_true_col: str, y_pred_col: str, slice_cols: Sequence[str]
) -> SliceMetrics:
    """Metrics for every value of every slice column (null values form the ``__missing__`` slice)."""
    missing = [c for c in (y_true_col, y_pred_col, *slice_cols) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}; it has {list(frame.columns)}")
    if frame.empty:
        raise ValueError("cannot compute slice metrics on an empty frame")
    truth = _as_finite_1d(frame[y_true_col].to_numpy(), y_true_col)
    pred = _as_finite_1d(frame[y_pred_col].to_numpy(), y_pred_col)
    err = pred - truth
    parts = pd.DataFrame(
        {"err": err, "abs_err": np.abs(err), "sq_err": np.square(err), "abs_true": np.abs(truth), "y": truth}
    )
    result: SliceMetrics = {}
    for col in slice_cols:
        keys = _slice_labels(frame[col]).to_numpy()
        grouped = parts.groupby(keys, sort=True)
        # Deviation from each group's own mean, not sum(y²) - n·mean², which cancels badly.
        dev_sq = np.square(parts["y"] - grouped["y"].transform("mean"))
        sums = parts.assign(dev_sq=dev_sq).groupby(keys, sort=True).sum()
        stats = grouped["y"].agg(["size", "min", "max"])
        result[col] = {
            str(value): _metrics_from_sums(
                n=int(stats.at[value, "size"]),
                sum_err=float(sums.at[value, "err"]),
                sum_abs_err=float(sums.at[value, "abs_err"]),
                sum_sq_err=float(sums.at[value, "sq_err"]),
                sum_abs_true=float(sums.at[value, "abs_true"]),
                ss_tot=float(sums.at[value, "dev_sq"]),
                constant_target=bool(stats.at[value, "min"] == stats.at[value, "max"]),
            )
            for value in stats.index
        }
    return result


def metric_name_part(text: str) -> str:
    """A slice column or value made safe for an MLflow metric name (no dots, only [A-Za-z0-9_-])."""
    return _UNSAFE_NAME_CHARS.sub("_", text) or "_"


def flat_metrics(
    overall: Metrics, slices: Mapping[str, Mapping[str, Metrics]] | None = None, prefix: str = ""
) -> dict[str, float]:
    """MLflow-ready names: ``rmse``, ``slice.store_type.hyper.rmse`` (each part sanitised), with a prefix."""
    flat = overall.to_dict(prefix)
    for col, by_value in (slices or {}).items():
        for value, metrics in by_value.items():
            flat.update(metrics.to_dict(f"{prefix}slice.{metric_name_part(col)}.{metric_name_part(value)}."))
    return flat
