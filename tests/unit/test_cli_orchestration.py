"""CLI plumbing without Airflow: global options anywhere, run outcomes that name what failed, cadence."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from retrain.cadence import date_range, detect_cadence, require_daily
from retrain.cli.output import hoist_global_options
from retrain.errors import CadenceError
from retrain.local.orchestrate import DagRunOutcome

DAY = date(2012, 3, 4)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status", "--spec", "s.yaml"], ["--spec", "s.yaml", "status"]),
        (["--spec", "s.yaml", "status"], ["--spec", "s.yaml", "status"]),
        (
            ["run", "--date", "2012-03-04", "--home=h", "-v"],
            ["--home=h", "-v", "run", "--date", "2012-03-04"],
        ),
        (
            ["import", "f.csv", "--spec", "s", "--home", "h"],
            ["--spec", "s", "--home", "h", "import", "f.csv"],
        ),
        (["run", "--", "--spec"], ["run", "--", "--spec"]),
    ],
)
def test_global_options_are_accepted_after_the_subcommand(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def _outcome(state: str, tasks: dict[str, str]) -> DagRunOutcome:
    return DagRunOutcome("retrain_daily", DAY, state, tasks)


def test_a_run_that_executed_no_task_is_an_error_not_a_success() -> None:
    outcome = _outcome("success", {})
    assert not outcome.executed and not outcome.succeeded
    assert outcome.problem is not None and "executed no task for 2012-03-04" in outcome.problem
    never_ran = _outcome("success", {"ingest": "None", "validate": "None"})
    assert not never_ran.succeeded


def test_the_failure_names_the_task_that_failed_not_its_downstream_tasks() -> None:
    outcome = _outcome(
        "failed",
        {
            "wait_for_drop": "success",
            "ingest": "success",
            "validate": "success",
            "features": "failed",
            "train": "upstream_failed",
            "evaluate": "upstream_failed",
        },
    )
    assert outcome.failed_task == "features"
    assert outcome.problem == "retrain_daily failed for 2012-03-04 at task features (state failed)"
    ok = _outcome("success", {"ingest": "success", "publish": "success"})
    assert ok.succeeded and ok.problem is None and ok.failed_task is None


def test_date_range_is_inclusive_and_ordered() -> None:
    assert date_range(DAY, DAY + timedelta(days=2)) == [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    with pytest.raises(Exception, match="before"):
        date_range(DAY, DAY - timedelta(days=1))


def test_daily_data_with_missing_days_is_daily() -> None:
    days = [DAY + timedelta(days=i) for i in range(60) if i % 9 != 4]
    assert detect_cadence(days).daily
    assert require_daily(days * 3, "x").days == len(days)  # one row per entity counts once


@pytest.mark.parametrize(("step", "name"), [(7, "weekly"), (30, "monthly"), (91, "quarterly")])
def test_coarser_cadences_are_refused_with_what_was_found(step: int, name: str) -> None:
    days = [DAY + timedelta(days=step * i) for i in range(12)]
    with pytest.raises(CadenceError, match=f"is {name}, not daily") as caught:
        require_daily(days, "prices.csv")
    assert "retrain retrains daily models" in str(caught.value)
