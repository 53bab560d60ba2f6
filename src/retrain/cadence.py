"""Cadence of a dataset's dates: retrain retrains daily models, so weekly or monthly data is refused.

Pure functions on dates; ingest (import, range ingest) and the features stage call `require_daily`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from retrain.errors import CadenceError, RetrainError

# Median gap between consecutive distinct dates, in days, and the name users know it by.
_NAMES: tuple[tuple[int, int, str], ...] = (
    (1, 1, "daily"),
    (2, 3, "every few days"),
    (4, 6, "irregular (several days apart)"),
    (7, 7, "weekly"),
    (8, 20, "irregular (weeks apart)"),
    (28, 31, "monthly"),
    (89, 92, "quarterly"),
    (365, 366, "yearly"),
)
MIN_DATES = 3  # fewer distinct dates say nothing about a cadence


@dataclass(frozen=True)
class Cadence:
    """What the dates look like: distinct days, the median and largest gap, and a name for it."""

    days: int
    median_gap_days: float
    max_gap_days: int
    name: str

    @property
    def daily(self) -> bool:
        """True when consecutive dates are mostly one day apart (gaps of missing days are allowed)."""
        return self.days < MIN_DATES or self.median_gap_days <= 1


def _name(gap: float) -> str:
    for low, high, name in _NAMES:
        if low <= gap <= high:
            return name
    return f"irregular (about {gap:.0f} days apart)"


def detect_cadence(dates: Iterable[date]) -> Cadence:
    """The cadence of a set of dates (duplicates, e.g. one row per entity, count once)."""
    days = sorted(set(dates))
    gaps = sorted((b - a).days for a, b in itertools.pairwise(days))
    if not gaps:
        return Cadence(days=len(days), median_gap_days=0.0, max_gap_days=0, name="single day")
    mid = len(gaps) // 2
    median = float(gaps[mid]) if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    return Cadence(days=len(days), median_gap_days=median, max_gap_days=gaps[-1], name=_name(median))


def require_daily(dates: Iterable[date], what: str) -> Cadence:
    """The cadence of `dates`, or CadenceError naming what was found when the data is not daily."""
    cadence = detect_cadence(dates)
    if not cadence.daily:
        raise CadenceError(
            f"{what} is {cadence.name}, not daily: {cadence.days} distinct dates, typically "
            f"{cadence.median_gap_days:g} days apart. retrain retrains daily models on daily data "
            "(one row per entity and day); aggregate or resample to days, or use a tool made for "
            f"{cadence.name} series."
        )
    return cadence


def date_range(start: date, end: date) -> list[date]:
    """Every date from start to end inclusive; RetrainError when end is before start."""
    if end < start:
        raise RetrainError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
