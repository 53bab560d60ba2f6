"""Exception types shared by every stage; messages say what happened and what to do.

A candidate failing its gates is not among them: rejection is a recorded outcome of a successful run
(`promote.RegisterResult.outcome == "rejected"`, `failed_gates`, the version's gate tags), not an error.
"""

from __future__ import annotations


class RetrainError(Exception):
    """Base class for errors the CLI reports as a one-line reason."""


class SpecError(RetrainError):
    """The dataset spec is missing or invalid."""


class DataMissingError(RetrainError):
    """The day's landing drop is not there (yet): retryable, a sensor can wait for it."""


class DataInvalidError(RetrainError):
    """A batch failed validation; it has been quarantined and curated data is unchanged."""

    def __init__(self, message: str, failed_expectations: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed_expectations = failed_expectations or []


class NoProductionModelError(RetrainError):
    """No model version holds the production alias."""


class CadenceError(RetrainError):
    """The data is not daily (weekly, monthly...): retrain retrains daily models and refuses it."""
