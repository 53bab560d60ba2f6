"""retrain_daily end to end through Airflow's dag.test() on simulated data, with a real MLflow SQLite store.

The scenes run in order on one home (module-scoped), like consecutive days in production:
first model promoted → degraded candidate rejected → bad batch stopped at validate → normal day promoted →
rerun of the same date (idempotent data) → backfill of an older date (registered, never promoted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec, load_spec
from tests.utils.env import isolated_environment
from tests.utils.files import tree_digest

HISTORY_DAYS = 70
START = date(2026, 1, 1)
FIRST = START + timedelta(days=HISTORY_DAYS)  # first pipeline day
BAD_DAY = FIRST + timedelta(days=2)


@dataclass
class Story:
    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout
    outcomes: dict[str, Any] = field(default_factory=dict)


def _registry(story: Story) -> Any:
    from retrain.registry import ModelRegistry

    return ModelRegistry(story.settings, story.spec.model_name)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The module's world, in an environment no other test world leaks into (or inherits from)."""
    with isolated_environment():
        yield build_story(tmp_path_factory)


def build_story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """Simulated history published to curated/ (validated by the DAG tests elsewhere), Airflow ready."""
    from retrain import ingest
    from retrain.local.orchestrate import prepare_airflow
    from retrain.sim.demand import Injection, SimulationConfig, write_simulation

    home = tmp_path_factory.mktemp("dag-home")
    gx_root = home / "gx"
    import shutil

    from retrain.settings import REPO_ROOT

    shutil.copytree(REPO_ROOT / "gx", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
    settings = Settings(home=home / "var", gx_root=gx_root)
    spec = load_spec(settings.spec)
    layout = DatasetLayout.for_spec(settings, spec)
    config = SimulationConfig(
        start=START,
        days=HISTORY_DAYS + 6,
        seed=settings.seed,
        faults=(Injection("duplicate_keys", BAD_DAY),),
    )
    write_simulation(layout, spec, config)
    for offset in range(HISTORY_DAYS):
        day = START + timedelta(days=offset)
        ingest.stage_batch(settings, spec, day)
        ingest.publish_batch(settings, spec, day)
    # dag.test runs tasks in this process: they read settings from the environment, like real workers.
    os.environ.update(
        {
            "RETRAIN_HOME": str(settings.resolved_home),
            "RETRAIN_GX_ROOT": str(gx_root),
            "RETRAIN_SPEC": str(spec_path()),
        }
    )
    prepare_airflow(settings, quiet=True)
    return Story(settings, spec, layout)


def spec_path() -> Path:
    from retrain.settings import REPO_ROOT

    return REPO_ROOT / "config" / "retail_demand.yaml"


def run_day(day: date, **conf: Any) -> Any:
    from retrain.local.orchestrate import run_dag

    return run_dag("retrain_daily", day, conf)


def test_first_model_is_promoted(story: Story) -> None:
    outcome = run_day(FIRST)
    assert outcome.succeeded, outcome.task_states
    register = outcome.xcoms["register"]
    assert register["outcome"] == "promoted"
    production = _registry(story).production()
    assert production is not None and production.version == register["version"] == 1
    assert production.data_end == FIRST
    gates = {g["name"]: g for g in register["report"]["gates"]}
    assert "first-model rule" in gates["not_worse_than_production"]["reason"]
    story.outcomes["first"] = register


def test_degraded_candidate_stays_candidate(story: Story) -> None:
    outcome = run_day(FIRST + timedelta(days=1), num_boost_round=2)
    assert outcome.succeeded, outcome.task_states
    register = outcome.xcoms["register"]
    assert register["outcome"] == "rejected"
    assert "not_worse_than_production" in register["failed_gates"]
    registry = _registry(story)
    assert registry.production().version == 1
    candidate = registry.alias("candidate")
    assert candidate is not None and candidate.version == register["version"] == 2
    report = registry.gate_report(2)
    assert report is not None and report["decision"] == "reject"
    failed = [g for g in report["gates"] if not g["passed"]]
    assert any("worse than production" in g["reason"] for g in failed)
    assert candidate.tags["gate.not_worse_than_production"] == "fail"


def test_bad_batch_stops_at_validate_and_production_stays(story: Story) -> None:
    curated_before = tree_digest(story.layout.curated)
    versions_before = len(_registry(story).versions())
    outcome = run_day(BAD_DAY)
    assert not outcome.succeeded
    assert outcome.task_states["validate"] == "failed"
    assert outcome.task_states["train"] == "upstream_failed"
    assert (story.layout.quarantine_partition(BAD_DAY) / "gx_result.json").is_file()
    assert tree_digest(story.layout.curated) == curated_before
    registry = _registry(story)
    assert registry.production().version == 1
    assert len(registry.versions()) == versions_before
    # The failure callback emailed (no SMTP configured here: the local maildir sink).
    mails = list((story.settings.resolved_home / "mail" / "new").glob("*"))
    assert mails, "no failure email"
    text = mails[-1].read_text(encoding="utf-8")
    assert "retrain_daily failed" in text and "validate" in text


def test_next_day_promoted_and_rerun_is_idempotent(story: Story) -> None:
    day = FIRST + timedelta(days=3)
    first = run_day(day)
    assert first.succeeded, first.task_states
    assert first.xcoms["register"]["outcome"] == "promoted", first.xcoms["register"]["failed_gates"]
    promoted = first.xcoms["register"]["version"]
    curated = tree_digest(story.layout.curated)

    again = run_day(day)
    assert again.succeeded, again.task_states
    assert tree_digest(story.layout.curated) == curated, "re-running a date must not change curated data"
    assert again.xcoms["register"]["version"] == promoted + 1  # a new model version is fine
    registry = _registry(story)
    assert registry.alias("previous") is not None
    story.outcomes["latest_day"] = day


def test_backfill_of_older_date_registers_but_never_promotes(story: Story) -> None:
    registry = _registry(story)
    production_before = registry.production()
    outcome = run_day(FIRST + timedelta(days=1))
    assert outcome.succeeded, outcome.task_states
    register = outcome.xcoms["register"]
    assert register["outcome"] == "rejected"
    assert "freshness" in register["failed_gates"]
    assert registry.production().version == production_before.version
    assert registry.get(register["version"]).data_end == FIRST + timedelta(days=1)


def test_production_model_is_near_the_noise_floor(story: Story) -> None:
    from retrain.sim.demand import noise_floor_rmse

    production = _registry(story).production()
    assert production is not None
    evaluation = json.loads(
        Path(_download(story, production.run_id, "evaluation.json")).read_text(encoding="utf-8")
    )
    holdout_start = date.fromisoformat(evaluation["train"]["holdout_start"])
    data_end = date.fromisoformat(evaluation["train"]["data_end"])
    holdout_days = [
        holdout_start + timedelta(days=i)
        for i in range((data_end - holdout_start).days + 1)
        if holdout_start + timedelta(days=i) != BAD_DAY
    ]
    floor = noise_floor_rmse(story.layout, holdout_days)
    rmse = evaluation["candidate"]["overall"]["rmse"]
    print(f"\nproduction holdout RMSE {rmse:.4f} vs noise floor {floor:.4f}: ratio {rmse / floor:.3f}")
    assert rmse <= 1.15 * floor


def _download(story: Story, run_id: str, artifact: str) -> str:
    import mlflow

    from retrain.tracking import configure_mlflow

    configure_mlflow(story.settings)
    return str(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact))


def test_cli_rollback_restores_previous_and_status_shows_it(story: Story) -> None:
    registry = _registry(story)
    production, previous = registry.production(), registry.alias("previous")
    assert production is not None and previous is not None
    env = {**os.environ, "RETRAIN_HOME": str(story.settings.resolved_home)}
    cli = [sys.executable, "-m", "retrain", "--spec", str(spec_path())]
    done = subprocess.run([*cli, "rollback", "--reason", "test"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    status = subprocess.run([*cli, "status", "--json"], env=env, capture_output=True, text=True, check=True)
    aliases = json.loads(status.stdout)["aliases"]
    assert aliases["production"]["version"] == previous.version
    assert "previous" not in aliases
    human = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, check=True)
    assert f"production → v{previous.version}" in human.stdout
