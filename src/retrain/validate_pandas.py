"""The spec's checks written directly in vectorised pandas: the speed anchor for the GX benchmark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from retrain.expectations import spec_checks
from retrain.spec import DatasetSpec


def _resolve(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def _dtype(name: str) -> Any:
    try:
        return np.dtype(name)
    except TypeError:
        return getattr(pd, name)()


def _columns_match(frame: pd.DataFrame, column_set: list[str], exact_match: bool = True) -> bool:
    present = set(map(str, frame.columns))
    return present == set(column_set) if exact_match else set(column_set) <= present


def _in_type_list(values: pd.Series, type_list: list[str]) -> bool:
    if values.dtype == object:
        # GX checks object columns value by value; ingest only leaves un-coercible text there.
        return not values.notna().any()
    return any(values.dtype == _dtype(name) for name in type_list)


def _not_null(values: pd.Series) -> bool:
    return not values.isna().any()


def _between(values: pd.Series, min_value: Any = None, max_value: Any = None) -> bool:
    present = values.dropna()
    if is_datetime64_any_dtype(present):
        min_value = None if min_value is None else pd.Timestamp(min_value)
        max_value = None if max_value is None else pd.Timestamp(max_value)
    elif not is_numeric_dtype(present) or present.dtype == bool:
        return bool(present.empty)
    ok = True
    if min_value is not None:
        ok = ok and bool((present >= min_value).all())
    if max_value is not None:
        ok = ok and bool((present <= max_value).all())
    return ok


def _extreme_between(values: pd.Series, which: str, min_value: Any = None, max_value: Any = None) -> bool:
    if not (is_numeric_dtype(values) or is_datetime64_any_dtype(values)) or values.dtype == bool:
        return False
    extreme = values.min() if which == "min" else values.max()
    if pd.isna(extreme):  # empty or all null: GX observes no value, which fails
        return False
    return bool((min_value is None or extreme >= min_value) and (max_value is None or extreme <= max_value))


def _min_between(values: pd.Series, min_value: Any = None, max_value: Any = None) -> bool:
    return _extreme_between(values, "min", min_value, max_value)


def _max_between(values: pd.Series, min_value: Any = None, max_value: Any = None) -> bool:
    return _extreme_between(values, "max", min_value, max_value)


def _in_set(values: pd.Series, value_set: list[Any]) -> bool:
    return bool(values.dropna().isin(value_set).all())


def _unique(values: pd.Series) -> bool:
    return not values.dropna().duplicated().any()


def _compound_unique(frame: pd.DataFrame, column_list: list[str]) -> bool:
    keys = frame[column_list]
    keys = keys[keys.notna().any(axis=1)]  # GX default: ignore rows whose key values are all missing
    return not keys.duplicated(keep=False).any()


def _row_count(frame: pd.DataFrame, min_value: int | None = None, max_value: int | None = None) -> bool:
    rows = len(frame)
    return (min_value is None or rows >= min_value) and (max_value is None or rows <= max_value)


_COLUMN_CHECKS: dict[str, Callable[..., bool]] = {
    "expect_column_values_to_be_in_type_list": _in_type_list,
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_min_to_be_between": _min_between,
    "expect_column_max_to_be_between": _max_between,
    "expect_column_values_to_be_unique": _unique,
}
_TABLE_CHECKS: dict[str, Callable[..., bool]] = {
    "expect_table_columns_to_match_set": _columns_match,
    "expect_compound_columns_to_be_unique": _compound_unique,
    "expect_table_row_count_to_be_between": _row_count,
}


def pandas_checks(spec: DatasetSpec, frame: pd.DataFrame, params: dict[str, Any]) -> list[str]:
    """Labels of the spec's checks that fail on frame (same names as the GX validation reports)."""
    failed = []
    for check in spec_checks(spec):
        kwargs = {k: _resolve(v, params) for k, v in check.kwargs.items()}
        if check.expectation_type in _COLUMN_CHECKS:
            column = kwargs.pop("column")
            ok = column in frame.columns and _COLUMN_CHECKS[check.expectation_type](frame[column], **kwargs)
        else:
            columns = kwargs.get("column_list", [])
            ok = set(columns) <= set(frame.columns) and _TABLE_CHECKS[check.expectation_type](frame, **kwargs)
        if not ok:
            failed.append(check.label)
    return failed
