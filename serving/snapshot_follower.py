"""Which feature snapshot feeds the served model: the dataset's online snapshot when it is newer.

The features stage publishes every curated day's snapshot as the dataset's online snapshot
(`retrain.online_snapshot`), whether or not that day's candidate is promoted. The served model reads the
newest snapshot that fits it (same entity keys, history length and columns as the snapshot logged with
its run), always through the model's own category vocabulary, so codes stay the ones it was trained
on. Without an online snapshot, or when it is unreadable or does not fit, the model's own snapshot is
used and the reason is kept for /model and /ready.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from retrain.feature_snapshot import FeatureSnapshot
from retrain.online_snapshot import (
    OnlineSnapshotError,
    SnapshotShape,
    online_snapshot_date,
    read_online_snapshot,
)

log = logging.getLogger(__name__)

MODEL_SOURCE = "model"  # the snapshot logged with the served version's run
ONLINE_SOURCE = "online"  # the dataset's online snapshot, newer than the model's


class OnlineSnapshotFollower:
    """Looks at the online snapshot (its JSON date on every call, the Parquet file only when newer)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.error: str | None = None
        self.detail = "not followed (RETRAIN_SERVING_FOLLOW_ONLINE_SNAPSHOT=false)" if path is None else ""
        self._failed: tuple[date, int] | None = None  # the published file that failed: not re-read

    def newer_than(self, day: date, shape: SnapshotShape) -> FeatureSnapshot | None:
        """The online snapshot in the model's vocabulary when it is newer than `day` and fits, else None."""
        if self.path is None:
            return None
        try:
            published = online_snapshot_date(self.path)
            if published is None:
                self._note(None, f"none published at {self.path}")
                return None
            if published <= day:
                self._note(None, f"{published} at {self.path}")
                return None
            stamp = (published, self._mtime())
            if stamp == self._failed:
                return None  # the same unusable file: the error is already recorded
            snapshot = read_online_snapshot(self.path)
            reason = shape.misfit(snapshot)
            if reason is not None:
                self._failed = stamp
                raise OnlineSnapshotError(
                    f"the online feature snapshot {self.path} does not fit the model: {reason}"
                )
        except OnlineSnapshotError as exc:
            self._note(str(exc), str(exc))
            return None
        if snapshot.snapshot_date <= day:
            return None  # the JSON was newer than the file it names (a publish in progress)
        self._failed = None
        self._note(None, f"{snapshot.snapshot_date} at {self.path}")
        return shape.rebase(snapshot)

    def failed(self, snapshot: FeatureSnapshot, exc: Exception) -> None:
        """Record that a snapshot `newer_than` returned could not be turned into features."""
        self._failed = (snapshot.snapshot_date, self._mtime())
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._note(
            f"the online feature snapshot {self.path} of {snapshot.snapshot_date} is unusable: {text}", ""
        )

    def _mtime(self) -> int:
        try:
            return self.path.stat().st_mtime_ns if self.path else 0
        except OSError:
            return 0

    def _note(self, error: str | None, detail: str) -> None:
        if error is not None and error != self.error:
            log.warning("%s; serving the model's own feature snapshot", error)
        self.error = error
        self.detail = detail or (error or "")
