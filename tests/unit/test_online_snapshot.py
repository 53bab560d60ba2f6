"""The online feature snapshot: published by every features run, never moved backwards, rebased on a
model's vocabulary, refused when it does not fit the model."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

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
from tests.unit.test_features import _write_curated, retail_history, retail_spec

DAY = date(2024, 3, 1)


def _snapshot(day: date) -> FeatureSnapshot:
    spec = retail_spec()
    history = retail_history(days=80)
    return build_snapshot(history, spec, day, fit_vocabulary(history, spec))


def test_publish_moves_forward_and_never_back(tmp_path: Path) -> None:
    path = tmp_path / "online" / "snapshot.parquet"
    assert online_snapshot_date(path) is None
    first = publish_online_snapshot(_snapshot(DAY), path, "features/date=2024-03-01/snapshot.parquet")
    assert (first.published, first.online_date) == (True, DAY)
    assert json.loads(marker_file(path).read_text())["source"].startswith("features/date=")

    newer = publish_online_snapshot(_snapshot(DAY + timedelta(days=2)), path, "newer")
    older = publish_online_snapshot(_snapshot(DAY + timedelta(days=1)), path, "backfill")
    assert (newer.published, older.published, older.online_date) == (True, False, DAY + timedelta(days=2))
    assert read_snapshot(path).snapshot_date == online_snapshot_date(path) == DAY + timedelta(days=2)
    assert publish_online_snapshot(_snapshot(DAY + timedelta(days=2)), path, "rerun").published
    assert not list(path.parent.glob("*.tmp"))


def test_concurrent_publishers_leave_the_newest_day(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.parquet"
    snapshots = [_snapshot(DAY + timedelta(days=k)) for k in (3, 0, 5, 1, 4, 2, 5, 0)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: publish_online_snapshot(s, path, "race"), snapshots))
    newest = DAY + timedelta(days=5)
    assert online_snapshot_date(path) == read_snapshot(path).snapshot_date == newest


def test_unreadable_marker_is_reported_then_replaced(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.parquet"
    marker_file(path).write_text("{}", encoding="utf-8")
    with pytest.raises(OnlineSnapshotError, match="does not name a snapshot date"):
        online_snapshot_date(path)
    assert publish_online_snapshot(_snapshot(DAY), path, "x").published
    path.write_bytes(b"garbage")
    with pytest.raises(OnlineSnapshotError, match="cannot read the online feature snapshot"):
        read_online_snapshot(path)


def test_shape_refuses_snapshots_that_do_not_fit_and_rebases_the_vocabulary() -> None:
    trained = _snapshot(DAY)
    shape = SnapshotShape.of(trained)
    later = _snapshot(DAY + timedelta(days=3))
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


def test_features_run_publishes_the_online_snapshot(tmp_path: Path) -> None:
    spec = retail_spec(train_days=20)
    settings = Settings(home=tmp_path, mlflow_tracking_uri=None)
    layout = DatasetLayout.for_spec(settings, spec)
    history = retail_history(days=70)
    _write_curated(layout, history)
    day = date(2024, 3, 1)
    later = run(settings, spec, day)
    assert later.online_snapshot_date == day
    assert run(settings, spec, day - timedelta(days=3)).online_snapshot_date == day
    assert read_snapshot(layout.online_snapshot).snapshot_date == day
