"""Evidently adapter: sample two frames with a fixed seed, run DataDriftPreset, read back per-column scores.

Distance methods are fixed (normed Wasserstein for numeric columns, Jensen-Shannon for categorical ones)
so that every score means "higher is more drift" and one threshold (the spec's ``feature_threshold``)
applies to all columns, in the report, the email and the Prometheus gauges alike. A column drifts when
its score is at least the threshold: Evidently's own rule.

Evidently is imported inside functions only: it takes ~4 s to import.
"""

from __future__ import annotations

import html
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from retrain.errors import RetrainError

log = logging.getLogger(__name__)

NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"
METHOD_NAMES = {
    NUMERIC_METHOD: "Wasserstein distance (normed)",
    CATEGORICAL_METHOD: "Jensen-Shannon distance",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureDrift(_Frozen):
    """Drift of one column: method, score (higher is more drift), threshold, verdict."""

    column: str
    kind: Literal["numeric", "categorical"]
    method: str
    score: float
    threshold: float
    drifted: bool
    noise: float | None = None
    """The largest score a window of the reference got against the whole reference (None: not measured)."""

    @property
    def method_name(self) -> str:
        """Human name of the method."""
        return METHOD_NAMES.get(self.method, self.method)


class Sampling(_Frozen):
    """Rows available and rows compared on each side; sampling uses a fixed seed above the cap."""

    cap: int
    seed: int
    reference_rows: int
    reference_used: int
    current_rows: int
    current_used: int

    @property
    def sampled(self) -> bool:
        """True when either side was sampled down to the cap."""
        return self.reference_used < self.reference_rows or self.current_used < self.current_rows

    def describe(self) -> str:
        """One sentence for reports and emails."""
        sizes = (
            f"current {self.current_used:,} of {self.current_rows:,} rows, "
            f"reference {self.reference_used:,} of {self.reference_rows:,} rows"
        )
        if self.sampled:
            return f"Sampled with seed {self.seed} above the cap of {self.cap:,} rows: {sizes}."
        return f"Not sampled (cap {self.cap:,} rows): {sizes}."


class DriftComparison(_Frozen):
    """What one Evidently DataDriftPreset run found."""

    features: tuple[FeatureDrift, ...]
    share: float
    sampling: Sampling
    seconds: float
    html_path: str | None = None


def sample_rows(frame: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """The frame itself when it has at most ``cap`` rows, else ``cap`` rows drawn without replacement."""
    if len(frame) <= cap:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=cap, replace=False))
    return frame.iloc[picked].reset_index(drop=True)


def drift_frame(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """Only the compared columns: numeric as float64 (NaN for missing), categorical as strings (None)."""
    missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
    if missing:
        raise RetrainError(
            f"cannot compare drift: columns {missing} are missing (have {list(frame.columns)})"
        )
    out = {c: pd.to_numeric(frame[c], errors="coerce").astype("float64") for c in numeric}
    for c in categorical:
        values = frame[c].astype("object")
        out[c] = values.where(values.notna(), None).map(lambda v: v if v is None else str(v))
    return pd.DataFrame(out, index=frame.index)


def compare_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    threshold: float,
    share_threshold: float,
    cap: int,
    thresholds: Mapping[str, float] | None = None,
    seed: int,
    html_path: Path | None = None,
    banner: Sequence[str] = (),
    reference_rows: int | None = None,
    noise: Mapping[str, float] | None = None,
) -> DriftComparison:
    """Run Evidently's DataDriftPreset on (sampled) frames; optionally save the HTML report with a banner.

    thresholds: per-column overrides of ``threshold``.
    reference_rows: rows the reference was drawn from, when the caller already sampled it.
    noise: per column, the reference's own window-to-reference score, kept with each column's verdict.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if current.empty or reference.empty:
        raise RetrainError(
            f"cannot compare drift on an empty frame (reference {len(reference)} rows, "
            f"current {len(current)} rows)"
        )
    started = time.perf_counter()
    columns = [*numeric, *categorical]
    ref = drift_frame(sample_rows(reference, cap, seed), numeric, categorical)
    cur = drift_frame(sample_rows(current, cap, seed), numeric, categorical)
    sampling = Sampling(
        cap=cap,
        seed=seed,
        reference_rows=max(reference_rows or 0, len(reference)),
        reference_used=len(ref),
        current_rows=len(current),
        current_used=len(cur),
    )
    per_column = {c: float(t) for c, t in (thresholds or {}).items() if c in columns}
    definition = DataDefinition(numerical_columns=list(numeric), categorical_columns=list(categorical))
    preset = DataDriftPreset(
        columns=columns,
        num_method=NUMERIC_METHOD,
        cat_method=CATEGORICAL_METHOD,
        threshold=threshold,
        per_column_threshold=per_column or None,
        drift_share=share_threshold,
    )
    with warnings.catch_warnings():
        # Constant columns (holiday on most days) make Evidently divide 0 by 0 in a side statistic;
        # their drift score is still defined (0.0), so the warning is noise in every task log.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = Report([preset]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
    scores = _value_drift_scores(snapshot.dict())
    features = []
    for column in columns:
        if column not in scores:
            raise RetrainError(f"Evidently returned no drift score for column {column!r}")
        method, score = scores[column]
        limit = per_column.get(column, threshold)
        features.append(
            FeatureDrift(
                column=column,
                kind="numeric" if column in numeric else "categorical",
                method=method,
                score=score,
                threshold=limit,
                drifted=bool(np.isfinite(score) and score >= limit),
                noise=(noise or {}).get(column),
            )
        )
    share = sum(f.drifted for f in features) / len(features)
    if html_path is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            save_report_html(snapshot, html_path, [*banner, sampling.describe()])
    seconds = time.perf_counter() - started
    log.info(
        "drift compared columns=%d drifted=%d share=%.3f sampled=%s seconds=%.2f",
        len(features),
        sum(f.drifted for f in features),
        share,
        sampling.sampled,
        seconds,
    )
    return DriftComparison(
        features=tuple(features),
        share=share,
        sampling=sampling,
        seconds=seconds,
        html_path=str(html_path) if html_path is not None else None,
    )


def _value_drift_scores(snapshot: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """Per column (method, score) from the ValueDrift metrics of a snapshot's dict()."""
    scores: dict[str, tuple[str, float]] = {}
    for metric in snapshot.get("metrics", []):
        config = metric.get("config") or {}
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        value = metric.get("value")
        score = float(value) if isinstance(value, int | float) else float("nan")
        scores[str(config["column"])] = (str(config.get("method") or ""), score)
    return scores


def save_report_html(snapshot: Any, path: Path, banner: Sequence[str]) -> Path:
    """Save Evidently's HTML with a short banner on top (what was compared, whether it was sampled)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    snapshot.save_html(str(tmp))
    text = tmp.read_text(encoding="utf-8")
    lines = "".join(f"<div>{html.escape(line)}</div>" for line in banner)
    block = (
        '<div id="retrain-banner" style="font-family:sans-serif;padding:8px 16px;'
        f'background:#f4f4f4;border-bottom:1px solid #ccc">{lines}</div>'
    )
    tmp.write_text(text.replace("<body>", "<body>" + block, 1), encoding="utf-8")
    tmp.replace(path)
    return path
