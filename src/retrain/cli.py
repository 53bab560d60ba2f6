"""The `retrain` command line: the same functions the DAGs and the tests call."""

from __future__ import annotations

import sys

import typer

from retrain import cli_data, cli_model, cli_monitor, cli_serve, cli_stack
from retrain.cli_common import CliContext, HomeOption, SpecOption, err_console
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
def main_callback(ctx: typer.Context, spec: SpecOption = None, home: HomeOption = None) -> None:
    """Options shared by every command."""
    overrides: dict[str, object] = {}
    if spec is not None:
        overrides["spec"] = spec
    if home is not None:
        overrides["home"] = home
    ctx.obj = CliContext(Settings(**overrides))  # type: ignore[arg-type]


for command in [
    *cli_data.COMMANDS,
    *cli_model.COMMANDS,
    *cli_serve.COMMANDS,
    *cli_monitor.COMMANDS,
    *cli_stack.COMMANDS,
]:
    app.command()(command)


def main() -> None:
    """Console-script entry point: a RetrainError becomes a one-line reason and exit code 1."""
    try:
        app()
    except RetrainError as exc:
        first, *rest = str(exc).splitlines() or [type(exc).__name__]
        err_console.print(f"[red]error:[/red] {first}", highlight=False)
        for line in rest:
            err_console.print(line, highlight=False, markup=False)
        sys.exit(1)
