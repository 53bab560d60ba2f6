"""Logging one model to MLflow (`retrain.tracking.log_forecast_model`) with pinned versus inferred requirements.

A tiny booster (200 rows x 4 features, 10 rounds) is logged into a throwaway SQLite store, alternating
the pipeline's explicit pins (`tracking.pip_requirements`) with MLflow's requirement inference (the
baseline: it loads the model in a subprocess to see what it imports). The first log of the process
pays for imports and is not counted. Target: pinned <= 2 s per model and well under the inferred time.
Writes `## Model logging` in docs/benchmarks.md.

    .venv/bin/python bench/bench_model_logging.py [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import numpy as np
import pandas as pd
from _common import RunContext, markdown_table, median, seconds, timed, write_section

if TYPE_CHECKING:
    from retrain.model import ForecastModel

SECTION = "Model logging"
TARGET_SECONDS = 2.0
FEATURES = ["price", "promo", "lag_1", "lag_7"]


def _booster_and_example(seed: int) -> tuple[ForecastModel, pd.DataFrame]:
    import xgboost as xgb

    from retrain.model import ForecastModel

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(200, len(FEATURES))), columns=FEATURES)
    target = frame @ np.array([-2.0, 1.0, 0.8, 0.3]) + rng.normal(scale=0.1, size=len(frame))
    params = {"max_depth": 3, "nthread": 1, "seed": seed, "objective": "reg:squarederror"}
    booster = xgb.train(params, xgb.DMatrix(frame, label=target), num_boost_round=10)
    return ForecastModel(booster), frame.head(5)


def log_once(experiment: str, seed: int, *, pinned: bool) -> float:
    """Seconds to log one model in a new run; pinned=False lets MLflow infer the requirements."""
    import mlflow

    from retrain import tracking

    model, example = _booster_and_example(seed)
    requirements = contextlib.nullcontext() if pinned else mock.patch.object(tracking, "pip_requirements")
    with mlflow.start_run(experiment_id=experiment), requirements as inferred:
        if inferred is not None:
            inferred.return_value = None  # pip_requirements=None: MLflow infers them
        return timed(lambda: tracking.log_forecast_model(model, input_example=example))[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="interleaved logs per variant (medians)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args(argv)
    run = RunContext.capture()
    from retrain.settings import Settings
    from retrain.tracking import experiment_id

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), mlflow_tracking_uri=None, mlflow_artifact_root=None)
        experiment = experiment_id(settings, "bench-model-logging")
        log_once(experiment, seed=0, pinned=True)  # imports, schema: not counted
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.repeats):
            for pinned in (i % 2 == 0, i % 2 != 0):
                times[pinned].append(log_once(experiment, seed=i + 1, pinned=pinned))
    pinned_s, inferred_s = median(times[True]), median(times[False])
    verdict = "met" if pinned_s <= TARGET_SECONDS and pinned_s < inferred_s else "**missed**"
    rows = [
        ["pinned (pipeline)", seconds(pinned_s), f"{min(times[True]):.3f}-{max(times[True]):.3f}", "1.00x"],
        [
            "inferred (MLflow default)",
            seconds(inferred_s),
            f"{min(times[False]):.3f}-{max(times[False]):.3f}",
            f"{inferred_s / pinned_s:.2f}x",
        ],
    ]
    body = "\n".join(
        [
            *run.describe(),
            *run.contention(),
            "",
            markdown_table(["requirements", "median s per log", "range s", "vs pinned"], rows),
            "",
            f"Target pinned <= {TARGET_SECONDS:.0f} s per model and faster than inference: {verdict}.",
        ]
    )
    print(body)
    if not args.no_write:
        print(f"wrote section '{SECTION}' of {write_section(SECTION, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
