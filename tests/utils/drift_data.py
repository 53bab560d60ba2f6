"""Factories for the drift and realized-performance tests: a home with simulated curated history, a
production model trained and promoted by the real retrain_daily DAG, and prediction logs in the
format serving writes (serving/prediction_log.py).

Timeline: curated START..LAST_DAY; retrain_daily runs on TRAIN_END (first model → production);
prices go up 30 % from PRICE_SHIFT_DAY (simulate.py's ``price_shift`` drift kind).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.sim.demand import read_truth
from retrain.spec import DatasetSpec, load_spec

START = date(2026, 1, 2)  # after New Year: no holiday inside the training window
TRAIN_END = date(2026, 2, 26)  # retrain_daily trains the production model on START..TRAIN_END
PRICE_SHIFT_DAY = date(2026, 3, 12)  # prices stay shifted from here on
LAST_DAY = date(2026, 3, 14)
N_STORES, N_ITEMS = 20, 50  # 1,000 rows a day: enough for stable drift scores
TRAIN_ROUNDS = 60


@dataclass(frozen=True)
class DriftWorld:
    """Simulated curated days START..LAST_DAY under a home, with its own spec and GX context."""

    root: Path
    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout

    def env(self) -> dict[str, str]:
        """RETRAIN_* variables that point tasks (which build Settings() from the environment) here."""
        return {
            "RETRAIN_HOME": str(self.settings.resolved_home),
            "RETRAIN_SPEC": str(self.settings.spec),
            "RETRAIN_GX_ROOT": str(self.settings.gx_root),
        }

    def spec_with(self, name: str, **drift: object) -> Path:
        """A copy of this world's spec file with some drift settings changed (e.g. trigger_retrain)."""
        data = yaml.safe_load(self.settings.spec.read_text(encoding="utf-8"))
        data["drift"].update(drift)
        path = self.root / f"spec-{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path


@dataclass(frozen=True)
class TrainedWorld:
    """The world and the production version retrain_daily promoted in it."""

    world: DriftWorld
    version: int


def build_drift_world(root: Path) -> DriftWorld:
    """Simulate START..LAST_DAY with the price shift and publish START..TRAIN_END-1 to curated/."""
    from retrain.sim.demand import Injection
    from tests.utils.sim import sim_config

    root.mkdir(parents=True, exist_ok=True)
    gx_root = root / "gx"
    shutil.copytree(REPO_ROOT / "gx", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
    data = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text(encoding="utf-8"))
    data["training"]["num_boost_round"] = TRAIN_ROUNDS
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    settings = Settings(home=root / "var", gx_root=gx_root, spec=spec_file)
    spec = load_spec(spec_file)
    layout = DatasetLayout.for_spec(settings, spec)
    from retrain.sim.demand import write_simulation

    days = (LAST_DAY - START).days + 1
    config = sim_config(
        START, days, N_STORES, N_ITEMS, seed=settings.seed, drifts=[Injection("price_shift", PRICE_SHIFT_DAY)]
    )
    write_simulation(layout, spec, config)
    publish_days(settings, spec, START, TRAIN_END - timedelta(days=1))
    return DriftWorld(root, settings, spec, layout)


def publish_days(settings: Settings, spec: DatasetSpec, first: date, last: date) -> None:
    """Stage and publish landing drops to curated/ directly (validation is retrain_daily's business)."""
    from retrain import ingest

    day = first
    while day <= last:
        ingest.run(settings, spec, day)
        ingest.publish_batch(settings, spec, day)
        day += timedelta(days=1)


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


def write_prediction_log(
    world: DriftWorld, day: date, rows: pd.DataFrame, model_version: int, parts: int = 2
) -> list[Path]:
    """Write rows as serving does: predictions/date=D/part-*.parquet with serving's log schema."""
    from serving.prediction_log import log_schema
    from serving.schemas import request_fields

    spec = world.spec
    schema = log_schema(spec, list(request_fields(spec)))
    frame = rows.copy()
    frame[spec.timestamp_column] = pd.to_datetime(frame[spec.timestamp_column]).dt.date
    start = pd.Timestamp(day, tz="UTC") - pd.Timedelta(hours=6)  # forecasts are asked the evening before
    frame["timestamp"] = [start + pd.Timedelta(seconds=i) for i in range(len(frame))]
    frame["request_id"] = [f"req-{i // 10}" for i in range(len(frame))]
    frame["model_version"] = model_version
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


def pushed_samples(pushgateway_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample the Pushgateway exposes, keyed by (metric name, labels)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{pushgateway_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return samples


def pushed_value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    """The value of the one sample of ``name`` whose labels are exactly job=retrain_drift plus ``labels``."""
    wanted = frozenset({"job": "retrain_drift", "instance": "", **labels}.items())
    return samples.get((name, wanted))


SEATTLE_TRAIN_END = date(2014, 12, 31)
"""The single-series production model is trained on the spec's train_days up to here."""


def seattle_csv() -> Path:
    """seattle-weather.csv as shipped in the vega_datasets package (MIT): 2012-2015, one row a day."""
    import vega_datasets

    return Path(vega_datasets.__file__).parent / "_data" / "seattle-weather.csv"


def write_curated_series(settings: Settings, spec: DatasetSpec, raw: pd.DataFrame) -> list[date]:
    """One curated partition per day of ``raw``, typed by coerce.normalise_frame (validation skipped)."""
    from retrain.coerce import normalise_frame
    from retrain.sim.files import write_curated_days

    frame, uncoerced = normalise_frame(raw, spec)
    assert not uncoerced, uncoerced
    return write_curated_days(DatasetLayout.for_spec(settings, spec), spec, frame)


def train_production(settings: Settings, spec: DatasetSpec, day: date) -> int:
    """features → train → evaluate → register on ``day`` as retrain_daily does; promoted even if gated out.

    Drift needs a production version with its training-window tags, whatever the gates think of it.
    """
    from retrain import evaluate, features, promote, train
    from retrain.registry import ModelRegistry

    features.run(settings, spec, day)
    trained = train.run(settings, spec, day)
    evaluation = evaluate.run(settings, spec, day, trained=trained)
    decision = promote.run(settings, spec, day, evaluation=evaluation)
    registry = ModelRegistry(settings, spec.model_name)
    production = registry.production()
    if production is None or production.version != decision.version:
        registry.promote(decision.version, actor="tests", reason="drift tests need a production model")
    return int(decision.version)


@dataclass(frozen=True)
class SeriesWorld:
    """The real single series, curated, with a production model trained up to SEATTLE_TRAIN_END."""

    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout
    version: int


def build_seattle_world(root: Path) -> SeriesWorld:
    """Curate the whole seattle-weather series and train the production model on the spec's window up to SEATTLE_TRAIN_END."""
    spec_file = REPO_ROOT / "config" / "seattle_weather.yaml"
    settings = Settings(home=root / "var", gx_root=root / "gx", spec=spec_file)
    spec = load_spec(spec_file)
    write_curated_series(settings, spec, pd.read_csv(seattle_csv()))
    version = train_production(settings, spec, SEATTLE_TRAIN_END)
    return SeriesWorld(settings, spec, DatasetLayout.for_spec(settings, spec), version)
