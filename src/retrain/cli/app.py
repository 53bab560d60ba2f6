"""The `retrain` command line: the same functions the DAGs and the tests call."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from retrain.cli import (
    data as cli_data,
)
from retrain.cli import (
    model as cli_model,
)
from retrain.cli import (
    monitor as cli_monitor,
)
from retrain.cli import (
    serve as cli_serve,
)
from retrain.cli import (
    stack as cli_stack,
)
from retrain.cli.common import CliContext, HomeOption, SpecOption, console, err_console
from retrain.cli.output import hoist_global_options, quiet_command
from retrain.errors import RetrainError
from retrain.settings import Settings

app = typer.Typer(
    name="retrain",
    help="Daily retraining, gated promotion, serving and monitoring of a tabular forecasting model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main_callback(
    ctx: typer.Context,
    spec: SpecOption = None,
    home: HomeOption = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Show Airflow, MLflow and library logs on the terminal.")
    ] = False,
) -> None:
    """Options shared by every command (accepted before or after the command name)."""
    overrides: dict[str, object] = {}
    if spec is not None:
        overrides["spec"] = spec
    if home is not None:
        overrides["home"] = home
    ctx.obj = CliContext(Settings(**overrides), verbose=verbose)  # type: ignore[arg-type]


def _log_file(ctx: typer.Context) -> Path | None:
    """Where the running command's library output goes (None with -v: the terminal)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliContext) or obj.verbose:
        return None
    return obj.settings.log_file


# Long-running servers (serve, stack) keep their own logs; every other command is quiet.
for command in [*cli_data.COMMANDS, *cli_model.COMMANDS, *cli_monitor.COMMANDS]:
    app.command()(quiet_command(command, _log_file, (console, err_console)))
for command in [*cli_serve.COMMANDS, *cli_stack.COMMANDS]:
    app.command()(command)
app.add_typer(cli_data.spec_app, name="spec")


def main() -> None:
    """Console-script entry point: a RetrainError becomes a one-line reason and exit code 1."""
    try:
        app(args=hoist_global_options(sys.argv[1:]))
    except RetrainError as exc:
        first, *rest = str(exc).splitlines() or [type(exc).__name__]
        err_console.print(f"[red]error:[/red] {first}", highlight=False)
        for line in [*rest, *getattr(exc, "__notes__", [])]:
            err_console.print(line, highlight=False, markup=False)
        sys.exit(1)
