"""The dataset's latest online feature snapshot: every features run publishes here, serving follows it.

`<home>/<dataset>/features/online/snapshot.parquet` is a snapshot as `write_snapshot` writes it and
`snapshot.json` beside it names its date. The snapshot moves with every curated day, whatever the
promotion gates decide, so the production model keeps forecasting tomorrow with fresh inputs.

Publishing holds a lock file, writes the Parquet file then the JSON (each atomically), so the JSON
never names a date newer than the Parquet file holds. It never moves backwards: a run for an older
date (a backfill) leaves a newer snapshot in place; a rerun of the same date replaces it.

A model is served with its own category vocabulary (`SnapshotShape.rebase`), never the one of a later
snapshot: a category first seen after training must not shift the codes the model was trained on.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from retrain.errors import RetrainError
from retrain.feature_snapshot import FeatureSnapshot, read_snapshot, write_atomically, write_snapshot

log = logging.getLogger(__name__)


class OnlineSnapshotError(RetrainError):
    """The online feature snapshot exists but cannot be read or does not fit the served model."""


@dataclass(frozen=True)
class PublishOutcome:
    """What publishing a run date's snapshot did: the online snapshot's date afterwards, and whether it moved."""

    published: bool
    online_date: date
    path: Path


def marker_file(path: Path) -> Path:
    """The JSON file naming the date of the online snapshot at `path`."""
    return path.with_suffix(".json")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a file beside `path`, so two runs never interleave their compare-and-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f".{path.stem}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def online_snapshot_date(path: Path) -> date | None:
    """Date of the online snapshot at `path` (from its JSON), None when none was published."""
    marker = marker_file(path)
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OnlineSnapshotError(f"cannot read {marker}: {exc}") from exc
    try:
        return date.fromisoformat(json.loads(text)["snapshot_date"])
    except (ValueError, KeyError, TypeError) as exc:
        raise OnlineSnapshotError(
            f"{marker} does not name a snapshot date ({exc}); rerun the features stage for the latest day"
        ) from exc


def publish_online_snapshot(snapshot: FeatureSnapshot, path: Path, source: str) -> PublishOutcome:
    """Make `snapshot` the online snapshot unless a newer one is already published."""
    with _locked(path):
        try:
            current = online_snapshot_date(path)
        except OnlineSnapshotError as exc:
            log.warning("online snapshot marker unreadable, replacing it: %s", exc)
            current = None
        if current is not None and current > snapshot.snapshot_date:
            return PublishOutcome(False, current, path)
        write_snapshot(snapshot, path)
        marker = {
            "snapshot_date": snapshot.snapshot_date.isoformat(),
            "entities": len(snapshot.frame),
            "source": source,
            "published_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        }
        text = json.dumps(marker, indent=2, sort_keys=True) + "\n"
        write_atomically(marker_file(path), lambda target: target.write_text(text, encoding="utf-8"))
    return PublishOutcome(True, snapshot.snapshot_date, path)


def read_online_snapshot(path: Path) -> FeatureSnapshot:
    """The online snapshot at `path`; OnlineSnapshotError when it is missing or unreadable."""
    try:
        return read_snapshot(path)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise OnlineSnapshotError(f"cannot read the online feature snapshot {path}: {first}") from exc


@dataclass(frozen=True)
class SnapshotShape:
    """What a model's own snapshot fixes for any snapshot that feeds it: keys, history, columns, vocabulary."""

    snapshot_date: date
    entity_keys: tuple[str, ...]
    lookback_days: int
    columns: tuple[str, ...]
    vocabulary: dict[str, list[str]]

    @classmethod
    def of(cls, snapshot: FeatureSnapshot) -> SnapshotShape:
        """The shape of a model's own snapshot."""
        vocabulary = {c: list(v) for c, v in snapshot.vocabulary.items()}
        columns = tuple(str(c) for c in snapshot.frame.columns)
        return cls(snapshot.snapshot_date, snapshot.entity_keys, snapshot.lookback_days, columns, vocabulary)

    def misfit(self, snapshot: FeatureSnapshot) -> str | None:
        """Why `snapshot` cannot feed the model (None: it fits)."""
        if snapshot.entity_keys != self.entity_keys:
            return (
                f"entity keys {list(snapshot.entity_keys)} differ from the model's {list(self.entity_keys)}"
            )
        if snapshot.lookback_days != self.lookback_days:
            return f"{snapshot.lookback_days} days of history differ from the model's {self.lookback_days}"
        missing = [c for c in self.columns if c not in snapshot.frame.columns]
        if missing:
            return f"columns {missing} of the model's snapshot are missing"
        return None

    def rebase(self, snapshot: FeatureSnapshot) -> FeatureSnapshot:
        """The same snapshot, encoding categories with the model's vocabulary (codes it was trained on)."""
        return dataclasses.replace(snapshot, vocabulary={c: list(v) for c, v in self.vocabulary.items()})
