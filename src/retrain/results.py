"""The one shape of every stage's result: a frozen pydantic model that travels through XCom as JSON.

`to_xcom` dumps it in JSON mode (dates and paths become strings); `from_xcom` validates it back, so
the types come back too. Extra keys a task adds around a result (timings, row counts) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class StageResult(BaseModel):
    """Base of every stage result: frozen, JSON in and out."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_xcom(self) -> dict[str, Any]:
        """A JSON-safe dict (dates and paths as strings) for XCom, `--json` and MLflow."""
        return self.model_dump(mode="json")

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Self:
        """The result back from its `to_xcom` dict, typed again."""
        return cls.model_validate(dict(data))
