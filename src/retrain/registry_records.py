"""What the registry adapter (retrain.registry) returns: versions, promotions, alias status, as plain data.

Frozen dataclasses with JSON-ready ``to_dict``; no MLflow import, so readers of a version need none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, with its aliases, tags, training interval and run metrics."""

    name: str
    version: int
    run_id: str | None
    model_uri: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    data_start: date | None
    data_end: date | None
    metrics: Mapping[str, float]
    gate_decision: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (dates as ISO strings, non-finite metrics as null)."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "data_start": self.data_start.isoformat() if self.data_start else None,
            "data_end": self.data_end.isoformat() if self.data_end else None,
            "metrics": {k: (v if math.isfinite(v) else None) for k, v in self.metrics.items()},
            "gate_decision": self.gate_decision,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class PromotionRecord:
    """What a promote or rollback did: the new production version, the one it replaced, who and why."""

    model_name: str
    action: Literal["promote", "rollback"]
    version: int
    replaced: int | None
    previous: int | None
    actor: str
    reason: str
    at: datetime
    changed: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {**self.__dict__, "at": self.at.isoformat()}


@dataclass(frozen=True)
class RegistryStatus:
    """Which version each alias points at, and every version (newest first)."""

    model_name: str
    aliases: dict[str, VersionInfo] = field(default_factory=dict)
    versions: list[VersionInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with a top-level ``aliases`` object (for ``retrain status --json``)."""
        return {
            "model_name": self.model_name,
            "aliases": {alias: info.to_dict() for alias, info in self.aliases.items()},
            "versions": [info.to_dict() for info in self.versions],
        }
