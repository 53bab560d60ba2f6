"""A quiet terminal: while a command runs, library output (Airflow, MLflow, GX, warnings) goes to a log file.

The redirection is at the file-descriptor level, so it also catches what libraries print directly, child
processes and C extensions. retrain's own consoles keep writing to the terminal. `-v` turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

GLOBAL_OPTIONS_WITH_VALUE = ("--spec", "--home")
GLOBAL_FLAGS = ("-v", "--verbose")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move `--spec X`, `--home X`, `-v` to the front, so they work before or after the subcommand."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS_WITH_VALUE:
            if "=" in arg:
                hoisted.append(arg)
            else:
                hoisted.extend(argv[i : i + 2])
                i += 1
        elif arg in GLOBAL_FLAGS:
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


@contextlib.contextmanager
def library_output_to(log_file: Path, consoles: tuple[Console, ...]) -> Iterator[None]:
    """Send fd 1 and 2 (and Python warnings) to `log_file`; `consoles` keep writing to the terminal."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    terminal = (os.fdopen(os.dup(saved[0]), "w", buffering=1), os.fdopen(os.dup(saved[1]), "w", buffering=1))
    previous_files = [getattr(console, "_file", None) for console in consoles]
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    was_capturing = logging.getLogger("py.warnings").handlers
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        for console in consoles:
            console.file = terminal[1] if console.stderr else terminal[0]
        logging.captureWarnings(True)
        yield
    finally:
        logging.captureWarnings(bool(was_capturing))
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        for console, previous in zip(consoles, previous_files, strict=True):
            setattr(console, "_file", previous)  # noqa: B010  (None: follow sys.stdout/sys.stderr again)
        for stream in terminal:
            stream.close()


def quiet_command(command: F, log_file: Callable[[Any], Path | None], consoles: tuple[Console, ...]) -> F:
    """Wrap a CLI command (first parameter `ctx`) so its library output goes to `log_file(ctx)`.

    `log_file` returning None leaves the terminal alone (-v)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        path = log_file(kwargs["ctx"] if "ctx" in kwargs else args[0])
        if path is None:
            return command(*args, **kwargs)
        try:
            with library_output_to(path, consoles):
                return command(*args, **kwargs)
        except Exception as exc:
            exc.add_note(f"full log: {path}")
            raise

    return wrapper  # type: ignore[return-value]
