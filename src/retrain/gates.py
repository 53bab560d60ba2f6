"""Promotion gates: a pure decision, with one human-readable reason per gate, on precomputed metrics."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from retrain.metrics import Metrics, SliceMetrics
from retrain.spec import GateSpec

FIRST_MODEL_REASON = "no production model: first-model rule, absolute gates only"

# Thresholds are inclusive; this keeps "exactly at the threshold" inclusive despite float rounding
# (4.0 * 1.03 is not bit-equal to 4.12).
_REL_TOL = 1e-9
_ABS_TOL = 1e-12


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")


class GateContext(_Frozen):
    """Everything the gates look at: metrics on one shared holdout, data end dates, smoke test, thresholds."""

    candidate: Metrics
    baselines: dict[str, Metrics] = Field(
        min_length=1,
        description="Every scored baseline by name; the gate compares with the best (lowest RMSE).",
    )
    production: Metrics | None = Field(default=None, description="None: there is no production model.")
    candidate_slices: SliceMetrics = Field(default_factory=dict)
    production_slices: SliceMetrics | None = None
    candidate_data_end: date = Field(description="Last day of the candidate's training data.")
    production_data_end: date | None = Field(default=None, description="Same for production, if known.")
    smoke_test_passed: bool | None = Field(default=None, description="None: the smoke test has not run.")
    smoke_test_message: str = ""
    thresholds: GateSpec

    @property
    def best_baseline(self) -> str:
        """Name of the baseline with the lowest RMSE (the first listed wins a tie)."""
        return min(self.baselines, key=lambda name: self.baselines[name].rmse)


class GateResult(_Frozen):
    """One gate's verdict; value and threshold are set for gates that compare one number."""

    name: str
    passed: bool
    reason: str
    value: float | None = None
    threshold: float | None = None
    skipped: bool = False

    @model_validator(mode="after")
    def _skipped_gates_pass(self) -> Self:
        if self.skipped and not self.passed:
            raise ValueError(f"gate {self.name!r} is skipped, so it cannot fail")
        return self

    @property
    def status(self) -> Literal["pass", "fail", "skip"]:
        """``skip`` for gates that did not apply, else ``pass`` or ``fail``."""
        if self.skipped:
            return "skip"
        return "pass" if self.passed else "fail"


class GateReport(_Frozen):
    """The promotion decision: promote only if every gate passed; every gate's reason is kept."""

    passed: bool
    decision: Literal["promote", "reject"]
    gates: list[GateResult]
    baselines: dict[str, float] = Field(
        default_factory=dict, description="Holdout RMSE of every baseline scored (empty in older reports)."
    )
    best_baseline: str | None = None

    @model_validator(mode="after")
    def _decision_matches_gates(self) -> Self:
        expected = all(g.passed for g in self.gates)
        if self.passed != expected or self.decision != ("promote" if expected else "reject"):
            raise ValueError("passed/decision do not agree with the gate results")
        return self

    @classmethod
    def from_gates(
        cls,
        gates: list[GateResult],
        baselines: dict[str, float] | None = None,
        best_baseline: str | None = None,
    ) -> GateReport:
        """Build the report whose decision follows from the gates (with the baselines' RMSE, if given)."""
        passed = all(g.passed for g in gates)
        return cls(
            passed=passed,
            decision="promote" if passed else "reject",
            gates=gates,
            baselines=baselines or {},
            best_baseline=best_baseline,
        )

    @property
    def failed(self) -> list[str]:
        """Names of the gates that failed, in evaluation order."""
        return [g.name for g in self.gates if not g.passed]

    def to_json(self) -> str:
        """Strict JSON (infinities as strings) that ``from_json`` reads back unchanged."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> GateReport:
        """Read a report written by ``to_json``."""
        return cls.model_validate_json(text)

    def to_tags(self) -> dict[str, str]:
        """MLflow model-version tags: ``gate.<name>=pass|fail|skip``, ``gate.decision``, ``gate.failed``."""
        tags: dict[str, str] = {f"gate.{g.name}": g.status for g in self.gates}
        tags["gate.decision"] = self.decision
        tags["gate.failed"] = ",".join(self.failed) or "none"
        if self.best_baseline is not None:
            tags["gate.best_baseline"] = self.best_baseline
        tags.update({f"gate.baseline.{name}.rmse": _num(rmse) for name, rmse in self.baselines.items()})
        return tags

    def summary(self) -> str:
        """A decision line, then one ``PASS|FAIL|SKIP name: reason`` line per gate."""
        failed = self.failed
        head = f"decision: {self.decision}"
        head += f" ({len(failed)} of {len(self.gates)} gates failed: {', '.join(failed)})" if failed else ""
        lines = [f"{g.status.upper():4} {g.name}: {g.reason}" for g in self.gates]
        if self.baselines:
            scored = ", ".join(
                f"{name} {_num(rmse)}" + (" (best)" if name == self.best_baseline else "")
                for name, rmse in self.baselines.items()
            )
            lines.append(f"     baselines, holdout RMSE: {scored}")
        return "\n".join([head, *lines])


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or math.isclose(value, limit, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)


def _num(x: float) -> str:
    return f"{x:.4g}"


def _relative_change(value: float, reference: float) -> float:
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return (value - reference) / reference


def _compared(change: float) -> str:
    if change == 0:
        return "equal to"
    if math.isinf(change):
        return "worse than"
    return f"{abs(change):.1%} {'worse' if change > 0 else 'better'} than"


def absolute_thresholds(ctx: GateContext) -> GateResult:
    """Candidate WAPE at most max_wape and R² at least min_r2 (an unset threshold is not checked)."""
    spec, cand = ctx.thresholds, ctx.candidate
    checks: list[tuple[bool, str]] = []
    if spec.max_wape is not None:
        ok = _at_most(cand.wape, spec.max_wape)
        word = "is within" if ok else "exceeds"
        checks.append((ok, f"WAPE {_num(cand.wape)} {word} the maximum {_num(spec.max_wape)}"))
    if spec.min_r2 is not None:
        ok = _at_most(spec.min_r2, cand.r2)
        word = "meets" if ok else "is below"
        checks.append((ok, f"R² {_num(cand.r2)} {word} the minimum {_num(spec.min_r2)}"))
    if not checks:
        return GateResult(
            name="absolute_thresholds", passed=True, skipped=True, reason="no max_wape or min_r2 set"
        )
    return GateResult(
        name="absolute_thresholds",
        passed=all(ok for ok, _ in checks),
        reason="candidate " + "; ".join(text for _, text in checks),
    )


def beats_baseline(ctx: GateContext) -> GateResult:
    """Candidate RMSE at most the best baseline's RMSE x (1 - baseline_margin)."""
    best = ctx.best_baseline
    cand, base, margin = ctx.candidate.rmse, ctx.baselines[best].rmse, ctx.thresholds.baseline_margin
    limit = base * (1 - margin)
    return GateResult(
        name="beats_baseline",
        passed=_at_most(cand, limit),
        value=cand,
        threshold=limit,
        reason=(
            f"candidate RMSE {_num(cand)} is {_compared(_relative_change(cand, base))} the best baseline, "
            f"{best} {_num(base)} (must be at least {margin:.1%} better: at most {_num(limit)})"
        ),
    )


def not_worse_than_production(ctx: GateContext) -> GateResult:
    """Candidate RMSE at most production RMSE x (1 + production_tolerance); passes on the first model."""
    name = "not_worse_than_production"
    if ctx.production is None:
        return GateResult(name=name, passed=True, skipped=True, reason=FIRST_MODEL_REASON)
    cand, prod, tol = ctx.candidate.rmse, ctx.production.rmse, ctx.thresholds.production_tolerance
    limit = prod * (1 + tol)
    return GateResult(
        name=name,
        passed=_at_most(cand, limit),
        value=cand,
        threshold=limit,
        reason=(
            f"candidate RMSE {_num(cand)} is {_compared(_relative_change(cand, prod))} production "
            f"{_num(prod)} (tolerance {tol:.1%})"
        ),
    )


def slices_not_degraded(ctx: GateContext) -> GateResult:
    """On every slice both models have, candidate RMSE at most production's x (1 + limit)."""
    name, limit = "slices_not_degraded", ctx.thresholds.slice_degradation_limit
    if ctx.production is None:
        return GateResult(name=name, passed=True, skipped=True, reason=FIRST_MODEL_REASON)
    prod_slices = ctx.production_slices or {}
    # (relative change, passed, label, candidate rmse, production rmse) for each shared slice.
    compared: list[tuple[float, bool, str, float, float]] = []
    for col, by_value in ctx.candidate_slices.items():
        for value, cand in by_value.items():
            prod = prod_slices.get(col, {}).get(value)
            if prod is not None:
                ok = _at_most(cand.rmse, prod.rmse * (1 + limit))
                change = _relative_change(cand.rmse, prod.rmse)
                compared.append((change, ok, f"{col}={value}", cand.rmse, prod.rmse))
    if not compared:
        return GateResult(
            name=name,
            passed=True,
            skipped=True,
            reason="no slice has metrics for both candidate and production",
        )
    change, _, label, cand_rmse, prod_rmse = max(compared, key=lambda c: (not c[1], c[0]))
    failures = sum(1 for c in compared if not c[1])
    worst = (
        f"worst slice {label}: candidate RMSE {_num(cand_rmse)} is {_compared(change)} "
        f"production {_num(prod_rmse)} (limit {limit:.1%})"
    )
    lead = (
        f"{failures} of {len(compared)} slices degrade beyond the limit; "
        if failures
        else f"all {len(compared)} shared slices within the limit; "
    )
    return GateResult(name=name, passed=failures == 0, value=change, threshold=limit, reason=lead + worst)


def freshness(ctx: GateContext) -> GateResult:
    """The candidate's training data must end no earlier than production's (backfills never promote)."""
    name, cand, prod = "freshness", ctx.candidate_data_end, ctx.production_data_end
    if prod is None:
        reason = (
            FIRST_MODEL_REASON
            if ctx.production is None
            else "production data end date unknown: freshness not checked"
        )
        return GateResult(name=name, passed=True, skipped=True, reason=reason)
    days = (cand - prod).days
    if days >= 0:
        reason = f"candidate data ends {cand.isoformat()}, not before production's {prod.isoformat()}"
    else:
        reason = (
            f"candidate data ends {cand.isoformat()}, {-days} day(s) before production's {prod.isoformat()}: "
            "an older-data candidate (backfill) is registered but never promoted"
        )
    return GateResult(name=name, passed=days >= 0, value=float(days), threshold=0.0, reason=reason)


def smoke_test(ctx: GateContext) -> GateResult:
    """The registered version loaded and predicted its input example; not run yet counts as failed."""
    detail = f": {ctx.smoke_test_message}" if ctx.smoke_test_message else ""
    if ctx.smoke_test_passed is None:
        return GateResult(
            name="smoke_test", passed=False, reason="smoke test not run: a version is never promoted untested"
        )
    verdict = "passed" if ctx.smoke_test_passed else "failed"
    return GateResult(name="smoke_test", passed=ctx.smoke_test_passed, reason=f"smoke test {verdict}{detail}")


GATES: tuple[Callable[[GateContext], GateResult], ...] = (
    absolute_thresholds,
    beats_baseline,
    not_worse_than_production,
    slices_not_degraded,
    freshness,
    smoke_test,
)
"""Every gate, in report order."""


def evaluate_gates(context: GateContext) -> GateReport:
    """Run every gate (never stopping at the first failure) and decide promote or reject."""
    baselines = {name: metrics.rmse for name, metrics in context.baselines.items()}
    return GateReport.from_gates([gate(context) for gate in GATES], baselines, context.best_baseline)
