"""The current window and the reference's own noise: scores equal Evidently's, windows inside the
reference never drift against it, a real shift does."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from retrain.monitoring.drift_window import (
    DAY_COLUMN,
    NOISE_MARGIN,
    Window,
    column_scorer,
    reference_noise,
)


def daily_frame(days: int, rows_per_day: int, seed: int, start: str = "2024-01-01") -> pd.DataFrame:
    """A stationary series: a normal numeric column and a two-valued categorical one, day by day."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    return pd.DataFrame(
        {
            "x": rng.normal(20.0, 3.0, n),
            "kind": np.where(rng.random(n) < 0.3, "b", "a"),
            DAY_COLUMN: np.repeat(pd.date_range(start, periods=days, freq="D"), rows_per_day),
        }
    )


def test_window_ends_on_the_checked_day() -> None:
    window = Window.ending(date(2026, 3, 12), 7)
    assert (window.start, window.end, window.days) == (date(2026, 3, 6), date(2026, 3, 12), 7)
    assert str(window) == "2026-03-06..2026-03-12"


def test_scores_equal_evidentlys_stattests() -> None:
    from evidently.legacy.calculations.stattests import jensenshannon_stat_test, wasserstein_stat_test
    from evidently.legacy.core import ColumnType

    reference, current = daily_frame(60, 5, seed=1), daily_frame(7, 5, seed=2)
    current.loc[3, "x"] = np.nan
    current.loc[4, "kind"] = "c"  # a value the reference never had
    for column, kind, test in (
        ("x", ColumnType.Numerical, wasserstein_stat_test),
        ("kind", ColumnType.Categorical, jensenshannon_stat_test),
    ):
        ours = column_scorer(reference[column], column == "x")(current[column])
        theirs = test(reference[column], current[column].dropna(), kind, 0.1).drift_score
        assert ours == pytest.approx(float(theirs), rel=1e-9, abs=1e-12), column


def test_a_window_inside_the_reference_stays_under_its_threshold() -> None:
    """30 rows of a stationary series score ~0.1-0.2 by chance: the spec's 0.1 alone would flag them."""
    reference = daily_frame(365, 1, seed=3)
    noise = reference_noise(reference, 30, 30, ["x"], ["kind"], seed=7)
    assert "windows of 30 days" in noise.method
    assert noise.threshold("x", 0.1) > 0.1  # the row count's noise is above the spec's floor
    score = column_scorer(reference["x"], True)
    for start in range(0, 335, 15):
        inside = reference.iloc[start : start + 30]
        assert score(inside["x"]) < noise.threshold("x", 0.1)
    shifted = daily_frame(30, 1, seed=4).assign(x=lambda f: f["x"] + 6.0)  # two standard deviations
    assert score(shifted["x"]) > noise.threshold("x", 0.1)


def test_short_reference_falls_back_to_row_draws() -> None:
    reference = daily_frame(10, 3, seed=5)
    noise = reference_noise(reference, 28, 28, ["x"], [], seed=7)
    assert "random draws of 28 reference rows" in noise.method
    assert noise.threshold("x", 0.1) == pytest.approx(max(0.1, NOISE_MARGIN * noise.scores["x"]))
