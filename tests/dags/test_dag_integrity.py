"""Every DAG imports cleanly, follows the project's policy, and keeps heavy libraries out of parsing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from retrain.settings import REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "dags"
HEAVY_MODULES = ("xgboost", "mlflow", "great_expectations", "evidently", "sklearn")


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS_FOLDER))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "retrain_daily" in dagbag.dag_ids


def test_policy(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.max_active_runs == 1, f"{dag_id} max_active_runs={dag.max_active_runs}"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries}"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id} has no failure notification"


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS_FOLDER.glob("*.py")))
def test_parsing_loads_no_heavy_library(dag_file: str) -> None:
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('dag_under_test', {str(DAGS_FOLDER / dag_file)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"{dag_file} imports {loaded} at parse time"
