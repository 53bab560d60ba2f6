"""Model behaviour on real data: the offset recipe round-trips, `auto` picks sensibly, and the candidate
beats persistence (yesterday's value) on a real single series, through the real stages and MLflow."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain import evaluate, features, promote, train
from retrain.coerce import normalise_frame
from retrain.feature_maths import build_features, feature_matrix, lookback_days
from retrain.features import LOOKBACK_MARGIN_DAYS
from retrain.model import ATTR_KIND, ForecastModel
from retrain.settings import REPO_ROOT, Settings
from retrain.sim.demand import SimulationConfig, generate
from retrain.spec import DatasetSpec, TrainingSpec, load_spec
from tests.model.conftest import WriteCurated

# A run date with an ordinary margin over persistence, not the best one (bench_quality has them all).
SEATTLE_RUN_DATE = date(2015, 4, 10)


def _window(spec: DatasetSpec, history: pd.DataFrame, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and holdout parts of the window ending at `day`, features as the features stage builds them."""
    table = build_features(history, spec)
    stamps = table[spec.timestamp_column]
    start = pd.Timestamp(day - timedelta(days=spec.training.train_days - 1))
    window = table[(stamps >= start) & (stamps <= pd.Timestamp(day)) & table[spec.target].notna()]
    return train.time_split(window.reset_index(drop=True), spec, spec.training.holdout_days)


def _with_offset(spec: DatasetSpec, offset: str) -> DatasetSpec:
    return spec.model_copy(update={"training": spec.training.model_copy(update={"offset": offset})})


@pytest.mark.parametrize(("offset", "expected"), [("level", "level"), ("last_value", "last_value"),
                                                  ("none", "none"), ("auto", "last_value")])  # fmt: skip
def test_offset_recipe_is_stored_in_the_booster_and_reloads_identically(
    seattle_weather: tuple[DatasetSpec, pd.DataFrame], tmp_path: Path, offset: str, expected: str
) -> None:
    spec, history = seattle_weather
    spec = _with_offset(spec, offset).model_copy(
        update={"training": _with_offset(spec, offset).training.model_copy(update={"num_boost_round": 20})}
    )
    fit_part, holdout = _window(spec, history, SEATTLE_RUN_DATE)
    model = train.fit_model(fit_part, spec, seed=42)
    assert model.offset == expected
    assert model.booster.attr(ATTR_KIND) == expected
    loaded = ForecastModel.load(model.save(tmp_path / "model.ubj"))  # what serving does: the file alone
    matrix = feature_matrix(holdout, spec)
    np.testing.assert_array_equal(loaded.predict(matrix), model.predict(matrix))
    assert (loaded.margin(matrix) is None) == (expected == "none")


def test_last_value_offset_starts_from_yesterday(seattle_weather: tuple[DatasetSpec, pd.DataFrame]) -> None:
    spec, history = seattle_weather
    spec = _with_offset(spec, "last_value")
    fit_part, holdout = _window(spec, history, SEATTLE_RUN_DATE)
    model = train.fit_model(fit_part, spec, seed=42)
    margin = model.margin(feature_matrix(holdout, spec))
    assert margin is not None
    np.testing.assert_array_equal(margin, holdout["lag_1"].to_numpy(dtype=np.float64))


def test_auto_keeps_the_level_offset_on_simulated_retail_demand() -> None:
    spec = load_spec(REPO_ROOT / "config" / "retail_demand.yaml")
    assert spec.training.offset == "auto"
    landing, _ = generate(SimulationConfig(date(2025, 1, 1), 150, 4, 10, seed=7))
    history = normalise_frame(landing, spec)[0]
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"num_boost_round": 10})})
    fit_part, _ = _window(spec, history, date(2025, 5, 30))
    assert train.fit_model(fit_part, spec, seed=42).offset == "level"


def test_old_level_offset_key_still_loads() -> None:
    assert TrainingSpec.model_validate({"level_offset": False}).offset == "none"
    assert TrainingSpec.model_validate({"level_offset": True}).offset == "auto"
    with pytest.raises(ValueError, match="contradicts"):
        TrainingSpec.model_validate({"level_offset": False, "offset": "level"})


def test_seattle_candidate_beats_persistence_through_the_stages(
    settings: Settings, seattle_weather: tuple[DatasetSpec, pd.DataFrame], write_curated: WriteCurated
) -> None:
    """On real data the model must beat yesterday's value; if this fails, the model regressed."""
    spec, history = seattle_weather
    day = SEATTLE_RUN_DATE
    first = day - timedelta(days=spec.training.train_days + lookback_days(spec) + LOOKBACK_MARGIN_DAYS)
    write_curated(spec, history, first, day)

    features.run(settings, spec, day)
    trained = train.run(settings, spec, day)
    assert set(trained.baselines) == {"persistence", "seasonal_naive", "training_mean"}
    assert trained.best_baseline == "persistence"
    persistence = trained.baselines["persistence"]["rmse"]
    assert trained.candidate["rmse"] < persistence, (trained.candidate, trained.baselines)

    evaluation = evaluate.run(settings, spec, day, trained=trained)
    assert evaluation.best_baseline == "persistence"
    assert evaluation.candidate.overall.rmse == pytest.approx(trained.candidate["rmse"])
    assert evaluation.baseline.overall.rmse == pytest.approx(persistence)

    decision = promote.run(settings, spec, day, evaluation=evaluation)
    assert decision.outcome == "promoted", decision.report
    assert decision.report["best_baseline"] == "persistence"
    assert set(decision.report["baselines"]) == {"persistence", "seasonal_naive", "training_mean"}
    gate = next(g for g in decision.report["gates"] if g["name"] == "beats_baseline")
    assert "the best baseline, persistence" in gate["reason"]


def test_evaluation_round_trips_every_baseline_through_xcom(
    settings: Settings, seattle_weather: tuple[DatasetSpec, pd.DataFrame], write_curated: WriteCurated
) -> None:
    spec, history = seattle_weather
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"num_boost_round": 10})})
    day = SEATTLE_RUN_DATE
    write_curated(spec, history, day - timedelta(days=spec.training.train_days + lookback_days(spec)), day)
    features.run(settings, spec, day)
    trained = train.run(settings, spec, day)
    assert train.TrainResult.from_xcom(json.loads(json.dumps(trained.to_xcom()))) == trained
    evaluation = evaluate.run(settings, spec, day, trained=trained)
    again = evaluate.EvaluationResult.from_xcom(json.loads(json.dumps(evaluation.to_xcom())))
    assert again == evaluation
    assert set(again.baseline_overall()) == {"persistence", "seasonal_naive", "training_mean"}
