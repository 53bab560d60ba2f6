"""Factories for the drift and realized-performance tests: a home with curated history, a production
model trained on part of it through the real stages, and prediction logs in the serving format.

The world is built once per test session (it costs ~20 s) under the session's scratch directory;
tests share it, so each test uses its own days for anything it writes.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.simulate import read_truth
from retrain.spec import DatasetSpec, load_spec
from tests.utils.sim import simulate_into

START = date(2026, 1, 2)  # after New Year: no holiday inside the training window
TRAIN_END = date(2026, 2, 26)  # a Thursday; the production model is trained on START..TRAIN_END
PRICE_SHIFT_DAY = date(2026, 3, 12)  # a Thursday; prices stay shifted from here on
LAST_DAY = date(2026, 3, 14)
N_STORES, N_ITEMS = 20, 50  # 1,000 rows a day: enough for stable drift scores
TRAIN_ROUNDS = 40


@dataclass(frozen=True)
class DriftWorld:
    """Simulated curated days START..LAST_DAY and a production model trained up to TRAIN_END."""

    home: Path
    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout
    version: int

    def spec_file(self, trigger_retrain: bool = False) -> Path:
        """The default spec as a file under the home, optionally with drift.trigger_retrain on."""
        data = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text(encoding="utf-8"))
        data["drift"]["trigger_retrain"] = trigger_retrain
        path = self.home / f"spec-trigger-{str(trigger_retrain).lower()}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path


@functools.cache
def drift_world() -> DriftWorld:
    """Build (once per session) the simulated history, curated partitions and production model."""
    from retrain import features, ingest, train
    from retrain.registry import ModelRegistry
    from retrain.simulate import Injection

    home = Path(os.environ["RETRAIN_TEST_SESSION_HOME"]) / "drift-world"
    days = (LAST_DAY - START).days + 1
    settings, spec, layout, _ = simulate_into(
        home,
        START,
        days,
        n_stores=N_STORES,
        n_items=N_ITEMS,
        drifts=[Injection("price_shift", PRICE_SHIFT_DAY)],
    )
    for offset in range(days):
        day = START + timedelta(days=offset)
        ingest.stage_batch(settings, spec, day)
        ingest.publish_batch(settings, spec, day)
    features.run(settings, spec, TRAIN_END)
    quick = spec.model_copy(
        update={"training": spec.training.model_copy(update={"num_boost_round": TRAIN_ROUNDS})}
    )
    trained = train.run(settings, quick, TRAIN_END)
    registry = ModelRegistry(settings, spec.model_name)
    version = registry.register(
        trained.model_uri,
        trained.run_id,
        {
            "data_start": trained.data_start.isoformat(),
            "data_end": trained.data_end.isoformat(),
            "run_date": trained.day.isoformat(),
            "holdout_start": trained.holdout_start.isoformat(),
        },
    )
    registry.promote(version, actor="tests", reason="drift test world")
    return DriftWorld(home, settings, spec, layout, version)


def served_rows(world: DriftWorld, day: date, factor: float = 1.0) -> pd.DataFrame:
    """What serving would log for every entity of a day: its request fields and a prediction.

    The prediction is the simulator's expected demand times ``factor`` (1.0: an excellent model).
    """
    spec = world.spec
    keys = [spec.timestamp_column, *spec.entity_keys]
    curated = pd.read_parquet(world.layout.curated_file(day), columns=[*keys, *spec.features.request_time])
    curated[spec.timestamp_column] = pd.to_datetime(curated[spec.timestamp_column])
    truth = read_truth(world.layout, [day], ["date", *spec.entity_keys, "expected"])
    served = curated.merge(truth.rename(columns={"date": spec.timestamp_column}), on=keys, how="left")
    return served.assign(prediction=served.pop("expected") * factor)


def write_prediction_log(world: DriftWorld, day: date, rows: pd.DataFrame, parts: int = 2) -> list[Path]:
    """Write rows as serving does: predictions/date=D/part-*.parquet with serving's log schema."""
    from serving.prediction_log import log_schema
    from serving.schemas import request_fields

    spec = world.spec
    schema = log_schema(spec, list(request_fields(spec)))
    frame = rows.copy()
    frame[spec.timestamp_column] = pd.to_datetime(frame[spec.timestamp_column]).dt.date
    start = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=6)
    frame["timestamp"] = [start + pd.Timedelta(seconds=i) for i in range(len(frame))]
    frame["request_id"] = [f"req-{i // 10}" for i in range(len(frame))]
    frame["model_version"] = world.version
    frame["known_entity"] = True
    frame["endpoint"] = "/predict/batch"
    folder = world.layout.predictions_partition(day)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    size = -(-len(frame) // parts)
    for i in range(parts):
        chunk = frame.iloc[i * size : (i + 1) * size]
        table = pa.Table.from_pandas(chunk[schema.names], schema=schema, preserve_index=False)
        path = folder / f"part-{i:04d}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    return paths
