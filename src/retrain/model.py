"""The forecasting model: an XGBoost booster plus a per-row offset, stored inside the booster itself.

The booster starts each row from an offset and the trees learn the corrections. The spec's
`training.offset` picks the offset:

- `level`: the entity's recent level (its longest rolling mean of the target). Demand is multiplicative
  (entity level x promotion x weekday x ...) and trees approximate a continuous level times a lift poorly.
- `last_value`: the last observed value (lag_1, falling back to the shortest rolling mean). On a strongly
  autocorrelated series (weather, a level that wanders) the change from yesterday is what the trees can learn.
- `none`: no offset; the trees model the target itself.
- `auto` (the default): `level` or `last_value`, whichever is the better forecast on its own (lower RMSE)
  on the training rows. Measured in bench/bench_quality.py: `last_value` wins on a persistent single
  series (Seattle temperature), `level` on noisy counts (retail demand) and weekday-driven series (births).

The offset is log(x) for log-link objectives (count:poisson, reg:tweedie, reg:gamma), x itself otherwise.
The recipe (which columns, in fallback order, the link and the default) is saved as booster attributes, so
every loader (evaluation, MLflow pyfunc, serving) predicts identically from the booster file alone.
Light module: numpy and xgboost only (serving imports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from retrain.feature_maths import rolling_windows, target_lags
from retrain.spec import DatasetSpec

LOG_LINK_OBJECTIVES = frozenset({"count:poisson", "reg:tweedie", "reg:gamma"})
ATTR_FEATURES = "retrain_offset_features"
ATTR_LINK = "retrain_offset_link"
ATTR_DEFAULT = "retrain_offset_default"
ATTR_KIND = "retrain_offset"  # informational: which offset the recipe came from (`auto` resolved)
OffsetKind = Literal["level", "last_value", "none"]
AUTO_CHOICES: tuple[OffsetKind, ...] = ("level", "last_value")
_MIN_LEVEL = 0.5  # floor before log: a zero-sales history still gets a finite offset


def offset_features(spec: DatasetSpec, kind: OffsetKind) -> list[str]:
    """The offset's columns in fallback order: the first one present in a row is its offset."""
    windows = rolling_windows(spec)
    if kind == "level":
        return [f"roll_mean_{w}" for w in sorted(windows, reverse=True)]
    if kind == "last_value":
        last = ["lag_1"] if 1 in target_lags(spec) else []
        return [*last, *(f"roll_mean_{w}" for w in windows)]
    return []


def offset_link(spec: DatasetSpec, kind: OffsetKind) -> str:
    """`log` for log-link objectives, `identity` otherwise, `none` when there is no offset."""
    if not offset_features(spec, kind):
        return "none"
    objective = str(spec.training.params.get("objective", "reg:squarederror"))
    return "log" if objective in LOG_LINK_OBJECTIVES else "identity"


def compute_margin(
    matrix: np.ndarray, columns: Sequence[int], link: str, default: float
) -> np.ndarray | None:
    """Per-row base margin from the first non-missing level column (default when all are missing)."""
    if link == "none":
        return None
    level = np.full(matrix.shape[0], np.nan)
    for column in columns:
        level = np.where(np.isnan(level), matrix[:, column], level)
    level = np.where(np.isnan(level), default, level)
    if link == "log":
        return np.asarray(np.log(np.maximum(level, _MIN_LEVEL)), dtype=np.float64)
    return np.asarray(level, dtype=np.float64)


def offset_values(
    matrix: np.ndarray, names: Sequence[str], columns: Sequence[str], default: float
) -> np.ndarray:
    """Per row, the first non-missing value among `columns` (in the target's units), else `default`."""
    values = compute_margin(matrix, [list(names).index(c) for c in columns], "identity", default)
    return np.full(matrix.shape[0], default) if values is None else values


def resolve_offset(
    spec: DatasetSpec, matrix: np.ndarray, names: Sequence[str], target: np.ndarray, default: float
) -> OffsetKind:
    """The spec's offset; for `auto`, the candidate offset that alone forecasts the training rows best."""
    chosen = spec.training.offset
    if chosen != "auto":
        return chosen
    errors: dict[OffsetKind, float] = {}
    for kind in AUTO_CHOICES:
        columns = offset_features(spec, kind)
        if columns:
            start = offset_values(matrix, names, columns, default)
            errors[kind] = float(np.sqrt(np.mean(np.square(start - target))))
    return min(errors, key=lambda kind: errors[kind]) if errors else "none"


class ForecastModel:
    """A booster with its offset recipe; `predict` takes the float matrix in `feature_names` order."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.feature_names: list[str] = list(booster.feature_names or [])
        self.link = booster.attr(ATTR_LINK) or "none"
        names = [n for n in (booster.attr(ATTR_FEATURES) or "").split(",") if n]
        self.offset_columns = [self.feature_names.index(n) for n in names]
        self.default_level = float(booster.attr(ATTR_DEFAULT) or 0.0)
        self.offset = booster.attr(ATTR_KIND) or ("none" if self.link == "none" else "level")

    @staticmethod
    def configure(booster: Any, spec: DatasetSpec, kind: OffsetKind, default_level: float) -> None:
        """Record an offset recipe (resolved, never `auto`) on a freshly trained booster."""
        booster.set_attr(
            **{
                # xgboost cannot store an empty attribute: no offset columns means no attribute.
                ATTR_FEATURES: ",".join(offset_features(spec, kind)) or None,
                ATTR_LINK: offset_link(spec, kind),
                ATTR_DEFAULT: repr(float(default_level)),
                ATTR_KIND: kind,
            }
        )

    def margin(self, matrix: np.ndarray) -> np.ndarray | None:
        """The base margin rows start from (None when the model has no offset)."""
        return compute_margin(matrix, self.offset_columns, self.link, self.default_level)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions for a float64 feature matrix (in-place predict: no DMatrix copy)."""
        margin = self.margin(matrix)
        if margin is None:
            out = self.booster.inplace_predict(matrix)
        else:
            out = self.booster.inplace_predict(matrix, base_margin=margin)
        return np.asarray(out, dtype=np.float64)

    def save(self, path: Path) -> Path:
        """Write the booster (with its offset attributes) as UBJSON."""
        self.booster.save_model(str(path))
        return path

    @classmethod
    def load(cls, path: Path | str, nthread: int | None = None) -> ForecastModel:
        """Read a booster file written by `save`."""
        import xgboost as xgb

        booster = xgb.Booster(model_file=str(path))
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        return cls(booster)
