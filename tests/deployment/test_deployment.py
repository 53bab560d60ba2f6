"""docker-compose.yml: resolved by the real Compose, then checked against the repository it ships with.

No Docker daemon runs on this machine, so images are not built and containers are not started.
What runs for real: `docker-compose config` (Debian's docker-compose 1.29, which resolves and validates
the file without a daemon) and docker/make-env.sh. The rest are structural checks that fail when a
file, port, service name or variable drifts between compose, .env.example and the repository
(monitoring/ configs, the init script). test_compose_runtime.py feeds the resolved environment to the
programs that read it; test_image.py covers the Dockerfile.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography.fernet import Fernet

from retrain.settings import REPO_ROOT
from tests.deployment.helpers import (
    ENV_EXAMPLE,
    MAKE_ENV,
    RETRAIN_IMAGE_SERVICES,
    as_list,
    compose_source,
    container_ports,
    environment,
    mounts,
    read_env_file,
    run_compose,
)

MONITORING = REPO_ROOT / "monitoring"
INIT_DB_SCRIPT = REPO_ROOT / "docker" / "postgres" / "init-databases.sh"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0"}
# A bare `host:port` (e.g. RETRAIN_PUSHGATEWAY_URL, one item of MLFLOW_SERVER_ALLOWED_HOSTS).
HOST_PORT = re.compile(r"^([a-z][a-z0-9-]*):(\d+)$")


def _secret_names() -> list[str]:
    """The variables docker/make-env.sh fills with random values."""
    text = MAKE_ENV.read_text(encoding="utf-8")
    return re.findall(r"\b([A-Z][A-Z0-9_]+)=\)?", text.split("case $line in", 1)[1].split("esac", 1)[0])


def test_compose_resolves_the_whole_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "postgres",
        "mlflow",
        "airflow-init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "serving",
        "prometheus",
        "pushgateway",
        "alertmanager",
        "grafana",
        "mailpit",
    }
    for name in RETRAIN_IMAGE_SERVICES:
        assert services[name]["build"]["target"] == "runtime", name
        assert Path(services[name]["build"]["context"]) == REPO_ROOT, name
    # One image for all of them, so `docker compose build` builds it once.
    assert len({services[name]["image"] for name in RETRAIN_IMAGE_SERVICES}) == 1


def test_every_secret_is_required_and_generated(stack_env: Path) -> None:
    compose_text = compose_source()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose_text))
    generated = set(_secret_names())
    assert required == generated, "secrets compose requires and secrets make-env.sh generates differ"

    # The committed example has them empty: compose must refuse it and say how to fix it.
    refused = run_compose(ENV_EXAMPLE, "config")
    assert refused.returncode != 0
    assert "docker/make-env.sh" in refused.stderr

    values = read_env_file(stack_env)
    for name in generated:
        assert len(values[name]) >= 32, f"{name} was not filled by make-env.sh"
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # raises on a malformed key
    # PyJWT warns below 64 bytes for HS512, the algorithm Airflow uses with jwt_secret.
    assert len(values["AIRFLOW_JWT_SECRET"]) >= 64
    assert len(set(values[name] for name in generated)) == len(generated), "secrets must all differ"


def test_make_env_never_overwrites_existing_secrets(stack_env: Path) -> None:
    before = stack_env.read_bytes()
    again = subprocess.run(["sh", str(MAKE_ENV), str(stack_env)], capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    assert stack_env.read_bytes() == before
    assert stack_env.stat().st_mode & 0o077 == 0, "the .env holds secrets: owner-only permissions"


def test_env_example_documents_exactly_the_compose_variables() -> None:
    compose_text = compose_source()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", compose_text))
    documented = read_env_file(ENV_EXAMPLE, commented=True)
    assert used - set(documented) == set(), "compose variables missing from .env.example"
    # COMPOSE_PROJECT_NAME is read by Compose itself, not interpolated.
    assert set(documented) - used == {"COMPOSE_PROJECT_NAME"}, ".env.example lists unused variables"
    # Where compose has a fallback, it is the documented value (no two defaults to keep in sync by eye).
    for name, default in re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", compose_text):
        assert documented[name] == default, f"{name}: compose default {default!r} != .env.example"


def test_env_example_sets_no_setting_the_local_cli_would_pick_up() -> None:
    # pydantic-settings also reads ./.env: an active RETRAIN_SPEC=/opt/retrain/... or
    # RETRAIN_SMTP_HOST=mailpit there would break `retrain` commands run from the repository root.
    from serving.settings import ServingSettings

    settings_vars = {f"RETRAIN_{name.upper()}" for name in ServingSettings.model_fields}
    active = set(read_env_file(ENV_EXAMPLE))
    assert active & settings_vars == set()
    assert {"RETRAIN_SPEC", "RETRAIN_SMTP_HOST"} <= set(read_env_file(ENV_EXAMPLE, commented=True))


def test_bind_mounts_are_repository_files(services: dict[str, dict[str, Any]]) -> None:
    bound: dict[str, str] = {}
    for name, service in services.items():
        for source, target in mounts(service):
            if not source.startswith("/"):
                continue
            path = Path(source)
            assert path.is_relative_to(REPO_ROOT), f"{name} mounts {source} from outside the repository"
            assert path.exists(), f"{name} mounts {source}, which does not exist"
            bound[f"{name}:{target}"] = source
    assert bound == {
        "postgres:/docker-entrypoint-initdb.d/10-init-databases.sh": str(INIT_DB_SCRIPT),
        "prometheus:/etc/prometheus": str(MONITORING / "prometheus"),
        "alertmanager:/etc/alertmanager": str(MONITORING / "alertmanager"),
        "grafana:/etc/grafana/provisioning": str(MONITORING / "grafana" / "provisioning"),
        "grafana:/var/lib/grafana/dashboards": str(MONITORING / "grafana" / "dashboards"),
    }


def test_container_paths_in_commands_exist_in_the_mounts(services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, service in services.items():
        binds = [(Path(s), t) for s, t in mounts(service) if s.startswith("/")]
        words = as_list(service.get("entrypoint")) + as_list(service.get("command"))
        for word in words:
            path = word.split("=", 1)[-1]
            for source, target in binds:
                if path.startswith(target + "/"):
                    assert (source / path[len(target) + 1 :]).is_file(), f"{name}: {word} is not in {source}"
                    checked += 1
    # prometheus.yml, render-config.sh, alertmanager.yml
    assert checked >= 3
    # The dashboard provider reads the folder compose mounts the dashboards at.
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/retrain.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert list((MONITORING / "grafana" / "dashboards").glob("*.json"))


def _referenced_addresses(services: dict[str, dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(where, host, port) of every service address the stack's configuration uses."""
    found: list[tuple[str, str, int]] = []
    prometheus = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for group in job["static_configs"]:
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                found.append((f"prometheus job {job['job_name']}", host, int(port)))
    for manager in prometheus["alerting"]["alertmanagers"]:
        for target in manager["static_configs"][0]["targets"]:
            host, port = target.rsplit(":", 1)
            found.append(("prometheus alerting", host, int(port)))
    datasources = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    for source in datasources["datasources"]:
        url = urlsplit(source["url"])
        found.append((f"grafana datasource {source['name']}", str(url.hostname), int(url.port or 80)))
    alertmanager = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    host, port = alertmanager["global"]["smtp_smarthost"].rsplit(":", 1)
    found.append(("alertmanager smtp_smarthost", host, int(port)))
    for name, service in services.items():
        for key, value in environment(service).items():
            found += [(f"{name} {key}", host, port) for host, port in _addresses_in(value)]
    return found


def _addresses_in(value: str) -> list[tuple[str, int]]:
    """Host and port of a URL with an explicit port, or of each bare `host:port` in a list."""
    if "://" in value:
        url = urlsplit(value)
        return [(url.hostname, url.port)] if url.hostname and url.port else []
    return [
        (m.group(1), int(m.group(2))) for item in value.split(",") if (m := HOST_PORT.match(item.strip()))
    ]


def test_every_address_names_a_service_and_a_port_it_listens_on(
    services: dict[str, dict[str, Any]],
) -> None:
    addresses = _referenced_addresses(services)
    remote = [(where, host, port) for where, host, port in addresses if host not in LOCAL_HOSTS]
    for where, host, port in remote:
        assert host in services, f"{where} points at {host}:{port}, but compose has no service {host}"
        assert port in container_ports(services[host]), f"{where}: {host} does not listen on {port}"
    hosts = {host for _, host, _ in remote}
    assert {"serving", "pushgateway", "alertmanager", "prometheus", "mailpit", "mlflow", "postgres"} <= hosts
    assert "airflow-api-server" in hosts


def test_listen_ports_and_probes_match_the_published_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        words = as_list(service.get("entrypoint")) + as_list(service.get("command"))
        for i, word in enumerate(words):
            if word == "--port":
                assert int(words[i + 1]) in container_ports(service), name
            elif word.startswith("--port="):
                assert int(word.split("=", 1)[1]) in container_ports(service), name
        probe = " ".join(as_list(service.get("healthcheck", {}).get("test")))
        for _, port in re.findall(r"//(127\.0\.0\.1|localhost):(\d+)", probe):
            assert int(port) in container_ports(service), f"{name} probes port {port} it does not listen on"


def test_serving_and_the_pipeline_share_the_registry_and_the_data(
    services: dict[str, dict[str, Any]],
) -> None:
    mlflow = services["mlflow"]
    words = as_list(mlflow["command"])
    assert words[:2] == ["mlflow", "server"] and "--serve-artifacts" in words
    assert "--port=5000" in words
    assert environment(mlflow)["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://mlflow:")
    artifacts = next(w.split("=", 1)[1] for w in words if w.startswith("--artifacts-destination="))
    assert ("mlflow-artifacts", artifacts) in mounts(mlflow), "artifacts must live on the named volume"
    for name in ("serving", "airflow-scheduler"):
        env = environment(services[name])
        assert env["RETRAIN_MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert env["RETRAIN_MLFLOW_ARTIFACT_ROOT"] == "mlflow-artifacts:/", name
        # Serving appends the prediction log the pipeline's drift task reads back.
        assert ("retrain-data", env["RETRAIN_HOME"]) in mounts(services[name]), name
    allowed = environment(mlflow)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert "mlflow:5000" in allowed, "MLflow would reject the Host header the other services send"


def test_dependencies_wait_for_something_that_can_happen(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            condition = rule["condition"] if isinstance(rule, dict) else "service_started"
            assert target in services, f"{name} depends on unknown {target}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is a job: no restart"
        if name == "airflow-init":
            assert as_list(service["command"]) == ["airflow", "db", "migrate"]
            assert "healthcheck" not in service
        else:
            assert service.get("restart") == "unless-stopped", name
            assert "healthcheck" in service, f"long-running {name} needs a healthcheck"
    airflow = [n for n in services if n.startswith("airflow-") and n != "airflow-init"]
    for name in airflow:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
