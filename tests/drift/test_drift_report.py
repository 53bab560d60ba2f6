"""The Evidently adapter on synthetic frames: verdicts, per-column thresholds, fixed-seed sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.errors import RetrainError
from retrain.monitoring.drift_report import compare_frames, sample_rows


def frame(rows: int, seed: int, shift: float = 0.0, mix: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "steady": rng.normal(10.0, 2.0, rows),
            "moving": rng.normal(10.0 + shift, 2.0, rows),
            "kind": np.where(rng.random(rows) < mix, "b", "a"),
        }
    )


def compare(reference: pd.DataFrame, current: pd.DataFrame, **options: object) -> dict[str, object]:
    settings: dict[str, object] = {"threshold": 0.1, "share_threshold": 0.5, "cap": 5000, "seed": 7}
    settings.update(options)
    result = compare_frames(reference, current, ["steady", "moving"], ["kind"], **settings)  # type: ignore[arg-type]
    return {"result": result, "drifted": [f.column for f in result.features if f.drifted]}


def test_shifted_numeric_and_categorical_columns_drift_and_nothing_else() -> None:
    found = compare(frame(4000, 1), frame(2000, 2, shift=2.0, mix=0.6))
    assert found["drifted"] == ["moving", "kind"]
    result = found["result"]
    methods = {f.column: f.method for f in result.features}  # type: ignore[attr-defined]
    assert methods == {"steady": "wasserstein", "moving": "wasserstein", "kind": "jensenshannon"}
    assert result.share == pytest.approx(2 / 3)  # type: ignore[attr-defined]


def test_same_distribution_does_not_drift() -> None:
    assert compare(frame(4000, 1), frame(2000, 3))["drifted"] == []


def test_per_column_threshold_overrides_the_default() -> None:
    found = compare(frame(4000, 1), frame(2000, 2, shift=2.0), thresholds={"moving": 5.0})
    moving = next(f for f in found["result"].features if f.column == "moving")  # type: ignore[attr-defined]
    assert found["drifted"] == [] and moving.threshold == 5.0 and moving.score > 0.5


def test_sampling_above_the_cap_is_seeded_and_reported(tmp_path: Path) -> None:
    reference, current = frame(20_000, 1), frame(12_000, 2, shift=1.0)
    first = compare(reference, current, cap=3000, html_path=tmp_path / "a.html", banner=["hello"])["result"]
    again = compare(reference, current, cap=3000)["result"]
    assert first.sampling.sampled and first.sampling.current_used == first.sampling.reference_used == 3000  # type: ignore[attr-defined]
    assert [f.score for f in first.features] == [f.score for f in again.features]  # type: ignore[attr-defined]
    text = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert "hello" in text and "Sampled with seed 7 above the cap of 3,000 rows" in text
    assert sample_rows(current, 3000, 7).equals(sample_rows(current, 3000, 7))


def test_empty_current_frame_is_refused() -> None:
    with pytest.raises(RetrainError, match="empty frame"):
        compare(frame(100, 1), frame(0, 2))
