"""MLflow model registry adapter: versions, the production/candidate/previous aliases, gate reports.

Aliases only (stages are deprecated in MLflow 3):

- ``candidate``: the most recently registered version;
- ``production``: the version serving traffic;
- ``previous``: the version ``production`` replaced, the one ``rollback`` restores.

A rollback clears ``previous`` instead of pointing it at the version rolled back from: that version
was just judged bad, so a second rollback must not silently re-promote it. With ``previous``
unset a rollback fails with a clear message; pick a version explicitly with ``promote``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from retrain.errors import NoProductionModelError, RetrainError
from retrain.registry_records import PromotionRecord, RegistryStatus, VersionInfo
from retrain.settings import Settings
from retrain.tracking import SMOKE_MARKER, configure_mlflow

logger = logging.getLogger(__name__)

__all__ = ["ModelRegistry", "PromotionRecord", "RegistryStatus", "VersionInfo"]

PRODUCTION = "production"
CANDIDATE = "candidate"
PREVIOUS = "previous"
TAG_DATA_START = "data_start"
TAG_DATA_END = "data_end"
TAG_GATE_DECISION = "gate.decision"
GATE_REPORT_FILE = "gate_report.json"
SMOKE_TIMEOUT_S = 180.0

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
_ALREADY_EXISTS = {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}
_SMOKE_ENTRY = "import sys; from retrain.tracking import smoke_main; sys.exit(smoke_main(sys.argv[1:]))"


class ModelRegistry:
    """The registered model ``model_name`` in the settings' MLflow registry; errors are RetrainError."""

    def __init__(self, settings: Settings, model_name: str) -> None:
        configure_mlflow(settings)
        self.model_name = model_name
        self.tracking_uri = settings.tracking_uri
        with self._errors("connect"):
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def register(self, model_uri: str, run_id: str, tags: Mapping[str, str]) -> int:
        """Create a version of ``model_uri`` logged by ``run_id`` with ``tags``; move ``candidate`` to it."""
        with self._errors("register a version"):
            try:
                self._client.create_registered_model(self.model_name)
            except MlflowException as exc:
                if exc.error_code not in _ALREADY_EXISTS:
                    raise
            created = self._client.create_model_version(
                self.model_name,
                source=model_uri,
                run_id=run_id,
                tags=dict(tags),
                model_id=_model_id(model_uri),
            )
            version = int(created.version)
            self._client.set_registered_model_alias(self.model_name, CANDIDATE, str(version))
        logger.info("registered model=%s version=%d run_id=%s", self.model_name, version, run_id)
        return version

    def get(self, version: int) -> VersionInfo:
        """The version ``version``; RetrainError if it does not exist."""
        with self._errors(f"read version {version}"):
            return self._info(self._client.get_model_version(self.model_name, str(version)))

    def versions(self) -> list[VersionInfo]:
        """Every version, newest first; empty if the model was never registered."""
        aliases = self._aliases()
        escaped = self.model_name.replace("'", "\\'")
        with self._errors("list versions"):
            found = self._client.search_model_versions(f"name = '{escaped}'")
            # Search results may omit aliases, so they come from the registered model instead.
            infos = [self._info(mv, aliases) for mv in found]
        return sorted(infos, key=lambda info: info.version, reverse=True)

    def production(self) -> VersionInfo | None:
        """The version holding ``production``, or None if there is none (or no model registered)."""
        return self.alias(PRODUCTION)

    def require_production(self) -> VersionInfo:
        """The production version; NoProductionModelError if there is none."""
        info = self.production()
        if info is None:
            raise NoProductionModelError(
                f"no version of model {self.model_name!r} holds @{PRODUCTION} at {self.tracking_uri}: "
                "run the pipeline or `retrain promote --version N`"
            )
        return info

    def alias(self, alias: str) -> VersionInfo | None:
        """The version holding ``alias``, or None."""
        version = self._aliases().get(alias)
        return None if version is None else self.get(version)

    def promote(self, version: int, *, actor: str, reason: str) -> PromotionRecord:
        """Move ``production`` to ``version`` and ``previous`` to the version it replaces; tag who and why."""
        self.get(version)
        aliases = self._aliases()
        current = aliases.get(PRODUCTION)
        now = _now()
        if current == version:
            return PromotionRecord(
                self.model_name, "promote", version, current, aliases.get(PREVIOUS), actor, reason, now, False
            )
        with self._errors(f"promote version {version}"):
            # previous first: a crash in between leaves previous == production, which rollback refuses.
            if current is not None:
                self._set_alias(PREVIOUS, current)
            self._set_alias(PRODUCTION, version)
            self._tag(
                version, {"promoted_by": actor, "promoted_at": now.isoformat(), "promotion_reason": reason}
            )
        previous = current if current is not None else aliases.get(PREVIOUS)
        logger.info(
            "promoted model=%s version=%d replaced=%s actor=%s", self.model_name, version, current, actor
        )
        return PromotionRecord(self.model_name, "promote", version, current, previous, actor, reason, now)

    def rollback(self, *, actor: str, reason: str) -> PromotionRecord:
        """Move ``production`` back to ``previous`` and clear ``previous``; tag the version rolled back from."""
        aliases = self._aliases()
        current = aliases.get(PRODUCTION)
        if current is None:
            raise NoProductionModelError(
                f"no version of model {self.model_name!r} holds @{PRODUCTION}: nothing to roll back"
            )
        target = aliases.get(PREVIOUS)
        if target is None or target == current:
            raise RetrainError(
                f"model {self.model_name!r} has no @{PREVIOUS} version to roll back to from version {current} "
                "(a rollback clears it, so rollbacks never ping-pong): "
                "pick a version with `retrain promote --version N`"
            )
        now = _now()
        with self._errors(f"roll back to version {target}"):
            self._set_alias(PRODUCTION, target)
            self._client.delete_registered_model_alias(self.model_name, PREVIOUS)
            self._tag(
                current,
                {
                    "rolled_back_by": actor,
                    "rolled_back_at": now.isoformat(),
                    "rolled_back_reason": reason,
                    "rolled_back_to": str(target),
                },
            )
            self._tag(
                target, {"restored_by": actor, "restored_at": now.isoformat(), "restored_reason": reason}
            )
        logger.info("rolled back model=%s from=%d to=%d actor=%s", self.model_name, current, target, actor)
        return PromotionRecord(self.model_name, "rollback", target, current, None, actor, reason, now)

    def record_gate_report(
        self, version: int, report_json: Mapping[str, Any] | str, tags: Mapping[str, str]
    ) -> None:
        """Store the gate report as ``gate_report.json`` in the version's run and ``tags`` on the version."""
        report = json.loads(report_json) if isinstance(report_json, str) else dict(report_json)
        run_id = self._run_id(version)
        with self._errors(f"record the gate report of version {version}"):
            self._client.log_dict(run_id, report, GATE_REPORT_FILE)
            self._tag(version, tags)

    def gate_report(self, version: int) -> dict[str, Any] | None:
        """The gate report recorded for ``version``, or None if none was recorded."""
        run_id = self._run_id(version)
        with self._errors(f"read the gate report of version {version}"):
            names = {item.path for item in self._client.list_artifacts(run_id)}
            if GATE_REPORT_FILE not in names:
                return None
            with tempfile.TemporaryDirectory(prefix="retrain-gate-report-") as tmp:
                local = self._client.download_artifacts(run_id, GATE_REPORT_FILE, dst_path=tmp)
                loaded: dict[str, Any] = json.loads(Path(local).read_text(encoding="utf-8"))
        return loaded

    def smoke_test(self, version: int, *, timeout_s: float = SMOKE_TIMEOUT_S) -> tuple[bool, str]:
        """Load ``models:/name/version`` in a fresh process and predict its input example."""
        uri = self.get(version).model_uri
        cmd = [sys.executable, "-c", _SMOKE_ENTRY, self.tracking_uri, uri]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return False, f"smoke test of {uri} timed out after {timeout_s:.0f} s"
        for line in reversed(done.stdout.splitlines()):
            if line.startswith(SMOKE_MARKER):
                result = json.loads(line.removeprefix(SMOKE_MARKER))
                return bool(result["passed"]), str(result["message"])
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"smoke test of {uri} exited with code {done.returncode}: {tail}"

    def status(self) -> RegistryStatus:
        """Aliases and versions; empty if the model was never registered."""
        versions = self.versions()
        by_version = {info.version: info for info in versions}
        aliases = {
            alias: by_version[number] for alias, number in self._aliases().items() if number in by_version
        }
        return RegistryStatus(self.model_name, aliases, versions)

    def _aliases(self) -> dict[str, int]:
        with self._errors("read aliases"):
            try:
                registered = self._client.get_registered_model(self.model_name)
            except MlflowException as exc:
                if exc.error_code in _NOT_FOUND:
                    return {}
                raise
        return {alias: int(number) for alias, number in registered.aliases.items()}

    def _info(self, mv: ModelVersion, aliases: Mapping[str, int] | None = None) -> VersionInfo:
        version = int(mv.version)
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        if aliases is None:
            names = tuple(sorted(mv.aliases or ()))
        else:
            names = tuple(sorted(a for a, v in aliases.items() if v == version))
        return VersionInfo(
            name=self.model_name,
            version=version,
            run_id=mv.run_id or None,
            model_uri=f"models:/{self.model_name}/{version}",
            aliases=names,
            tags=tags,
            data_start=_parse_date(tags.get(TAG_DATA_START)),
            data_end=_parse_date(tags.get(TAG_DATA_END)),
            metrics=self._run_metrics(mv.run_id),
            gate_decision=tags.get(TAG_GATE_DECISION),
            created_at=datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, tz=UTC),
        )

    def _run_metrics(self, run_id: str | None) -> dict[str, float]:
        if not run_id:
            return {}
        try:
            return {k: float(v) for k, v in self._client.get_run(run_id).data.metrics.items()}
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:  # the run was deleted and garbage-collected
                return {}
            raise

    def _run_id(self, version: int) -> str:
        run_id = self.get(version).run_id
        if run_id is None:
            raise RetrainError(f"version {version} of model {self.model_name!r} has no MLflow run")
        return run_id

    def _set_alias(self, alias: str, version: int) -> None:
        self._client.set_registered_model_alias(self.model_name, alias, str(version))

    def _tag(self, version: int, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_model_version_tag(self.model_name, str(version), key, value)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (MlflowException, SQLAlchemyError, OSError) as exc:
            message = exc.message if isinstance(exc, MlflowException) else str(exc)
            first_line = (message.strip().splitlines() or [type(exc).__name__])[0]
            raise RetrainError(
                f"MLflow registry at {self.tracking_uri} could not {action} "
                f"(model {self.model_name!r}): {first_line}"
            ) from exc


def _model_id(model_uri: str) -> str | None:
    """The LoggedModel id in a ``models:/m-...`` URI (what MLflow 3 ``log_model`` returns)."""
    rest = model_uri.removeprefix("models:/")
    return rest if rest != model_uri and rest.startswith("m-") and "/" not in rest else None


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
