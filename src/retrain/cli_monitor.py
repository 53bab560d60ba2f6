"""Commands of the `retrain` CLI (filled in by the issue that owns them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COMMANDS: list[Callable[..., Any]] = []
