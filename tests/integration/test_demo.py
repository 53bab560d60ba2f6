"""`retrain demo` end to end on a throw-away home: the story the README tells must keep happening."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from rich.console import Console

from retrain.settings import REPO_ROOT, Settings
from retrain.spec import load_spec
from tests.utils.env import isolated_environment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, Settings]]:
    """The demo on a fresh home, in an environment no other test world leaks into (or inherits from)."""
    with isolated_environment():
        yield run_the_demo(tmp_path_factory)


def run_the_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str, Settings]:
    from retrain.cli.demo import run_demo

    home = tmp_path_factory.mktemp("demo")
    gx_root = home / "gx"
    shutil.copytree(REPO_ROOT / "gx", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
    settings = Settings(home=home / "var", gx_root=gx_root)
    # The DAG's tasks read their settings from the environment, as real workers do.
    os.environ.update({"RETRAIN_HOME": str(settings.resolved_home), "RETRAIN_GX_ROOT": str(gx_root)})
    out = io.StringIO()
    report = run_demo(settings, load_spec(settings.spec), Console(file=out, width=200))
    return report, out.getvalue(), settings


def test_every_scene_ends_as_the_readme_says(demo: tuple[object, str, Settings]) -> None:
    report, _, _ = demo
    outcomes = [(title, verdict) for title, _, verdict, _ in report.scenes]  # type: ignore[attr-defined]
    assert outcomes == [
        ("first model", "promoted"),
        ("one more day of data", "promoted"),
        ("bad batch (duplicate keys)", "failed at validate"),
        ("degraded candidate (2 boosting rounds)", "rejected"),
        ("price shift (drift check)", "drift alert"),
    ]
    quarantined = [outcome for _, outcome, _ in report.ingested]  # type: ignore[attr-defined]
    assert quarantined.count("quarantined") == 1


def test_serving_switched_versions_without_restart(demo: tuple[object, str, Settings]) -> None:
    report, printed, _ = demo
    versions = [batch.version for batch in report.served]  # type: ignore[attr-defined]
    assert versions == [1, 2]
    assert all(len(batch.predictions) == 5 for batch in report.served)  # type: ignore[attr-defined]
    assert report.served[0].predictions != report.served[1].predictions  # type: ignore[attr-defined]
    assert "production moved to v2" in printed


def test_drift_report_and_email_are_where_the_demo_says(demo: tuple[object, str, Settings]) -> None:
    report, printed, _ = demo
    drift = report.drift  # type: ignore[attr-defined]
    assert "price" in drift.drifted
    assert drift.report.is_file() and drift.report.stat().st_size > 10_000
    assert str(drift.report) in printed.replace("\n", "")
    mail = Path(drift.email)
    assert mail.is_file()
    message = message_from_bytes(mail.read_bytes())
    assert "drift" in str(message["Subject"]).lower()


def test_registry_ends_with_v2_in_production_and_v1_previous(demo: tuple[object, str, Settings]) -> None:
    from retrain.registry import ModelRegistry

    _, _, settings = demo
    status = ModelRegistry(settings, load_spec(settings.spec).model_name).status()
    assert {alias: v.version for alias, v in status.aliases.items()} == {
        "production": 2,
        "previous": 1,
        "candidate": 3,
    }
