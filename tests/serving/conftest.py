"""Serving fixtures: the trained world of `tests.serving.world` (built once per session) and a live server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from retrain.local.launcher import ServerProcess, running_server
from tests.serving.world import ServingWorld, build_world, server_env


@pytest.fixture(scope="session")
def serving_world(tmp_path_factory: pytest.TempPathFactory) -> ServingWorld:
    """Two registered versions of a small retail model; version 1 holds @production."""
    return build_world(tmp_path_factory.mktemp("serving-world"))


@pytest.fixture(scope="session")
def live_server(
    serving_world: ServingWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One uvicorn server on the session registry (version 1), shared by the read-only tests."""
    home = tmp_path_factory.mktemp("live-server")
    settings = serving_world.registry_copy(home)
    with running_server(server_env(settings), home / "server.log") as server:
        yield server


@pytest.fixture
def client(live_server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client on the shared server."""
    with httpx.Client(base_url=live_server.base_url, timeout=10.0) as http:
        yield http
