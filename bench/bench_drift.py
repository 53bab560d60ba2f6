"""The drift job (Evidently DataDriftPreset through retrain.monitoring.drift_report) versus numpy PSI + scipy KS.

Per current size (10k / 100k / 1M rows x 20 features: 16 numeric, 4 categorical; 4 of them shifted)
against a 100k-row reference, each method runs in its own fresh process, so peak RSS is that run's
alone. The drift job is `retrain.monitoring.drift_report.compare_frames` as the DAG calls it: sampling with a fixed
seed above the cap (the spec's `drift.sample_cap`, 100k by default), Evidently's preset with the
pipeline's methods and threshold, per-column scores read back, the HTML report saved. The anchor
computes PSI (10 reference-quantile bins; category frequencies) and the two-sample KS test per feature
on the full, unsampled data. Data generation is not timed; importing Evidently is timed separately.
Targets at 1M rows: job (import included) <= 30 s, peak RSS <= 2 GB, within 10x of the anchor.
Writes `## Drift` in docs/benchmarks.md.

    .venv/bin/python bench/bench_drift.py [--sizes 10k,100k,1M] [--repeats 2] [--cap 100000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import (
    RunContext,
    human_count,
    markdown_table,
    median,
    parse_counts,
    peak_rss_mb,
    reset_peak_rss,
    seconds,
    write_section,
)

SECTION = "Drift"
REFERENCE_ROWS = 100_000
NUMERIC, CATEGORICAL = 16, 4
SHIFTED_NUMERIC = ("num_00", "num_01", "num_02")
SHIFTED_CATEGORICAL = ("cat_00",)
TARGET_ROWS, TARGET_SECONDS, TARGET_RSS_MB, TARGET_RATIO = 1_000_000, 30.0, 2048.0, 10.0
FEATURE_THRESHOLD, SHARE_THRESHOLD, SEED = 0.1, 0.3, 42
PSI_BINS, PSI_LIMIT, KS_ALPHA = 10, 0.2, 0.05


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Rows x 20 features; when shifted, three numeric means move by 0.5 sd and one category mix changes."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(NUMERIC):
        name = f"num_{i:02d}"
        shift = 0.5 if shifted and name in SHIFTED_NUMERIC else 0.0
        data[name] = rng.normal(10.0 * (i + 1) + shift * (i + 1), float(i + 1), rows)
    for i in range(CATEGORICAL):
        name = f"cat_{i:02d}"
        levels = np.array([f"{name}_{k}" for k in range(4 + i)])
        weights = np.linspace(1.0, 2.0, len(levels))
        if shifted and name in SHIFTED_CATEGORICAL:
            weights = weights[::-1] ** 2
        data[name] = pd.Categorical(rng.choice(levels, size=rows, p=weights / weights.sum()))
    return pd.DataFrame(data)


def columns() -> tuple[list[str], list[str]]:
    """Numeric and categorical column names."""
    return [f"num_{i:02d}" for i in range(NUMERIC)], [f"cat_{i:02d}" for i in range(CATEGORICAL)]


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index on reference-quantile bins (numeric arrays)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)
    return _psi_from_shares(ref, cur)


def categorical_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI on category frequencies."""
    levels = sorted(set(reference.cat.categories) | set(current.cat.categories))
    ref = reference.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()
    cur = current.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy()
    return _psi_from_shares(ref, cur)


def _psi_from_shares(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.clip(ref, 1e-6, None), np.clip(cur, 1e-6, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def run_anchor(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """PSI + KS per feature on the full data; drifted = PSI over 0.2 (numeric also needs KS p < 0.05)."""
    from scipy.stats import ks_2samp

    numeric, categorical = columns()
    drifted = []
    for name in numeric:
        ref, cur = reference[name].to_numpy(), current[name].to_numpy()
        value = psi(ref, cur)
        pvalue = float(ks_2samp(ref, cur).pvalue)
        if value > PSI_LIMIT and pvalue < KS_ALPHA:
            drifted.append(name)
    for name in categorical:
        if categorical_psi(reference[name], current[name]) > PSI_LIMIT:
            drifted.append(name)
    return drifted


def worker(method: str, rows: int, cap: int, workdir: Path) -> dict[str, Any]:
    """One measured run in this (fresh) process."""
    reference = make_frame(REFERENCE_ROWS, 1, shifted=False)
    current = make_frame(rows, 2, shifted=True)
    started = time.perf_counter()
    if method == "evidently":
        import evidently.presets  # noqa: F401  (what the drift task pays once per run)
    else:
        import scipy.stats  # noqa: F401
    import_s = time.perf_counter() - started
    reset_peak_rss()
    started = time.perf_counter()
    if method == "evidently":
        from retrain.monitoring.drift_report import compare_frames

        numeric, categorical = columns()
        result = compare_frames(
            reference,
            current,
            numeric,
            categorical,
            threshold=FEATURE_THRESHOLD,
            share_threshold=SHARE_THRESHOLD,
            cap=cap,
            seed=SEED,
            html_path=workdir / f"drift-{rows}.html",
            banner=[f"bench: {rows} current rows"],
        )
        drifted = [f.column for f in result.features if f.drifted]
        used = result.sampling.current_used
    else:
        drifted = run_anchor(reference, current)
        used = rows
    job_s = time.perf_counter() - started
    return {
        "job_s": job_s,
        "import_s": import_s,
        "peak_rss_mb": peak_rss_mb(),
        "drifted": drifted,
        "current_used": used,
    }


@dataclass(frozen=True)
class SizeResult:
    """Medians over the repetitions at one current size, for both methods."""

    rows: int
    used: int
    job_s: float
    import_s: float
    job_rss_mb: float
    anchor_s: float
    anchor_import_s: float
    anchor_rss_mb: float
    job_drifted: list[str]
    anchor_drifted: list[str]

    @property
    def total_s(self) -> float:
        """Job time plus the Evidently import the task pays."""
        return self.job_s + self.import_s

    @property
    def ratio(self) -> float:
        """Drift job over the numpy anchor, computation only (imports excluded on both sides)."""
        return self.job_s / self.anchor_s

    @property
    def ratio_with_imports(self) -> float:
        """Both sides with their imports (Evidently vs scipy.stats), as a fresh task pays them."""
        return self.total_s / (self.anchor_s + self.anchor_import_s)


def measure(method: str, rows: int, cap: int, workdir: Path) -> dict[str, Any]:
    """Run one worker process and return what it measured."""
    argv = [sys.executable, __file__, "--worker", method, "--rows", str(rows), "--cap", str(cap)]
    argv += ["--workdir", str(workdir)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} worker at {rows} rows failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_size(rows: int, cap: int, repeats: int, workdir: Path) -> SizeResult:
    """Alternate the two methods `repeats` times at one size; medians."""
    job: list[dict[str, Any]] = []
    anchor: list[dict[str, Any]] = []
    for i in range(repeats):
        order = ("evidently", "anchor") if i % 2 == 0 else ("anchor", "evidently")
        for method in order:
            (job if method == "evidently" else anchor).append(measure(method, rows, cap, workdir))
        print(
            f"  {human_count(rows)} #{i + 1}: job {job[-1]['job_s']:.2f} s + import {job[-1]['import_s']:.2f} s, "
            f"{job[-1]['peak_rss_mb']:.0f} MB; anchor {anchor[-1]['job_s']:.2f} s, {anchor[-1]['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return SizeResult(
        rows=rows,
        used=job[0]["current_used"],
        job_s=median([r["job_s"] for r in job]),
        import_s=median([r["import_s"] for r in job]),
        job_rss_mb=max(r["peak_rss_mb"] for r in job),
        anchor_s=median([r["job_s"] for r in anchor]),
        anchor_import_s=median([r["import_s"] for r in anchor]),
        anchor_rss_mb=max(r["peak_rss_mb"] for r in anchor),
        job_drifted=job[0]["drifted"],
        anchor_drifted=anchor[0]["drifted"],
    )


HEADERS = (
    "current rows",
    "compared (sampled)",
    "drift job s",
    "Evidently import s",
    "job peak RSS MB",
    "numpy PSI+KS s",
    "scipy import s",
    "numpy peak RSS MB",
    "ratio (compute)",
    "ratio (with imports)",
    "drifted (job / numpy)",
)


def report(run: RunContext, results: list[SizeResult], cap: int, repeats: int, wall_s: float) -> str:
    """The markdown body of the section."""
    rows = [
        (
            human_count(r.rows),
            f"{r.used:,}" + (" (sampled)" if r.used < r.rows else ""),
            seconds(r.job_s),
            seconds(r.import_s),
            f"{r.job_rss_mb:,.0f}",
            seconds(r.anchor_s),
            seconds(r.anchor_import_s),
            f"{r.anchor_rss_mb:,.0f}",
            f"{r.ratio:.1f}x",
            f"{r.ratio_with_imports:.1f}x",
            f"{len(r.job_drifted)} / {len(r.anchor_drifted)}",
        )
        for r in results
    ]
    expected = sorted([*SHIFTED_NUMERIC, *SHIFTED_CATEGORICAL])
    lines = [
        *run.describe(),
        f"- Method: reference {human_count(REFERENCE_ROWS)} rows, current 20 features (16 numeric, 4 "
        f"categorical), {', '.join(expected)} shifted. Each method runs in a fresh process per size "
        f"({repeats} repetition(s), order alternating, medians; peak RSS is the process's high-water mark "
        "during the run, data included). Drift job: `retrain.monitoring.drift_report.compare_frames` (Evidently "
        f"`DataDriftPreset`, normed Wasserstein / Jensen-Shannon, threshold {FEATURE_THRESHOLD}, HTML report "
        f"saved) with **sampling above {cap:,} rows per side (seed {SEED})**, as the spec's `drift.sample_cap`. "
        "Numpy anchor: PSI on 10 reference-quantile bins (category shares for categorical columns) plus "
        "`scipy.stats.ks_2samp` on every numeric column, on the full data. Ratio (compute) = job / anchor, "
        "imports excluded; ratio (with imports) adds Evidently's and scipy.stats' import to each side. "
        f"Whole benchmark: {wall_s / 60:.1f} min.",
        "",
        markdown_table(HEADERS, rows),
        "",
        *verdicts(results, expected),
    ]
    return "\n".join(lines)


def verdicts(results: list[SizeResult], expected: list[str]) -> list[str]:
    """Target checks at 1M rows and whether both methods found the shifted features."""
    lines = []
    at = next((r for r in results if r.rows == TARGET_ROWS), None)
    if at is None:
        lines.append(f"- Targets are stated at {human_count(TARGET_ROWS)} rows, not measured in this run.")
    else:
        checks = (
            (
                f"wall time (import included) <= {TARGET_SECONDS:.0f} s",
                at.total_s <= TARGET_SECONDS,
                f"{at.total_s:.1f} s",
            ),
            (
                f"peak RSS <= {TARGET_RSS_MB / 1024:.0f} GB",
                at.job_rss_mb <= TARGET_RSS_MB,
                f"{at.job_rss_mb:,.0f} MB",
            ),
            (
                f"within {TARGET_RATIO:.0f}x of numpy PSI+KS (compute)",
                at.ratio <= TARGET_RATIO,
                f"{at.ratio:.1f}x ({at.ratio_with_imports:.1f}x with imports)",
            ),
        )
        for name, ok, value in checks:
            lines.append(
                f"- {human_count(TARGET_ROWS)} rows, {name}: {value} — **{'PASS' if ok else 'FAIL'}**"
            )
    for r in results:
        agree = sorted(r.job_drifted) == expected and sorted(r.anchor_drifted) == expected
        if not agree:
            lines.append(
                f"- {human_count(r.rows)}: drifted columns differ from the shifted ones: job "
                f"{sorted(r.job_drifted)}, numpy {sorted(r.anchor_drifted)}"
            )
    if all(sorted(r.job_drifted) == expected == sorted(r.anchor_drifted) for r in results):
        lines.append(
            f"- Both methods flag exactly the shifted columns ({', '.join(expected)}) at every size."
        )
    slowest = max(results, key=lambda r: r.ratio)
    if slowest.ratio > TARGET_RATIO:
        lines.append(
            f"- Below the cap the ratio is over {TARGET_RATIO:.0f}x (worst {slowest.ratio:.0f}x at "
            f"{human_count(slowest.rows)} rows): the job's time is mostly a fixed cost per column (the preset "
            "computes each column's drift for its metrics and again for its dataset-drift table, and builds "
            "every widget's plots during `run`), so it barely moves between 10k and 100k rows while the anchor "
            "stays well under a second. Above the cap the job's time stays flat while the anchor grows with "
            "the data; the 10x target is stated at 1M rows."
        )
    return lines


def main() -> None:
    """Run the benchmark (or one worker) and write its section."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10k,100k,1M", help="current rows, e.g. 10k,100k,1M")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repetitions per size (medians)")
    parser.add_argument(
        "--cap", type=int, default=100_000, help="sampling cap per side (spec drift.sample_cap)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    parser.add_argument("--worker", choices=("evidently", "anchor"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.cap, args.workdir)))
        return
    run = RunContext.capture()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        results = []
        for rows in parse_counts(args.sizes):
            print(f"{human_count(rows)} current rows", flush=True)
            results.append(run_size(rows, args.cap, args.repeats, Path(tmp)))
    body = report(run, results, args.cap, args.repeats, time.perf_counter() - started)
    print(body)
    if not args.no_write:
        print(f"wrote section '{SECTION}' of {write_section(SECTION, body)}")


if __name__ == "__main__":
    main()
