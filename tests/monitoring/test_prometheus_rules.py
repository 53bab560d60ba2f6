"""Prometheus config and alerting rules, checked by the real promtool (Debian `prometheus` package)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from retrain.settings import REPO_ROOT
from retrain.spec import load_spec
from tests.utils.prom import PROMTOOL, run_tool

PROMETHEUS_DIR = REPO_ROOT / "monitoring" / "prometheus"
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
REQUIRED_ALERTS = {
    "HighPredictionLatency",
    "HighErrorRate",
    "ModelServingDown",
    "LowPredictionVolume",
    "DataDriftDetected",
    "RealizedPerformanceDegraded",
    "RetrainingStale",
}


def alerting_rules() -> dict[str, dict[str, Any]]:
    """Every alerting rule of the committed rule files, by alert name."""
    rules: dict[str, dict[str, Any]] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules[rule["alert"]] = rule
    return rules


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_check_config_accepts_committed_config_and_its_rules() -> None:
    result = run_tool(PROMTOOL, "check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    # check config also parses the rule files its rule_files glob finds: all of them.
    for path in RULES:
        assert f"{path.name}" in out and "SUCCESS" in out


def test_promtool_check_rules() -> None:
    result = run_tool(PROMTOOL, "check", "rules", *RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULES)


def test_required_alerts_exist_with_annotations_and_a_runbook_section() -> None:
    rules = alerting_rules()
    assert set(rules) >= REQUIRED_ALERTS
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for name, rule in rules.items():
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert {"severity", "component"} <= set(rule["labels"]), name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md", name
        assert anchor in anchors, f"{name}: docs/operations.md has no heading for #{anchor}"


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing >= set(alerting_rules())
    assert quiet >= set(alerting_rules())


def test_promtool_test_rules_pass() -> None:
    result = run_tool(PROMTOOL, "test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_promtool_test_rules_catches_a_wrong_expectation(tmp_path: Path) -> None:
    # Guards against rule tests that pass vacuously: the same suite with one expected value changed fails.
    shutil.copytree(PROMETHEUS_DIR / "rules", tmp_path / "rules")
    (tmp_path / "tests").mkdir()
    broken = (
        (PROMETHEUS_DIR / "tests" / "model_quality_test.yml").read_text().replace("50% of features", "60% of")
    )
    (tmp_path / "tests" / "model_quality_test.yml").write_text(broken)
    result = run_tool(PROMTOOL, "test", "rules", tmp_path / "tests" / "model_quality_test.yml")
    assert result.returncode != 0
    assert "DataDriftDetected" in result.stdout + result.stderr


def test_rule_thresholds_match_the_default_spec() -> None:
    spec = load_spec(REPO_ROOT / "config" / "retail_demand.yaml")
    rules = alerting_rules()
    assert rules["DataDriftDetected"]["expr"].strip() == f"model_drift_share >= {spec.drift.share_threshold}"
    assert (
        rules["RealizedPerformanceDegraded"]["expr"].strip() == f"model_realized_wape > {spec.gates.max_wape}"
    )
