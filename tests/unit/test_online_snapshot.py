"""The online feature snapshot: published by every features run, never moved backwards, rebased on a
model's vocabulary, refused when it does not fit the model."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from retrain.feature_maths import fit_vocabulary
from retrain.feature_snapshot import FeatureSnapshot, build_snapshot, read_snapshot
from retrain.features import run
from retrain.layout import DatasetLayout
from retrain.online_snapshot import (
    OnlineSnapshotError,
    SnapshotShape,
    marker_file,
    online_snapshot_date,
    publish_online_snapshot,
    read_online_snapshot,
)
from retrain.settings import Settings
from retrain.spec import DatasetSpec
from tests.utils.sim import landing_file, read_landing_csv, simulate_into

START = date(2024, 1, 1)
DAY = date(2024, 3, 1)


@dataclass(frozen=True)
class Curated:
    """A simulated home whose every day is curated (validation skipped), and its history."""

    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout
    history: pd.DataFrame


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Curated:
    settings, spec, layout, sim = simulate_into(tmp_path_factory.mktemp("online"), START, 70, 3, 4)
    frames = []
    for day in sim.days_written:
        frame = read_landing_csv(landing_file(layout, spec, day))
        layout.curated_file(day).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(layout.curated_file(day), index=False)
        frames.append(frame)
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"train_days": 20})})
    return Curated(settings, spec, layout, pd.concat(frames, ignore_index=True))


def _snapshot(curated: Curated, day: date) -> FeatureSnapshot:
    history, spec = curated.history, curated.spec
    return build_snapshot(history, spec, day, fit_vocabulary(history, spec))


def test_publish_moves_forward_and_never_back(curated: Curated, tmp_path: Path) -> None:
    path = tmp_path / "online" / "snapshot.parquet"
    assert online_snapshot_date(path) is None
    first = publish_online_snapshot(
        _snapshot(curated, DAY), path, "features/date=2024-03-01/snapshot.parquet"
    )
    assert (first.published, first.online_date) == (True, DAY)
    assert json.loads(marker_file(path).read_text())["source"].startswith("features/date=")

    newer = publish_online_snapshot(_snapshot(curated, DAY + timedelta(days=2)), path, "newer")
    older = publish_online_snapshot(_snapshot(curated, DAY + timedelta(days=1)), path, "backfill")
    assert (newer.published, older.published, older.online_date) == (True, False, DAY + timedelta(days=2))
    assert read_snapshot(path).snapshot_date == online_snapshot_date(path) == DAY + timedelta(days=2)
    assert publish_online_snapshot(_snapshot(curated, DAY + timedelta(days=2)), path, "rerun").published
    assert not list(path.parent.glob("*.tmp"))


def test_concurrent_publishers_leave_the_newest_day(curated: Curated, tmp_path: Path) -> None:
    path = tmp_path / "snapshot.parquet"
    snapshots = [_snapshot(curated, DAY + timedelta(days=k)) for k in (3, 0, 5, 1, 4, 2, 5, 0)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: publish_online_snapshot(s, path, "race"), snapshots))
    newest = DAY + timedelta(days=5)
    assert online_snapshot_date(path) == read_snapshot(path).snapshot_date == newest


def test_unreadable_marker_is_reported_then_replaced(curated: Curated, tmp_path: Path) -> None:
    path = tmp_path / "snapshot.parquet"
    marker_file(path).write_text("{}", encoding="utf-8")
    with pytest.raises(OnlineSnapshotError, match="does not name a snapshot date"):
        online_snapshot_date(path)
    assert publish_online_snapshot(_snapshot(curated, DAY), path, "x").published
    path.write_bytes(b"garbage")
    with pytest.raises(OnlineSnapshotError, match="cannot read the online feature snapshot"):
        read_online_snapshot(path)


def test_shape_refuses_snapshots_that_do_not_fit_and_rebases_the_vocabulary(curated: Curated) -> None:
    trained = _snapshot(curated, DAY)
    shape = SnapshotShape.of(trained)
    later = _snapshot(curated, DAY + timedelta(days=3))
    assert shape.misfit(later) is None
    assert "entity keys" in str(shape.misfit(dataclasses.replace(later, entity_keys=("store_id",))))
    assert "days of history" in str(shape.misfit(dataclasses.replace(later, lookback_days=3)))
    assert "missing" in str(
        shape.misfit(dataclasses.replace(later, frame=later.frame.drop(columns="store_type")))
    )

    shifted = dataclasses.replace(later, vocabulary={**later.vocabulary, "store_type": ["new", "hyper"]})
    rebased = shape.rebase(shifted)
    assert rebased.vocabulary == trained.vocabulary and rebased.snapshot_date == later.snapshot_date
    assert rebased.frame is later.frame


def test_features_run_publishes_the_online_snapshot(curated: Curated) -> None:
    settings, spec, layout = curated.settings, curated.spec, curated.layout
    assert run(settings, spec, DAY).online_snapshot_date == DAY
    assert run(settings, spec, DAY - timedelta(days=3)).online_snapshot_date == DAY  # a backfill
    assert read_snapshot(layout.online_snapshot).snapshot_date == DAY
    marker = json.loads(marker_file(layout.online_snapshot).read_text())
    assert marker["source"] == f"features/date={DAY.isoformat()}/snapshot.parquet"
