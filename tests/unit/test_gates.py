"""Promotion gates: every gate's pass, fail, skip and inclusive boundary, and the report round trips."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from retrain.gates import (
    FIRST_MODEL_REASON,
    GateContext,
    GateReport,
    GateResult,
    evaluate_gates,
)
from retrain.metrics import Metrics, SliceMetrics, regression_metrics, slice_metrics
from retrain.settings import REPO_ROOT
from retrain.spec import GateSpec, load_spec

GATE_NAMES = [
    "absolute_thresholds",
    "beats_baseline",
    "not_worse_than_production",
    "slices_not_degraded",
    "freshness",
    "smoke_test",
]
SPEC = GateSpec(
    max_wape=0.35, min_r2=0.5, baseline_margin=0.05, production_tolerance=0.03, slice_degradation_limit=0.10
)


def _m(rmse: float = 4.0, wape: float = 0.2, r2: float = 0.8) -> Metrics:
    return Metrics(rmse=rmse, mae=rmse * 0.8, wape=wape, r2=r2, bias=0.0, n=100)


def _slices(**rmse_by_store_type: float) -> SliceMetrics:
    return {"store_type": {k: _m(rmse=v) for k, v in rmse_by_store_type.items()}}


def _baselines(best: float = 5.0) -> dict[str, Metrics]:
    """Three baselines where seasonal_naive is the best, at `best`."""
    return {
        "persistence": _m(rmse=best * 1.2),
        "seasonal_naive": _m(rmse=best),
        "training_mean": _m(rmse=best * 3),
    }


def _ctx(**overrides: Any) -> GateContext:
    """A context where every gate passes; tests override one thing at a time."""
    fields: dict[str, Any] = {
        "candidate": _m(rmse=4.0),
        "baselines": _baselines(5.0),
        "production": _m(rmse=4.1),
        "candidate_slices": _slices(hyper=3.0, express=5.0),
        "production_slices": _slices(hyper=3.1, express=5.0),
        "candidate_data_end": date(2024, 3, 11),
        "production_data_end": date(2024, 3, 10),
        "smoke_test_passed": True,
        "smoke_test_message": "loaded models:/retail_demand/7 and predicted 5 rows",
        "thresholds": SPEC,
    }
    fields.update(overrides)
    return GateContext(**fields)


def _first_model(**overrides: Any) -> GateContext:
    fields: dict[str, Any] = {"production": None, "production_slices": None, "production_data_end": None}
    return _ctx(**(fields | overrides))


def _gate(report: GateReport, name: str) -> GateResult:
    return next(g for g in report.gates if g.name == name)


def _spec(**overrides: Any) -> GateSpec:
    return SPEC.model_copy(update=overrides)


def test_all_gates_pass_promotes() -> None:
    report = evaluate_gates(_ctx())
    assert [g.name for g in report.gates] == GATE_NAMES
    assert report.passed is True
    assert report.decision == "promote"
    assert report.failed == []
    assert not any(g.skipped for g in report.gates)


# absolute_thresholds


def test_absolute_wape_above_max_fails() -> None:
    gate = _gate(evaluate_gates(_ctx(candidate=_m(wape=0.41))), "absolute_thresholds")
    assert not gate.passed
    assert gate.reason == "candidate WAPE 0.41 exceeds the maximum 0.35; R² 0.8 meets the minimum 0.5"


def test_absolute_wape_exactly_at_max_passes() -> None:
    assert _gate(evaluate_gates(_ctx(candidate=_m(wape=0.35))), "absolute_thresholds").passed


def test_absolute_r2_below_min_fails() -> None:
    gate = _gate(evaluate_gates(_ctx(candidate=_m(r2=0.49))), "absolute_thresholds")
    assert not gate.passed
    assert "R² 0.49 is below the minimum 0.5" in gate.reason


def test_absolute_r2_exactly_at_min_passes() -> None:
    assert _gate(evaluate_gates(_ctx(candidate=_m(r2=0.5))), "absolute_thresholds").passed


def test_absolute_both_failing_both_reported() -> None:
    gate = _gate(evaluate_gates(_ctx(candidate=_m(wape=0.9, r2=-0.2))), "absolute_thresholds")
    assert not gate.passed
    assert "WAPE 0.9 exceeds" in gate.reason and "R² -0.2 is below" in gate.reason


def test_absolute_infinite_wape_fails() -> None:
    assert not _gate(evaluate_gates(_ctx(candidate=_m(wape=float("inf")))), "absolute_thresholds").passed


def test_absolute_unset_wape_checks_only_r2() -> None:
    ctx = _ctx(candidate=_m(wape=5.0), thresholds=_spec(max_wape=None))
    gate = _gate(evaluate_gates(ctx), "absolute_thresholds")
    assert gate.passed and not gate.skipped
    assert "WAPE" not in gate.reason


def test_absolute_unset_r2_checks_only_wape() -> None:
    ctx = _ctx(candidate=_m(wape=0.5, r2=-3.0), thresholds=_spec(min_r2=None))
    gate = _gate(evaluate_gates(ctx), "absolute_thresholds")
    assert not gate.passed
    assert "R²" not in gate.reason


def test_absolute_both_unset_is_skipped() -> None:
    ctx = _ctx(candidate=_m(wape=5.0, r2=-3.0), thresholds=_spec(max_wape=None, min_r2=None))
    gate = _gate(evaluate_gates(ctx), "absolute_thresholds")
    assert gate.passed and gate.skipped and gate.status == "skip"


# beats_baseline


def test_beats_baseline_passes_with_numbers() -> None:
    gate = _gate(evaluate_gates(_ctx()), "beats_baseline")
    assert gate.passed
    assert gate.value == 4.0
    assert gate.threshold == pytest.approx(4.75)
    assert gate.reason == (
        "candidate RMSE 4 is 20.0% better than the best baseline, seasonal_naive 5 (must be at least 5.0% better: at most 4.75)"
    )


def test_beats_baseline_not_by_enough_fails() -> None:
    gate = _gate(evaluate_gates(_ctx(candidate=_m(rmse=4.8))), "beats_baseline")
    assert not gate.passed
    assert "4.8 is 4.0% better than the best baseline, seasonal_naive 5" in gate.reason


def test_beats_baseline_worse_than_baseline_fails() -> None:
    gate = _gate(evaluate_gates(_ctx(candidate=_m(rmse=5.5))), "beats_baseline")
    assert not gate.passed
    assert "10.0% worse than the best baseline, seasonal_naive 5" in gate.reason


def test_beats_baseline_exactly_at_margin_passes_despite_float_rounding() -> None:
    # 1.01 * (1 - 0.05) == 0.9594999999999999 in floats, below the decimal 0.9595.
    ctx = _ctx(candidate=_m(rmse=0.9595), baselines=_baselines(1.01), production=_m(rmse=0.96))
    assert _gate(evaluate_gates(ctx), "beats_baseline").passed
    ctx = _ctx(candidate=_m(rmse=0.9596), baselines=_baselines(1.01), production=_m(rmse=0.96))
    assert not _gate(evaluate_gates(ctx), "beats_baseline").passed


def test_beats_baseline_zero_margin_allows_a_tie() -> None:
    ctx = _ctx(candidate=_m(rmse=5.0), production=None, thresholds=_spec(baseline_margin=0.0))
    gate = _gate(evaluate_gates(ctx), "beats_baseline")
    assert gate.passed
    assert "equal to the best baseline" in gate.reason


# not_worse_than_production


def test_not_worse_reason_matches_the_documented_example() -> None:
    ctx = _ctx(candidate=_m(rmse=4.21), production=_m(rmse=4.08), baselines=_baselines(9.0))
    gate = _gate(evaluate_gates(ctx), "not_worse_than_production")
    assert not gate.passed
    assert gate.reason == "candidate RMSE 4.21 is 3.2% worse than production 4.08 (tolerance 3.0%)"
    assert gate.value == 4.21
    assert gate.threshold == pytest.approx(4.08 * 1.03)


def test_not_worse_within_tolerance_passes() -> None:
    ctx = _ctx(candidate=_m(rmse=4.15), production=_m(rmse=4.08), baselines=_baselines(9.0))
    gate = _gate(evaluate_gates(ctx), "not_worse_than_production")
    assert gate.passed
    assert "1.7% worse than production 4.08" in gate.reason


def test_not_worse_exactly_at_tolerance_passes_despite_float_rounding() -> None:
    # 1.15 * 1.03 == 1.1844999999999999 in floats, below the decimal 1.1845.
    base = _baselines(9.0)
    assert _gate(
        evaluate_gates(_ctx(candidate=_m(rmse=1.1845), production=_m(rmse=1.15), baselines=base)),
        "not_worse_than_production",
    ).passed
    assert not _gate(
        evaluate_gates(_ctx(candidate=_m(rmse=1.1846), production=_m(rmse=1.15), baselines=base)),
        "not_worse_than_production",
    ).passed


def test_not_worse_better_candidate_says_better() -> None:
    gate = _gate(evaluate_gates(_ctx()), "not_worse_than_production")
    assert gate.passed
    assert "2.4% better than production 4.1" in gate.reason


def test_not_worse_perfect_production_only_accepts_perfect_candidate() -> None:
    gate = _gate(
        evaluate_gates(_ctx(candidate=_m(rmse=0.1), production=_m(rmse=0.0))), "not_worse_than_production"
    )
    assert not gate.passed
    assert "is worse than production 0" in gate.reason
    gate = _gate(
        evaluate_gates(_ctx(candidate=_m(rmse=0.0), production=_m(rmse=0.0))), "not_worse_than_production"
    )
    assert gate.passed and "equal to production" in gate.reason


# first-model rule


def test_first_model_rule_skips_production_comparisons() -> None:
    report = evaluate_gates(_first_model())
    assert report.decision == "promote"
    for name in ("not_worse_than_production", "slices_not_degraded", "freshness"):
        gate = _gate(report, name)
        assert gate.passed and gate.skipped
        assert gate.reason == FIRST_MODEL_REASON
    assert not _gate(report, "absolute_thresholds").skipped
    assert not _gate(report, "beats_baseline").skipped


def test_first_model_still_needs_absolute_thresholds() -> None:
    report = evaluate_gates(_first_model(candidate=_m(wape=0.6)))
    assert report.decision == "reject"
    assert report.failed == ["absolute_thresholds"]


def test_first_model_still_needs_smoke_test() -> None:
    report = evaluate_gates(_first_model(smoke_test_passed=None))
    assert report.failed == ["smoke_test"]


# slices_not_degraded


def test_slices_within_limit_pass_and_name_worst() -> None:
    ctx = _ctx(
        candidate_slices=_slices(hyper=3.0, express=5.2, super=2.0),
        production_slices=_slices(hyper=3.1, express=5.0, super=2.0),
    )
    gate = _gate(evaluate_gates(ctx), "slices_not_degraded")
    assert gate.passed
    assert gate.value == pytest.approx(0.04)
    assert gate.threshold == 0.10
    assert gate.reason == (
        "all 3 shared slices within the limit; worst slice store_type=express: "
        "candidate RMSE 5.2 is 4.0% worse than production 5 (limit 10.0%)"
    )


def test_slice_beyond_limit_fails_naming_worst_of_several() -> None:
    ctx = _ctx(
        candidate_slices=_slices(hyper=3.6, express=7.0, super=2.0),
        production_slices=_slices(hyper=3.0, express=5.0, super=2.0),
    )
    gate = _gate(evaluate_gates(ctx), "slices_not_degraded")
    assert not gate.passed
    assert gate.value == pytest.approx(0.4)
    assert gate.reason.startswith("2 of 3 slices degrade beyond the limit; worst slice store_type=express:")
    assert "40.0% worse than production 5" in gate.reason


def test_slice_exactly_at_limit_passes_despite_float_rounding() -> None:
    # 1.13 * 1.1 == 1.2429999999999999 in floats, below the decimal 1.243.
    prod = _slices(hyper=1.13)
    assert _gate(
        evaluate_gates(_ctx(candidate_slices=_slices(hyper=1.243), production_slices=prod)),
        "slices_not_degraded",
    ).passed
    assert not _gate(
        evaluate_gates(_ctx(candidate_slices=_slices(hyper=1.2431), production_slices=prod)),
        "slices_not_degraded",
    ).passed


def test_slices_only_compares_slices_present_in_both() -> None:
    ctx = _ctx(
        # "new" has no production counterpart, "gone" no candidate one: both ignored.
        candidate_slices={"store_type": {"hyper": _m(rmse=3.0), "new": _m(rmse=99.0)}},
        production_slices={"store_type": {"hyper": _m(rmse=3.0), "gone": _m(rmse=0.1)}},
    )
    gate = _gate(evaluate_gates(ctx), "slices_not_degraded")
    assert gate.passed and not gate.skipped
    assert gate.reason.startswith("all 1 shared slices within the limit")


def test_slices_with_no_overlap_or_no_production_slices_are_skipped() -> None:
    for prod_slices in (None, {}, {"category": {"frozen": _m()}}):
        gate = _gate(evaluate_gates(_ctx(production_slices=prod_slices)), "slices_not_degraded")
        assert gate.passed and gate.skipped
        assert gate.reason == "no slice has metrics for both candidate and production"


def test_slice_degrading_from_perfect_production_is_infinite() -> None:
    ctx = _ctx(candidate_slices=_slices(hyper=0.5), production_slices=_slices(hyper=0.0))
    gate = _gate(evaluate_gates(ctx), "slices_not_degraded")
    assert not gate.passed
    assert gate.value == float("inf")
    assert "is worse than production 0" in gate.reason


# freshness


def test_freshness_newer_candidate_passes_with_days() -> None:
    gate = _gate(evaluate_gates(_ctx()), "freshness")
    assert gate.passed
    assert (gate.value, gate.threshold) == (1.0, 0.0)
    assert "2024-03-11" in gate.reason and "2024-03-10" in gate.reason


def test_freshness_same_end_date_passes() -> None:
    gate = _gate(evaluate_gates(_ctx(candidate_data_end=date(2024, 3, 10))), "freshness")
    assert gate.passed
    assert gate.value == 0.0


def test_backfill_is_rejected_by_freshness_alone() -> None:
    report = evaluate_gates(_ctx(candidate_data_end=date(2024, 1, 31)))
    assert report.decision == "reject"
    assert report.failed == ["freshness"]
    gate = _gate(report, "freshness")
    assert gate.value == -39.0
    assert gate.reason == (
        "candidate data ends 2024-01-31, 39 day(s) before production's 2024-03-10: "
        "an older-data candidate (backfill) is registered but never promoted"
    )


def test_freshness_one_day_older_fails() -> None:
    assert not _gate(evaluate_gates(_ctx(candidate_data_end=date(2024, 3, 9))), "freshness").passed


def test_freshness_unknown_production_date_is_skipped() -> None:
    gate = _gate(evaluate_gates(_ctx(production_data_end=None)), "freshness")
    assert gate.passed and gate.skipped
    assert gate.reason == "production data end date unknown: freshness not checked"


def test_freshness_checked_even_without_production_metrics() -> None:
    ctx = _first_model(production_data_end=date(2024, 6, 1))
    assert not _gate(evaluate_gates(ctx), "freshness").passed


# smoke_test


def test_smoke_test_not_run_fails_and_is_not_a_skip() -> None:
    report = evaluate_gates(_ctx(smoke_test_passed=None))
    gate = _gate(report, "smoke_test")
    assert not gate.passed and not gate.skipped
    assert gate.reason == "smoke test not run: a version is never promoted untested"
    assert report.decision == "reject"


def test_smoke_test_failure_reports_its_message() -> None:
    ctx = _ctx(smoke_test_passed=False, smoke_test_message="feature_names mismatch: missing 'lag_7'")
    gate = _gate(evaluate_gates(ctx), "smoke_test")
    assert not gate.passed
    assert gate.reason == "smoke test failed: feature_names mismatch: missing 'lag_7'"


def test_smoke_test_passed_reports_its_message() -> None:
    gate = _gate(evaluate_gates(_ctx()), "smoke_test")
    assert gate.passed
    assert gate.reason == "smoke test passed: loaded models:/retail_demand/7 and predicted 5 rows"
    assert _gate(evaluate_gates(_ctx(smoke_test_message="")), "smoke_test").reason == "smoke test passed"


# the report


def _multi_failure_report() -> GateReport:
    return evaluate_gates(
        _ctx(
            candidate=_m(rmse=6.0, wape=0.5),
            candidate_slices=_slices(hyper=9.0, express=5.0),
            candidate_data_end=date(2024, 3, 1),
            smoke_test_passed=None,
        )
    )


def test_multiple_failures_are_all_reported() -> None:
    report = _multi_failure_report()
    assert report.passed is False
    assert report.decision == "reject"
    assert report.failed == GATE_NAMES  # every gate failed, none stopped the others
    assert all(g.reason for g in report.gates)


def test_json_round_trip_is_strict_and_lossless() -> None:
    report = _multi_failure_report()
    ok = evaluate_gates(_ctx(candidate_slices=_slices(hyper=0.0), production_slices=_slices(hyper=0.0)))
    inf = evaluate_gates(_ctx(candidate_slices=_slices(hyper=1.0), production_slices=_slices(hyper=0.0)))
    for r in (report, ok, inf):
        text = r.to_json()
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
        assert GateReport.from_json(text) == r
        assert GateReport.from_json(text.encode()) == r
    assert _gate(GateReport.from_json(inf.to_json()), "slices_not_degraded").value == float("inf")


def test_from_json_rejects_a_decision_that_contradicts_the_gates() -> None:
    data = json.loads(_multi_failure_report().to_json())
    data["passed"], data["decision"] = True, "promote"
    with pytest.raises(ValidationError, match="do not agree"):
        GateReport.from_json(json.dumps(data))


def test_skipped_gate_cannot_fail() -> None:
    with pytest.raises(ValidationError, match="cannot fail"):
        GateResult(name="x", passed=False, skipped=True, reason="r")


def test_to_tags() -> None:
    assert evaluate_gates(_first_model(smoke_test_passed=False)).to_tags() == {
        "gate.absolute_thresholds": "pass",
        "gate.beats_baseline": "pass",
        "gate.not_worse_than_production": "skip",
        "gate.slices_not_degraded": "skip",
        "gate.freshness": "skip",
        "gate.smoke_test": "fail",
        "gate.decision": "reject",
        "gate.failed": "smoke_test",
        "gate.best_baseline": "seasonal_naive",
        "gate.baseline.persistence.rmse": "6",
        "gate.baseline.seasonal_naive.rmse": "5",
        "gate.baseline.training_mean.rmse": "15",
    }
    tags = evaluate_gates(_ctx()).to_tags()
    assert tags["gate.decision"] == "promote"
    assert tags["gate.failed"] == "none"


def test_summary_has_decision_then_one_line_per_gate() -> None:
    report = evaluate_gates(_first_model(smoke_test_passed=None))
    lines = report.summary().splitlines()
    assert lines[0] == "decision: reject (1 of 6 gates failed: smoke_test)"
    assert len(lines) == 1 + len(GATE_NAMES) + 1
    assert (
        lines[-1] == "     baselines, holdout RMSE: persistence 6, seasonal_naive 5 (best), training_mean 15"
    )
    assert lines[3] == f"SKIP not_worse_than_production: {FIRST_MODEL_REASON}"
    assert lines[6].startswith("FAIL smoke_test: smoke test not run")
    assert lines[1].startswith("PASS absolute_thresholds: candidate WAPE 0.2")
    assert evaluate_gates(_ctx()).summary().splitlines()[0] == "decision: promote"


def test_context_is_frozen_and_requires_thresholds() -> None:
    ctx = _ctx()
    with pytest.raises(ValidationError):
        ctx.smoke_test_passed = False  # type: ignore[misc]
    with pytest.raises(ValidationError, match="thresholds"):
        GateContext(candidate=_m(), baselines=_baselines(), candidate_data_end=date(2024, 1, 1))  # type: ignore[call-arg]


def test_gates_on_real_metrics_and_the_default_spec() -> None:
    spec = load_spec(REPO_ROOT / "config" / "retail_demand.yaml")
    frame = pd.DataFrame(
        {
            "store_type": ["hyper"] * 4 + ["express"] * 4,
            "y": [10.0, 12.0, 14.0, 16.0, 2.0, 4.0, 6.0, 8.0],
        }
    )
    frame["candidate"] = frame["y"] + [0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5]
    frame["production"] = frame["y"] + [0.5, -0.5, 0.5, -0.5, 1.0, -1.0, 1.0, -1.0]
    frame["baseline"] = frame["y"].shift(1).fillna(frame["y"].iloc[0])
    ctx = GateContext(
        candidate=regression_metrics(frame["y"], frame["candidate"]),
        baselines={"persistence": regression_metrics(frame["y"], frame["baseline"])},
        production=regression_metrics(frame["y"], frame["production"]),
        candidate_slices=slice_metrics(frame, "y", "candidate", spec.slices[:1]),
        production_slices=slice_metrics(frame, "y", "production", spec.slices[:1]),
        candidate_data_end=date(2024, 3, 11),
        production_data_end=date(2024, 3, 10),
        smoke_test_passed=True,
        thresholds=spec.gates,
    )
    report = evaluate_gates(ctx)
    assert report.decision == "promote", report.summary()
    slices_gate = _gate(report, "slices_not_degraded")
    assert "worst slice store_type=hyper" in slices_gate.reason  # equal on hyper, better on express
    assert slices_gate.value == 0.0


# three baselines


def test_beats_baseline_compares_with_the_best_of_three() -> None:
    # persistence is best here: 4.0 beats seasonal naive (5) and training mean (9) but not persistence (3.5).
    baselines = {"persistence": _m(rmse=3.5), "seasonal_naive": _m(rmse=5.0), "training_mean": _m(rmse=9.0)}
    report = evaluate_gates(_ctx(baselines=baselines))
    gate = _gate(report, "beats_baseline")
    assert not gate.passed
    assert gate.threshold == pytest.approx(3.5 * 0.95)
    assert gate.reason == (
        "candidate RMSE 4 is 14.3% worse than the best baseline, persistence 3.5 "
        "(must be at least 5.0% better: at most 3.325)"
    )
    assert "\n" not in gate.reason
    assert report.best_baseline == "persistence"
    assert report.baselines == {"persistence": 3.5, "seasonal_naive": 5.0, "training_mean": 9.0}


def test_beats_baseline_passes_when_it_beats_the_best() -> None:
    baselines = {"persistence": _m(rmse=4.5), "seasonal_naive": _m(rmse=6.0), "training_mean": _m(rmse=4.3)}
    gate = _gate(evaluate_gates(_ctx(candidate=_m(rmse=4.0), baselines=baselines)), "beats_baseline")
    assert gate.passed
    assert "the best baseline, training_mean 4.3" in gate.reason


def test_a_single_baseline_is_enough_and_ties_go_to_the_first_listed() -> None:
    only = evaluate_gates(_ctx(baselines={"training_mean": _m(rmse=5.0)}))
    assert _gate(only, "beats_baseline").passed
    assert only.best_baseline == "training_mean"
    tie = evaluate_gates(_ctx(baselines={"seasonal_naive": _m(rmse=5.0), "persistence": _m(rmse=5.0)}))
    assert tie.best_baseline == "seasonal_naive"


def test_context_needs_at_least_one_baseline() -> None:
    with pytest.raises(ValidationError, match="baselines"):
        _ctx(baselines={})


def test_report_lists_every_baseline_in_json_tags_and_summary() -> None:
    report = evaluate_gates(_ctx())
    data = json.loads(report.to_json())
    assert data["baselines"] == {"persistence": 6.0, "seasonal_naive": 5.0, "training_mean": 15.0}
    assert data["best_baseline"] == "seasonal_naive"
    tags = report.to_tags()
    assert tags["gate.best_baseline"] == "seasonal_naive"
    assert {k for k in tags if k.startswith("gate.baseline.")} == {
        "gate.baseline.persistence.rmse",
        "gate.baseline.seasonal_naive.rmse",
        "gate.baseline.training_mean.rmse",
    }
    assert "persistence 6, seasonal_naive 5 (best), training_mean 15" in report.summary()


def test_reports_written_before_baselines_were_listed_still_load() -> None:
    data = json.loads(evaluate_gates(_ctx()).to_json())
    del data["baselines"], data["best_baseline"]
    old = GateReport.from_json(json.dumps(data))
    assert old.baselines == {} and old.best_baseline is None
    assert "baselines, holdout RMSE" not in old.summary()
