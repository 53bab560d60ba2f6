"""Local cache of served versions under RETRAIN_HOME/serving_cache/<model>/v<N>/ (booster, snapshot, info).

The service loads every version from here: a version is downloaded once into a temporary folder and
renamed into place (so a half-written version never looks complete, and concurrent workers do not
clash), and `current.json` names the last version served. A cold start with the registry down loads
that one. Versions beyond the newest `keep` are deleted.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrain.feature_snapshot import write_atomically

log = logging.getLogger(__name__)

BOOSTER_NAME = "model.ubj"
SNAPSHOT_NAME = "snapshot.parquet"
INFO_NAME = "version.json"
CURRENT_NAME = "current.json"


class ModelCache:
    """The cached versions of one registered model."""

    def __init__(self, root: Path, model_name: str, keep: int) -> None:
        self.root = root / model_name
        self.keep = keep

    def version_dir(self, version: int) -> Path:
        """Folder of one version."""
        return self.root / f"v{version}"

    def has(self, version: int) -> bool:
        """Whether a complete copy of the version is cached (the info file is written last)."""
        folder = self.version_dir(version)
        return all((folder / name).is_file() for name in (BOOSTER_NAME, SNAPSHOT_NAME, INFO_NAME))

    def store(self, version: int, fetch: Callable[[Path], dict[str, Any]]) -> Path:
        """Fill a temporary folder with `fetch` (booster + snapshot, returns the info), then move it in place."""
        target = self.version_dir(version)
        if self.has(version):
            return target
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            info = fetch(staging)
            (staging / INFO_NAME).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")
            if target.exists() and not self.has(version):
                shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:
                if not self.has(version):  # another worker won the race only if its copy is complete
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def info(self, version: int) -> dict[str, Any]:
        """The version's registry info as saved (VersionInfo.to_dict())."""
        loaded: dict[str, Any] = json.loads(
            (self.version_dir(version) / INFO_NAME).read_text(encoding="utf-8")
        )
        return loaded

    def mark_current(self, version: int) -> None:
        """Record the version now served, and drop versions older than the newest `keep`."""
        payload = json.dumps({"version": version})
        write_atomically(self.root / CURRENT_NAME, lambda path: path.write_text(payload, encoding="utf-8"))
        self._prune(version)

    def current(self) -> int | None:
        """The version last served, if its copy is complete."""
        try:
            version = int(json.loads((self.root / CURRENT_NAME).read_text(encoding="utf-8"))["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return version if self.has(version) else None

    def _prune(self, current: int) -> None:
        cached = sorted((int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit()), reverse=True)
        keep = {current, *cached[: self.keep]}
        for version in cached:
            if version not in keep:
                shutil.rmtree(self.version_dir(version), ignore_errors=True)
                log.info("serving cache: dropped version %d", version)
