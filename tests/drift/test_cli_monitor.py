"""`retrain drift` and `retrain actuals` as a user runs them: a real process on the drift world.

The drift email goes to a real SMTP server started here (the CLI defines the Airflow SMTP connection
itself); the degraded-performance email goes to the local maildir sink (no SMTP configured).
"""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
from datetime import date

import pytest

from retrain.settings import Settings
from tests.utils.airflow_stack import subprocess_base_env
from tests.utils.drift_data import TrainedWorld, served_rows, write_prediction_log
from tests.utils.smtp import SmtpServer, attachment_names, html_body

pytestmark = pytest.mark.slow

CLI_DAY = date(2026, 3, 14)  # prices shifted since 03-12


def retrain(world_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**subprocess_base_env(os.environ), **world_env, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "retrain", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def first_error(stderr: str) -> str:
    """The one ``error:`` line of an expected failure (the CLI may add where its full log is)."""
    errors = [line for line in stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_drift_and_actuals_commands(
    drift_env: Settings, trained_world: TrainedWorld, smtp: SmtpServer
) -> None:
    world = trained_world.world
    write_prediction_log(world, CLI_DAY, served_rows(world, CLI_DAY, factor=1.6), trained_world.version)
    smtp.clear()

    drift = retrain({**world.env(), **smtp.env}, "drift", "--date", CLI_DAY.isoformat())
    assert drift.returncode == 0, drift.stderr
    out = drift.stdout
    assert (
        "input drift (curated window) 2026-03-08..2026-03-14 vs v1" in out and "prediction log drift" in out
    )
    assert (
        "input window 2026-03-08..2026-03-14 (7 days with data): 7,000 rows vs 56,000 reference rows" in out
    )
    assert "target sales" in out and "input: drift: key price" in out
    assert "price (key)" in out
    report = world.layout.reports_partition("drift", CLI_DAY) / "input_drift.html"
    assert f"report: {report}" in out and report.is_file()
    assert "alert: [retrain] drift detected in retail_demand on 2026-03-14" in out
    assert f"email: smtp://127.0.0.1:{smtp.port}" in out
    assert len(smtp.messages) == 1
    assert "drift detected in retail_demand on 2026-03-14" in str(smtp.messages[0]["Subject"])
    assert str(report) in html_body(smtp.messages[0])  # named: ~1.2 MB gzipped, over the 1 MB limit
    assert all(name.endswith(".html.gz") for name in attachment_names(smtp.messages[0]))

    actuals = retrain(world.env(), "actuals", "--date", CLI_DAY.isoformat())  # no SMTP: maildir
    assert actuals.returncode == 0, actuals.stderr
    assert "realized performance 2026-03-14 (retail_demand)" in actuals.stdout
    assert "1,000 of 1,000 logged" in actuals.stdout and "degraded" in actuals.stdout
    maildir = world.settings.resolved_home / "mail"
    assert f"email {maildir / 'new'}" in actuals.stdout.replace("\n", "")
    subjects = [str(m["Subject"]) for m in mailbox.Maildir(maildir, create=False)]
    assert any(
        s.startswith("[retrain] realized performance degraded in retail_demand on 2026-03-14")
        for s in subjects
    )


def test_drift_without_curated_batch_fails_with_one_line(trained_world: TrainedWorld) -> None:
    done = retrain(trained_world.world.env(), "drift", "--date", "2027-01-05", "--no-email")
    assert done.returncode == 1
    assert first_error(done.stderr).startswith("error: no curated partition for 2027-01-05"), done.stderr
    assert "Traceback" not in done.stderr


def test_actuals_without_prediction_log_fails_with_one_line(trained_world: TrainedWorld) -> None:
    done = retrain(trained_world.world.env(), "actuals", "--date", "2026-03-10")
    assert done.returncode == 1
    assert first_error(done.stderr).startswith("error: no prediction log for 2026-03-10"), done.stderr
