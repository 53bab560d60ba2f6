"""The current window of a drift check and how much a window of that size drifts inside the reference.

A drift check compares the last ``drift.current_days`` days (the checked day and the days before it)
with the production version's reference. A drift score measured on few rows is noisy, and a window of
a seasonal series never looks like a whole year: both make a fixed threshold flag every day. So each
column's threshold is raised to ``NOISE_MARGIN`` times the largest score that windows of the same
length *inside the reference itself* get against the whole reference (:func:`reference_noise`). A
window that was part of the training data is one of those windows, so it cannot drift against it; a
window drifts when it moves further from the reference than the training period ever did.

Scores are computed as Evidently's preset computes them (same formulas, checked by a test), with the
reference's share of work done once per column: a year of windows scores in well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from retrain.layout import DatasetLayout
from retrain.monitoring.realized import read_prediction_log

log = logging.getLogger(__name__)

DAY_COLUMN = "__day"
"""The calendar day of each reference row, kept beside the compared columns to cut windows."""
NOISE_MARGIN = 1.2
"""A column drifts above this multiple of the largest score a reference window got."""
MAX_WINDOWS = 120
"""Windows scored at most (evenly spaced over the reference): bounds the cost on long references."""
MIN_WINDOWS = 5
"""Fewer whole windows fit in the reference: resample rows instead (the sampling noise alone)."""
RESAMPLES = 50


@dataclass(frozen=True)
class Window:
    """The days a check compares: ``current_days`` days ending on the checked day."""

    start: date
    end: date

    @classmethod
    def ending(cls, day: date, days: int) -> Window:
        """The window of ``days`` days ending on ``day``."""
        return cls(day - timedelta(days=days - 1), day)

    @property
    def days(self) -> int:
        """Calendar days in the window."""
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


@dataclass(frozen=True)
class Noise:
    """Per column, the largest score of a reference window against the reference, and how it was found."""

    scores: dict[str, float]
    method: str

    def threshold(self, column: str, floor: float) -> float:
        """The column's threshold: the spec's, or above the reference's own noise when that is higher."""
        noise = self.scores.get(column)
        if noise is None or not np.isfinite(noise):
            return floor
        return max(floor, NOISE_MARGIN * noise)


def curated_window(
    layout: DatasetLayout, window: Window, columns: Sequence[str]
) -> tuple[pd.DataFrame, list[date]]:
    """The window's curated rows (``columns`` only) and the days that had a partition."""
    days = [d for d in layout.curated_days() if window.start <= d <= window.end]
    parts = [pd.read_parquet(layout.curated_file(d), columns=list(columns)) for d in days]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    return frame, days


def prediction_window(layout: DatasetLayout, window: Window) -> tuple[pd.DataFrame | None, list[date]]:
    """Every prediction logged for a day of the window (None when none was) and the days that had one."""
    parts, days = [], []
    day = window.start
    while day <= window.end:
        logged = read_prediction_log(layout, day)
        if logged is not None and not logged.empty:
            parts.append(logged)
            days.append(day)
        day += timedelta(days=1)
    return (pd.concat(parts, ignore_index=True) if parts else None), days


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples (scipy's algorithm, without re-sorting ``u``)."""
    points = np.sort(np.concatenate([u, v]))
    u_cdf = np.searchsorted(u, points[:-1], side="right") / len(u)
    v_cdf = np.searchsorted(v, points[:-1], side="right") / len(v)
    return float(np.sum(np.abs(u_cdf - v_cdf) * np.diff(points)))


def column_scorer(reference: pd.Series, numeric: bool) -> Callable[[pd.Series], float]:
    """Score a current column against ``reference`` as Evidently's preset does, reference work done once.

    Numeric: Wasserstein distance normed by the reference's std (floored at 0.001); categorical:
    Jensen-Shannon distance of the value shares over the values either side has. Missing values are
    dropped first, as Evidently does. tests/drift checks the scores equal Evidently's stattests.
    """
    from scipy.spatial import distance

    ref = reference.dropna()
    if numeric:
        values = np.sort(ref.to_numpy(dtype="float64"))
        norm = max(float(np.std(values)), 0.001) if len(values) else 1.0

        def numeric_score(current: pd.Series) -> float:
            cur = np.sort(current.dropna().to_numpy(dtype="float64"))
            if not len(values) or not len(cur):
                return float("nan")
            return wasserstein_sorted(values, cur) / norm

        return numeric_score
    counts = ref.value_counts()

    def categorical_score(current: pd.Series) -> float:
        cur = current.dropna().value_counts()
        if counts.empty or cur.empty:
            return float("nan")
        keys = list(counts.index.union(cur.index))
        ref_p = counts.reindex(keys, fill_value=0).to_numpy() / counts.sum()
        cur_p = cur.reindex(keys, fill_value=0).to_numpy() / cur.sum()
        return float(distance.jensenshannon(ref_p, cur_p))

    return categorical_score


def reference_noise(
    reference: pd.DataFrame,
    window_days: int,
    current_rows: int,
    numeric: Sequence[str],
    categorical: Sequence[str],
    seed: int,
) -> Noise:
    """Largest score per column of windows of ``window_days`` days of the reference against all of it.

    ``reference`` carries :data:`DAY_COLUMN`. When fewer than :data:`MIN_WINDOWS` windows fit (a short
    holdout), seeded random subsets of ``current_rows`` rows stand in for windows: they measure the
    noise of the row count alone, not the series' own variation.
    """
    from retrain.monitoring.drift_report import drift_frame

    values = drift_frame(reference, numeric, categorical)
    groups = _window_rows(reference, window_days)
    if len(groups) >= MIN_WINDOWS:
        method = f"{len(groups)} windows of {window_days} days inside the reference"
    else:
        rng = np.random.default_rng(seed)
        replace = current_rows >= len(values)
        groups = [rng.choice(len(values), size=current_rows, replace=replace) for _ in range(RESAMPLES)]
        method = f"{RESAMPLES} random draws of {current_rows} reference rows (too few days for windows)"
    scores: dict[str, float] = {}
    for column in values.columns:
        series = values[column]
        score = column_scorer(series, column in numeric)
        found = [score(series.iloc[rows]) for rows in groups]
        finite = [s for s in found if np.isfinite(s)]
        scores[column] = max(finite) if finite else float("nan")
    log.info("drift noise method=%r scores=%s", method, {c: round(s, 4) for c, s in scores.items()})
    return Noise(scores, method)


def _window_rows(reference: pd.DataFrame, window_days: int) -> list[np.ndarray]:
    """Row positions of each whole window of the reference's days (at most MAX_WINDOWS, evenly spaced)."""
    if DAY_COLUMN not in reference.columns or reference.empty:
        return []
    days = pd.to_datetime(reference[DAY_COLUMN]).to_numpy(dtype="datetime64[D]")
    first, last = days.min(), days.max()
    span = int((last - first).astype(int)) + 1
    starts = span - window_days + 1
    if starts < 1:
        return []
    picked = np.unique(np.linspace(0, starts - 1, num=min(starts, MAX_WINDOWS)).round().astype(int))
    groups = []
    for offset in picked:
        lo = first + np.timedelta64(int(offset), "D")
        rows = np.flatnonzero((days >= lo) & (days < lo + np.timedelta64(window_days, "D")))
        if len(rows):
            groups.append(rows)
    return groups
