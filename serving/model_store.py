"""The served model: load a version fully (booster + snapshot), then swap one reference; follow the alias.

Requests read `store.current` once and keep that LoadedModel for their whole life, so a swap never
changes a model under a request in flight. `refresh` asks the registry which version holds the alias
and loads it when it changed; a registry that cannot be reached leaves the served version in place and
flips `model_registry_up` to 0. On a cold start with the registry down, the last version served is
loaded from the local cache.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from retrain.errors import RetrainError
from retrain.feature_snapshot import FeatureSnapshot, read_snapshot
from retrain.model import ForecastModel
from retrain.online_snapshot import SnapshotShape
from retrain.registry import ModelRegistry, VersionInfo
from retrain.spec import DatasetSpec
from serving import messages
from serving.errors import ModelLoadError, ModelUnavailableError, RegistryUnavailableError
from serving.features import OnlineFeatureBuilder
from serving.metrics import ServingMetrics
from serving.model_cache import BOOSTER_NAME, SNAPSHOT_NAME, ModelCache
from serving.model_download import configure_mlflow_client, download_version
from serving.predictor import FastPredictor
from serving.settings import ServingSettings
from serving.snapshot_follower import MODEL_SOURCE, ONLINE_SOURCE, OnlineSnapshotFollower

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One version ready to serve: booster, predictor, feature tables and what the registry said.

    `features` is built from the newest snapshot that fits the model (`snapshot_source`: its own or
    the dataset's online one); `trained` is the shape and vocabulary of the model's own snapshot.
    """

    name: str
    version: int
    info: dict[str, Any]
    source: str
    loaded_at: datetime
    model: ForecastModel
    predictor: FastPredictor
    features: OnlineFeatureBuilder
    trained: SnapshotShape
    snapshot_source: str

    @property
    def label(self) -> str:
        """The version as a metric label."""
        return str(self.version)


@dataclass(frozen=True)
class RefreshOutcome:
    """What one look at the registry did."""

    changed: bool
    version: int | None
    previous: int | None
    detail: str


class ModelStore:
    """Holds the served LoadedModel and replaces it when the alias moves."""

    def __init__(self, settings: ServingSettings, spec: DatasetSpec, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.spec = spec
        self.metrics = metrics
        self.model_name = settings.serving_model_name or spec.model_name
        self.alias = settings.serving_alias
        self.cache = ModelCache(settings.cache_root, self.model_name, settings.serving_cache_versions)
        follow = settings.serving_follow_online_snapshot
        self.snapshots = OnlineSnapshotFollower(settings.online_snapshot_path(spec) if follow else None)
        self.registry_up = False
        self.registry_error: str | None = None
        self.registry_down_since: datetime | None = None
        self.load_error: str | None = None
        self.not_ready_reason = "the model is loading"
        self._current: LoadedModel | None = None
        self._registry: ModelRegistry | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> LoadedModel | None:
        """The version being served (None before the first successful load)."""
        return self._current

    def require_current(self) -> LoadedModel:
        """The served version; ModelUnavailableError (503) when none is loaded."""
        loaded = self._current
        if loaded is None:
            raise ModelUnavailableError(
                messages.not_ready(self.model_name, self.alias, self.not_ready_reason)
            )
        return loaded

    def start(self) -> None:
        """First load: from the registry, else (registry unreachable) from the local cache."""
        configure_mlflow_client(self.settings)
        try:
            self.refresh()
        except RegistryUnavailableError:
            self._load_cached()
        except ModelLoadError:
            pass  # recorded; the poller retries

    def refresh(self, force: bool = False) -> RefreshOutcome:
        """Load the version holding the alias if it is not the one served (or always with `force`)."""
        with self._lock:
            info = self._ask_registry()
            current = self._current
            previous = current.version if current else None
            if info is None:
                self.not_ready_reason = messages.no_version_holds_alias(self.model_name, self.alias)
                return RefreshOutcome(False, previous, previous, self.not_ready_reason)
            if current is not None and current.version == info.version and not force:
                if current.source != "registry":
                    self._current = dataclasses.replace(current, source="registry", info=info.to_dict())
                return RefreshOutcome(False, previous, previous, f"version {previous} is already served")
            loaded = self._load(info)
            self._swap(loaded)
            return RefreshOutcome(
                previous != loaded.version, loaded.version, previous, f"serving version {loaded.version}"
            )

    def poll(self) -> None:
        """One poll: follow the alias, then the online snapshot (also while the registry is down)."""
        try:
            self.refresh()
        finally:
            self.refresh_snapshot()

    def refresh_snapshot(self) -> bool:
        """Feed the served version the online feature snapshot if it is newer than the one in use."""
        with self._lock:
            current = self._current
            if current is None:
                return False
            snapshot = self.snapshots.newer_than(current.features.snapshot_date, current.trained)
            if snapshot is None:
                return False
            try:
                features = self._features(snapshot)
            except Exception as exc:
                self.snapshots.failed(snapshot, exc)
                self.metrics.snapshot_load_failed()
                return False
            # One reference swap, as for a new version: requests in flight keep the old tables.
            self._current = dataclasses.replace(current, features=features, snapshot_source=ONLINE_SOURCE)
            self.metrics.snapshot_in_use(features.snapshot_date, online=True, swapped=True)
            log.info(
                "feature snapshot model=%s version=%d snapshot_date=%s source=%s (was %s)",
                self.model_name,
                current.version,
                features.snapshot_date,
                ONLINE_SOURCE,
                current.features.snapshot_date,
            )
            return True

    def warnings(self) -> list[str]:
        """What is degraded, for /ready."""
        found = []
        if not self.registry_up and self.registry_error:
            since = self.registry_down_since.isoformat() if self.registry_down_since else "startup"
            found.append(messages.registry_down_warning(since, self.registry_error))
        current = self._current
        if current is not None and current.source == "cache":
            found.append(messages.served_from_cache_warning(current.version))
        if self.load_error:
            found.append(self.load_error)
        if current is not None and self.snapshots.error:
            found.append(
                messages.online_snapshot_warning(self.snapshots.error, current.features.snapshot_date)
            )
        return found

    def _registry_client(self) -> ModelRegistry:
        if self._registry is None:
            self._registry = ModelRegistry(self.settings, self.model_name)
        return self._registry

    def _ask_registry(self) -> VersionInfo | None:
        try:
            info = self._registry_client().alias(self.alias)
        except RetrainError as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            if self.registry_up or self.registry_down_since is None:
                self.registry_down_since = datetime.now(UTC).replace(microsecond=0)
                log.warning("model registry unreachable: %s", first)
            self.registry_up, self.registry_error = False, first
            self.metrics.registry_up.set(0)
            self.not_ready_reason = messages.registry_down_no_cache(str(self.cache.root))
            raise RegistryUnavailableError(f"{messages.REGISTRY_DOWN}: {first}") from exc
        if not self.registry_up:
            log.info("model registry reachable model=%s alias=%s", self.model_name, self.alias)
        self.registry_up, self.registry_error, self.registry_down_since = True, None, None
        self.metrics.registry_up.set(1)
        return info

    def _load(self, info: VersionInfo) -> LoadedModel:
        try:
            self.cache.store(info.version, lambda target: download_version(info, target))
            loaded = self._build(info.version, info.to_dict(), "registry")
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.load_error = messages.reload_failed_warning(info.version, text)
            if self._current is None:
                self.not_ready_reason = f"loading version {info.version} failed: {text}"
            self.metrics.model_load_failed()
            log.error("model load failed model=%s version=%d: %s", self.model_name, info.version, text)
            raise exc if isinstance(exc, ModelLoadError) else ModelLoadError(text) from exc
        self.load_error = None
        return loaded

    def _load_cached(self) -> None:
        version = self.cache.current()
        if version is None:
            log.error("no model: registry unreachable and nothing cached under %s", self.cache.root)
            return
        try:
            loaded = self._build(version, self.cache.info(version), "cache")
        except Exception as exc:
            self.metrics.model_load_failed()
            self.not_ready_reason = f"the cached version {version} does not load: {exc}"
            log.exception("cached model version %d does not load", version)
            return
        with self._lock:
            if self._current is None:
                self._swap(loaded)

    def _build(self, version: int, info: dict[str, Any], source: str) -> LoadedModel:
        folder = self.cache.version_dir(version)
        model = ForecastModel.load(folder / BOOSTER_NAME, nthread=self.settings.serving_nthread)
        own = read_snapshot(folder / SNAPSHOT_NAME)
        trained = SnapshotShape.of(own)
        features, snapshot_source = None, ONLINE_SOURCE
        newer = self.snapshots.newer_than(own.snapshot_date, trained)
        if newer is not None:
            try:
                features = self._features(newer)
            except Exception as exc:
                self.snapshots.failed(newer, exc)
                self.metrics.snapshot_load_failed()
        if features is None:
            features, snapshot_source = self._features(own), MODEL_SOURCE
        if model.feature_names != features.feature_names:
            raise ModelLoadError(
                f"version {version} expects features {model.feature_names} but the spec "
                f"{self.spec.name!r} builds {features.feature_names}: serve it with the spec it was trained on"
            )
        predictor = FastPredictor(
            model, use_c_api=self.settings.serving_fast_predict, nthread=self.settings.serving_nthread
        )
        predictor = _checked(predictor, features)
        return LoadedModel(
            self.model_name,
            version,
            info,
            source,
            datetime.now(UTC),
            model,
            predictor,
            features,
            trained,
            snapshot_source,
        )

    def _features(self, snapshot: FeatureSnapshot) -> OnlineFeatureBuilder:
        return OnlineFeatureBuilder(snapshot, self.spec, self.settings.serving_max_horizon_days)

    def _swap(self, loaded: LoadedModel) -> None:
        self._current = loaded  # the one reference requests read
        self.not_ready_reason = ""
        self.metrics.model_loaded(self.model_name, loaded.version, loaded.info.get("run_id"))
        self.metrics.snapshot_in_use(loaded.features.snapshot_date, loaded.snapshot_source == ONLINE_SOURCE)
        try:
            self.cache.mark_current(loaded.version)
        except OSError as exc:
            log.warning("serving cache: cannot record version %d: %s", loaded.version, exc)
        log.info(
            "serving model=%s version=%d source=%s fast_predict=%s snapshot_date=%s snapshot_source=%s",
            self.model_name,
            loaded.version,
            loaded.source,
            loaded.predictor.native,
            loaded.features.snapshot_date,
            loaded.snapshot_source,
        )


def _checked(predictor: FastPredictor, features: OnlineFeatureBuilder) -> FastPredictor:
    """Warm the predictor up on real rows; fall back to the plain path if the fast one disagrees."""
    if not predictor.native:
        return predictor
    matrix = features.sample_matrix(4)
    expected = predictor.model.predict(matrix)
    if not np.array_equal(predictor.predict(matrix), expected, equal_nan=True):
        log.warning("xgboost C-API fast path disagrees with Booster.inplace_predict; using the latter")
        return FastPredictor(predictor.model, use_c_api=False, nthread=predictor.nthread)
    return predictor
