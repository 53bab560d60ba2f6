"""One daily run of the pipeline stages versus a bare pandas + xgboost script, side by side (issue 4 Measure).

For each size, simulated curated history (stores x items x days, fixed seed, written straight to
curated/ without GX: validation has its own benchmark) feeds two runs in the same process, order
alternating: the pipeline stages (`features.run`, `train.run` incl. MLflow logging, `evaluate.run`,
`promote.register_and_gate` incl. smoke test and gates) and a bare script (read the same Parquet, build
features with `feature_maths.build_features`, `train.fit_model` with the same params, predict the
holdout). Both must reach the same holdout RMSE. A warm-up run at a tiny size first creates the MLflow
store and a production model, so every measured run is a normal day (evaluate scores production too).
At 100k rows the whole DAG also runs once through `dag.test()`. Temp RETRAIN_HOME and MLflow store.
Targets: overhead <= 15% of bare at 1M rows; cost per row roughly flat from 1M to 5M.

    .venv/bin/python bench/bench_pipeline.py [--quick] [--sizes 100k,1M,5M] [--repeats 1] [--no-dag] [--no-write]
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from _common import (
    RunContext,
    grid_shape,
    human_count,
    markdown_table,
    median,
    parse_counts,
    peak_rss_mb,
    reset_peak_rss,
    seconds,
    timed,
    write_section,
)

from retrain.feature_maths import build_features, feature_matrix, lookback_days
from retrain.features import LOOKBACK_MARGIN_DAYS
from retrain.ingest import normalise_frame
from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.simulate import SimulationConfig, iter_days
from retrain.spec import DatasetSpec, load_spec
from retrain.train import fit_model

SECTION = "Daily pipeline"
RUN_DAY = date(2026, 6, 30)
TRAIN_DAYS = 100
SHAPES = {100_000: (20, 50), 1_000_000: (100, 100), 5_000_000: (200, 250)}
WARMUP_SHAPE = (5, 10)
TARGET_ROWS, TARGET_OVERHEAD = 1_000_000, 0.15
FLAT_FROM, FLAT_TO, FLAT_BAND = 1_000_000, 5_000_000, (0.8, 1.25)
STAGES = ("features", "train", "evaluate", "register")
BARE_PHASES = ("read", "features", "fit", "predict")
SUMMARY_HEADERS = (
    "training rows (stores x items x days)", "bare s", "pipeline s", "overhead", "bare µs/row",
    "pipeline µs/row", "peak RSS MB bare / pipeline", "holdout RMSE", "gates",
)  # fmt: skip
STAGE_HEADERS = (
    "training rows", "features", "train", "of which fit", "evaluate", "register", "pipeline total",
    "bare read", "bare features", "bare fit", "bare predict", "bare total",
)  # fmt: skip


@dataclass(frozen=True)
class SizeResult:
    """Median seconds per phase of the bare script and of the pipeline at one size."""

    rows: int
    shape: tuple[int, int, int]
    generate_s: float
    bare: dict[str, float]
    pipeline: dict[str, float]
    bare_rss_mb: float
    pipeline_rss_mb: float
    rmse: float
    outcome: str

    @property
    def label(self) -> str:
        """E.g. '1M (100x100x100)'."""
        return f"{human_count(self.rows)} ({'x'.join(map(str, self.shape))})"

    @property
    def bare_s(self) -> float:
        """Bare script total."""
        return sum(self.bare[k] for k in BARE_PHASES)

    @property
    def pipeline_s(self) -> float:
        """Pipeline total over the four stages."""
        return sum(self.pipeline[k] for k in STAGES)

    @property
    def overhead(self) -> float:
        """(pipeline - bare) / bare."""
        return (self.pipeline_s - self.bare_s) / self.bare_s


@dataclass(frozen=True)
class DagOverhead:
    """The DAG through dag.test() versus direct calls of its stage functions, at 100k rows."""

    migrate_s: float
    direct: dict[str, float]
    dag_s: float
    tasks: dict[str, float]


def bench_spec(base: DatasetSpec) -> DatasetSpec:
    """The default spec with a TRAIN_DAYS window, so rows = stores x items x TRAIN_DAYS."""
    return base.model_copy(update={"training": base.training.model_copy(update={"train_days": TRAIN_DAYS})})


def shape_for(rows: int) -> tuple[int, int]:
    """(stores, items) giving `rows` training rows over TRAIN_DAYS days."""
    if rows in SHAPES:
        return SHAPES[rows]
    return grid_shape(max(1, rows // TRAIN_DAYS))


def size_settings(base: Path, name: str, spec_file: Path) -> Settings:
    """Settings for one size: its own home, one MLflow store and GX context shared by all sizes."""
    return Settings(
        home=base / name,
        spec=spec_file,
        gx_root=base / "gx",
        mlflow_tracking_uri=f"sqlite:///{base / 'mlflow.db'}",
        mlflow_artifact_root=(base / "mlartifacts").as_uri(),
    )


def write_history(settings: Settings, spec: DatasetSpec, shape: tuple[int, int]) -> pd.DataFrame:
    """Curated partitions for every day the run date's features read; returns the run date's raw drop."""
    days = TRAIN_DAYS + lookback_days(spec) + LOOKBACK_MARGIN_DAYS
    config = SimulationConfig(RUN_DAY - timedelta(days=days - 1), days, *shape, seed=settings.seed)
    layout = DatasetLayout.for_spec(settings, spec)
    landing = pd.DataFrame()
    for day, landing, _ in iter_days(config):
        typed, _ = normalise_frame(landing, spec)
        path = layout.curated_file(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        typed.to_parquet(path, engine="pyarrow", compression="snappy", index=False)  # as ingest writes it
    return landing


def bare_run(settings: Settings, spec: DatasetSpec) -> tuple[dict[str, float], float, int]:
    """The same pandas + xgboost work with no Airflow, MLflow or GX: phase seconds, holdout RMSE, rows."""
    layout = DatasetLayout.for_spec(settings, spec)
    ts, target = spec.timestamp_column, spec.target
    train_start = RUN_DAY - timedelta(days=TRAIN_DAYS - 1)
    read_start = train_start - timedelta(days=lookback_days(spec) + LOOKBACK_MARGIN_DAYS)
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name], mark = now - mark, now

    days = [d for d in layout.curated_days() if read_start <= d <= RUN_DAY]
    history = pd.concat([pd.read_parquet(layout.curated_file(d)) for d in days], ignore_index=True)
    lap("read")
    features = build_features(history, spec)
    table = features.loc[(features[ts] >= pd.Timestamp(train_start)) & features[target].notna()]
    lap("features")
    is_holdout = table[ts] >= pd.Timestamp(RUN_DAY - timedelta(days=spec.training.holdout_days - 1))
    train, holdout = table.loc[~is_holdout], table.loc[is_holdout]
    model = fit_model(train, spec, settings.seed)
    lap("fit")
    error = holdout[target].to_numpy(dtype=np.float64) - model.predict(feature_matrix(holdout, spec))
    rmse = math.sqrt(float(error @ error) / len(error))
    lap("predict")
    return phases, rmse, len(table)


def pipeline_run(settings: Settings, spec: DatasetSpec) -> tuple[dict[str, float], float, int, str]:
    """The four stage functions as the DAG calls them: seconds per stage, holdout RMSE, rows, outcome."""
    from retrain import evaluate, features, train
    from retrain.promote import register_and_gate

    built, features_s = timed(lambda: features.run(settings, spec, RUN_DAY))
    trained, train_s = timed(lambda: train.run(settings, spec, RUN_DAY))
    evaluation, evaluate_s = timed(lambda: evaluate.run(settings, spec, trained))
    decision, register_s = timed(lambda: register_and_gate(settings, spec, evaluation))
    phases = {
        "features": features_s,
        "train": train_s,
        "evaluate": evaluate_s,
        "register": register_s,
        "fit": trained.fit_seconds,  # inside train; not added to the total
    }
    return phases, float(trained.candidate["rmse"]), built.train_rows, decision.outcome


def measured(fn: Callable[[], Any]) -> tuple[Any, float | None]:
    """fn's result and the peak RSS (MB) reached while it ran."""
    gc.collect()
    reset_peak_rss()
    result = fn()
    return result, peak_rss_mb()


def run_size(base: Path, spec: DatasetSpec, spec_file: Path, rows: int, repeats: int) -> SizeResult:
    """Generate one size's history, then interleave bare and pipeline runs; medians per phase."""
    shape = shape_for(rows)
    settings = size_settings(base, f"home-{rows}", spec_file)
    _, generate_s = timed(lambda: write_history(settings, spec, shape))
    bare: list[dict[str, float]] = []
    pipe: list[dict[str, float]] = []
    rss = {"bare": 0.0, "pipeline": 0.0}
    rmse: dict[str, float] = {}
    table_rows, outcome = 0, ""
    for rep in range(repeats):
        for side in ("bare", "pipeline") if rep % 2 == 0 else ("pipeline", "bare"):
            if side == "bare":
                (phases, rmse["bare"], table_rows), peak = measured(lambda: bare_run(settings, spec))
                bare.append(phases)
            else:
                (phases, rmse["pipeline"], _, outcome), peak = measured(lambda: pipeline_run(settings, spec))
                pipe.append(phases)
            rss[side] = max(rss[side], peak or 0.0)
            print(
                f"  {human_count(rows)} {side} rep {rep + 1}: "
                + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items())
            )
    if not math.isclose(rmse["bare"], rmse["pipeline"], rel_tol=1e-6):
        raise AssertionError(f"bare and pipeline fit different models: holdout RMSE {rmse}")
    return SizeResult(
        rows=table_rows,
        shape=(*shape, TRAIN_DAYS),
        generate_s=generate_s,
        bare={k: median([p[k] for p in bare]) for k in bare[0]},
        pipeline={k: median([p[k] for p in pipe]) for k in pipe[0]},
        bare_rss_mb=rss["bare"],
        pipeline_rss_mb=rss["pipeline"],
        rmse=rmse["pipeline"],
        outcome=outcome,
    )


def dag_overhead(base: Path, spec: DatasetSpec, spec_file: Path) -> DagOverhead:
    """At 100k rows: the whole DAG through dag.test() versus direct calls of the same stage functions."""
    from retrain import evaluate, features, ingest, train, validate
    from retrain.orchestrate import prepare_airflow, run_dag
    from retrain.promote import register_and_gate
    from retrain.simulate_faults import landing_path, write_frame_atomic

    settings = size_settings(base, "home-dag", spec_file)
    landing = write_history(settings, spec, SHAPES[100_000])
    write_frame_atomic(landing, landing_path(DatasetLayout.for_spec(settings, spec), spec, RUN_DAY), "csv")
    _, migrate_s = timed(lambda: prepare_airflow(settings, quiet=True))

    direct: dict[str, float] = {}
    _, direct["ingest"] = timed(lambda: ingest.stage_batch(settings, spec, RUN_DAY))
    _, direct["validate"] = timed(lambda: validate.validate_batch(settings, spec, RUN_DAY))
    _, direct["features"] = timed(lambda: features.run(settings, spec, RUN_DAY))
    trained, direct["train"] = timed(lambda: train.run(settings, spec, RUN_DAY))
    evaluation, direct["evaluate"] = timed(lambda: evaluate.run(settings, spec, trained))
    _, direct["register"] = timed(lambda: register_and_gate(settings, spec, evaluation))

    outcome = run_dag("retrain_daily", RUN_DAY)
    if not outcome.succeeded:
        raise AssertionError(f"dag.test run failed: {outcome.task_states}")
    return DagOverhead(
        migrate_s=migrate_s,
        direct=direct,
        dag_s=outcome.seconds,
        tasks=dict(outcome.task_seconds),
    )


def _us_per_row(total_s: float, rows: int) -> float:
    return total_s / rows * 1e6


def _verdicts(results: list[SizeResult]) -> list[str]:
    by_rows = {r.shape[0] * r.shape[1] * r.shape[2]: r for r in results}
    lines = []
    at = by_rows.get(TARGET_ROWS)
    if at is None:
        lines.append(
            f"- Overhead target (<= {TARGET_OVERHEAD:.0%} at {human_count(TARGET_ROWS)}): not evaluated, size not run."
        )
    else:
        verdict = "met" if at.overhead <= TARGET_OVERHEAD else "NOT met"
        lines.append(
            f"- **Overhead target (orchestration + tracking <= {TARGET_OVERHEAD:.0%} of bare at "
            f"{human_count(TARGET_ROWS)} rows): {verdict}** ({at.overhead:+.1%}: {at.pipeline_s:.1f} s vs {at.bare_s:.1f} s)."
        )
    low, high = by_rows.get(FLAT_FROM), by_rows.get(FLAT_TO)
    if low is None or high is None:
        lines.append(
            f"- Cost-per-row target ({human_count(FLAT_FROM)} -> {human_count(FLAT_TO)}): not evaluated, sizes not run."
        )
    else:
        ratio = _us_per_row(high.pipeline_s, high.rows) / _us_per_row(low.pipeline_s, low.rows)
        bare_ratio = _us_per_row(high.bare_s, high.rows) / _us_per_row(low.bare_s, low.rows)
        flat = FLAT_BAND[0] <= ratio <= FLAT_BAND[1]
        lines.append(
            f"- **Cost per row roughly flat from {human_count(FLAT_FROM)} to {human_count(FLAT_TO)} "
            f"(pipeline µs/row ratio within {FLAT_BAND[0]}-{FLAT_BAND[1]}): {'met' if flat else 'NOT met'}** "
            f"({ratio:.2f}x; the bare script: {bare_ratio:.2f}x)."
        )
    return lines


def _decomposition(r: SizeResult) -> list[str]:
    p, b = r.pipeline, r.bare
    features_extra = p["features"] - b["read"] - b["features"]
    parts = [
        (
            "features stage beyond read + build (writes train table, snapshot, manifest; hashes partitions)",
            features_extra,
        ),
        (
            "train stage beyond the fit (reads the table back, baseline, MLflow params/metrics/artifacts/model)",
            p["train"] - p["fit"],
        ),
        ("fit: pipeline minus bare (same data, same params)", p["fit"] - b["fit"]),
        (
            "evaluate (reads the table, downloads and scores candidate + production + baseline, logs) minus bare predict",
            p["evaluate"] - b["predict"],
        ),
        ("register (version, smoke test in a fresh process, gates, aliases, report)", p["register"]),
    ]
    total = r.pipeline_s - r.bare_s
    return [f"- {name}: {value:+.2f} s" for name, value in parts] + [
        f"- total: {total:+.2f} s ({r.overhead:+.1%} of bare)"
    ]


def report(
    run: RunContext, results: list[SizeResult], dag: DagOverhead | None, repeats: int, wall_s: float
) -> str:
    """The markdown body of the section."""
    summary = [
        (
            r.label, seconds(r.bare_s), seconds(r.pipeline_s), f"{r.overhead:+.1%}",
            f"{_us_per_row(r.bare_s, r.rows):.1f}", f"{_us_per_row(r.pipeline_s, r.rows):.1f}",
            f"{r.bare_rss_mb:,.0f} / {r.pipeline_rss_mb:,.0f}", f"{r.rmse:.4f}", r.outcome,
        )
        for r in results
    ]  # fmt: skip
    stages = [
        (r.label, *(seconds(r.pipeline[k]) for k in STAGES[:2]), seconds(r.pipeline["fit"]),
         *(seconds(r.pipeline[k]) for k in STAGES[2:]), seconds(r.pipeline_s),
         *(seconds(r.bare[k]) for k in BARE_PHASES), seconds(r.bare_s))
        for r in results
    ]  # fmt: skip
    lines = [
        *run.describe(),
        f"- Method: per size, curated history simulated with seed 42 (`generate` {', '.join(f'{human_count(r.rows)} {r.generate_s:.0f} s' for r in results)}, "
        f"not timed), then the pipeline stages and the bare script in one process, order alternating, "
        f"{repeats} repetition(s), medians. Rows = training-table rows (stores x items x {TRAIN_DAYS}-day window; "
        f"each run reads {TRAIN_DAYS} + lookback + {LOOKBACK_MARGIN_DAYS} days of partitions). A warm-up run at {WARMUP_SHAPE[0]}x{WARMUP_SHAPE[1]} first creates the MLflow "
        "SQLite store and a production model, so each measured run is an ordinary day. Both sides fit "
        "the same model: their holdout RMSE must agree to 1e-6. Whole benchmark: "
        f"{wall_s / 60:.1f} min.",
        "",
        markdown_table(SUMMARY_HEADERS, summary),
        "",
        *_verdicts(results),
        "",
        "Seconds per stage (pipeline: `features.run`, `train.run` incl. MLflow logging and of which the "
        "XGBoost fit, `evaluate.run`, `promote.register_and_gate` incl. smoke test and gates; bare: read "
        "Parquet, `build_features`, `fit_model`, predict holdout):",
        "",
        markdown_table(STAGE_HEADERS, stages),
    ]
    at = next((r for r in results if r.rows == TARGET_ROWS), results[-1])
    lines += ["", f"Where the pipeline's extra time goes at {at.label}:", "", *_decomposition(at)]
    if dag is not None:
        direct = sum(dag.direct.values())
        tasks = sum(dag.tasks.values())
        lines += [
            "",
            f"Whole DAG at 100k rows through `dag.test()` (`retrain.orchestrate.run_dag`, in-process, "
            f"after a one-off `airflow db migrate` of {dag.migrate_s:.0f} s): {dag.dag_s:.1f} s wall, "
            f"{tasks:.1f} s inside the tasks, versus {direct:.1f} s for direct calls of the same stage "
            f"functions (ingest {dag.direct['ingest']:.2f}, validate (GX, publish) {dag.direct['validate']:.2f}, "
            f"features {dag.direct['features']:.2f}, train {dag.direct['train']:.2f}, evaluate "
            f"{dag.direct['evaluate']:.2f}, register {dag.direct['register']:.2f} s; publish is a no-op "
            f"without a Pushgateway). Airflow adds {dag.dag_s - direct:+.1f} s per run "
            f"({(dag.dag_s - direct) / direct:+.0%}), of which {dag.dag_s - tasks:.1f} s outside the tasks "
            "(DAG parsing, dag run bookkeeping, task start-up).",
            "",
            "Task durations in dag.test(): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in dag.tasks.items())
            + ".",
        ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and write its section."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100k,1M,5M", help="training rows, e.g. 100k,1M,5M")
    parser.add_argument("--quick", action="store_true", help="100k rows only")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repetitions per size (medians)")
    parser.add_argument("--no-dag", action="store_true", help="skip the dag.test() run at 100k rows")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args()
    sizes = [100_000] if args.quick else parse_counts(args.sizes)
    run = RunContext.capture()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        base = Path(tmp)
        shutil.copytree(REPO_ROOT / "gx", base / "gx", ignore=shutil.ignore_patterns("uncommitted"))
        spec = bench_spec(load_spec(REPO_ROOT / "config" / "retail_demand.yaml"))
        spec_file = base / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), encoding="utf-8")

        # Warm-up (not reported): imports, the MLflow store's tables, the experiment and a production model.
        warm = size_settings(base, "home-warmup", spec_file)
        write_history(warm, spec, WARMUP_SHAPE)
        bare_run(warm, spec)
        pipeline_run(warm, spec)

        results = []
        for rows in sizes:
            print(f"{human_count(rows)} rows ({'x'.join(map(str, shape_for(rows)))}x{TRAIN_DAYS} days)")
            results.append(run_size(base, spec, spec_file, rows, args.repeats))
        dag = None if args.no_dag or 100_000 not in sizes else dag_overhead(base, spec, spec_file)
    body = report(run, results, dag, args.repeats, time.perf_counter() - started)
    print(body)
    if not args.no_write:
        print(f"wrote section '{SECTION}' of {write_section(SECTION, body)}")


if __name__ == "__main__":
    main()
