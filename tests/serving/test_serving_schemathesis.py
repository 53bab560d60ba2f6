"""Schemathesis (property-based, from the live OpenAPI document) against the running service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from retrain.local.launcher import ServerProcess

# Expected answers to schema-violating requests: schemathesis' list plus 413, which this service
# documents for a batch over RETRAIN_SERVING_MAX_BATCH_ROWS (its schema's maxItems) or a body too large.
CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server: ServerProcess, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{live_server.base_url}/openapi.json",
        "--checks",
        "all",  # no 5xx, status codes, content types, headers and bodies as documented, +/- data
        "--max-examples",
        "40",  # per operation and phase: bounded, ~10 s here
        "--seed",
        "20240303",
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--output-truncate",
        "true",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    summary = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, summary
    (report,) = (tmp_path / "report").glob("junit-*.xml")
    suite = ElementTree.parse(report).getroot()
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0"), summary
    tested = {case.get("name") for case in suite.iter("testcase")}
    assert tested == OPERATIONS, summary  # every documented operation was exercised


OPERATIONS = {
    "POST /predict",
    "POST /predict/batch",
    "GET /health",
    "GET /ready",
    "GET /model",
    "GET /metrics",
    "POST /admin/reload",
}
