"""Retail daily-demand simulator with a known expected-demand function, drifts, faults and ground truth.

sales ~ Poisson(lambda), lambda = category level x item popularity x store level x weekday(category)
x annual(category) x (price / regular price)^-elasticity x promo lift x holiday lift x temperature effect
x level shifts. Only the store and item multipliers are hidden from the data, so the irreducible error
is the Poisson noise: its RMSE is written beside the data as the noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from retrain.layout import DatasetLayout
from retrain.sim.faults import DRIFT_KINDS as DRIFT_KINDS
from retrain.sim.faults import FAULT_KINDS as FAULT_KINDS
from retrain.sim.faults import (
    Delivery,
    apply_frame_faults,
    delivery_for,
    landing_path,
    late_path,
    load_meta,
    write_frame_atomic,
    write_meta,
)
from retrain.sim.faults import Injection as Injection
from retrain.sim.faults import deliver_late as deliver_late
from retrain.sim.faults import expected_noise_rmse as expected_noise_rmse
from retrain.sim.faults import noise_floor_rmse as noise_floor_rmse
from retrain.sim.faults import parse_injection as parse_injection
from retrain.sim.faults import read_truth as read_truth
from retrain.sim.faults import truth_file as truth_file
from retrain.spec import DatasetSpec

STORE_TYPES = ("hyper", "super", "express")
_STORE_TYPE_SHARE = np.array([0.2, 0.5, 0.3])
_STORE_TYPE_LEVEL = np.array([1.5, 1.0, 0.6])
CATEGORIES = ("grocery", "beverages", "household", "personal_care", "produce", "frozen")
_CAT_SHARE = np.array([0.30, 0.18, 0.12, 0.10, 0.15, 0.15])
_CAT_LEVEL = np.array([14.0, 12.0, 6.0, 5.0, 16.0, 8.0])
_CAT_PRICE = np.array([3.5, 2.5, 6.0, 7.0, 2.0, 5.0])
_ELASTICITY = np.array([1.0, 1.2, 0.7, 0.8, 1.1, 1.1])
_PROMO_LIFT = np.array([1.15, 1.2, 1.1, 1.1, 1.15, 1.15])
_HOLIDAY_LIFT = np.array([1.3, 1.4, 1.1, 1.05, 1.2, 1.15])
_ANNUAL_AMPLITUDE = np.array([0.08, 0.12, 0.05, 0.05, 0.10, 0.15])
_ANNUAL_PEAK_DOY = np.array([355, 200, 355, 355, 180, 200])
_TEMP_EFFECT = np.array([0.0, 0.012, 0.0, 0.0, 0.0, 0.015])  # per degree above 15 C
_WEEKDAY = np.array(  # Monday..Sunday, one row per category
    [
        [0.90, 0.90, 0.95, 1.00, 1.10, 1.30, 0.85],
        [0.85, 0.85, 0.90, 0.95, 1.15, 1.40, 1.00],
        [1.00, 0.95, 0.95, 1.00, 1.05, 1.20, 0.85],
        [1.00, 1.00, 1.00, 1.00, 1.05, 1.10, 0.85],
        [0.95, 0.90, 0.95, 1.00, 1.10, 1.25, 0.85],
        [0.90, 0.90, 0.95, 1.00, 1.10, 1.30, 0.90],
    ]
)
_HOLIDAYS = ((1, 1), (5, 1), (7, 4), (12, 24), (12, 25), (12, 26), (12, 31))
PROMO_RATE, PROMO_DISCOUNT = 0.07, 0.25
PRICE_SHIFT, LEVEL_SHIFT = 1.3, 1.5
MIX_CATEGORY, MIX_TARGET_SHARE = CATEGORIES.index("produce"), 0.45
NEW_ITEM_ID_BASE = 900_000  # items added by category_mix; base items are 1..n_items
_GOLDEN = 0.6180339887498949
# Independent random streams: entity attributes draw one array per stream, so entity i is the same
# whatever the number of entities; day draws are keyed by the date, so any split of days agrees.
_S_STORE_TYPE, _S_STORE_MULT, _S_STORE_CLIMATE, _S_ITEM_CAT, _S_ITEM_POP, _S_ITEM_PRICE = range(1, 7)
_S_MIX_PICK, _S_NEW_POP, _S_NEW_PRICE = range(7, 10)
_D_PROMO, _D_TEMP, _D_SALES, _D_FAULT = range(20, 24)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: a date range, sizes, a seed and the injected drifts and faults."""

    start: date
    days: int
    n_stores: int = 20
    n_items: int = 50
    seed: int = 42
    drifts: tuple[Injection, ...] = ()
    faults: tuple[Injection, ...] = ()

    def __post_init__(self) -> None:
        if self.days < 1 or not 1 <= self.n_stores <= 100_000 or not 1 <= self.n_items <= 100_000:
            raise ValueError("days must be >= 1 and n_stores, n_items between 1 and 100000")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        for group, allowed in ((self.drifts, DRIFT_KINDS), (self.faults, FAULT_KINDS)):
            bad = [str(i) for i in group if i.kind not in allowed]
            if bad:
                raise ValueError(f"{bad} not allowed here; allowed kinds: {', '.join(allowed)}")

    @property
    def dates(self) -> list[date]:
        """Every simulated day, oldest first."""
        return [self.start + timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True)
class _Items:
    item_id: np.ndarray
    category: np.ndarray
    popularity: np.ndarray
    price: np.ndarray


@dataclass(frozen=True)
class Catalog:
    """Stores and the base assortment; depends only on the seed and sizes (entity i on the seed alone)."""

    store_id: np.ndarray
    store_type: np.ndarray
    store_level: np.ndarray
    store_climate: np.ndarray
    items: _Items
    new_items: _Items
    replaced: np.ndarray  # positions in `items` that category_mix swaps for `new_items`


def _spread(seed: int, stream: int, n: int, shares: np.ndarray) -> np.ndarray:
    # A golden-ratio sequence keeps category shares close to target even for a few dozen entities.
    offset = _rng(seed, stream).random()
    u = (offset + _GOLDEN * np.arange(n)) % 1.0
    return np.searchsorted(np.cumsum(shares)[:-1], u, side="right")


def _item_attrs(seed: int, ids: np.ndarray, category: np.ndarray, pop: int, price: int) -> _Items:
    n = len(ids)
    popularity = _rng(seed, pop).lognormal(0.0, 0.45, n)
    regular = np.round(_CAT_PRICE[category] * _rng(seed, price).lognormal(0.0, 0.35, n), 2)
    return _Items(ids, category, popularity, np.maximum(regular, 0.1))


def build_catalog(config: SimulationConfig) -> Catalog:
    """Stores, items and the category_mix replacement items for a config."""
    seed, ns, ni = config.seed, config.n_stores, config.n_items
    store_type = _spread(seed, _S_STORE_TYPE, ns, _STORE_TYPE_SHARE)
    level = _STORE_TYPE_LEVEL[store_type] * _rng(seed, _S_STORE_MULT).lognormal(0.0, 0.2, ns)
    climate = _rng(seed, _S_STORE_CLIMATE).uniform(-6.0, 6.0, ns)
    category = _spread(seed, _S_ITEM_CAT, ni, _CAT_SHARE)
    items = _item_attrs(seed, np.arange(1, ni + 1), category, _S_ITEM_POP, _S_ITEM_PRICE)
    others = np.flatnonzero(category != MIX_CATEGORY)
    n_new = min(len(others), max(0, math.ceil(MIX_TARGET_SHARE * ni) - (ni - len(others))))
    replaced = np.sort(others[np.argsort(_rng(seed, _S_MIX_PICK).random(ni)[others])[:n_new]])
    new_ids = NEW_ITEM_ID_BASE + np.arange(1, n_new + 1)
    new_items = _item_attrs(seed, new_ids, np.full(n_new, MIX_CATEGORY), _S_NEW_POP, _S_NEW_PRICE)
    return Catalog(np.arange(1, ns + 1), store_type, level, climate, items, new_items, replaced)


def _active(injections: tuple[Injection, ...], kind: str, day: date) -> int:
    return sum(1 for i in injections if i.kind == kind and i.day <= day)


def _assortment(catalog: Catalog, config: SimulationConfig, day: date) -> _Items:
    base = catalog.items
    if not _active(config.drifts, "category_mix", day) or not len(catalog.replaced):
        return base
    keep = np.ones(len(base.item_id), dtype=bool)
    keep[catalog.replaced] = False
    parts = [
        (getattr(base, name)[keep], getattr(catalog.new_items, name)) for name in _Items.__dataclass_fields__
    ]
    return _Items(*(np.concatenate(pair) for pair in parts))


def is_holiday(day: date) -> bool:
    """Fixed-date holidays plus US Thanksgiving (fourth Thursday of November)."""
    return (day.month, day.day) in _HOLIDAYS or (
        day.month == 11 and day.weekday() == 3 and 22 <= day.day <= 28
    )


def generate_day(
    config: SimulationConfig, day: date, catalog: Catalog | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day's landing frame (content faults applied) and its truth (keys, expected demand, clean sales)."""
    cat = catalog or build_catalog(config)
    items = _assortment(cat, config, day)
    ns, ni, seed, ordinal = len(cat.store_id), len(items.item_id), config.seed, day.toordinal()
    c, doy = items.category, day.timetuple().tm_yday
    promo = _rng(seed, ordinal, _D_PROMO).random((ns, ni)) < PROMO_RATE
    season = 12.0 + 11.0 * math.cos(2 * math.pi * (doy - 200) / 365.25)
    temp = season + cat.store_climate + _rng(seed, ordinal, _D_TEMP).normal(0.0, 2.5, ns)
    temp = np.clip(np.round(temp, 1), -40.0, 50.0)
    shift = PRICE_SHIFT ** _active(config.drifts, "price_shift", day)
    price = np.round(items.price * shift * np.where(promo, 1.0 - PROMO_DISCOUNT, 1.0), 2)
    annual = 1.0 + _ANNUAL_AMPLITUDE[c] * np.cos(2 * math.pi * (doy - _ANNUAL_PEAK_DOY[c]) / 365.25)
    holiday = is_holiday(day)
    per_item = _CAT_LEVEL[c] * items.popularity * _WEEKDAY[c, day.weekday()] * annual
    per_item *= LEVEL_SHIFT ** _active(config.drifts, "level_shift", day)
    if holiday:
        per_item *= _HOLIDAY_LIFT[c]
    lam = cat.store_level[:, None] * per_item[None, :]
    # Elasticity is against the original regular price, so a price_shift also lowers demand.
    lam *= (price / items.price) ** -_ELASTICITY[c] * np.where(promo, _PROMO_LIFT[c], 1.0)
    lam *= np.exp(_TEMP_EFFECT[c][None, :] * (temp[:, None] - 15.0))
    sales = _rng(seed, ordinal, _D_SALES).poisson(lam)
    n = ns * ni
    dates = np.full(n, np.datetime64(day, "ns"))
    store_id, item_id = np.repeat(cat.store_id, ni), np.tile(items.item_id, ns)
    landing = pd.DataFrame(
        {
            "date": dates,
            "store_id": store_id,
            "item_id": item_id,
            "store_type": pd.Categorical.from_codes(np.repeat(cat.store_type, ni), STORE_TYPES),
            "category": pd.Categorical.from_codes(np.tile(c, ns), CATEGORIES),
            "price": price.ravel(),
            "promo": promo.ravel().astype(np.int64),
            "holiday": np.full(n, int(holiday), dtype=np.int64),
            "temperature": np.repeat(temp, ni),
            "sales": sales.ravel(),
        }
    )
    truth = pd.DataFrame(
        {
            "date": dates,
            "store_id": store_id,
            "item_id": item_id,
            "expected": lam.ravel(),
            "sales": sales.ravel(),
        }
    )
    landing = apply_frame_faults(landing, config.faults, day, _rng(seed, ordinal, _D_FAULT))
    return landing, truth


def iter_days(config: SimulationConfig) -> Iterator[tuple[date, pd.DataFrame, pd.DataFrame]]:
    """Yield (day, landing frame, truth frame) for every simulated day, oldest first."""
    catalog = build_catalog(config)
    for day in config.dates:
        landing, truth = generate_day(config, day, catalog)
        yield day, landing, truth


def generate(config: SimulationConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All days in memory: the concatenated landing and truth frames."""
    frames = list(iter_days(config))
    landing = pd.concat([f[1] for f in frames], ignore_index=True)
    return landing, pd.concat([f[2] for f in frames], ignore_index=True)


@dataclass(frozen=True)
class SimulationResult:
    """What write_simulation put on disk; skipped days have no landing file, late days wait in _late."""

    days_written: tuple[date, ...]
    skipped_days: tuple[date, ...]
    late_days: tuple[date, ...]
    row_count: int
    landing_paths: tuple[str, ...]
    truth_paths: tuple[str, ...]
    noise_floor_rmse: float
    expected_noise_rmse: float
    meta_path: str


def _model_description() -> dict[str, Any]:
    return {
        "store_type_level": dict(zip(STORE_TYPES, _STORE_TYPE_LEVEL.tolist(), strict=True)),
        "category_level": dict(zip(CATEGORIES, _CAT_LEVEL.tolist(), strict=True)),
        "elasticity": dict(zip(CATEGORIES, _ELASTICITY.tolist(), strict=True)),
        "promo_rate_discount": [PROMO_RATE, PROMO_DISCOUNT],
        "price_shift_level_shift_mix_share": [PRICE_SHIFT, LEVEL_SHIFT, MIX_TARGET_SHARE],
    }


def write_simulation(
    layout: DatasetLayout,
    spec: DatasetSpec,
    config: SimulationConfig,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Write landing files (with faults) and truth for every day; progress gets the count of days done."""
    meta = load_meta(layout, config.seed, config.n_stores, config.n_items)
    meta["injections"] = sorted({*meta["injections"], *map(str, config.drifts + config.faults)})
    written, skipped, late, paths, truths = [], [], [], [], []
    rows = 0
    sse = sum_expected = n_truth = 0.0
    for done, (day, landing, truth) in enumerate(iter_days(config), start=1):
        target, waiting = landing_path(layout, spec, day), late_path(layout, spec, day)
        write_frame_atomic(truth, truth_file(layout, day), "parquet")
        truths.append(str(truth_file(layout, day)))
        for stale in (target, waiting):
            stale.unlink(missing_ok=True)
        delivery = delivery_for(config.faults, day)
        if delivery is Delivery.MISSING:
            skipped.append(day)
        elif delivery is Delivery.LATE:
            write_frame_atomic(landing, waiting, spec.source.format)
            late.append(day)
            rows += len(landing)
        else:
            write_frame_atomic(None if delivery is Delivery.EMPTY else landing, target, spec.source.format)
            written.append(day)
            paths.append(str(target))
            rows += 0 if delivery is Delivery.EMPTY else len(landing)
        err = truth["sales"].to_numpy() - truth["expected"].to_numpy()
        day_sse, day_expected = float(err @ err), float(truth["expected"].sum())
        sse, sum_expected, n_truth = sse + day_sse, sum_expected + day_expected, n_truth + len(truth)
        meta["days"][day.isoformat()] = {"rows": len(truth), "sum_expected": day_expected, "sse": day_sse}
        if progress is not None:
            progress(done)
    meta_path = write_meta(layout, meta, _model_description())
    return SimulationResult(
        days_written=tuple(written),
        skipped_days=tuple(skipped),
        late_days=tuple(late),
        row_count=rows,
        landing_paths=tuple(paths),
        truth_paths=tuple(truths),
        noise_floor_rmse=math.sqrt(sse / n_truth),
        expected_noise_rmse=math.sqrt(sum_expected / n_truth),
        meta_path=str(meta_path),
    )
