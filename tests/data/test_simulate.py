"""The simulator: determinism, schema, drifts, faults and the recorded noise floor."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from retrain.errors import DataMissingError, RetrainError
from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT
from retrain.sim.demand import (
    DRIFT_KINDS,
    FAULT_KINDS,
    Injection,
    SimulationConfig,
    SimulationResult,
    build_catalog,
    deliver_late,
    expected_noise_rmse,
    generate,
    generate_day,
    noise_floor_rmse,
    parse_injection,
    read_truth,
    truth_file,
    write_simulation,
)
from retrain.sim.faults import BAD_PRICE_STRINGS, late_path
from retrain.spec import ColumnType, DatasetSpec, load_spec, parse_spec
from tests.utils.sim import as_plain, landing_file, read_landing_csv, sim_config, simulate_into

START = date(2026, 1, 5)
KEYS = ["date", "store_id", "item_id"]


def _spec_dict() -> dict[str, object]:
    import yaml

    data: dict[str, object] = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text())
    return data


def test_same_seed_same_data_and_other_seed_differs() -> None:
    first = generate(sim_config(START, 5))
    again = generate(sim_config(START, 5))
    other = generate(sim_config(START, 5, seed=7))
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])
    assert not first[0]["sales"].equals(other[0]["sales"])


def test_two_calls_equal_one_call_in_memory_with_drifts() -> None:
    drifts = ["price_shift@2026-01-08", "category_mix@2026-01-16", "level_shift@2026-01-20"]
    whole = generate(sim_config(START, 20, drifts=drifts))
    head = generate(sim_config(START, 10, drifts=drifts))
    tail = generate(sim_config(START + timedelta(days=10), 10, drifts=drifts))
    for i in (0, 1):
        joined = pd.concat([head[i], tail[i]], ignore_index=True)
        pd.testing.assert_frame_equal(whole[i], joined)


def test_two_calls_equal_one_call_on_disk(tmp_path: Path) -> None:
    _, spec, one, _ = simulate_into(tmp_path / "one", START, 6)
    simulate_into(tmp_path / "two", START, 3)
    _, _, two, _ = simulate_into(tmp_path / "two", START + timedelta(days=3), 3)
    for offset in range(6):
        day = START + timedelta(days=offset)
        assert landing_file(one, spec, day).read_bytes() == landing_file(two, spec, day).read_bytes()
        assert truth_file(one, day).is_file()
        pd.testing.assert_frame_equal(read_truth(one, [day]), read_truth(two, [day]))
    meta_one = json.loads((one.simulator / "meta.json").read_text())
    meta_two = json.loads((two.simulator / "meta.json").read_text())
    assert meta_one["days"] == meta_two["days"] and len(meta_two["days"]) == 6


def test_entities_do_not_depend_on_how_many_there_are() -> None:
    small = build_catalog(sim_config(START, 1, n_stores=3, n_items=8))
    large = build_catalog(sim_config(START, 1, n_stores=9, n_items=40))
    assert np.array_equal(small.store_type, large.store_type[:3])
    assert np.array_equal(small.store_level, large.store_level[:3])
    assert np.array_equal(small.items.category, large.items.category[:8])
    assert np.array_equal(small.items.price, large.items.price[:8])
    assert np.array_equal(small.items.popularity, large.items.popularity[:8])


def test_csv_landing_matches_the_spec(tmp_path: Path) -> None:
    _, spec, _, result = simulate_into(tmp_path, START, 3, n_stores=5, n_items=30)
    assert result.days_written == tuple(START + timedelta(days=i) for i in range(3))
    assert result.row_count == 3 * 5 * 30
    frame = pd.concat(read_landing_csv(Path(p)) for p in result.landing_paths)
    assert list(frame.columns) == list(spec.columns)
    assert not frame.isna().any().any()
    assert not frame.duplicated([*spec.entity_keys, spec.timestamp_column]).any()
    for name, column in spec.columns.items():
        values = frame[name]
        if column.type is ColumnType.INT:
            assert pd.api.types.is_integer_dtype(values), name
        elif column.type is ColumnType.FLOAT:
            assert pd.api.types.is_float_dtype(values), name
        elif column.type is ColumnType.DATE:
            assert pd.api.types.is_datetime64_any_dtype(values), name
        if column.allowed is not None:
            assert set(values) <= set(column.allowed), name
        if column.min is not None:
            assert values.min() >= column.min, name
            assert values.max() <= column.max, name
    assert set(frame["store_type"]) == {"hyper", "super", "express"}
    assert frame["promo"].nunique() == 2
    assert 2 <= frame["sales"].mean() <= 80


def test_parquet_landing_when_the_spec_says_parquet(tmp_path: Path) -> None:
    data = _spec_dict()
    data["source"] = {"format": "parquet", "path": "landing/date={date}/part.parquet"}
    spec = parse_spec(data)
    _, _, layout, _ = simulate_into(tmp_path, START, 2, spec=spec)
    table = pq.read_table(landing_file(layout, spec, START))
    assert table.column_names == list(spec.columns)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["date"] == "date32[day]" and types["store_id"] == "int64"
    assert types["price"] == "double" and types["category"] == "string"
    clean = generate_day(sim_config(START, 2), START)[0]
    assert table.to_pandas()["sales"].tolist() == clean["sales"].tolist()


def _by_period(drift: str, days: int = 14) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """Drifted and baseline landing frames (with truth 'expected' joined) for a drift at day 8."""
    when = START + timedelta(days=7)
    frames = []
    for drifts in ([f"{drift}@{when.isoformat()}"], []):
        landing, truth = generate(sim_config(START, days, n_stores=6, n_items=40, drifts=drifts))
        frames.append(landing.assign(expected=truth["expected"].to_numpy()))
    return frames[0], frames[1], when


def test_price_shift_raises_prices_from_its_date_only() -> None:
    drifted, base, when = _by_period("price_shift")
    before, after = drifted["date"] < pd.Timestamp(when), drifted["date"] >= pd.Timestamp(when)
    pd.testing.assert_frame_equal(drifted[before], base[before])
    ratio = drifted.loc[after, "price"].to_numpy() / base.loc[after, "price"].to_numpy()
    assert np.allclose(ratio, 1.3, atol=0.02)
    assert drifted.loc[after, "expected"].sum() < 0.9 * base.loc[after, "expected"].sum()


def test_category_mix_moves_the_produce_share_from_its_date_only() -> None:
    drifted, base, when = _by_period("category_mix")
    before, after = drifted["date"] < pd.Timestamp(when), drifted["date"] >= pd.Timestamp(when)
    pd.testing.assert_frame_equal(drifted[before], base[before])
    share_before = (drifted.loc[before, "category"] == "produce").mean()
    share_after = (drifted.loc[after, "category"] == "produce").mean()
    assert 0.1 <= share_before <= 0.2 and share_after >= 0.44
    assert set(drifted["category"].astype(str)) <= set(
        load_spec(REPO_ROOT / "config" / "retail_demand.yaml").columns["category"].allowed or []
    )
    assert drifted.groupby("date").size().nunique() == 1  # same row count every day


def test_level_shift_multiplies_demand_from_its_date_only() -> None:
    drifted, base, when = _by_period("level_shift")
    before, after = drifted["date"] < pd.Timestamp(when), drifted["date"] >= pd.Timestamp(when)
    pd.testing.assert_frame_equal(drifted[before], base[before])
    ratio = drifted.loc[after, "expected"].to_numpy() / base.loc[after, "expected"].to_numpy()
    assert np.allclose(ratio, 1.5)
    assert drifted.loc[after, "sales"].mean() > 1.4 * base.loc[after, "sales"].mean()
    pd.testing.assert_series_equal(drifted.loc[after, "price"], base.loc[after, "price"])


FAULT_DAY = START + timedelta(days=2)


def _faulted(
    tmp_path: Path, kind: str
) -> tuple[DatasetSpec, DatasetLayout, SimulationResult, Path, pd.DataFrame]:
    """Simulate 4 days with a fault on the third; check the other days and the truth stay clean."""
    _, spec, layout, result = simulate_into(tmp_path, START, 4, faults=[f"{kind}@{FAULT_DAY.isoformat()}"])
    clean = as_plain(generate_day(sim_config(START, 4), FAULT_DAY)[0])
    for other in (START, START + timedelta(days=1), START + timedelta(days=3)):
        pd.testing.assert_frame_equal(
            read_landing_csv(landing_file(layout, spec, other)),
            as_plain(generate_day(sim_config(START, 4), other)[0]),
        )
    clean_truth = generate_day(sim_config(START, 4), FAULT_DAY)[1]
    pd.testing.assert_frame_equal(read_truth(layout, [FAULT_DAY]), clean_truth)
    return spec, layout, result, landing_file(layout, spec, FAULT_DAY), clean


def test_missing_column_drops_price_only(tmp_path: Path) -> None:
    _, _, _, path, clean = _faulted(tmp_path, "missing_column")
    frame = read_landing_csv(path)
    assert list(frame.columns) == [c for c in clean.columns if c != "price"]
    pd.testing.assert_frame_equal(frame, clean.drop(columns=["price"]))


def test_wrong_type_puts_non_numeric_strings_in_price(tmp_path: Path) -> None:
    _, _, _, path, clean = _faulted(tmp_path, "wrong_type")
    frame = read_landing_csv(path)
    assert frame["price"].dtype == object and not frame["price"].isna().any()
    numeric = pd.to_numeric(frame["price"], errors="coerce")
    bad = numeric.isna()
    assert bad.any() and set(frame.loc[bad, "price"]) <= set(BAD_PRICE_STRINGS)
    assert np.allclose(numeric[~bad], clean.loc[~bad, "price"])
    pd.testing.assert_frame_equal(frame.drop(columns=["price"]), clean.drop(columns=["price"]))


def test_null_keys_empties_some_store_and_item_ids(tmp_path: Path) -> None:
    _, _, _, path, clean = _faulted(tmp_path, "null_keys")
    frame = read_landing_csv(path)
    assert frame["store_id"].isna().any() and frame["item_id"].isna().any()
    others = [c for c in frame.columns if c not in ("store_id", "item_id")]
    assert not frame[others].isna().any().any()
    pd.testing.assert_frame_equal(frame[others], clean[others])


def test_negative_sales_on_some_rows(tmp_path: Path) -> None:
    _, _, _, path, clean = _faulted(tmp_path, "negative_sales")
    frame = read_landing_csv(path)
    negative = frame["sales"] < 0
    assert 0 < negative.sum() < len(frame)
    assert (frame.loc[negative, "sales"] == -(clean.loc[negative, "sales"] + 1)).all()
    pd.testing.assert_frame_equal(frame[~negative], clean[~negative])


def test_duplicate_keys_repeats_some_rows(tmp_path: Path) -> None:
    _, _, _, path, clean = _faulted(tmp_path, "duplicate_keys")
    frame = read_landing_csv(path)
    assert len(frame) > len(clean) and frame.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(frame.drop_duplicates().reset_index(drop=True), clean)


def test_empty_file_is_zero_bytes(tmp_path: Path) -> None:
    _, _, result, path, _ = _faulted(tmp_path, "empty_file")
    assert path.is_file() and path.stat().st_size == 0
    assert FAULT_DAY in result.days_written and result.row_count == 3 * 4 * 12


def test_missing_day_writes_nothing(tmp_path: Path) -> None:
    spec, layout, result, path, _ = _faulted(tmp_path, "missing_day")
    assert not path.exists() and not late_path(layout, spec, FAULT_DAY).exists()
    assert result.skipped_days == (FAULT_DAY,) and FAULT_DAY not in result.days_written


def test_late_day_waits_until_delivered(tmp_path: Path) -> None:
    spec, layout, result, path, clean = _faulted(tmp_path, "late_day")
    assert not path.exists() and result.late_days == (FAULT_DAY,)
    waiting = late_path(layout, spec, FAULT_DAY)
    assert waiting.is_file() and waiting.is_relative_to(layout.landing / "_late")
    assert deliver_late(layout, spec, FAULT_DAY) == path
    assert not waiting.exists()
    pd.testing.assert_frame_equal(read_landing_csv(path), clean)
    with pytest.raises(DataMissingError, match="no late file"):
        deliver_late(layout, spec, FAULT_DAY)


def test_progress_and_resimulating_a_day_replaces_its_file(tmp_path: Path) -> None:
    _, spec, layout, _ = simulate_into(tmp_path, START, 2)
    assert landing_file(layout, spec, START).is_file()
    done: list[int] = []
    config = sim_config(START, 2, faults=[f"missing_day@{START.isoformat()}"])
    result = write_simulation(layout, spec, config, progress=done.append)
    assert done == [1, 2]
    assert not landing_file(layout, spec, START).exists() and result.skipped_days == (START,)
    assert result.days_written == (START + timedelta(days=1),)


def test_noise_floor_matches_the_analytic_poisson_value(tmp_path: Path) -> None:
    _, _, layout, result = simulate_into(tmp_path, START, 30, n_stores=10, n_items=30)
    days = [START + timedelta(days=i) for i in range(30)]
    empirical, analytic = noise_floor_rmse(layout, days), expected_noise_rmse(layout, days)
    assert empirical == pytest.approx(result.noise_floor_rmse)
    assert analytic == pytest.approx(result.expected_noise_rmse)
    assert empirical == pytest.approx(analytic, rel=0.05)
    meta = json.loads((layout.simulator / "meta.json").read_text())
    assert meta["expected_noise_rmse"] == pytest.approx(analytic)
    assert (meta["seed"], meta["n_stores"], meta["n_items"]) == (42, 10, 30)
    with pytest.raises(DataMissingError):
        noise_floor_rmse(layout, [START - timedelta(days=1)])


def test_meta_refuses_a_run_with_other_settings(tmp_path: Path) -> None:
    simulate_into(tmp_path, START, 1)
    with pytest.raises(RetrainError, match="seed/n_stores/n_items"):
        simulate_into(tmp_path, START + timedelta(days=1), 1, seed=1)


def test_parse_injection_and_config_checks() -> None:
    assert parse_injection("price_shift@2026-01-10") == Injection("price_shift", date(2026, 1, 10))
    assert str(parse_injection(" late_day@2026-02-01 ")) == "late_day@2026-02-01"
    with pytest.raises(ValueError, match=r"price_shift.*missing_day"):
        parse_injection("pricey@2026-01-10")
    with pytest.raises(ValueError, match="KIND@YYYY-MM-DD"):
        parse_injection("price_shift")
    with pytest.raises(ValueError, match="not a YYYY-MM-DD date"):
        parse_injection("price_shift@10/01/2026")
    with pytest.raises(ValueError, match="level_shift"):
        parse_injection("null_keys@2026-01-10", allowed=DRIFT_KINDS)
    with pytest.raises(ValueError, match="allowed kinds"):
        SimulationConfig(START, 3, drifts=(Injection("null_keys", START),))
    with pytest.raises(ValueError, match="allowed kinds"):
        SimulationConfig(START, 3, faults=(Injection("level_shift", START),))
    assert set(FAULT_KINDS) >= {"missing_day", "late_day", "empty_file"}
