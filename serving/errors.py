"""Serving exceptions; routes turn them into HTTP responses, nothing below the routes knows HTTP codes."""

from __future__ import annotations

from dataclasses import dataclass

from retrain.errors import RetrainError


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of a request: where (e.g. rows[3].price), what, and its kind."""

    field: str
    message: str
    type: str

    def text(self) -> str:
        """`field: message` as shown to a client."""
        return f"{self.field}: {self.message}"


class ServingError(RetrainError):
    """Base of errors a request can end with."""


class InvalidRequestError(ServingError):
    """The client sent something the schema or the served model rejects (a 4xx)."""

    def __init__(self, problems: list[FieldProblem], *, kind: str = "invalid") -> None:
        super().__init__("; ".join(p.text() for p in problems[:3]))
        self.problems = problems
        self.kind = kind  # "invalid" (422), "malformed" (400) or "too_large" (413)


class ModelUnavailableError(ServingError):
    """No model is loaded (cold start without registry and cache, or no version holds the alias)."""


class RegistryUnavailableError(ServingError):
    """The registry could not be asked which version holds the alias."""


class ModelLoadError(ServingError):
    """A version was found but could not be loaded (artifacts missing, features do not fit the spec)."""
