"""Test factories around the simulator: simulate into a temporary home and read the files back."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd

from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.sim.demand import (
    Injection,
    SimulationConfig,
    SimulationResult,
    parse_injection,
    write_simulation,
)
from retrain.spec import DatasetSpec, load_spec


def injections(items: Iterable[Injection | str]) -> tuple[Injection, ...]:
    """Injections from Injection objects or 'kind@YYYY-MM-DD' strings."""
    return tuple(i if isinstance(i, Injection) else parse_injection(i) for i in items)


def sim_config(
    start: date,
    days: int,
    n_stores: int = 4,
    n_items: int = 12,
    seed: int = 42,
    drifts: Iterable[Injection | str] = (),
    faults: Iterable[Injection | str] = (),
) -> SimulationConfig:
    """A small SimulationConfig; drifts and faults may be given as strings."""
    return SimulationConfig(start, days, n_stores, n_items, seed, injections(drifts), injections(faults))


def simulate_into(
    tmp_home: Path,
    start: date,
    days: int,
    n_stores: int = 4,
    n_items: int = 12,
    seed: int = 42,
    drifts: Iterable[Injection | str] = (),
    faults: Iterable[Injection | str] = (),
    spec: DatasetSpec | None = None,
) -> tuple[Settings, DatasetSpec, DatasetLayout, SimulationResult]:
    """Simulate days into a home (default spec: config/retail_demand.yaml) and return what tests need."""
    settings = Settings(home=tmp_home)
    spec = spec or load_spec(settings.spec)
    layout = DatasetLayout.for_spec(settings, spec)
    config = sim_config(start, days, n_stores, n_items, seed, drifts, faults)
    return settings, spec, layout, write_simulation(layout, spec, config)


def landing_file(layout: DatasetLayout, spec: DatasetSpec, day: date) -> Path:
    """The landing file the simulator writes for a day."""
    return Path(layout.landing_pattern(spec.source.path, day))


def read_landing_csv(path: Path) -> pd.DataFrame:
    """A landing CSV as pandas reads it by default, with the date column parsed."""
    return pd.read_csv(path, parse_dates=["date"])


def as_plain(frame: pd.DataFrame) -> pd.DataFrame:
    """An in-memory simulator frame with categoricals as strings, comparable to a CSV read back."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(str)
    return out.reset_index(drop=True)
