"""retrain_daily end to end through Airflow's dag.test() on simulated data, with a real MLflow SQLite store.

The scenes happen in order on one home, like consecutive days in production: first model promoted →
degraded candidate rejected → bad batch stopped at validate → normal day promoted → rerun of the same
date (idempotent data) → backfill of an older date (registered, never promoted) → CLI rollback.
Each scene is a module fixture that requests the scene before it and records what the test checks
(a `Scene`), so any test runs alone or in any order: it builds the days it needs, never relies on
a test before it, and reads its scene's record rather than the registry later scenes move on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
        ingest.run(settings, spec, day)
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


@dataclass(frozen=True)
class Scene:
    """One pipeline day as it ended: the DAG run and the registry's aliases right after it."""

    outcome: Any
    production: Any
    candidate: Any
    previous: Any
    versions: int

    @property
    def register(self) -> dict[str, Any]:
        """The register task's XCom."""
        return dict(self.outcome.xcoms["register"])


def run_scene(story: Story, day: date, **conf: Any) -> Scene:
    """Run the DAG for a day and record the registry as it stands afterwards."""
    outcome = run_day(day, **conf)
    registry = _registry(story)
    return Scene(
        outcome,
        registry.production(),
        registry.alias("candidate"),
        registry.alias("previous"),
        len(registry.versions()),
    )


@pytest.fixture(scope="module")
def first_day(story: Story) -> Scene:
    """Day one on an empty registry."""
    return run_scene(story, FIRST)


@pytest.fixture(scope="module")
def degraded_day(story: Story, first_day: Scene) -> Scene:
    """Day two with a starved model (two boosting rounds)."""
    return run_scene(story, FIRST + timedelta(days=1), num_boost_round=2)


@dataclass(frozen=True)
class BadDay:
    """The bad batch's run, the curated tree and version count around it, the failure emails."""

    scene: Scene
    versions_before: int
    curated_before: str
    curated_after: str
    mails: tuple[str, ...]


@pytest.fixture(scope="module")
def bad_day(story: Story, degraded_day: Scene) -> BadDay:
    """Day three: the simulator's duplicate-key fault."""
    curated_before = tree_digest(story.layout.curated)
    scene = run_scene(story, BAD_DAY)
    mail_dir = story.settings.resolved_home / "mail" / "new"
    mails = tuple(m.read_text(encoding="utf-8") for m in sorted(mail_dir.glob("*")))
    return BadDay(scene, degraded_day.versions, curated_before, tree_digest(story.layout.curated), mails)


@dataclass(frozen=True)
class NextDay:
    """Day four run twice: both runs and the curated tree after each."""

    first: Scene
    again: Scene
    curated_first: str
    curated_again: str


@pytest.fixture(scope="module")
def next_day(story: Story, bad_day: BadDay) -> NextDay:
    """Day four, then the same date again."""
    day = FIRST + timedelta(days=3)
    first = run_scene(story, day)
    curated_first = tree_digest(story.layout.curated)
    again = run_scene(story, day)
    return NextDay(first, again, curated_first, tree_digest(story.layout.curated))


@pytest.fixture(scope="module")
def backfill_day(story: Story, next_day: NextDay) -> Scene:
    """A rerun of day two after day four: older data than production's."""
    return run_scene(story, FIRST + timedelta(days=1))


@dataclass(frozen=True)
class RolledBack:
    """`retrain rollback` after the backfill, and `retrain status` (JSON and human) after it."""

    before: Scene
    rollback: subprocess.CompletedProcess[str]
    status_json: dict[str, Any]
    status_human: str


@pytest.fixture(scope="module")
def rolled_back(story: Story, backfill_day: Scene) -> RolledBack:
    """The last scene: the only one that moves production backwards."""
    env = {**os.environ, "RETRAIN_HOME": str(story.settings.resolved_home)}
    cli = [sys.executable, "-m", "retrain", "--spec", str(spec_path())]
    done = subprocess.run([*cli, "rollback", "--reason", "test"], env=env, capture_output=True, text=True)
    status = subprocess.run([*cli, "status", "--json"], env=env, capture_output=True, text=True, check=True)
    human = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, check=True)
    return RolledBack(backfill_day, done, json.loads(status.stdout), human.stdout)


def test_first_model_is_promoted(first_day: Scene) -> None:
    outcome, register = first_day.outcome, first_day.register
    assert outcome.succeeded, outcome.task_states
    assert register["outcome"] == "promoted"
    production = first_day.production
    assert production is not None and production.version == register["version"] == 1
    assert production.data_end == FIRST
    gates = {g["name"]: g for g in register["report"]["gates"]}
    assert "first-model rule" in gates["not_worse_than_production"]["reason"]


def test_degraded_candidate_stays_candidate(story: Story, degraded_day: Scene) -> None:
    outcome, register = degraded_day.outcome, degraded_day.register
    assert outcome.succeeded, outcome.task_states
    assert register["outcome"] == "rejected"
    assert "not_worse_than_production" in register["failed_gates"]
    assert degraded_day.production.version == 1
    candidate = degraded_day.candidate
    assert candidate is not None and candidate.version == register["version"] == 2
    report = _registry(story).gate_report(2)  # a version's gate report never changes after it is written
    assert report is not None and report["decision"] == "reject"
    failed = [g for g in report["gates"] if not g["passed"]]
    assert any("worse than production" in g["reason"] for g in failed)
    assert candidate.tags["gate.not_worse_than_production"] == "fail"


def test_bad_batch_stops_at_validate_and_production_stays(story: Story, bad_day: BadDay) -> None:
    outcome = bad_day.scene.outcome
    assert not outcome.succeeded
    assert outcome.task_states["validate"] == "failed"
    assert outcome.task_states["train"] == "upstream_failed"
    assert (story.layout.quarantine_partition(BAD_DAY) / "gx_result.json").is_file()
    assert bad_day.curated_after == bad_day.curated_before
    assert bad_day.scene.production.version == 1
    assert bad_day.scene.versions == bad_day.versions_before
    # The failure callback emailed (no SMTP configured here: the local maildir sink).
    assert bad_day.mails, "no failure email"
    assert "retrain_daily failed" in bad_day.mails[-1] and "validate" in bad_day.mails[-1]


def test_next_day_promoted_and_rerun_is_idempotent(next_day: NextDay) -> None:
    first, again = next_day.first, next_day.again
    assert first.outcome.succeeded, first.outcome.task_states
    assert first.register["outcome"] == "promoted", first.register["failed_gates"]
    assert again.outcome.succeeded, again.outcome.task_states
    assert next_day.curated_again == next_day.curated_first, "re-running a date must not change curated data"
    assert again.register["version"] == first.register["version"] + 1  # a new model version is fine
    assert again.previous is not None


def test_backfill_of_older_date_registers_but_never_promotes(
    story: Story, next_day: NextDay, backfill_day: Scene
) -> None:
    outcome, register = backfill_day.outcome, backfill_day.register
    assert outcome.succeeded, outcome.task_states
    assert register["outcome"] == "rejected"
    assert "freshness" in register["failed_gates"]
    assert backfill_day.production.version == next_day.again.production.version
    assert _registry(story).get(register["version"]).data_end == FIRST + timedelta(days=1)


def test_production_model_is_near_the_noise_floor(story: Story, next_day: NextDay) -> None:
    from retrain.sim.demand import noise_floor_rmse

    production = next_day.again.production
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


def test_cli_rollback_restores_previous_and_status_shows_it(rolled_back: RolledBack) -> None:
    previous = rolled_back.before.previous
    assert rolled_back.before.production is not None and previous is not None
    assert rolled_back.rollback.returncode == 0, rolled_back.rollback.stderr
    aliases = rolled_back.status_json["aliases"]
    assert aliases["production"]["version"] == previous.version
    assert "previous" not in aliases
    assert f"production → v{previous.version}" in rolled_back.status_human
