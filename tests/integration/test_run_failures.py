"""A failed run names the task that failed, with the reason in one line, and promotes nothing.

Weekly history (a user landing one drop a week) passes validation day by day but is refused by the features
stage's cadence check: the CLI run fails fast (no retry backoff in a local run) and names `features`, not a
downstream task. Real CLI process, Airflow dag.test(), GX and MLflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from retrain.coerce import normalise_frame
from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.sim.files import write_curated_days
from retrain.spec import load_spec

SPEC = REPO_ROOT / "config" / "seattle_weather.yaml"
RUN_DAY = date(2014, 6, 30)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETRAIN_", "AIRFLOW"))}
    command = [sys.executable, "-m", "retrain", "--home", str(home), "--spec", str(SPEC), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)


def _weekly_history(home: Path) -> None:
    import vega_datasets

    raw = pd.read_csv(Path(vega_datasets.__file__).parent / "_data" / "seattle-weather.csv")
    days = pd.to_datetime(raw["date"], format="%Y/%m/%d").dt.date  # the file writes 2012/01/01
    spec = load_spec(SPEC)
    layout = DatasetLayout.for_spec(Settings(home=home, spec=SPEC), spec)
    weekly = {RUN_DAY - timedelta(days=7 * i) for i in range(1, 40)}
    typed, uncoerced = normalise_frame(raw[days.isin(weekly)], spec)
    assert not uncoerced
    # Curated weekly partitions, as if the user had only ever dropped Mondays (validation skipped).
    assert len(write_curated_days(layout, spec, typed)) == len(weekly)
    drop = layout.landing_pattern(spec.source.path, RUN_DAY)
    Path(drop).parent.mkdir(parents=True)
    raw[days == RUN_DAY].to_csv(drop, index=False)


def test_weekly_history_fails_at_features_with_the_cadence_message(tmp_path: Path) -> None:
    home = tmp_path / "var"
    _weekly_history(home)
    done = _cli(home, "run", "--date", RUN_DAY.isoformat())
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed at features" in done.stdout  # the summary table names the failing task
    message = " ".join(done.stderr.split())
    assert f"retrain_daily failed for {RUN_DAY} at task features" in message
    assert "full log:" in message and "Traceback" not in done.stderr
    log = (home / "logs" / "retrain.log").read_text()
    assert "is weekly, not daily" in log  # the reason is in the task log
    status = _cli(home, "status", "--json")
    assert json.loads(status.stdout)["aliases"] == {}  # nothing promoted
