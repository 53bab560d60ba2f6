"""Drift tests share one simulated world (built once: ~1 min) whose production model was trained and
promoted by the real retrain_daily DAG, a real Pushgateway and a real SMTP server (aiosmtpd).

Tasks run in this process through dag.test() and read their settings from the environment, so each
test gets the world's RETRAIN_* variables (and the SMTP connection) through monkeypatch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from retrain.notify import SMTP_CONN_ID, smtp_connection_json
from retrain.settings import Settings
from tests.utils.drift_data import LAST_DAY, TRAIN_END, TrainedWorld, build_drift_world, publish_days
from tests.utils.env import isolated_environment
from tests.utils.prom import LocalServer, pushgateway_server
from tests.utils.smtp import SmtpServer, smtp_server


@pytest.fixture(scope="session")
def trained_world(tmp_path_factory: pytest.TempPathFactory) -> TrainedWorld:
    """Simulate, run retrain_daily on TRAIN_END (first model: promoted), publish the later days."""
    from retrain.local.orchestrate import prepare_airflow, run_dag

    world = build_drift_world(tmp_path_factory.mktemp("drift-world"))
    with isolated_environment():  # prepare_airflow exports the world's settings: none may outlive this
        os.environ.update(world.env())
        prepare_airflow(world.settings, quiet=True)
        outcome = run_dag("retrain_daily", TRAIN_END)
    assert outcome.succeeded, outcome.task_states
    register = outcome.xcoms["register"]
    assert register["outcome"] == "promoted", register
    # The curated batches retrain_daily would have published on the following days.
    publish_days(world.settings, world.spec, TRAIN_END + timedelta(days=1), LAST_DAY)
    return TrainedWorld(world, int(register["version"]))


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A real, empty Pushgateway for the whole drift session."""
    with pushgateway_server(tmp_path_factory.mktemp("drift-pushgateway")) as server:
        yield server


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) keeping every message."""
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def drift_env(trained_world: TrainedWorld, pushgateway: LocalServer, smtp: SmtpServer) -> Iterator[Settings]:
    """The world's settings in the environment, with the Pushgateway and SMTP server (drift tests only)."""
    env = {
        **trained_world.world.env(),
        "RETRAIN_PUSHGATEWAY_URL": pushgateway.address,
        **smtp.env,
    }
    with isolated_environment():  # what the tests' DAG runs export ends with the module
        os.environ.update(env)
        settings = Settings()
        conn = smtp_connection_json(settings)
        assert conn is not None
        os.environ[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = conn
        yield settings


@pytest.fixture
def inbox(smtp: SmtpServer) -> SmtpServer:
    """The SMTP server with nothing received yet."""
    smtp.clear()
    return smtp
