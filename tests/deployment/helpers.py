"""Helpers of the deployment tests: run Compose, read .env files, pick apart resolved services.

No Docker daemon runs here, so images are never built or started: `docker-compose config` (the real
Compose, Debian package docker-compose) resolves the file without a daemon, and the checks run on what
it prints.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from retrain.settings import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
MAKE_ENV = REPO_ROOT / "docker" / "make-env.sh"

# Services that run the project's own image (built from the Dockerfile).
RETRAIN_IMAGE_SERVICES = {
    "mlflow",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "serving",
}


def compose_bin() -> str:
    """The docker-compose executable; a clear failure (not a skip) when it is missing."""
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed: run `make system-deps` (Debian package docker-compose)")
    return found


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose --env-file ENV -f docker-compose.yml ARGS` with a clean environment.

    The test session's own RETRAIN_* variables must not leak in: Compose lets the process environment
    win over the env file.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [
            compose_bin(),
            "--project-directory",
            str(REPO_ROOT),
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def compose_source() -> str:
    """docker-compose.yml without its comments (they may mention ${VARIABLES} as prose)."""
    lines = COMPOSE_FILE.read_text(encoding="utf-8").splitlines()
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in lines)


def read_env_file(path: Path, commented: bool = False) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; with `commented`, also documented `# KEY=VALUE` lines."""
    prefix = r"(?:#\s*)?" if commented else ""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(rf"^{prefix}([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def as_list(value: Any) -> list[str]:
    """A command/entrypoint/test as a list of strings (Compose allows a plain string too)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


def container_ports(service: dict[str, Any]) -> set[int]:
    """Ports the service listens on inside its container: the target side of `ports`, and `expose`."""
    found: set[int] = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.add(int(port["target"]))
        else:  # "[ip:]published:target[/proto]" or "target"
            found.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    found.update(int(str(p).split("/")[0]) for p in service.get("expose", []))
    return found


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume of a service; a source starting with / is a bind mount."""
    found: list[tuple[str, str]] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((str(volume.get("source", "")), str(volume["target"])))
        else:
            parts = str(volume).split(":")
            found.append((parts[0], parts[1]))
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The resolved environment of a service as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}
