"""The result of one drift check: a frozen summary and the verdicts it implies (pure, no I/O).

drift_alerts (where a summary goes), drift_email and drift_metrics (how it is shown) all read it.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from retrain.monitoring.drift_report import FeatureDrift, Sampling

DriftKind = Literal["input", "predictions"]


class DriftSummary(BaseModel):
    """One drift check of a window of days: per-column scores, the share of drifted columns, the verdicts.

    When the window has fewer than ``min_rows`` rows nothing is compared (``insufficient_data``): no
    scores, no share, no alert.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")  # ignore: computed fields come back from JSON

    dataset: str
    day: date
    kind: DriftKind
    model_version: int
    reference: str
    window_start: date
    window_end: date
    days_with_data: int
    rows: int
    reference_rows: int
    min_rows: int
    features: tuple[FeatureDrift, ...] = ()
    target: FeatureDrift | None = None
    share: float | None = None
    share_threshold: float
    feature_threshold: float
    key_features: tuple[str, ...]
    sampling: Sampling | None = None
    calibration: str | None = None
    summary_path: str
    report_path: str | None = None
    mlflow_report: str | None = None
    notes: tuple[str, ...] = ()
    logged_to_mlflow: bool = False
    pushed: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def insufficient_data(self) -> bool:
        """Too few rows in the window to judge drift."""
        return self.rows < self.min_rows

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drifted_features(self) -> list[str]:
        """Feature columns whose score reached their threshold (the target is reported apart)."""
        return [f.column for f in self.features if f.drifted]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dataset_drift(self) -> bool:
        """The share of drifted features reached the spec's share_threshold."""
        return self.share is not None and bool(self.features) and self.share >= self.share_threshold

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key_drift(self) -> list[str]:
        """Drifted columns among the spec's key features."""
        return [c for c in self.drifted_features if c in self.key_features]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def target_drift(self) -> bool:
        """The realised target's distribution moved past its threshold."""
        return self.target is not None and self.target.drifted

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alert(self) -> bool:
        """Whether this check asks for an email: dataset drift, a key feature or the target drifted."""
        return self.dataset_drift or bool(self.key_drift) or self.target_drift

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> str:
        """One line: ``insufficient data: 12 rows < min_rows 30``, ``drift: ...`` or ``no drift``."""
        if self.insufficient_data:
            return f"insufficient data: {self.rows} rows < min_rows {self.min_rows}"
        if not self.alert:
            return "no drift"
        what = [f"{self.share or 0:.0%} of features"] if self.dataset_drift else []
        what += [f"key {c}" for c in self.key_drift]
        what += [f"target {self.target.column}"] if self.target is not None and self.target.drifted else []
        return "drift: " + ", ".join(what)

    @property
    def window(self) -> str:
        """``2026-03-06..2026-03-12 (7 days with data)``."""
        return f"{self.window_start}..{self.window_end} ({self.days_with_data} days with data)"

    @property
    def sampled(self) -> bool:
        """Whether either side was sampled."""
        return self.sampling is not None and self.sampling.sampled

    def headline(self) -> str:
        """e.g. ``2 of 6 features`` (input) or ``prediction log: 2 of 5 columns``, ``; target`` appended."""
        counted = f"{len(self.drifted_features)} of {len(self.features)}"
        text = f"{counted} features" if self.kind == "input" else f"prediction log: {counted} columns"
        if self.target_drift and self.target is not None:
            text = (
                f"target {self.target.column}"
                if not self.features
                else f"{text}, target {self.target.column}"
            )
        return text
