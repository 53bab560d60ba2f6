"""Onboarding benchmark: `retrain import` + range ingest versus the per-day CLI loop, side by side.

Two histories, each split into landing drops by `retrain.history_import.import_history`:
- seattle-weather.csv (vega_datasets): 1,461 days of one series;
- synthetic: 730 days x 1,000 entities (numpy), 730,000 rows.
Range ingest (`retrain.onboard.ingest_range`: one process, one GX context) runs every day. The per-day
loop is what a user had before: one `retrain ingest --date D` process per day. Running it for every day
would take over an hour, so a sample of consecutive days from the start is timed and the median per day
is extrapolated to the whole history (said so in the table).

    .venv/bin/python bench/bench_onboard.py [--sample 12] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _common import REPO_ROOT, RunContext, markdown_table, median, seconds, write_section

from retrain.history_import import import_history
from retrain.onboard import ingest_range
from retrain.settings import Settings
from retrain.spec import DatasetSpec, load_spec, parse_spec

SECTION = "Onboarding"
SEATTLE = Path(__import__("vega_datasets").__file__).parent / "_data" / "seattle-weather.csv"
RETRAIN = REPO_ROOT / ".venv" / "bin" / "retrain"
TARGET_S = 60.0


@dataclass(frozen=True)
class Case:
    """One history: how it was onboarded in one command and what the per-day loop costs."""

    name: str
    days: int
    rows: int
    import_s: float
    range_s: float
    gx_runs: int
    published: int
    sample_days: int
    per_day_s: float

    @property
    def loop_s(self) -> float:
        """The per-day CLI loop over every day, extrapolated from the sample's median."""
        return self.per_day_s * self.days


def synthetic_history(
    folder: Path, days: int = 730, entities: int = 1_000, seed: int = 7
) -> tuple[Path, Path]:
    """A CSV of days x entities (weekly pattern + noise) and a spec YAML for it."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2019-01-01", periods=days)
    level = rng.uniform(20, 200, entities)
    weekly = 1 + 0.2 * np.sin(2 * np.pi * stamps.dayofweek.to_numpy() / 7)
    demand = np.clip(rng.normal(level[None, :] * weekly[:, None], 5), 0, None).round(2)
    frame = pd.DataFrame(
        {
            "date": np.repeat(stamps.strftime("%Y-%m-%d"), entities),
            "entity_id": np.tile(np.arange(entities), days),
            "segment": np.tile(np.array(["a", "b", "c", "d"])[np.arange(entities) % 4], days),
            "price": rng.uniform(1, 50, days * entities).round(2),
            "demand": demand.ravel(),
        }
    )
    csv = folder / "synthetic.csv"
    frame.to_csv(csv, index=False)
    spec = {
        "name": "synthetic_onboard",
        "timestamp_column": "date",
        "entity_keys": ["entity_id"],
        "target": "demand",
        "columns": {
            "date": {"type": "date"},
            "entity_id": {"type": "int", "min": 0},
            "segment": {"type": "string", "allowed": ["a", "b", "c", "d"]},
            "price": {"type": "float", "min": 0, "max": 100},
            "demand": {"type": "float", "min": 0},
        },
        "features": {"numeric": ["price"], "categorical": ["segment"]},
    }
    spec_file = folder / "synthetic.yaml"
    spec_file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return csv, spec_file


def per_day_loop(home: Path, spec_file: Path, first: date, sample: int) -> list[float]:
    """Seconds of `retrain ingest --date D` processes for the first `sample` days (landing already split)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAIN_")}
    timings = []
    for k in range(sample):
        day = first + timedelta(days=k)
        started = time.perf_counter()
        subprocess.run(
            [
                str(RETRAIN),
                "--home",
                str(home),
                "--spec",
                str(spec_file),
                "ingest",
                "--date",
                day.isoformat(),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        timings.append(time.perf_counter() - started)
    return timings


def run_case(name: str, history: Path, spec_file: Path, workdir: Path, sample: int) -> Case:
    """Import + range ingest in one home; the per-day CLI loop on a sample in another."""
    spec: DatasetSpec = load_spec(spec_file)
    settings = Settings(home=workdir / f"{spec.name}-range")
    started = time.perf_counter()
    imported = import_history(settings, spec, history)
    import_s = time.perf_counter() - started
    result = ingest_range(settings, spec, imported.start, imported.end)
    print(f"{name}: import {import_s:.1f} s, range ingest {result.seconds:.1f} s", flush=True)
    loop_home = workdir / f"{spec.name}-loop"
    import_history(Settings(home=loop_home), spec, history)
    timings = per_day_loop(loop_home, spec_file, imported.start, sample)
    print(f"{name}: per-day CLI median {median(timings):.2f} s over {sample} days", flush=True)
    return Case(
        name=name,
        days=imported.days,
        rows=imported.rows,
        import_s=import_s,
        range_s=result.seconds,
        gx_runs=result.gx_runs,
        published=len(result.published),
        sample_days=sample,
        per_day_s=median(timings),
    )


def report(run: RunContext, cases: list[Case]) -> str:
    """The markdown body of the section."""
    rows = [
        (
            c.name,
            f"{c.days:,}",
            f"{c.rows:,}",
            seconds(c.import_s),
            seconds(c.range_s),
            f"{c.published:,}",
            f"{c.gx_runs}",
            f"{c.per_day_s:.2f} (median of {c.sample_days})",
            f"{c.loop_s / 60:.0f} min (extrapolated)",
            f"{c.loop_s / (c.import_s + c.range_s):.0f}x",
        )
        for c in cases
    ]
    table = markdown_table(
        [
            "history",
            "days",
            "rows",
            "import s",
            "range ingest s",
            "published",
            "GX runs",
            "per-day CLI s/day",
            "per-day loop",
            "speed-up",
        ],
        rows,
    )
    seattle = next((c for c in cases if c.name.startswith("seattle")), None)
    verdict = (
        f"- Target: 1,461 single-series days in <= {TARGET_S:.0f} s. Measured: import + range ingest "
        f"{seattle.import_s + seattle.range_s:.1f} s "
        f"({'met' if seattle.import_s + seattle.range_s <= TARGET_S else 'NOT met'})."
        if seattle
        else ""
    )
    return "\n".join(
        [
            *run.describe(),
            *run.contention(),
            "- Method: `import_history` splits the file into one landing drop per day; `ingest_range` stages "
            "every day, validates each calendar month in one GX run of the spec's suite (partition date as a "
            "range) after per-day screens (schema, types, own-day rows, row-count band), validates alone only "
            "the days that fail, publishes, and builds Data Docs once. The per-day loop runs one "
            "`retrain ingest --date D` process per day (Python start-up, imports, GX context, checkpoint, "
            "Data Docs) on the first days of the same history; its median is multiplied by the day count.",
            verdict,
            "",
            table,
        ]
    )


def main() -> None:
    """Run both cases and write the Onboarding section."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", type=int, default=12, help="days timed in the per-day CLI loop")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args()
    run = RunContext.capture()
    with tempfile.TemporaryDirectory(prefix="bench-onboard-") as tmp:
        workdir = Path(tmp)
        seattle_spec = REPO_ROOT / "config" / "seattle_weather.yaml"
        parse_spec(yaml.safe_load(seattle_spec.read_text(encoding="utf-8")))
        cases = [run_case("seattle-weather (1 series)", SEATTLE, seattle_spec, workdir, args.sample)]
        csv, spec_file = synthetic_history(workdir)
        cases.append(run_case("synthetic (1,000 entities)", csv, spec_file, workdir, args.sample))
    body = report(run, cases)
    print(body)
    if not args.no_write:
        print(f"wrote section '{SECTION}' of {write_section(SECTION, body)}")


if __name__ == "__main__":
    main()
