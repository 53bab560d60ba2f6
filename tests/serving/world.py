"""Test data shared by the serving tests and the monitoring stack: a real trained world (simulated data ->
features -> train -> MLflow registry), request rows for it, and the environment of a server on it.

The world: 5 stores x 10 items x 70 simulated days, curated partitions written directly (bypassing GX to
stay fast), then `features.run` + `train.run` on two run dates, registered as versions 1 (promoted to
@production) and 2 (not promoted). Tests that move aliases work on a copy of the MLflow database
(artifacts stay shared, read-only), so the session registry never changes.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrain import features, train
from retrain.feature_snapshot import FeatureSnapshot, read_snapshot
from retrain.layout import DatasetLayout
from retrain.local.launcher import ServerProcess, start_server
from retrain.local.stack import mlflow_server_command
from retrain.registry import ModelRegistry
from retrain.settings import REPO_ROOT, Settings
from retrain.sim.demand import SimulationConfig, write_simulation
from retrain.spec import DatasetSpec, parse_spec

API_KEY = "test-admin-key"
START = date(2024, 1, 1)
SIM_DAYS = 70
RUN_DAYS = (date(2024, 3, 3), date(2024, 3, 10))  # versions 1 and 2


@dataclass(frozen=True)
class ServingWorld:
    """A registry with two trained versions of the retail model, and where everything lives."""

    home: Path
    spec_path: Path
    spec: DatasetSpec
    settings: Settings
    run_ids: dict[int, str]
    snapshot_days: dict[int, date]

    @property
    def model_name(self) -> str:
        """Registered model name."""
        return self.spec.model_name

    def snapshot(self, version: int) -> FeatureSnapshot:
        """The online feature snapshot logged with a version."""
        layout = DatasetLayout.for_spec(self.settings, self.spec)
        return read_snapshot(features.snapshot_file(layout, self.snapshot_days[version]))

    def registry_copy(self, target: Path) -> Settings:
        """Settings on a private copy of the MLflow database (aliases can move freely there)."""
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.home / "mlflow.db", target / "mlflow.db")
        return Settings(
            home=target, spec=self.spec_path, mlflow_tracking_uri=f"sqlite:///{target / 'mlflow.db'}"
        )


def fast_spec_data() -> dict[str, Any]:
    """The default spec, trained faster: 30 rounds on one thread, a 40-day window."""
    data: dict[str, Any] = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text())
    data["training"].update(num_boost_round=30, train_days=40)
    data["training"]["params"]["nthread"] = 1
    return data


def build_world(home: Path, run_days: tuple[date, ...] = RUN_DAYS) -> ServingWorld:
    """Simulate, curate, build features, train and register one version per run day; promote version 1."""
    spec_path = home / "spec.yaml"
    home.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(yaml.safe_dump(fast_spec_data()), encoding="utf-8")
    spec = parse_spec(fast_spec_data(), spec_path)
    settings = Settings(home=home, spec=spec_path, mlflow_tracking_uri=None, mlflow_artifact_root=None)
    layout = DatasetLayout.for_spec(settings, spec)
    simulated = write_simulation(layout, spec, SimulationConfig(START, SIM_DAYS, n_stores=5, n_items=10))
    for day in simulated.days_written:
        frame = pd.read_csv(
            layout.landing_pattern(spec.source.path, day), parse_dates=[spec.timestamp_column]
        )
        layout.curated_file(day).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(layout.curated_file(day), index=False)
    registry = ModelRegistry(settings, spec.model_name)
    run_ids: dict[int, str] = {}
    snapshot_days: dict[int, date] = {}
    for day in run_days:
        features.run(settings, spec, day)
        result = train.run(settings, spec, day)
        tags = {"data_start": result.data_start.isoformat(), "data_end": result.data_end.isoformat()}
        version = registry.register(result.model_uri, result.run_id, tags)
        run_ids[version], snapshot_days[version] = result.run_id, day
    registry.promote(1, actor="tests", reason="serving fixture")
    return ServingWorld(home, spec_path, spec, settings, run_ids, snapshot_days)


def server_env(settings: Settings, **serving: str) -> dict[str, str]:
    """The child environment of a server on `settings` (home, spec, tracking URI) plus RETRAIN_SERVING_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETRAIN_", "PROMETHEUS_MULTIPROC"))}
    env.update(
        RETRAIN_HOME=str(settings.home),
        RETRAIN_SPEC=str(settings.spec),
        RETRAIN_MLFLOW_TRACKING_URI=settings.tracking_uri,
        RETRAIN_SERVING_API_KEY=API_KEY,
        RETRAIN_SERVING_POLL_SECONDS="1",
        RETRAIN_SERVING_LOG_FLUSH_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"RETRAIN_SERVING_{k.upper()}": v for k, v in serving.items()})
    return env


def request_rows(
    world: ServingWorld, version: int, n: int, seed: int = 0, unknown: int = 3, first_day: int = 1
) -> list[dict[str, Any]]:
    """Request rows for a version: known entities on 7 days from snapshot + `first_day`, a few unknown ones."""
    rng = np.random.default_rng(seed)
    snapshot = world.snapshot(version)
    keys = list(snapshot.entity_rows)
    day0 = world.snapshot_days[version]
    rows = []
    for i in range(n):
        store, item = keys[i % len(keys)] if i >= unknown else (90_000 + i, 900_000 + i)
        rows.append(
            {
                "store_id": int(store),
                "item_id": int(item),
                "date": (day0 + timedelta(days=first_day + i % 7)).isoformat(),
                "price": round(float(rng.uniform(0.5, 30.0)), 2),
                "promo": int(rng.integers(0, 2)),
                "holiday": int(rng.integers(0, 2)),
                "temperature": round(float(rng.uniform(-5.0, 30.0)), 1),
            }
        )
    return rows


# With a 14-day horizon, version 1 (snapshot 03-03) and version 2 (snapshot 03-10) both serve
# 03-11..03-17: rows on those days stay valid across a swap from one to the other.
SWAP_HORIZON_DAYS = 14


def rows_served_by_both(world: ServingWorld, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows (known entities) dated in the window both versions serve with SWAP_HORIZON_DAYS."""
    gap = (world.snapshot_days[2] - world.snapshot_days[1]).days
    assert gap > 0 and gap + 7 <= SWAP_HORIZON_DAYS
    return request_rows(world, 1, n, seed=seed, unknown=0, first_day=gap + 1)


def tracking_server_settings(settings: Settings, port: int) -> Settings:
    """`settings` with the tracking URI of an `mlflow server` on localhost:port."""
    return settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"})


def start_tracking_server(store: Settings, port: int, log_path: Path) -> ServerProcess:
    """A real `mlflow server` on localhost:port over the SQLite store (and artifacts) of `store`.

    Its background job runners are switched off (they are 7 extra processes and serving never uses
    them). `ServerProcess.kill()` stops the whole process group at once, like a crash.
    """
    command = mlflow_server_command(store, port)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = start_server(command, env, port, log_path)
    try:
        server.wait_until("/health", timeout=120)
    except BaseException:
        server.kill()
        raise
    return server
