"""Pure feature maths shared by training (offline) and serving (online): one definition, no leakage.

Target features for a row on day t are computed from a window of the entity's daily target values on
days t-L .. t-1 (L = `lookback_days(spec)`), indexed by calendar day: a missing day is a missing
value, never a shifted one. Offline and online both call `target_window_features` on such windows,
which is what keeps serving consistent with training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from retrain.errors import RetrainError, SpecError
from retrain.spec import ColumnType, DatasetSpec

SAME_WEEKDAY_LAGS = (7, 14, 21, 28)
SAME_WEEKDAY_FEATURE = "same_weekday_mean_4w"
CALENDAR_FEATURES = ("day_of_week", "day_of_month", "month", "day_of_year", "week_of_year", "is_weekend")
_NUMERIC_TYPES = frozenset({ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL})
# Rows per window block: bounds memory (rows x lookback floats) while keeping numpy vectorised.
_CHUNK_ROWS = 65_536

Vocabulary = Mapping[str, Sequence[str]]


def target_lags(spec: DatasetSpec) -> list[int]:
    """Lag days on the target, sorted and without duplicates."""
    return sorted(set(spec.features.lags))


def rolling_windows(spec: DatasetSpec) -> list[int]:
    """Rolling window lengths in days, sorted and without duplicates."""
    return sorted(set(spec.features.rolling_windows))


def lookback_days(spec: DatasetSpec) -> int:
    """Days of target history needed before a day to build its features."""
    return max([*target_lags(spec), *rolling_windows(spec), *SAME_WEEKDAY_LAGS])


def code_column(column: str) -> str:
    """Name of the integer-code feature of a categorical column."""
    return f"{column}_code"


def key_features(spec: DatasetSpec) -> list[str]:
    """Entity keys used as numeric features (numeric keys that are not already features)."""
    return [
        k
        for k in spec.entity_keys
        if spec.columns[k].type in _NUMERIC_TYPES and k not in spec.feature_columns
    ]


def target_feature_names(spec: DatasetSpec) -> list[str]:
    """Names of the features computed from the target's past values."""
    names = [f"lag_{k}" for k in target_lags(spec)]
    for w in rolling_windows(spec):
        names += [f"roll_mean_{w}", f"roll_std_{w}"]
    return [*names, SAME_WEEKDAY_FEATURE]


def feature_names(spec: DatasetSpec) -> list[str]:
    """The model's input columns, in the fixed order of the training matrix and serving array."""
    generated = [
        *(code_column(c) for c in spec.features.categorical),
        *target_feature_names(spec),
        *CALENDAR_FEATURES,
    ]
    # Only columns the model or the table's identity reads can clash: a raw column that is neither (e.g. a
    # `month` column next to the date) is simply replaced by the generated feature of the same name.
    used = {spec.timestamp_column, spec.target, *spec.entity_keys, *spec.feature_columns}
    clashes = sorted(set(generated) & used)
    if clashes:
        raise SpecError(f"columns {clashes} clash with generated feature names; rename them in the spec")
    names = [*key_features(spec), *spec.features.numeric, *generated]
    if len(set(names)) != len(names):
        raise SpecError(f"feature names are not unique: {names}")
    return names


def fit_vocabulary(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, list[str]]:
    """Fixed category list per categorical feature: the spec's allowed values, else sorted seen values."""
    vocabulary: dict[str, list[str]] = {}
    for column in spec.features.categorical:
        allowed = spec.columns[column].allowed
        if allowed is not None:
            vocabulary[column] = list(dict.fromkeys(allowed))
        else:
            seen = frame[column].dropna().astype("string").unique()
            vocabulary[column] = sorted(str(v) for v in seen)
    return vocabulary


def encode_categorical(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Codes of values in a fixed category list as float; unseen or missing values become NaN."""
    as_text = values.astype("string").to_numpy(dtype=object, na_value=None)
    codes = np.asarray(pd.Index(list(categories), dtype=object).get_indexer(as_text), dtype=np.float64)
    codes[codes < 0] = np.nan
    return codes


def calendar_features(dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Calendar features of each date (Monday is day 0 of the week; ISO week numbers)."""
    day_of_week = dates.dayofweek.to_numpy(dtype=np.float64)
    return {
        "day_of_week": day_of_week,
        "day_of_month": dates.day.to_numpy(dtype=np.float64),
        "month": dates.month.to_numpy(dtype=np.float64),
        "day_of_year": dates.dayofyear.to_numpy(dtype=np.float64),
        "week_of_year": dates.isocalendar().week.to_numpy(dtype=np.float64),
        "is_weekend": (day_of_week >= 5).astype(np.float64),
    }


def _mean_and_std(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = ~np.isnan(block)
    count = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, block, 0.0).sum(axis=1) / count
        # Two passes (not sum of squares): exact enough that online and offline agree to 1e-12.
        deviation = np.where(present, block - mean[:, None], 0.0)
        std = np.sqrt((deviation * deviation).sum(axis=1) / (count - 1))
    mean[count == 0] = np.nan
    std[count < 2] = np.nan
    return mean, std


def target_window_features(window: np.ndarray, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Target features from windows of past values: column -k holds day t-k (NaN: missing day)."""
    width = window.shape[1]
    if width != lookback_days(spec):
        raise SpecError(f"target window has {width} days, the spec needs {lookback_days(spec)}")
    out: dict[str, np.ndarray] = {f"lag_{k}": window[:, width - k].copy() for k in target_lags(spec)}
    for w in rolling_windows(spec):
        out[f"roll_mean_{w}"], out[f"roll_std_{w}"] = _mean_and_std(window[:, width - w :])
    same_weekday = window[:, [width - k for k in SAME_WEEKDAY_LAGS]]
    out[SAME_WEEKDAY_FEATURE] = _mean_and_std(same_weekday)[0]
    return out


def normalise_dates(values: pd.Series) -> pd.DatetimeIndex:
    """Dates (strings, date objects or timestamps) as midnight datetime64[ns]."""
    return pd.DatetimeIndex(pd.to_datetime(values)).normalize().astype("datetime64[ns]")


def epoch_days(dates: pd.DatetimeIndex) -> np.ndarray:
    """Whole days since 1970-01-01."""
    return np.asarray(dates.to_numpy().astype("datetime64[D]"), dtype=np.int64)


def target_values(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """The target as float64, missing values as NaN."""
    values = pd.to_numeric(frame[spec.target], errors="coerce")
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def entity_index(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """Dense entity number per row, in sorted key order (all zero for a single series)."""
    if not spec.entity_keys:
        return np.zeros(len(frame), dtype=np.int64)
    groups = frame.groupby(spec.entity_keys, sort=True, dropna=False).ngroup()
    return np.asarray(groups.to_numpy(dtype=np.int64), dtype=np.int64)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Fail with the missing column names when a frame lacks columns the spec needs."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RetrainError(f"{what} lacks columns {missing} required by the dataset spec")


def build_features(
    history: pd.DataFrame, spec: DatasetSpec, vocabulary: Vocabulary | None = None
) -> pd.DataFrame:
    """History rows sorted by date then entity, with every feature of `feature_names(spec)` added.

    A row's target features use only that entity's target values on earlier days. `vocabulary`
    defaults to `fit_vocabulary(history, spec)`; pass the training vocabulary for any other data.
    """
    feature_names(spec)  # fail early on a spec whose generated names clash
    require_columns(
        history, [spec.timestamp_column, spec.target, *spec.entity_keys, *spec.feature_columns], "history"
    )
    vocabulary = fit_vocabulary(history, spec) if vocabulary is None else vocabulary
    dates = normalise_dates(history[spec.timestamp_column])
    days = epoch_days(dates)
    entities = entity_index(history, spec)
    order = np.lexsort((entities, days))
    frame = history.iloc[order].reset_index(drop=True)
    frame[spec.timestamp_column] = dates[order]
    entities, days = entities[order], days[order]
    first_day = int(days.min()) if len(days) else 0
    day_number = days - first_day
    n_days = int(day_number.max()) + 1 if len(days) else 0
    n_entities = int(entities.max()) + 1 if len(entities) else 0

    slot = entities * max(n_days, 1) + day_number
    if len(np.unique(slot)) != len(slot):
        raise RetrainError("history has several rows for the same entity and day; keys must be unique")

    width = lookback_days(spec)
    # Dense (entity, day) grid padded with `width` missing days in front, so every window exists.
    grid = np.full((n_entities, n_days + width), np.nan)
    grid[entities, day_number + width] = target_values(frame, spec)
    offsets = np.arange(width)
    columns: dict[str, np.ndarray] = {n: np.empty(len(frame)) for n in target_feature_names(spec)}
    for start in range(0, len(frame), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        window = grid[entities[rows, None], day_number[rows, None] + offsets]
        for name, values in target_window_features(window, spec).items():
            columns[name][rows] = values

    for column in spec.features.categorical:
        frame[code_column(column)] = encode_categorical(frame[column], vocabulary[column])
    for name, values in columns.items():
        frame[name] = values
    for name, values in calendar_features(pd.DatetimeIndex(frame[spec.timestamp_column])).items():
        frame[name] = values
    return frame


def feature_matrix(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """The float64 model input matrix of a feature frame, columns in `feature_names(spec)` order."""
    return np.asarray(
        frame[feature_names(spec)].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
    )
