"""Session-wide test environment: Airflow and retrain point at a throw-away home, never at ./var."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain.settings import REPO_ROOT
from tests.utils.env import clear_world_variables


def pytest_configure(config: pytest.Config) -> None:
    """Airflow reads its configuration at import time, so the environment is set before any test imports it."""
    session_home = Path(tempfile.mkdtemp(prefix="retrain-tests-"))
    os.environ["RETRAIN_TEST_SESSION_HOME"] = str(session_home)
    os.environ["AIRFLOW_HOME"] = str(session_home / "airflow")
    os.environ["AIRFLOW_CONFIG"] = str(REPO_ROOT / "airflow.cfg")
    os.environ["RETRAIN_REPO"] = str(REPO_ROOT)
    os.environ["RETRAIN_HOME"] = str(session_home / "home")
    clear_world_variables()


@pytest.fixture(scope="session")
def session_home() -> Iterator[Path]:
    """The per-session scratch directory (Airflow metadata DB lives under it)."""
    yield Path(os.environ["RETRAIN_TEST_SESSION_HOME"])
