"""Fixtures for model tests: a real MLflow SQLite store per test and a factory logging tiny boosters."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow import MlflowClient

from retrain.coerce import normalise_frame
from retrain.layout import DatasetLayout
from retrain.model import ForecastModel
from retrain.registry import ModelRegistry
from retrain.settings import REPO_ROOT, Settings
from retrain.sim.files import write_curated_days
from retrain.spec import DatasetSpec, load_spec
from retrain.tracking import experiment_id, log_forecast_model

FEATURES = ["price", "promo", "lag_1", "lag_7"]
MODEL_NAME = "test_demand"


@dataclass(frozen=True)
class LoggedBooster:
    """A booster logged in its own run: where it is, what it was shown, how long logging took."""

    model_uri: str
    run_id: str
    input_example: pd.DataFrame
    log_seconds: float


LogBooster = Callable[..., LoggedBooster]


def make_settings(home: Path) -> Settings:
    """Settings rooted at ``home`` whatever the environment says about MLflow."""
    return Settings(home=home, mlflow_tracking_uri=None, mlflow_artifact_root=None)


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created once; creating it costs seconds per test otherwise."""
    home = tmp_path_factory.mktemp("mlflow-template")
    uri = make_settings(home).tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()
    client.search_registered_models()
    return home / "mlflow.db"


@pytest.fixture
def settings(tmp_path: Path, mlflow_db_template: Path) -> Settings:
    """Settings with home=tmp_path and a fresh, real MLflow SQLite store there."""
    shutil.copyfile(mlflow_db_template, tmp_path / "mlflow.db")
    return make_settings(tmp_path)


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    """The test model in the test's registry."""
    return ModelRegistry(settings, MODEL_NAME)


@pytest.fixture
def log_booster_run(settings: Settings) -> LogBooster:
    """Factory: train a tiny booster on random data with named features and log it in a new run."""
    experiment = experiment_id(settings, "test-retrain")

    def factory(*, seed: int = 0, metrics: dict[str, float] | None = None) -> LoggedBooster:
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame(rng.normal(size=(200, len(FEATURES))), columns=FEATURES)
        target = frame @ np.array([-2.0, 1.0, 0.8, 0.3]) + rng.normal(scale=0.1, size=len(frame))
        params = {"max_depth": 3, "nthread": 1, "seed": seed, "objective": "reg:squarederror"}
        booster = xgb.train(params, xgb.DMatrix(frame, label=target), num_boost_round=10)
        example = frame.head(5)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metrics(metrics or {"rmse": 1.0 + seed, "wape": 0.1 + seed / 100})
            started = time.perf_counter()
            model_uri = log_forecast_model(ForecastModel(booster), input_example=example)
            seconds = time.perf_counter() - started
        return LoggedBooster(model_uri, run.info.run_id, example, seconds)

    return factory


@pytest.fixture(scope="session")
def seattle_weather() -> tuple[DatasetSpec, pd.DataFrame]:
    """The seattle_weather spec and its real history (vega_datasets seattle-weather.csv), typed by ingest."""
    import vega_datasets

    spec = load_spec(REPO_ROOT / "config" / "seattle_weather.yaml")
    raw = pd.read_csv(Path(vega_datasets.__file__).parent / "_data" / "seattle-weather.csv")
    return spec, normalise_frame(raw, spec)[0]


WriteCurated = Callable[[DatasetSpec, pd.DataFrame, date, date], int]


@pytest.fixture
def write_curated(settings: Settings) -> WriteCurated:
    """Factory: curated partitions for [start, end] written directly, bypassing validation on purpose."""
    return lambda spec, history, start, end: len(
        write_curated_days(DatasetLayout.for_spec(settings, spec), spec, history, start, end)
    )
