"""retrain_daily on the real Airflow stack, started with `retrain stack up` (api-server, scheduler,
dag-processor, triggerer, MLflow server) on free ports in a throw-away home.

The scenes run in order on one stack, the way a user drives it: log in for a JWT, trigger a day through
the REST API, follow the task links to MLflow, backfill two older days, look at the UI in a real
browser, then `retrain stack down` and check that no process or port is left behind.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain.local.airflow_client import AirflowClient, midnight
from retrain.local.orchestrate import airflow_home
from retrain.local.processes import free_port, start_process, stop_process, wait_until
from retrain.local.stack import ADMIN_USER
from retrain.local.stack_state import read_state, state_file
from tests.utils.airflow_stack import (
    History,
    chromium_page,
    kill_all,
    listening,
    prepare_history,
    stack_processes,
    subprocess_base_env,
)

pytestmark = pytest.mark.slow

DAG_ID = "retrain_daily"
TASKS = ["wait_for_drop", "ingest", "validate", "features", "train", "evaluate", "register", "publish"]
START = date(2026, 1, 1)
HISTORY_DAYS = 70
FIRST = START + timedelta(days=HISTORY_DAYS)  # first day with a landing drop but no curated data
TRIGGERED = FIRST + timedelta(days=2)  # the manual run: the newest data
BACKFILLED = [FIRST, FIRST + timedelta(days=1)]  # older days, backfilled after it


@dataclass
class Stack:
    history: History
    process: subprocess.Popen[bytes]
    output: Path
    cli: list[str]
    env: dict[str, str]
    api_url: str
    mlflow_url: str
    ports: tuple[int, int]
    client: AirflowClient
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def airflow_home(self) -> Path:
        return airflow_home(self.history.settings)

    def retrain(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.cli, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `airflow` CLI with the environment `retrain stack env` prints, as a user would eval it."""
        if "airflow_env" not in self.seen:
            exports = self.retrain("stack", "env")
            assert exports.returncode == 0, exports.stderr
            env = dict(self.env)
            for line in exports.stdout.splitlines():
                key, _, value = shlex.split(line)[1].partition("=")
                env[key] = value
            self.seen["airflow_env"] = env
        airflow = str(Path(sys.executable).with_name("airflow"))
        return subprocess.run(
            [airflow, *args], env=self.seen["airflow_env"], capture_output=True, text=True, timeout=120
        )

    def registry(self) -> Any:
        """The model registry through the stack's MLflow server (what the tasks wrote to)."""
        from retrain.registry import ModelRegistry

        settings = self.history.settings.model_copy(update={"mlflow_tracking_uri": self.mlflow_url})
        return ModelRegistry(settings, self.history.spec.model_name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("airflow-stack")
    history = prepare_history(root, START, HISTORY_DAYS, extra_days=3)
    settings = history.settings
    port, mlflow_port = free_port(), free_port()
    env = {**subprocess_base_env(os.environ), "RETRAIN_GX_ROOT": str(settings.gx_root)}
    cli = [sys.executable, "-m", "retrain", "--home", str(settings.home), "--spec", str(settings.spec)]
    output = root / "stack-up.log"
    command = ["stack", "up", "--port", str(port), "--mlflow-port", str(mlflow_port), "--no-schedule"]
    # No scheduled runs: today's interval has no landing drop and would hold max_active_runs=1.
    process = start_process([*cli, *command], env, output)
    home = airflow_home(settings)
    try:
        _wait_until_up(settings, process, output)
        password = json.loads((home / "simple_auth_manager_passwords.json").read_text())[ADMIN_USER]
        api_url, mlflow_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mlflow_port}"
        client = AirflowClient(api_url, ADMIN_USER, password)
        yield Stack(history, process, output, cli, env, api_url, mlflow_url, (port, mlflow_port), client)
    finally:
        stop_process(process, 90, sig=signal.SIGINT)  # Ctrl-C: the command stops its stack
        leftovers = stack_processes(home)
        described = [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in leftovers]
        kill_all(leftovers)
        assert not leftovers, f"processes left running: {described}"


def _wait_until_up(settings: Any, process: subprocess.Popen[bytes], output: Path) -> None:
    def recorded() -> bool:
        code = process.poll()
        assert code is None, f"`retrain stack up` exited with {code}:\n{output.read_text()[-3000:]}"
        return state_file(settings).exists()

    wait_until(
        recorded,
        240,
        "`retrain stack up` to record the stack",
        interval=1,
        detail=lambda: output.read_text()[-3000:],
    )


def test_stack_up_prints_urls_and_status_is_healthy(stack: Stack) -> None:
    printed = stack.output.read_text()
    assert "retrain stack is up" in printed
    assert stack.api_url in printed and stack.mlflow_url in printed
    assert stack.client.token()  # the printed password is the one in the file
    status = stack.retrain("stack", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    body = json.loads(status.stdout)
    assert body["running"] is True
    assert body["processes"] == dict.fromkeys(
        ["mlflow", "api-server", "scheduler", "dag-processor", "triggerer"], True
    )
    assert set(body["health"]) >= {"metadatabase", "scheduler", "dag_processor", "triggerer", "mlflow"}
    assert set(body["health"].values()) == {"healthy"}


def test_rest_api_needs_a_jwt_from_auth_token(stack: Stack) -> None:
    assert httpx.get(f"{stack.api_url}/api/v2/dags", timeout=30).status_code == 401
    wrong = httpx.post(
        f"{stack.api_url}/auth/token", json={"username": ADMIN_USER, "password": "wrong"}, timeout=30
    )
    assert wrong.status_code == 401
    token = stack.client.token()
    dags = httpx.get(f"{stack.api_url}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert dags.status_code == 200
    assert DAG_ID in [d["dag_id"] for d in dags.json()["dags"]]


def test_dag_imports_cleanly_for_the_airflow_cli_and_the_api(stack: Stack) -> None:
    dag = stack.client.wait_for_dag(DAG_ID)
    assert dag["max_active_runs"] == 1
    assert stack.client.import_errors() == []
    errors = stack.airflow("dags", "list-import-errors", "-o", "json")
    assert errors.returncode == 0, errors.stderr
    listed = errors.stdout.strip().splitlines()[-1]
    assert listed in ("[]", "No data found"), errors.stdout
    dags = stack.airflow("dags", "list", "-o", "json")
    assert dags.returncode == 0, dags.stderr
    assert DAG_ID in [d["dag_id"] for d in json.loads(dags.stdout.strip().splitlines()[-1])]


def test_triggered_run_succeeds_and_promotes_the_first_model(stack: Stack) -> None:
    client = stack.client
    client.set_paused(DAG_ID, False)
    assert client.get_json(f"/api/v2/dags/{DAG_ID}")["is_paused"] is False
    response = client.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": midnight(TRIGGERED), "conf": {"date": TRIGGERED.isoformat()}},
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]

    result = client.wait_for_run(DAG_ID, run_id, timeout=420)
    assert result.succeeded, result.task_states
    assert result.run_type == "manual" and result.conf["date"] == TRIGGERED.isoformat()
    assert result.task_states == dict.fromkeys(TASKS, "success")

    register = client.xcom(DAG_ID, run_id, "register")
    assert register["outcome"] == "promoted", register["failed_gates"]
    production = stack.registry().production()
    assert production is not None
    assert production.version == register["version"] == 1
    assert production.data_end == TRIGGERED
    stack.seen["manual_run"] = run_id


def test_task_buttons_link_to_the_mlflow_run(stack: Stack) -> None:
    run_id = stack.seen["manual_run"]
    client = stack.client
    train = client.xcom(DAG_ID, run_id, "train")
    mlflow_run = train["result"]["run_id"]
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
    links = client.get_json(f"{path}/train/links")["extra_links"]
    assert links == {"MLflow run": f"{stack.mlflow_url}/#/runs/{mlflow_run}"}
    assert client.get_json(f"{path}/ingest/links")["extra_links"] == {"MLflow run": None}
    # The linked run exists on the MLflow server and is the one trained for the triggered day.
    got = httpx.get(f"{stack.mlflow_url}/api/2.0/mlflow/runs/get", params={"run_id": mlflow_run}, timeout=30)
    assert got.status_code == 200, got.text
    tags = {t["key"]: t["value"] for t in got.json()["run"]["data"]["tags"]}
    assert tags["retrain.run_date"] == TRIGGERED.isoformat()
    plugin = next(p for p in client.get_json("/api/v2/plugins")["plugins"] if p["name"] == "retrain_links")
    views = {v["name"]: v["href"] for v in plugin["external_views"]}
    assert views == {
        "MLflow experiments": f"{stack.mlflow_url}/#/experiments",
        "MLflow model registry": f"{stack.mlflow_url}/#/models",
    }


def test_backfill_of_older_days_registers_but_never_promotes(stack: Stack) -> None:
    client = stack.client
    response = client.request(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": midnight(BACKFILLED[0]),
            "to_date": midnight(BACKFILLED[-1]),
            "max_active_runs": 1,
            "reprocess_behavior": "completed",
        },
    )
    assert response.status_code == 200, response.text
    backfill = response.json()
    assert backfill["dag_id"] == DAG_ID and backfill["max_active_runs"] == 1
    run_ids = client.backfill_run_ids(DAG_ID, BACKFILLED[0], BACKFILLED[-1])
    assert run_ids == [f"backfill__{midnight(d)}" for d in BACKFILLED]

    registry = stack.registry()
    for run_id, day in zip(run_ids, BACKFILLED, strict=True):
        result = client.wait_for_run(DAG_ID, run_id, timeout=420)
        assert result.run_type == "backfill" and result.logical_date[:10] == day.isoformat()
        assert result.succeeded, result.task_states
        assert result.task_states == dict.fromkeys(TASKS, "success")
        register = client.xcom(DAG_ID, run_id, "register")
        assert register["outcome"] == "rejected"
        # Other gates may fail too (production already trained on this holdout); freshness always does.
        gates = {g["name"]: g for g in register["report"]["gates"]}
        assert gates["freshness"]["passed"] is False, gates["freshness"]
        assert "freshness" in register["failed_gates"]
        assert registry.get(register["version"]).data_end == day
    production = registry.production()
    assert production is not None and production.version == 1 and production.data_end == TRIGGERED
    assert len(registry.versions()) == 3

    listed = stack.airflow("dags", "list-runs", DAG_ID, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    states = {r["run_id"]: r["state"] for r in json.loads(listed.stdout.strip().splitlines()[-1])}
    assert sorted(states.values()) == ["success"] * 3


def test_ui_login_page_and_dag_page_render_in_chromium(stack: Stack, tmp_path: Path) -> None:
    with chromium_page(tmp_path / "profile") as page:
        page.open(f"{stack.api_url}/dags/{DAG_ID}")
        page.wait_for_text("Sign into Airflow", "Username", "Password")
        # What the login form does: keep the JWT from POST /auth/token in the `_token` cookie.
        page.set_cookie(stack.api_url, "_token", stack.client.token())
        page.open(f"{stack.api_url}/dags/{DAG_ID}")
        text = page.wait_for_text(DAG_ID, "Trigger", "mlops", *TASKS)
        assert "Sign into Airflow" not in text
        shot = page.screenshot(tmp_path / "dag.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_stack_down_stops_every_process_and_frees_the_ports(stack: Stack) -> None:
    assert stack_processes(stack.airflow_home), "the stack should be running before `down`"
    down = stack.retrain("stack", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped:" in down.stdout and "scheduler" in down.stdout
    assert stack.process.wait(timeout=90) == 0  # the foreground `up` noticed and exited cleanly
    assert "stop requested by `retrain stack down`" in stack.output.read_text()
    assert read_state(stack.history.settings) is None
    assert stack_processes(stack.airflow_home) == []
    assert listening(stack.ports) == []
    status = stack.retrain("stack", "status")
    assert status.returncode == 1 and "no stack running" in status.stdout
