"""Type coercion of raw landing columns to the spec's declared types, and date-format diagnostics.

Pure pandas: ingest stages what `normalise_frame` returns; history import and the spec drafter parse
dates with `parse_days`; validation reports `date_format_problems` next to the GX failures.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from retrain.spec import ColumnSpec, ColumnType, DatasetSpec

_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _as_text(values: pd.Series) -> pd.Series:
    """Left un-coerced: plain str objects (nulls as None), so Parquet can hold any mix of raw values."""
    return values.astype(str).where(values.notna(), None).astype(object)


def _lost(before: pd.Series, after: pd.Series) -> bool:
    return bool((after.isna() & before.notna()).any())


def _numbers(values: pd.Series) -> pd.Series:
    if is_bool_dtype(values):
        return values.astype("Int64")
    return values if is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")


def _to_int(values: pd.Series) -> pd.Series | None:
    numbers = _numbers(values)
    present = numbers.dropna()
    if _lost(values, numbers) or not bool((present == present.round()).all()):
        return None
    return numbers.astype("Int64" if numbers.isna().any() else "int64")


def _to_float(values: pd.Series) -> pd.Series | None:
    numbers = _numbers(values)
    return None if _lost(values, numbers) else numbers.astype("float64")


def _to_bool(values: pd.Series) -> pd.Series | None:
    if is_bool_dtype(values):
        flags = values.astype("boolean")
    else:
        text = values.astype("string").str.strip().str.lower()
        flags = pd.Series(pd.NA, index=values.index, dtype="boolean")
        flags[text.isin(_TRUE).fillna(False).astype(bool)] = True
        flags[text.isin(_FALSE).fillna(False).astype(bool)] = False
        if _lost(values, flags):
            return None
    return flags.astype("boolean" if flags.isna().any() else "bool")


def _parse_stamps(values: pd.Series, fmt: str | None) -> pd.Series:
    """Timestamps per the column's strftime format (ISO 8601 when None); unparseable values become NaT."""
    if is_datetime64_any_dtype(values):
        return values
    text = values if values.dtype == object else values.astype("string")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mixed offsets: the caller checks the dtype
        return pd.to_datetime(text, errors="coerce", format=fmt or "ISO8601")


def parse_days(values: pd.Series, fmt: str | None = None) -> pd.Series | None:
    """Calendar days (datetime64, midnight) parsed per a strftime format (ISO when None); None if any fails."""
    try:
        stamps = _parse_stamps(values, fmt)
    except (ValueError, TypeError):
        return None
    if not is_datetime64_any_dtype(stamps) or _lost(values, stamps):
        return None  # unparseable, or a mix of time zones that has no single day per value
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)  # the local calendar day is the day
    return stamps.dt.normalize().astype("datetime64[ns]")


def describe_format(fmt: str | None) -> str:
    """How a date column's format reads in messages."""
    return repr(fmt) if fmt else "ISO 8601 (the default, e.g. '2024-03-01')"


def date_format_problem(name: str, fmt: str | None, values: pd.Series) -> str | None:
    """A field-named message when a date column's values do not parse with its format, else None."""
    if parse_days(values, fmt) is not None:
        return None
    hint = f"set columns.{name}.format in the spec (a strftime pattern, e.g. '%b %d %Y')"
    try:
        stamps = _parse_stamps(values, fmt)
    except (ValueError, TypeError):
        return f"column {name}: values do not parse as dates with format {describe_format(fmt)}; {hint}"
    bad = values.notna() & pd.Series(stamps, index=values.index).isna()
    if not bad.any():
        return f"column {name}: values mix time zones, so some have no single calendar day; write one offset"
    return (
        f"column {name}: {int(bad.sum())} value(s) do not match format {describe_format(fmt)} "
        f"(e.g. {str(values[bad].iloc[0])!r}); {hint}"
    )


def date_format_problems(spec: DatasetSpec, frame: pd.DataFrame) -> dict[str, str]:
    """Column -> message for the spec's date columns that did not parse (left as text when staged)."""
    problems = {}
    for name, col in spec.columns.items():
        if col.type is ColumnType.DATE and name in frame.columns and not is_datetime64_any_dtype(frame[name]):
            problem = date_format_problem(name, col.format, frame[name])
            if problem:
                problems[name] = problem
    return problems


def _to_string(values: pd.Series) -> pd.Series:
    return values.astype("string")


_COERCE: dict[ColumnType, Callable[[pd.Series], pd.Series | None]] = {
    ColumnType.INT: _to_int,
    ColumnType.FLOAT: _to_float,
    ColumnType.BOOL: _to_bool,
    ColumnType.STRING: _to_string,
}


def coerce_column(values: pd.Series, col: ColumnSpec) -> pd.Series | None:
    """The column cast to its declared type (dates per col.format), or None when it will not cast."""
    if col.type is ColumnType.DATE:
        return parse_days(values, col.format)
    return _COERCE[col.type](values)


def normalise_frame(raw: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, list[str]]:
    """Cast each declared column to its type; return the frame and the columns that would not cast."""
    raw = raw.reset_index(drop=True)
    columns: dict[str, pd.Series] = {}
    uncoerced: list[str] = []
    for name, col in spec.columns.items():
        if name not in raw.columns:
            continue
        typed = coerce_column(raw[name], col)
        if typed is None:
            uncoerced.append(name)
            typed = _as_text(raw[name]) if raw[name].dtype == object else raw[name]
        columns[name] = typed
    for name in raw.columns:
        if name not in spec.columns:
            columns[str(name)] = _as_text(raw[name]) if raw[name].dtype == object else raw[name]
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(raw)))
    return frame, uncoerced
