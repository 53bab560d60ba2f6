"""Parse service command lines with the CLIs' own parsers, without running them.

Usage: python parse_commands.py '[["airflow", "scheduler"], ["mlflow", "server", "--port=5000"], ...]'
Prints a JSON list of errors (empty: every command line names real subcommands and options).
Runs in its own process so the Airflow, MLflow and retrain CLIs stay out of the test process.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _click_group(prog: str) -> Any:
    if prog == "mlflow":
        from mlflow.cli import cli

        return cli
    if prog == "retrain":
        import typer.main

        from retrain.cli.app import app

        return typer.main.get_command(app)
    raise SystemExit(f"no parser for {prog}")


def parse(argv: list[str]) -> None:
    """Parse one command line; SystemExit or a click error when it is not valid."""
    prog, args = argv[0], argv[1:]
    if prog == "airflow":
        from airflow.cli.cli_parser import get_parser

        get_parser().parse_args(args)
        return
    group = _click_group(prog)
    ctx = group.make_context(prog, list(args))
    command = group.get_command(ctx, args[0])
    if command is None:
        raise SystemExit(f"{prog} has no command {args[0]}")
    command.make_context(args[0], list(args[1:]), parent=ctx)


def main() -> int:
    """Parse every command line given as JSON in argv[1]."""
    errors = []
    for argv in json.loads(sys.argv[1]):
        try:
            parse(argv)
        except SystemExit as exc:
            errors.append(f"{' '.join(argv)}: exit {exc}")
        except Exception as exc:
            errors.append(f"{' '.join(argv)}: {type(exc).__name__}: {exc}")
    print(json.dumps(errors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
