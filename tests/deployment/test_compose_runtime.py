"""The stack's configuration run through the real programs that will read it.

No Docker daemon runs on this machine, so containers are not started; instead each piece of the
environment docker-compose.yml hands a service goes through what reads it in the container: the
Postgres init script against the local PostgreSQL 15, render-config.sh + amtool for Alertmanager,
Airflow's own option catalogue for every AIRFLOW__ variable, and the project's settings classes for
every RETRAIN_ variable.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from retrain.settings import REPO_ROOT
from tests.deployment.helpers import as_list, environment

MONITORING = REPO_ROOT / "monitoring"
INIT_DB_SCRIPT = REPO_ROOT / "docker" / "postgres" / "init-databases.sh"


def test_airflow_components_share_one_configuration(services: dict[str, dict[str, Any]]) -> None:
    airflow = [n for n in services if n.startswith("airflow-")]
    envs = {
        n: {k: v for k, v in environment(services[n]).items() if k.startswith("AIRFLOW__")} for n in airflow
    }
    reference = envs["airflow-scheduler"]
    for name, env in envs.items():
        assert env == reference, f"{name} differs from the scheduler's Airflow settings"
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert 1 <= int(reference["AIRFLOW__CORE__PARALLELISM"]) <= 8
    assert reference["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/"
    assert reference["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert reference["AIRFLOW__API_AUTH__JWT_SECRET"] and reference["AIRFLOW__CORE__FERNET_KEY"]

    # Every AIRFLOW__SECTION__KEY is an option Airflow (or the retrain plugin) reads: a typo is silent.
    described = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from airflow.configuration import retrieve_configuration_description as d; "
            "print(json.dumps({s: sorted(v['options']) for s, v in d(include_providers=True).items()}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    options = json.loads(described.stdout.strip().splitlines()[-1])
    options["retrain"] = re.findall(
        r'conf\.get\("retrain", "(\w+)"', (REPO_ROOT / "plugins/retrain_links.py").read_text()
    )
    for key in reference:
        section, option = key.removeprefix("AIRFLOW__").lower().split("__", 1)
        assert option in options.get(section, []), f"{key}: Airflow has no option [{section}] {option}"


def test_retrain_settings_in_compose_are_valid_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.settings import ServingSettings

    fields = {name.upper() for name in ServingSettings.model_fields}
    for name, service in services.items():
        for key in environment(service):
            if key.startswith("RETRAIN_"):
                assert key.removeprefix("RETRAIN_") in fields, f"{name}: {key} is no retrain setting"

    env = environment(services["serving"])
    for key in [k for k in os.environ if k.startswith("RETRAIN_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = ServingSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.mail_to == ["mlops@localhost"] and settings.smtp_host == "mailpit"
    assert settings.api_key() == env["RETRAIN_SERVING_API_KEY"] and len(env["RETRAIN_SERVING_API_KEY"]) >= 32
    # The spec path is the one baked into the image (config/ is copied to /opt/retrain/config).
    assert settings.spec == Path("/opt/retrain") / "config" / "retail_demand.yaml"


def test_alertmanager_config_renders_from_the_composeenvironment(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    from tests.utils.prom import AMTOOL, run_tool

    entrypoint = as_list(services["alertmanager"]["entrypoint"])
    assert entrypoint[:2] == ["/bin/sh", "/etc/alertmanager/render-config.sh"]
    rendered = tmp_path / "alertmanager.yml"
    env = {"PATH": "/usr/bin:/bin", **environment(services["alertmanager"])}
    done = subprocess.run(
        [
            "sh",
            str(MONITORING / "alertmanager" / "render-config.sh"),
            str(MONITORING / "alertmanager/alertmanager.yml"),
            str(rendered),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    checked = run_tool(AMTOOL, "check-config", rendered)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(rendered.read_text())
    assert config["global"]["smtp_smarthost"] == "mailpit:1025"
    assert config["receivers"][0]["email_configs"][0]["to"] == "mlops@localhost"


@pytest.fixture()
def init_names() -> dict[str, str]:
    """Database/role names unique to this test (roles are cluster-wide on the shared server)."""
    tag = secrets.token_hex(4)
    return {"AIRFLOW_DB_NAME": f"deploy_af_{tag}", "MLFLOW_DB_NAME": f"deploy_ml_{tag}"}


def _psql(sql: str, user: str = "postgres", db: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


# How the postgres image runs an init script: executed when it has the mode bit, else sourced by
# its entrypoint (bash, `set -Eeo pipefail`). Sourced, the script must not leave options behind.
INIT_MODES = {
    "executed": ["sh", str(INIT_DB_SCRIPT)],
    "sourced": ["bash", "-c", 'set -Eeo pipefail; . "$0"; echo "options=$-"', str(INIT_DB_SCRIPT)],
}


@pytest.mark.parametrize("mode", sorted(INIT_MODES))
def test_postgres_init_script_creates_one_database_per_service(
    services: dict[str, dict[str, Any]], init_names: dict[str, str], mode: str
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "POSTGRES_USER": "postgres",
        "AIRFLOW_DB_PASSWORD": "p'w\"1;--",
        "MLFLOW_DB_PASSWORD": "second",
        **init_names,
    }
    try:
        done = subprocess.run(INIT_MODES[mode], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        if mode == "sourced":
            options = done.stdout.strip().splitlines()[-1]
            assert options.startswith("options=") and "u" not in options, "the script left `set -u` on"
        for name in init_names.values():
            owner = _psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'")
            assert owner == name
            whoami = _psql("SELECT current_user || '@' || current_database()", user=name, db=name)
            assert whoami == f"{name}@{name}"
        # A password with quotes went in as data, not SQL.
        role = init_names["AIRFLOW_DB_NAME"]
        assert _psql(f"SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = '{role}'") == "t"
        # A failing statement (the roles exist now) fails the script, so the container's init fails.
        again = subprocess.run(INIT_MODES[mode], env=env, capture_output=True, text=True, check=False)
        assert again.returncode != 0 and "already exists" in again.stderr
    finally:
        for name in init_names.values():
            _psql(f'DROP DATABASE IF EXISTS "{name}"')
            _psql(f'DROP ROLE IF EXISTS "{name}"')

    # Compose connects with the script's default names and the passwords it hands the postgres service.
    script = INIT_DB_SCRIPT.read_text()
    pg_env = environment(services["postgres"])
    for prefix, service, key in (
        ("AIRFLOW", "airflow-scheduler", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
        ("MLFLOW", "mlflow", "MLFLOW_BACKEND_STORE_URI"),
    ):
        default = re.search(rf"\$\{{{prefix}_DB_NAME:-(\w+)\}}", script)
        assert default is not None
        url = urlsplit(environment(services[service])[key])
        assert (url.username, url.path.lstrip("/")) == (default.group(1), default.group(1))
        assert url.password == pg_env[f"{prefix}_DB_PASSWORD"]
