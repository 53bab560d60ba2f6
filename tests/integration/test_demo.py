"""`retrain demo` end to end on a throw-away home: the story the README tells must keep happening, quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import pytest

from retrain.cli.demo import DemoReport
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import load_spec
from tests.utils.env import isolated_environment

pytestmark = pytest.mark.slow


TERMINAL_COLUMNS = 80
MAX_LINES = 80


@dataclass(frozen=True)
class DemoRun:
    """`retrain demo` as a user runs it: its report, what the terminal showed, the home it left."""

    report: DemoReport
    printed: str
    settings: Settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo command in a subprocess on a fresh home, an 80-column terminal, no other world's variables."""
    home = tmp_path_factory.mktemp("demo")
    gx_root = home / "gx"
    shutil.copytree(REPO_ROOT / "gx", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
    settings = Settings(home=home / "var", gx_root=gx_root)
    with isolated_environment():
        env = {
            **os.environ,
            "RETRAIN_HOME": str(settings.resolved_home),
            "RETRAIN_GX_ROOT": str(gx_root),
            "COLUMNS": str(TERMINAL_COLUMNS),
            "TERM": "dumb",
        }
    done = subprocess.run(
        [sys.executable, "-m", "retrain", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    return DemoRun(DemoReport.read(settings), done.stdout, settings)


def test_the_terminal_tells_the_story_in_80_lines_without_noise(demo: DemoRun) -> None:
    lines = demo.printed.splitlines()
    print(f"\nretrain demo printed {len(lines)} lines at {TERMINAL_COLUMNS} columns")
    assert len(lines) <= MAX_LINES, demo.printed
    assert all(len(line) <= TERMINAL_COLUMNS for line in lines), demo.printed
    noise = [line for line in lines if "Traceback" in line or "Warning" in line or "WARNING" in line]
    assert not noise, f"library output reached the terminal: {noise}"
    # What the terminal hid is kept, not lost.
    assert (demo.settings.resolved_home / "logs" / "retrain.log").stat().st_size > 0


def test_every_scene_ends_as_the_readme_says(demo: DemoRun) -> None:
    report = demo.report
    outcomes = [(title, verdict) for title, _, verdict, _ in report.scenes]
    assert outcomes == [
        ("first model", "promoted"),
        ("one more day of data", "promoted"),
        ("bad batch (duplicate keys)", "failed at validate"),
        ("degraded candidate (2 boosting rounds)", "rejected"),
        ("price shift (drift check)", "drift alert"),
    ]
    quarantined = [outcome for _, outcome, _ in report.ingested]
    assert quarantined.count("quarantined") == 1


def test_serving_switched_versions_without_restart(demo: DemoRun) -> None:
    report, printed = demo.report, demo.printed
    versions = [batch.version for batch in report.served]
    assert versions == [1, 2]
    assert all(len(batch.predictions) == 5 for batch in report.served)
    assert report.served[0].predictions != report.served[1].predictions
    assert "production moved to v2" in printed


def test_drift_report_and_email_are_where_the_demo_says(demo: DemoRun) -> None:
    report, printed = demo.report, demo.printed
    drift = report.drift
    assert "price" in drift.drifted
    assert drift.report.is_file() and drift.report.stat().st_size > 10_000
    assert str(drift.report) in printed.replace("\n", "")
    mail = Path(drift.email)
    assert mail.is_file()
    message = message_from_bytes(mail.read_bytes())
    assert "drift" in str(message["Subject"]).lower()


def test_registry_ends_with_v2_in_production_and_v1_previous(demo: DemoRun) -> None:
    from retrain.registry import ModelRegistry

    settings = demo.settings
    status = ModelRegistry(settings, load_spec(settings.spec).model_name).status()
    assert {alias: v.version for alias, v in status.aliases.items()} == {
        "production": 2,
        "previous": 1,
        "candidate": 3,
    }
