"""Pieces shared by the CLI command modules: context, options, consoles."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from retrain.errors import RetrainError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec, load_spec

console = Console()
err_console = Console(stderr=True)


class CliContext:
    """Settings and spec shared by every command (the spec is loaded on first use)."""

    def __init__(self, settings: Settings, verbose: bool = False) -> None:
        self.settings = settings
        self.verbose = verbose
        self._spec: DatasetSpec | None = None

    @property
    def spec(self) -> DatasetSpec:
        """The dataset spec named by the settings."""
        if self._spec is None:
            self._spec = load_spec(self.settings.spec)
        return self._spec

    @property
    def layout(self) -> DatasetLayout:
        """Where the spec's data lives under the settings' home."""
        return DatasetLayout.for_spec(self.settings, self.spec)


def cli_context(ctx: typer.Context) -> CliContext:
    """The CliContext the top-level callback stored."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliContext):
        raise RetrainError("internal: CLI context missing")
    return obj


def parse_day(value: str) -> date:
    """Parse a YYYY-MM-DD date or raise a one-line error."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RetrainError(f"invalid date {value!r}: expected YYYY-MM-DD") from None


SpecOption = Annotated[
    Path | None, typer.Option("--spec", help="Dataset spec YAML (default: $RETRAIN_SPEC or the retail demo).")
]
HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Data and model home (default: $RETRAIN_HOME or ./var).")
]
DateOption = Annotated[str, typer.Option("--date", help="Run date, YYYY-MM-DD.")]
