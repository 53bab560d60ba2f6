"""Registry and tracking adapters on a real MLflow SQLite store: aliases, promotion, rollback, smoke test."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from retrain.errors import NoProductionModelError, RetrainError
from retrain.model import ForecastModel
from retrain.registry import CANDIDATE, PREVIOUS, PRODUCTION, ModelRegistry
from retrain.settings import Settings
from retrain.tracking import code_version, configure_mlflow, experiment_id, log_forecast_model

# The conftest factory: log_booster_run(seed=..., metrics=...) -> LoggedBooster.
LogBooster = Callable[..., Any]
TAGS = {"data_start": "2024-01-01", "data_end": "2024-03-31", "code_version": "abc123"}


def _register(registry: ModelRegistry, log_booster_run: LogBooster, seed: int, data_end: str) -> int:
    logged = log_booster_run(seed=seed)
    return registry.register(logged.model_uri, logged.run_id, {**TAGS, "data_end": data_end})


def test_log_booster_pins_requirements(settings: Settings, log_booster_run: LogBooster) -> None:
    # Pinned, not inferred: inference loads the model in a subprocess (bench/bench_model_logging.py).
    logged = log_booster_run(seed=1)
    local = Path(mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(settings.home / "dl")))
    requirements = (local / "requirements.txt").read_text().split()
    assert requirements == [
        f"{pkg}=={metadata.version(pkg)}" for pkg in ("mlflow", "xgboost", "numpy", "pandas")
    ]
    signature = Model.load(str(local)).signature
    assert signature is not None
    assert signature.inputs.input_names() == list(logged.input_example.columns)


def test_log_booster_needs_an_active_run(settings: Settings, log_booster_run: LogBooster) -> None:
    import xgboost as xgb

    example = log_booster_run(seed=0).input_example
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(example, label=[0.0] * len(example)), num_boost_round=1)
    with pytest.raises(RetrainError, match="active MLflow run"):
        log_forecast_model(ForecastModel(booster), input_example=example)


def test_experiment_is_reused_and_stored_under_artifact_root(settings: Settings) -> None:
    first = experiment_id(settings, "exp-a")
    assert experiment_id(settings, "exp-a") == first
    configure_mlflow(settings)
    configure_mlflow(settings)
    assert mlflow.get_tracking_uri() == settings.tracking_uri
    location = MlflowClient(settings.tracking_uri).get_experiment(first).artifact_location
    assert location.startswith(settings.artifact_root)


def test_code_version_names_a_commit_or_the_package() -> None:
    version = code_version()
    commit = version.removesuffix("+dirty")
    assert len(commit) == 40 or version == metadata.version("retrain")


def test_register_moves_candidate_and_reads_back(
    registry: ModelRegistry, log_booster_run: LogBooster
) -> None:
    first = _register(registry, log_booster_run, seed=0, data_end="2024-03-31")
    assert registry.alias(CANDIDATE) == registry.get(first)
    second = _register(registry, log_booster_run, seed=1, data_end="2024-04-01")
    info = registry.get(second)
    assert info.aliases == (CANDIDATE,)
    assert info.model_uri == f"models:/{registry.model_name}/{second}"
    assert info.data_start == date(2024, 1, 1)
    assert info.data_end == date(2024, 4, 1)
    assert info.tags["code_version"] == "abc123"
    assert info.metrics == {"rmse": 2.0, "wape": pytest.approx(0.11)}
    assert info.gate_decision is None
    assert registry.get(first).aliases == ()
    assert [v.version for v in registry.versions()] == [second, first]
    assert registry.production() is None


def test_promote_then_rollback(registry: ModelRegistry, log_booster_run: LogBooster) -> None:
    v1 = _register(registry, log_booster_run, seed=0, data_end="2024-03-31")
    v2 = _register(registry, log_booster_run, seed=1, data_end="2024-04-01")

    record = registry.promote(v1, actor="pipeline", reason="first model")
    assert (record.version, record.replaced, record.previous) == (v1, None, None)
    assert registry.require_production().version == v1
    assert registry.alias(PREVIOUS) is None

    record = registry.promote(v2, actor="pipeline", reason="gates passed")
    assert (record.version, record.replaced, record.previous) == (v2, v1, v1)
    assert registry.require_production().version == v2
    promoted = registry.get(v2).tags
    assert (promoted["promoted_by"], promoted["promotion_reason"]) == ("pipeline", "gates passed")

    again = registry.promote(v2, actor="alice", reason="retry")
    assert not again.changed
    assert registry.alias(PREVIOUS) == registry.get(v1)  # re-promoting never makes previous == production

    record = registry.rollback(actor="alice", reason="bad forecasts")
    assert (record.action, record.version, record.replaced, record.previous) == ("rollback", v1, v2, None)
    assert registry.require_production().version == v1
    assert registry.alias(PREVIOUS) is None
    rolled_back = registry.get(v2).tags
    assert rolled_back["rolled_back_by"] == "alice"
    assert rolled_back["rolled_back_reason"] == "bad forecasts"
    assert rolled_back["rolled_back_to"] == str(v1)
    assert registry.get(v1).tags["restored_by"] == "alice"

    # previous was cleared: a second rollback must not silently re-promote the bad version.
    with pytest.raises(RetrainError, match="no @previous version to roll back to"):
        registry.rollback(actor="alice", reason="again")
    assert registry.require_production().version == v1


def test_empty_registry_has_no_production(registry: ModelRegistry) -> None:
    assert registry.production() is None
    assert registry.versions() == []
    assert registry.status().to_dict() == {"model_name": registry.model_name, "aliases": {}, "versions": []}
    with pytest.raises(NoProductionModelError, match="nothing to roll back"):
        registry.rollback(actor="alice", reason="panic")
    with pytest.raises(NoProductionModelError, match="retrain promote"):
        registry.require_production()


def test_unknown_version_and_unreachable_store_are_retrain_errors(
    settings: Settings, registry: ModelRegistry, tmp_path: Path
) -> None:
    with pytest.raises(RetrainError, match="could not read version 7") as caught:
        registry.promote(7, actor="alice", reason="typo")
    assert not isinstance(caught.value, NoProductionModelError)

    (tmp_path / "blocker").write_text("a file where the store's folder should be")
    broken = settings.model_copy(
        update={"mlflow_tracking_uri": f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"}
    )
    with pytest.raises(RetrainError, match="MLflow registry at sqlite"):
        ModelRegistry(broken, "any").production()


def test_gate_report_artifact_and_tags(registry: ModelRegistry, log_booster_run: LogBooster) -> None:
    version = _register(registry, log_booster_run, seed=0, data_end="2024-03-31")
    assert registry.gate_report(version) is None
    report = {"passed": False, "decision": "reject", "gates": [{"name": "max_wape", "passed": False}]}
    tags = {"gate.decision": "reject", "gate.max_wape": "fail", "gate.failed": "max_wape"}
    registry.record_gate_report(version, report, tags)
    assert registry.gate_report(version) == report
    info = registry.get(version)
    assert info.gate_decision == "reject"
    assert info.tags["gate.failed"] == "max_wape"
    assert info.tags["data_end"] == "2024-03-31"  # registration tags survive

    registry.record_gate_report(
        version, json.dumps({**report, "decision": "promote"}), {"gate.decision": "x"}
    )
    assert registry.gate_report(version) == {**report, "decision": "promote"}


def test_status_to_dict_shape(registry: ModelRegistry, log_booster_run: LogBooster) -> None:
    v1 = _register(registry, log_booster_run, seed=0, data_end="2024-03-31")
    v2 = _register(registry, log_booster_run, seed=1, data_end="2024-04-01")
    registry.promote(v1, actor="pipeline", reason="first")
    registry.promote(v2, actor="pipeline", reason="better")

    data = json.loads(json.dumps(registry.status().to_dict()))
    assert set(data["aliases"]) == {PRODUCTION, CANDIDATE, PREVIOUS}
    production = data["aliases"][PRODUCTION]
    assert production["version"] == v2
    assert sorted(production["aliases"]) == [CANDIDATE, PRODUCTION]
    assert production["data_end"] == "2024-04-01"
    assert production["metrics"]["rmse"] == 2.0
    assert production["tags"]["promoted_by"] == "pipeline"
    assert production["model_uri"] == f"models:/{registry.model_name}/{v2}"
    assert data["aliases"][PREVIOUS]["version"] == v1
    assert [v["version"] for v in data["versions"]] == [v2, v1]


def test_smoke_test_passes_on_a_good_version(registry: ModelRegistry, log_booster_run: LogBooster) -> None:
    version = _register(registry, log_booster_run, seed=0, data_end="2024-03-31")
    passed, message = registry.smoke_test(version)
    assert passed, message
    assert "predicts 5 finite values" in message


def test_smoke_test_fails_when_the_model_file_is_gone(
    settings: Settings, registry: ModelRegistry, log_booster_run: LogBooster
) -> None:
    version = _register(registry, log_booster_run, seed=0, data_end="2024-03-31")
    download_uri = MlflowClient(settings.tracking_uri).get_model_version_download_uri(
        registry.model_name, str(version)
    )
    model_file = Path(unquote(urlparse(download_uri).path)) / "artifacts" / "model.ubj"
    model_file.unlink()
    passed, message = registry.smoke_test(version)
    assert not passed
    assert f"models:/{registry.model_name}/{version} does not load" in message
    assert "model.ubj" in message
