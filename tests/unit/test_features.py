"""Features: no leakage, calendar-day lags, fixed vocabularies, online/offline consistency, the stage run."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.errors import DataMissingError, SpecError
from retrain.feature_maths import lookback_days, target_feature_names
from retrain.feature_snapshot import read_snapshot, write_snapshot
from retrain.features import (
    LOOKBACK_MARGIN_DAYS,
    build_features,
    build_snapshot,
    feature_matrix,
    feature_names,
    fit_vocabulary,
    online_features,
    run,
)
from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import DatasetSpec, parse_spec

START = date(2024, 1, 1)
STORE_TYPES = ["hyper", "super", "express"]
CATEGORIES = ["grocery", "beverages", "household", "personal_care", "produce", "frozen"]


def _spec_data() -> dict[str, Any]:
    data = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text())
    assert isinstance(data, dict)
    return data


def retail_spec(**training: Any) -> DatasetSpec:
    data = _spec_data()
    data["training"] = {**data["training"], **training}
    return parse_spec(data)


def single_series_spec() -> DatasetSpec:
    return parse_spec(
        {
            "name": "web_visits",
            "timestamp_column": "day",
            "target": "visits",
            "columns": {
                "day": {"type": "date"},
                "visits": {"type": "float"},
                "temperature": {"type": "float"},
                "weather": {"type": "string"},
                "site": {"type": "string"},
            },
            "features": {
                "numeric": ["temperature"],
                "categorical": ["weather", "site"],
                "request_time": ["temperature", "weather"],
                "lags": [1, 2, 7],
                "rolling_windows": [3, 14],
            },
        }
    )


def retail_history(
    n_stores: int = 3, n_items: int = 4, days: int = 80, seed: int = 0, drop_share: float = 0.05
) -> pd.DataFrame:
    """Curated-like rows (one per store, item and day), with a share of rows dropped at random."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, periods=days, freq="D")
    stores, items, day_index = np.meshgrid(np.arange(n_stores), np.arange(n_items), dates, indexing="ij")
    n = stores.size
    frame = pd.DataFrame(
        {
            "date": pd.DatetimeIndex(day_index.ravel()).astype("datetime64[ns]"),
            "store_id": stores.ravel().astype(np.int64),
            "item_id": (100 + items.ravel()).astype(np.int64),
            "store_type": pd.array([STORE_TYPES[s % 3] for s in stores.ravel()], dtype="string"),
            "category": pd.array([CATEGORIES[i % 6] for i in items.ravel()], dtype="string"),
            "price": rng.uniform(1, 20, n).round(2),
            "temperature": rng.normal(15, 8, n).round(1),
            "promo": rng.integers(0, 2, n).astype(np.int64),
            "holiday": rng.integers(0, 2, n).astype(np.int64),
            "sales": rng.poisson(30, n).astype(np.int64),
        }
    )
    keep = rng.random(n) >= drop_share
    return frame.loc[keep].reset_index(drop=True)


def web_history(days: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "day": [START + timedelta(days=i) for i in range(days)],
            "visits": rng.normal(1000, 50, days),
            "temperature": rng.normal(10, 5, days),
            "weather": pd.array(rng.choice(["rain", "sun", "snow"], days), dtype="string"),
            "site": "shop",  # not sent by clients: served from the snapshot, so it must be static
        }
    )
    return frame.drop(index=[10, 11, 30]).reset_index(drop=True)


def _at(frame: pd.DataFrame, column: str, day: date) -> pd.DataFrame:
    return frame.loc[pd.to_datetime(frame[column]) == pd.Timestamp(day)]


def test_feature_names_fixed_order() -> None:
    assert feature_names(retail_spec()) == [
        "store_id",
        "item_id",
        "price",
        "promo",
        "holiday",
        "temperature",
        "store_type_code",
        "category_code",
        "lag_1",
        "lag_7",
        "lag_14",
        "lag_28",
        "roll_mean_7",
        "roll_std_7",
        "roll_mean_28",
        "roll_std_28",
        "roll_mean_56",
        "roll_std_56",
        "same_weekday_mean_4w",
        "day_of_week",
        "day_of_month",
        "month",
        "day_of_year",
        "week_of_year",
        "is_weekend",
    ]
    assert feature_names(single_series_spec())[:3] == ["temperature", "weather_code", "site_code"]


@pytest.mark.parametrize("whole_store", [False, True])
def test_changing_targets_from_day_t_never_changes_features_up_to_t(whole_store: bool) -> None:
    spec = retail_spec()
    history = retail_history()
    names = feature_names(spec)
    base = build_features(history, spec)
    rng = np.random.default_rng(7)
    for t in [START + timedelta(days=int(d)) for d in rng.choice(np.arange(1, 75), 6, replace=False)]:
        changed = history.copy()
        entity = changed["store_id"] == rng.integers(0, 3)
        if not whole_store:
            entity &= changed["item_id"] == 100 + rng.integers(0, 4)
        rows = entity & (changed["date"] >= pd.Timestamp(t))
        changed.loc[rows, "sales"] = changed.loc[rows, "sales"] + rng.integers(1, 500, int(rows.sum()))
        after = build_features(changed, spec)
        upto = base["date"] <= pd.Timestamp(t)
        pd.testing.assert_frame_equal(
            base.loc[upto, names], after.loc[upto, names], check_exact=True, obj=f"features up to {t}"
        )
        later = ~upto & (base["date"] <= pd.Timestamp(t + timedelta(days=7)))
        assert not base.loc[later, names].equals(after.loc[later, names]), "features ignore the target"


def test_features_of_a_day_do_not_depend_on_later_rows() -> None:
    spec = retail_spec()
    history = retail_history(seed=3)
    full = build_features(history, spec)
    for t in [START + timedelta(days=d) for d in (5, 29, 50)]:
        truncated = build_features(history.loc[history["date"] <= pd.Timestamp(t)], spec)
        upto = full.loc[full["date"] <= pd.Timestamp(t)].reset_index(drop=True)
        pd.testing.assert_frame_equal(upto, truncated, check_exact=True)


def test_lags_are_by_calendar_day_not_by_row() -> None:
    spec = retail_spec()
    history = retail_history(n_stores=1, n_items=1, days=40, drop_share=0.0)
    history["sales"] = np.arange(40, dtype=np.int64)  # the value is the day number
    history = history.loc[history["date"] != pd.Timestamp(START + timedelta(days=20))]
    features = build_features(history, spec).set_index("sales")
    assert np.isnan(features.loc[21, "lag_1"])  # a row shift would give 19
    assert features.loc[22, "lag_1"] == 21
    assert features.loc[21, "roll_mean_7"] == pytest.approx(np.mean([14, 15, 16, 17, 18, 19]))
    assert features.loc[21, "roll_std_7"] == pytest.approx(np.std([14, 15, 16, 17, 18, 19], ddof=1))
    assert np.isnan(features.loc[27, "lag_7"])
    assert features.loc[27, "same_weekday_mean_4w"] == pytest.approx(np.mean([13, 6]))
    assert np.isnan(features.loc[0, "lag_1"]) and np.isnan(features.loc[0, "roll_mean_7"])
    assert np.isnan(features.loc[1, "roll_std_7"])  # one past value: no spread


def test_rolling_features_match_pandas_time_windows() -> None:
    spec = retail_spec()
    history = retail_history(drop_share=0.2, seed=5)
    features = build_features(history, spec)
    for (_, _), group in features.groupby(["store_id", "item_id"]):
        series = group.set_index("date")["sales"].astype(float)
        for w in (7, 28):
            rolling = series.rolling(f"{w}D", closed="left")
            np.testing.assert_allclose(group[f"roll_mean_{w}"], rolling.mean(), rtol=1e-12)
            np.testing.assert_allclose(group[f"roll_std_{w}"], rolling.std(), rtol=1e-9)
        for k in (1, 7, 14, 28):
            expected = series.reindex(series.index - pd.Timedelta(days=k)).to_numpy()
            np.testing.assert_array_equal(group[f"lag_{k}"], expected)


def test_unseen_category_becomes_missing_code() -> None:
    spec = retail_spec()
    history = retail_history(days=35)
    history["store_type"] = history["store_type"].astype(object)
    history.loc[history["store_id"] == 2, "store_type"] = "mega"
    history.loc[0, "category"] = pd.NA
    features = build_features(history, spec)
    mega = features["store_id"] == 2
    assert features.loc[mega, "store_type_code"].isna().all()
    expected = features.loc[~mega, "store_type"].map(STORE_TYPES.index).astype(float)
    np.testing.assert_array_equal(features.loc[~mega, "store_type_code"], expected)
    assert features["category_code"].isna().sum() == 1
    assert fit_vocabulary(history, spec)["store_type"] == STORE_TYPES  # allowed list, not data


def test_vocabulary_without_allowed_values_is_sorted_and_stable() -> None:
    data = _spec_data()
    del data["columns"]["category"]["allowed"]
    spec = parse_spec(data)
    train = retail_history(n_items=3, days=35)
    vocabulary = fit_vocabulary(train, spec)
    assert vocabulary["category"] == ["beverages", "grocery", "household"]
    assert fit_vocabulary(train.sample(frac=1.0, random_state=1), spec) == vocabulary
    later = retail_history(n_items=6, days=35)
    features = build_features(later, spec, vocabulary)
    seen = features["category"].isin(vocabulary["category"])
    assert (~seen).sum() > 0 and features.loc[~seen, "category_code"].isna().all()
    expected = features.loc[seen, "category"].map(vocabulary["category"].index)
    np.testing.assert_array_equal(features.loc[seen, "category_code"], expected)


def _online_vs_offline(
    spec: DatasetSpec, history: pd.DataFrame, day: date, horizon: int, tmp_path: Path
) -> tuple[pd.DataFrame, Any]:
    """Online features of the rows on day+horizon, and offline features of the same rows."""
    dates = pd.to_datetime(history[spec.timestamp_column])
    target_day = pd.Timestamp(day + timedelta(days=horizon))
    known = history.loc[dates <= pd.Timestamp(day)]
    vocabulary = fit_vocabulary(known, spec)
    path = tmp_path / "snapshot.parquet"
    write_snapshot(build_snapshot(history, spec, day, vocabulary), path)  # later rows must be ignored
    snapshot = read_snapshot(path)
    offline = build_features(pd.concat([known, history.loc[dates == target_day]]), spec, vocabulary)
    offline = offline.loc[offline[spec.timestamp_column] == target_day]
    requests = offline[[*spec.entity_keys, spec.timestamp_column, *spec.features.request_time]]
    requests = requests.sample(frac=1.0, random_state=2)  # serving order is arbitrary
    online = online_features(snapshot, requests, spec)
    return offline.loc[requests.index], online


@pytest.mark.parametrize("horizon", [1, 3, 7])
def test_online_features_equal_offline_features(horizon: int, tmp_path: Path) -> None:
    spec = retail_spec()
    history = retail_history(n_stores=4, n_items=5, days=70, drop_share=0.1, seed=11)
    offline, online = _online_vs_offline(spec, history, START + timedelta(days=55), horizon, tmp_path)
    assert len(offline) > 15 and online.known_entity.all() and online.in_horizon.all()
    assert list(online.feature_names) == feature_names(spec)
    np.testing.assert_allclose(online.values, feature_matrix(offline, spec), rtol=0, atol=1e-9)
    if horizon > 1:
        assert np.isnan(online.to_frame()["lag_1"]).all()


def test_online_features_single_series(tmp_path: Path) -> None:
    spec = single_series_spec()
    history = web_history()
    for day in [START + timedelta(days=d) for d in (40, 30, 11)]:  # days 10, 11 and 30 are missing
        offline, online = _online_vs_offline(spec, history, day, 1, tmp_path)
        assert len(offline) == 1 and online.known_entity.all()
        np.testing.assert_allclose(online.values, feature_matrix(offline, spec), rtol=0, atol=1e-9)


def test_single_series_build_features() -> None:
    spec = single_series_spec()
    features = build_features(web_history(), spec)
    assert "store_id" not in features and len(features) == 57
    day_12 = _at(features, "day", START + timedelta(days=12)).iloc[0]
    assert np.isnan(day_12["lag_1"]) and np.isnan(day_12["lag_2"])  # days 10 and 11 were dropped
    assert day_12["weather_code"] in (0.0, 1.0, 2.0) and day_12["site_code"] == 0.0


def test_unknown_entities_and_out_of_horizon_requests_are_flagged(tmp_path: Path) -> None:
    spec = retail_spec()
    history = retail_history(days=40, drop_share=0.0)
    day = START + timedelta(days=39)
    snapshot = build_snapshot(history, spec, day, fit_vocabulary(history, spec))
    requests = pd.DataFrame(
        {
            "store_id": [0, 99, 1, 1],
            "item_id": [100, 100, 101, 101],
            "date": [day + timedelta(days=d) for d in (1, 1, 0, 8)],
            "price": [2.5] * 4,
            "promo": [1] * 4,
            "holiday": [0] * 4,
            "temperature": [20.0] * 4,
        }
    )
    online = online_features(snapshot, requests, spec)
    frame = online.to_frame()
    assert online.known_entity.tolist() == [True, False, True, True]
    assert online.in_horizon.tolist() == [True, True, False, False]
    target = target_feature_names(spec)
    assert not frame.loc[0, target].isna().any()
    assert frame.loc[1:, target].isna().all().all()
    assert np.isnan(frame.loc[1, "store_type_code"]) and frame.loc[1, "price"] == 2.5
    assert frame.loc[0, "store_type_code"] == 0.0 and frame.loc[0, "store_id"] == 0.0


def _write_curated(layout: DatasetLayout, history: pd.DataFrame) -> None:
    for day, rows in history.groupby("date"):
        path = layout.curated_file(pd.Timestamp(day).date())
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.reset_index(drop=True).to_parquet(path, index=False)


def test_run_writes_train_table_snapshot_and_lineage(tmp_path: Path) -> None:
    spec = retail_spec(train_days=20, holdout_days=5, min_history_days=10)
    settings = Settings(home=tmp_path)
    layout = DatasetLayout.for_spec(settings, spec)
    history = retail_history(days=90, seed=4)
    _write_curated(layout, history)
    day = START + timedelta(days=80)

    result = run(settings, spec, day)
    window = (history["date"] >= pd.Timestamp(day - timedelta(days=19))) & (
        history["date"] <= pd.Timestamp(day)
    )
    train = pd.read_parquet(result.train_path)
    assert result.train_rows == len(train) == int(window.sum())
    assert list(train[feature_names(spec)].columns) == list(result.feature_names)
    assert train["date"].min() == pd.Timestamp(day - timedelta(days=19))
    assert train["lag_28"].notna().mean() > 0.8  # the lookback partitions were read
    read_from = day - timedelta(days=19 + lookback_days(spec) + LOOKBACK_MARGIN_DAYS)
    expected_days = [d for d in layout.curated_days() if read_from <= d <= day]
    assert [p.day for p in result.partitions] == expected_days
    for p in result.partitions:
        assert p.sha256 == hashlib.sha256(layout.curated_file(p.day).read_bytes()).hexdigest()
        assert p.rows == len(pd.read_parquet(layout.curated_file(p.day)))
    snapshot = read_snapshot(result.snapshot_path)
    assert snapshot.snapshot_date == day and len(snapshot.frame) == result.snapshot_entities == 12
    assert snapshot.vocabulary == {"store_type": STORE_TYPES, "category": CATEGORIES}
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["train_rows"] == result.train_rows and len(manifest["partitions"]) == len(expected_days)

    files = [result.train_path, result.snapshot_path, result.manifest_path]
    before = [f.read_bytes() for f in files]
    again = run(settings, spec, day)
    assert [f.read_bytes() for f in files] == before
    assert again == result
    assert sorted(p.name for p in result.train_path.parent.iterdir()) == [
        "manifest.json",
        "snapshot.parquet",
        "train.parquet",
    ]


def test_run_without_curated_day_fails(tmp_path: Path) -> None:
    spec = retail_spec(train_days=20, holdout_days=5)
    with pytest.raises(DataMissingError, match="no curated partition"):
        run(Settings(home=tmp_path), spec, START)


def test_snapshot_built_for_another_spec_is_refused() -> None:
    spec = retail_spec()
    history = retail_history(days=30)
    snapshot = build_snapshot(history, spec, START + timedelta(days=29), fit_vocabulary(history, spec))
    data = _spec_data()
    data["features"]["lags"] = [1, lookback_days(spec) + 7]
    requests = history.loc[history["date"] == history["date"].max()]
    with pytest.raises(SpecError, match="rebuild it"):
        online_features(snapshot, requests, parse_spec(data))
