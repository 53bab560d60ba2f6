"""`retrain serve`: the prediction service (package `serving`) under uvicorn."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from retrain.cli.common import cli_context, console

HostOption = Annotated[
    str | None,
    typer.Option("--host", help="Interface to bind (default: $RETRAIN_SERVING_HOST or 127.0.0.1)."),
]
PortOption = Annotated[
    int | None, typer.Option("--port", help="Port to bind (default: $RETRAIN_SERVING_PORT or 8000).")
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Worker processes (default: $RETRAIN_SERVING_WORKERS or 1)."),
]
AccessLogOption = Annotated[
    bool, typer.Option("--access-log/--no-access-log", help="Uvicorn access log (costs ~20% throughput).")
]


def serve(
    ctx: typer.Context,
    host: HostOption = None,
    port: PortOption = None,
    workers: WorkersOption = None,
    access_log: AccessLogOption = False,
    log_level: Annotated[str, typer.Option("--log-level", help="Uvicorn log level.")] = "info",
) -> None:
    """Serve predictions of the production model over HTTP (follows the alias, hot-swaps new versions)."""
    import uvicorn

    from retrain.local.launcher import fresh_metrics_dir
    from serving.app import create_app
    from serving.settings import ServingSettings

    c = cli_context(ctx)
    settings = ServingSettings(home=c.settings.home, spec=c.settings.spec)
    host = host or settings.serving_host
    port = port or settings.serving_port
    workers = workers or settings.serving_workers
    console.print(
        f"serving {c.spec.model_name}@{settings.serving_alias} on http://{host}:{port} ({workers} worker(s))"
    )
    if workers == 1:
        uvicorn.run(
            create_app(settings, spec=c.spec),
            host=host,
            port=port,
            access_log=access_log,
            log_level=log_level,
        )
        return
    # Workers are fresh processes that build their settings from the environment: hand them this
    # command's choices, and the shared metrics folder prometheus-client reads before any metric exists.
    metrics_dir = fresh_metrics_dir(
        settings.prometheus_multiproc_dir or settings.resolved_home / "serving_metrics"
    )
    os.environ["RETRAIN_HOME"] = str(settings.resolved_home)
    os.environ["RETRAIN_SPEC"] = str(Path(settings.spec).resolve())
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "serving.main:app", host=host, port=port, workers=workers, access_log=access_log, log_level=log_level
    )


COMMANDS: list[Callable[..., None]] = [serve]
