"""Alertmanager config: amtool check-config, the env rendering script, and a live Alertmanager
(Debian `prometheus-alertmanager`) that inhibits quality alerts while serving is down and mails a real
SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from retrain.settings import REPO_ROOT
from tests.utils.prom import AMTOOL, LocalServer, http_json, run_tool, wait_for

if TYPE_CHECKING:
    from tests.monitoring.conftest import SmtpSink

ALERTMANAGER_DIR = REPO_ROOT / "monitoring" / "alertmanager"
COMMITTED = ALERTMANAGER_DIR / "alertmanager.yml"
RENDER = ALERTMANAGER_DIR / "render-config.sh"


def render(out: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run render-config.sh with only the given variables set; returns the parsed result."""
    subprocess.run(
        ["sh", str(RENDER), str(COMMITTED), str(out)], env={"PATH": os.environ["PATH"], **env}, check=True
    )
    config: dict[str, Any] = yaml.safe_load(out.read_text())
    return config


def alert(name: str, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus posts it to /api/v2/alerts."""
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} (test)"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


def test_amtool_check_config_accepts_committed_file() -> None:
    result = run_tool(AMTOOL, "check-config", COMMITTED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "1 receivers" in result.stdout


def test_render_without_env_keeps_the_committed_config(tmp_path: Path) -> None:
    out = tmp_path / "alertmanager.yml"
    render(out, {})
    assert out.read_text() == COMMITTED.read_text()


def test_render_takes_smtp_settings_from_env_and_stays_valid(tmp_path: Path) -> None:
    out = tmp_path / "alertmanager.yml"
    config = render(
        out,
        {
            "RETRAIN_SMTP_HOST": "smtp.example.org",
            "RETRAIN_SMTP_PORT": "587",
            "RETRAIN_SMTP_USER": "bot",
            "RETRAIN_SMTP_PASSWORD": "it's|a&pa\\ss",
            "RETRAIN_SMTP_STARTTLS": "True",
            "RETRAIN_MAIL_FROM": "alerts@example.org",
            "RETRAIN_MAIL_TO": '["a@example.org","b@example.org"]',
        },
    )
    assert config["global"] == {
        "smtp_smarthost": "smtp.example.org:587",
        "smtp_from": "alerts@example.org",
        "smtp_auth_username": "bot",
        "smtp_auth_password": "it's|a&pa\\ss",
        "smtp_require_tls": True,
        "resolve_timeout": "5m",
    }
    assert config["receivers"][0]["email_configs"][0]["to"] == "a@example.org, b@example.org"
    result = run_tool(AMTOOL, "check-config", out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_routing_sends_every_component_to_email_with_its_repeat_interval() -> None:
    cases = {
        ("alertname=ModelServingDown", "severity=critical", "component=serving"): "email",
        ("alertname=DataDriftDetected", "severity=warning", "component=model_quality"): "email",
        ("alertname=RetrainingStale", "severity=warning", "component=pipeline"): "email",
    }
    for labels, receiver in cases.items():
        result = run_tool(AMTOOL, "config", "routes", "test", f"--config.file={COMMITTED}", *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receiver
    routes = yaml.safe_load(COMMITTED.read_text())["route"]
    assert routes["repeat_interval"] == "4h" and routes["group_by"] == ["alertname", "dataset"]


def test_live_alertmanager_inhibits_quality_alerts_while_serving_is_down(
    smtp_sink: SmtpSink, alertmanager_for: Callable[..., LocalServer]
) -> None:
    am = alertmanager_for(smtp_sink, group_wait="1s")
    http_json(
        f"{am.url}/api/v2/alerts",
        [
            alert("ModelServingDown", severity="critical", component="serving", job="serving"),
            alert(
                "DataDriftDetected", severity="warning", component="model_quality", dataset="retail_demand"
            ),
            alert("HighErrorRate", severity="critical", component="serving"),
            alert("RetrainingStale", severity="warning", component="pipeline", dataset="retail_demand"),
        ],
    )

    def states() -> dict[str, str] | None:
        found = {a["labels"]["alertname"]: a["status"]["state"] for a in http_json(f"{am.url}/api/v2/alerts")}
        return found if len(found) == 4 else None

    assert wait_for(states, 10, "alerts in Alertmanager") == {
        "ModelServingDown": "active",
        "DataDriftDetected": "suppressed",
        "HighErrorRate": "suppressed",
        "RetrainingStale": "active",
    }
    # Emails go out for the active alerts only, through the rendered SMTP settings.
    wait_for(lambda: len(smtp_sink.messages) >= 2, 20, "two alert emails")
    subjects = smtp_sink.subjects()
    assert any(s.startswith("[retrain] FIRING (1): ModelServingDown") for s in subjects), subjects
    assert "[retrain] FIRING (1): RetrainingStale on retail_demand" in subjects, subjects
    assert not any("DataDriftDetected" in s or "HighErrorRate" in s for s in subjects), subjects
    message = smtp_sink.messages[0]
    assert message["From"] == "alerts@retrain.test" and message["To"] == "oncall@retrain.test"
