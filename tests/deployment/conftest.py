"""Fixtures for the deployment tests: a generated .env and docker-compose.yml as Compose resolves it.

No Docker daemon runs here, so images are never built or started: `docker-compose config` (the real
Compose, Debian package docker-compose) resolves the file without a daemon.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deployment.helpers import MAKE_ENV, run_compose


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .env written by docker/make-env.sh (fresh secrets), as an operator would create it."""
    path = tmp_path_factory.mktemp("compose") / "stack.env"
    done = subprocess.run(["sh", str(MAKE_ENV), str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="session")
def compose_config(stack_env: Path) -> Iterator[dict[str, Any]]:
    """docker-compose.yml as Compose resolves it (anchors merged, variables interpolated, paths absolute)."""
    done = run_compose(stack_env, "config")
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    config = yaml.safe_load(done.stdout)
    assert isinstance(config, dict)
    yield config


@pytest.fixture(scope="session")
def services(compose_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resolved services, by name."""
    found: dict[str, dict[str, Any]] = compose_config["services"]
    return found
