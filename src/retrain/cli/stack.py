"""`retrain stack up|status|down|env`: the real Airflow stack plus an MLflow server, without Docker.

Like `airflow standalone`, but for this project: the repo's DAGs and config, LocalExecutor, the simple
auth manager with an admin password kept under the home, and an MLflow server the tasks log to.
"""

from __future__ import annotations

import json
import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from types import FrameType
from typing import Annotated

import httpx
import typer

from retrain.cli.common import cli_context, console
from retrain.local.orchestrate import airflow_environment
from retrain.local.stack import ADMIN_USER, LocalStack
from retrain.local.stack_state import StackState, read_state, state_file, stop_recorded
from retrain.settings import Settings


class StackAction(StrEnum):
    """What `retrain stack` does."""

    up = "up"
    status = "status"
    down = "down"
    env = "env"


ActionArg = Annotated[
    StackAction,
    typer.Argument(
        help="up: start (foreground; Ctrl-C stops); status: components and health; down: stop; "
        'env: shell exports for the `airflow` CLI (eval "$(retrain stack env)").'
    ),
]
PortOption = Annotated[
    int, typer.Option("--port", min=1, max=65535, help="Airflow api-server (UI + REST) port.")
]
HostOption = Annotated[str, typer.Option("--host", help="Interface the api-server binds.")]
MlflowPortOption = Annotated[
    int, typer.Option("--mlflow-port", min=0, max=65535, help="MLflow server port; 0: no MLflow server.")
]
ScheduleFlag = Annotated[
    bool,
    typer.Option(
        "--schedule/--no-schedule",
        help="Let the scheduler create the daily runs; --no-schedule: only triggered runs and backfills.",
    ),
]
DetachFlag = Annotated[
    bool,
    typer.Option("--detach", "-d", help="Return once the stack is up; stop it with `retrain stack down`."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="status: print JSON.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=10, help="Seconds to wait for a healthy stack.")
]


def stack(
    ctx: typer.Context,
    action: ActionArg = StackAction.up,
    port: PortOption = 8080,
    host: HostOption = "127.0.0.1",
    mlflow_port: MlflowPortOption = 5000,
    schedule: ScheduleFlag = True,
    detach: DetachFlag = False,
    as_json: JsonFlag = False,
    timeout: TimeoutOption = 180.0,
) -> None:
    """Run the Airflow stack locally: api-server (UI + REST), scheduler, dag-processor, triggerer, MLflow."""
    settings = cli_context(ctx).settings
    if action is StackAction.status:
        raise typer.Exit(_status(settings, as_json))
    if action is StackAction.down:
        stopped = stop_recorded(settings)
        console.print(f"stopped: {', '.join(stopped)}" if stopped else "no stack running for this home")
        return
    if action is StackAction.env:
        for key, value in _cli_environment(settings).items():
            typer.echo(f"export {key}={shlex.quote(value)}")
        return
    # An http(s) tracking URI means a registry runs elsewhere: use it instead of starting one.
    remote_mlflow = settings.tracking_uri.startswith(("http://", "https://"))
    local_stack = LocalStack(
        settings,
        port,
        host=host,
        mlflow_port=None if remote_mlflow or mlflow_port == 0 else mlflow_port,
        use_schedule=schedule,
    )
    console.print(f"starting Airflow on {local_stack.url} (home {settings.resolved_home}) …", soft_wrap=True)
    with _stop_on_sigterm():
        try:
            local_stack.start(timeout)
        except KeyboardInterrupt:
            console.print("interrupted: stack stopped")
            raise typer.Exit(130) from None
        _print_ready(local_stack, settings)
        if detach:
            console.print("detached: `retrain stack status` / `retrain stack down`")
            return
        try:
            _watch(local_stack)
        finally:
            console.print("stopping the stack …")
            # A second Ctrl-C must not leave half the components running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            local_stack.stop()
            console.print("stopped")


def _watch(local_stack: LocalStack) -> None:
    """Block until Ctrl-C / SIGTERM, `retrain stack down` from another shell, or a component dies."""
    marker = state_file(local_stack.settings)
    try:
        while marker.exists():
            local_stack.check_alive()
            time.sleep(1)
        console.print("stop requested by `retrain stack down`")
    except KeyboardInterrupt:
        console.print()


class _StopRequestedError(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the stack is stopped on the way out."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequestedError


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into a KeyboardInterrupt while the stack runs in the foreground."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_ready(local_stack: LocalStack, settings: Settings) -> None:
    url = local_stack.url
    tracking = local_stack.mlflow_url or settings.tracking_uri
    env_command = f"retrain --home {settings.resolved_home} --spec {settings.spec.resolve()} stack env"
    schedule = "on (@daily)" if local_stack.use_schedule else "off (trigger / backfill only)"
    console.print("\n[bold green]retrain stack is up[/bold green]")
    console.print(
        f"  Airflow UI      {url}   user {ADMIN_USER}   password {local_stack.admin_password()}\n"
        f"                  (kept in {local_stack.password_file})\n"
        f"  REST API        {url}/api/v2   docs {url}/docs   token: POST {url}/auth/token\n"
        f"  MLflow          {tracking}\n"
        f"  logs            {local_stack.log_dir}\n"
        f'  airflow CLI     eval "$({env_command})"; airflow dags list-import-errors\n'
        f"  scheduled runs  {schedule}\n",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _status(settings: Settings, as_json: bool) -> int:
    """Print the recorded stack's processes and health; 0 when everything is up."""
    state = read_state(settings)
    if state is None:
        if as_json:
            typer.echo(json.dumps({"running": False}))
        else:
            console.print(f"no stack running for {settings.resolved_home}")
        return 1
    alive = state.alive()
    health = _health(state)
    up = all(alive.values()) and all(v == "healthy" for v in health.values())
    if as_json:
        body = {
            "running": up,
            "api_url": state.api_url,
            "mlflow_url": state.mlflow_url,
            "started_at": state.started_at,
            "processes": alive,
            "health": health,
            "log_dir": state.log_dir,
            "password_file": state.password_file,
        }
        typer.echo(json.dumps(body, indent=2))
        return 0 if up else 1
    console.print(
        f"stack for {state.home}, started {state.started_at}: {'up' if up else 'DEGRADED'}\n"
        f"  Airflow {state.api_url}   MLflow {state.mlflow_url or '-'}   logs {state.log_dir}",
        soft_wrap=True,
    )
    for name, running in alive.items():
        console.print(f"  {name:<14} {'running' if running else 'NOT RUNNING'}")
    for name, status in health.items():
        console.print(f"  health {name:<14} {status}")
    return 0 if up else 1


def _health(state: StackState) -> dict[str, str]:
    """Component health as the api-server (and MLflow) report it; `unreachable` when they do not answer."""
    health: dict[str, str] = {}
    try:
        body = httpx.get(f"{state.api_url}/api/v2/monitor/health", timeout=5).json()
        health.update({k: str((v or {}).get("status")) for k, v in body.items()})
    except (httpx.HTTPError, ValueError):
        health["api-server"] = "unreachable"
    if state.mlflow_url:
        try:
            ok = httpx.get(f"{state.mlflow_url}/health", timeout=5).is_success
        except httpx.HTTPError:
            ok = False
        health["mlflow"] = "healthy" if ok else "unreachable"
    return health


def _cli_environment(settings: Settings) -> dict[str, str]:
    """What the `airflow` CLI needs to reach this home's metadata DB (no secrets, no connections)."""
    env = {k: v for k, v in airflow_environment(settings).items() if not k.startswith("AIRFLOW_CONN_")}
    state = read_state(settings)
    if state is not None and state.mlflow_url:
        env["RETRAIN_MLFLOW_TRACKING_URI"] = state.mlflow_url
    return env


COMMANDS = [stack]
