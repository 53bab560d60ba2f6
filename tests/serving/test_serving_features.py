"""The serving fast path equals the references: features vs `online_features`, predictor vs ForecastModel."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain.feature_maths import fit_vocabulary
from retrain.feature_snapshot import build_snapshot, online_features
from retrain.layout import DatasetLayout
from retrain.model import ForecastModel
from retrain.spec import DatasetSpec, parse_spec
from retrain.tracking import load_forecast_model
from serving.features import OnlineFeatureBuilder
from serving.predictor import FastPredictor
from serving.schemas import build_request_schema
from tests.serving.world import ServingWorld, fast_spec_data, request_rows


def _columns(rows: list[dict[str, Any]], spec: DatasetSpec) -> tuple[dict[str, list[Any]], list[date]]:
    schema = build_request_schema(spec, 10_000)
    columns = schema.columns(rows)
    dates = [date.fromisoformat(d) if isinstance(d, str) else d for d in columns[spec.timestamp_column]]
    return columns, dates


def _assert_same_features(builder: OnlineFeatureBuilder, reference: Any, rows: Any) -> None:
    assert builder.feature_names == list(reference.feature_names)
    np.testing.assert_array_equal(rows.in_window, reference.in_horizon)
    np.testing.assert_array_equal(rows.known_entity, reference.known_entity)
    inside = reference.in_horizon
    np.testing.assert_array_equal(rows.horizon_days[inside], reference.horizon_days[inside])
    np.testing.assert_allclose(rows.matrix[inside], reference.values[inside], rtol=0, atol=1e-9)
    # NaN exactly where the reference has NaN (missing lags must stay missing for XGBoost).
    np.testing.assert_array_equal(np.isnan(rows.matrix[inside]), np.isnan(reference.values[inside]))


def test_fast_features_equal_online_features(serving_world: ServingWorld) -> None:
    spec, snapshot = serving_world.spec, serving_world.snapshot(1)
    rows = request_rows(serving_world, 1, n=700, seed=3, unknown=25)
    day0 = serving_world.snapshot_days[1]
    for i, offset in enumerate((0, 8, -3, 30)):  # outside the window: flagged, never served
        rows[i]["date"] = (day0 + timedelta(days=offset)).isoformat()
    columns, dates = _columns(rows, spec)
    builder = OnlineFeatureBuilder(snapshot, spec, max_horizon_days=7)
    built = builder.build(columns, dates)
    reference = online_features(snapshot, pd.DataFrame(rows), spec, max_horizon_days=7)
    _assert_same_features(builder, reference, built)
    assert built.in_window.sum() == len(rows) - 4
    assert (~built.known_entity).sum() == 25
    assert set(built.horizon_days[built.in_window].tolist()) == set(range(1, 8))
    # One row at a time gives the same rows as the batch (the single-row path is the same code).
    for i in (10, 11, 30, 699):
        single = builder.build({k: [v[i]] for k, v in columns.items()}, [dates[i]])
        np.testing.assert_array_equal(single.matrix[0], built.matrix[i])


@pytest.mark.parametrize("keys", [[], ["item_id"]])
def test_fast_features_with_fewer_entity_keys(serving_world: ServingWorld, keys: list[str]) -> None:
    data = fast_spec_data()
    data["entity_keys"] = keys
    spec = parse_spec(data)
    layout = DatasetLayout.for_spec(serving_world.settings, serving_world.spec)
    day0 = serving_world.snapshot_days[1]
    history = pd.concat(
        [pd.read_parquet(layout.curated_file(day0 - timedelta(days=d))) for d in range(60)], ignore_index=True
    )
    history = history[history["store_id"] == history["store_id"].min()]
    if not keys:
        history = history[history["item_id"] == history["item_id"].min()]
    snapshot = build_snapshot(history, spec, day0, fit_vocabulary(history, spec))
    rng = np.random.default_rng(0)
    items = [*sorted(history["item_id"].unique().tolist()), 999_999]
    rows = [
        {
            "item_id": int(items[i % len(items)]),
            "store_id": 0,
            "date": (day0 + timedelta(days=1 + i % 7)).isoformat(),
            "price": float(rng.uniform(1, 9)),
            "promo": int(i % 2),
            "holiday": 0,
            "temperature": 12.5,
        }
        for i in range(40)
    ]
    columns, dates = _columns(
        [{k: r[k] for k in (*keys, "date", "price", "promo", "holiday", "temperature")} for r in rows], spec
    )
    builder = OnlineFeatureBuilder(snapshot, spec, max_horizon_days=7)
    built = builder.build(columns, dates)
    reference = online_features(snapshot, pd.DataFrame(rows), spec, max_horizon_days=7)
    _assert_same_features(builder, reference, built)
    assert built.known_entity.all() == (not keys)


def test_fast_predictor_is_bit_identical(serving_world: ServingWorld) -> None:
    from retrain.tracking import configure_mlflow

    configure_mlflow(serving_world.settings)
    model = load_forecast_model(f"models:/{serving_world.model_name}/1", nthread=1)
    predictor = FastPredictor(model)
    assert predictor.native
    builder = OnlineFeatureBuilder(serving_world.snapshot(1), serving_world.spec, 7)
    rows = request_rows(serving_world, 1, n=300, seed=5, unknown=10)
    matrix = builder.build(*_columns(rows, serving_world.spec)).matrix
    # Alternate sizes: proxies are cached per row count, and margins must never leak between calls.
    for size in (1, 7, 300, 1, 100, 7, 300):
        part = matrix[:size] if size != 7 else matrix[50:57]
        np.testing.assert_array_equal(predictor.predict(part), model.predict(part))
    assert predictor.predict(matrix[:0]).shape == (0,)
    plain = FastPredictor(model, use_c_api=False)
    assert not plain.native
    np.testing.assert_array_equal(plain.predict(matrix), model.predict(matrix))


def test_fast_predictor_without_offset_matches_booster() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=x[:, 0] * 2), num_boost_round=5)
    model = ForecastModel(booster)
    assert model.link == "none"
    np.testing.assert_array_equal(FastPredictor(model).predict(x), model.predict(x))
