"""Task bodies of the DAGs: each resolves the run date and settings (`task_setup`), then calls one stage.

Every stage is `run(settings, spec, day, ...)` returning a frozen `retrain.results.StageResult`;
results travel between tasks as its `to_xcom()` JSON dict (small values, never data) and come back
typed through `from_xcom`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from retrain.errors import CadenceError, DataInvalidError, DataMissingError
from retrain.settings import Settings
from retrain.spec import DatasetSpec, load_spec


def resolve_run_date(params: Mapping[str, Any], data_interval_start: Any, logical_date: Any) -> date:
    """The run date: the `date` param of a manual trigger, else the data interval start, else the logical date."""
    explicit = params.get("date")
    if explicit:
        return date.fromisoformat(str(explicit))
    for candidate in (data_interval_start, logical_date):
        if isinstance(candidate, datetime):
            return candidate.date()
    raise ValueError("no run date: trigger with a `date` param (YYYY-MM-DD) or a logical date")


class TaskSetup(NamedTuple):
    """What every task body starts from: typed settings, the dataset spec, the run date and the params."""

    settings: Settings
    spec: DatasetSpec
    day: date
    params: Mapping[str, Any]


def task_setup(context: Mapping[str, Any]) -> TaskSetup:
    """Settings, spec, run date and params of a task from its Airflow context."""
    settings = Settings()
    params = context.get("params") or {}
    day = resolve_run_date(params, context.get("data_interval_start"), context.get("logical_date"))
    return TaskSetup(settings, load_spec(settings.spec), day, params)


@contextlib.contextmanager
def _fail_without_retry(*kinds: type[Exception]) -> Iterator[None]:
    """Errors that another try cannot fix (data not daily, bad spec) fail the task at once."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except kinds as exc:
        raise AirflowFailException(str(exc)) from exc


def _with_timings(
    result: dict[str, Any], task: str, started: float, upstream: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Carry every task's duration forward so publish can report them all."""
    timings = dict((upstream or {}).get("timings") or {})
    timings[task] = round(time.perf_counter() - started, 3)
    return {**result, "timings": timings}


def drop_ready(context: Mapping[str, Any]) -> Any:
    """Sensor poke: done when the day's landing drop is there (files for the date, or SQL rows)."""
    from airflow.sdk import PokeReturnValue

    from retrain.ingest import landing_available, landing_location

    settings, spec, day, _ = task_setup(context)
    found = landing_available(settings, spec, day)
    where = landing_location(settings, spec, day)
    return PokeReturnValue(is_done=found, xcom_value={"day": day.isoformat(), "landing": where})


def ingest_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """Stage the day's landing drop; a drop that vanished after the sensor saw it fails without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from retrain import ingest

    started = time.perf_counter()
    settings, spec, day, _ = task_setup(context)
    try:
        staged = ingest.run(settings, spec, day)
    except DataMissingError as exc:
        raise AirflowFailException(str(exc)) from exc  # missing data is the sensor's job, not retries'
    return _with_timings(staged.to_xcom(), "ingest", started)


def validate_task(context: Mapping[str, Any], staged: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and publish the staged batch; an invalid batch is quarantined and fails without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from retrain import validate
    from retrain.layout import DatasetLayout
    from retrain.publish import push_validation_metrics

    started = time.perf_counter()
    settings, spec, day, _ = task_setup(context)
    quarantine = DatasetLayout.for_spec(settings, spec).quarantine
    try:
        result = validate.run(settings, spec, day).to_xcom()
    except DataInvalidError as exc:
        push_validation_metrics(settings, spec.name, _count_partitions(quarantine), failed=True)
        raise AirflowFailException(str(exc)) from exc
    push_validation_metrics(settings, spec.name, _count_partitions(quarantine), failed=False)
    return _with_timings(result, "validate", started, staged)


def _count_partitions(folder: Path) -> int:
    return sum(1 for p in folder.glob("date=*") if p.is_dir()) if folder.is_dir() else 0


def features_task(context: Mapping[str, Any], validated: Mapping[str, Any]) -> dict[str, Any]:
    """Build the training table and online snapshot."""
    from retrain import features

    started = time.perf_counter()
    settings, spec, day, _ = task_setup(context)
    with _fail_without_retry(CadenceError):
        built = features.run(settings, spec, day)
    result = {
        "day": day.isoformat(),
        "rows_ingested": validated.get("rows", 0),
        "train_rows": built.train_rows,
        "features": len(built.feature_names),
    }
    return _with_timings(result, "features", started, validated)


def train_task(context: Mapping[str, Any], built: Mapping[str, Any]) -> dict[str, Any]:
    """Fit and log the candidate and the baseline."""
    from retrain import train

    started = time.perf_counter()
    settings, spec, day, params = task_setup(context)
    holdout, rounds = params.get("holdout_days"), params.get("num_boost_round")
    if rounds:
        spec = spec.model_copy(
            update={"training": spec.training.model_copy(update={"num_boost_round": int(rounds)})}
        )
    trained = train.run(settings, spec, day, holdout_days=int(holdout) if holdout else None)
    result = {"result": trained.to_xcom(), "rows_ingested": built.get("rows_ingested", 0)}
    return _with_timings(result, "train", started, built)


def evaluate_task(context: Mapping[str, Any], trained: Mapping[str, Any]) -> dict[str, Any]:
    """Score candidate, production and baseline on the same holdout."""
    from retrain import evaluate
    from retrain.train import TrainResult

    started = time.perf_counter()
    settings, spec, day, _ = task_setup(context)
    evaluation = evaluate.run(settings, spec, day, trained=TrainResult.from_xcom(trained["result"]))
    result = {"result": evaluation.to_xcom(), "rows_ingested": trained.get("rows_ingested", 0)}
    return _with_timings(result, "evaluate", started, trained)


def register_task(context: Mapping[str, Any], evaluated: Mapping[str, Any]) -> dict[str, Any]:
    """Register, gate and (maybe) promote."""
    from retrain import promote
    from retrain.evaluate import EvaluationResult

    started = time.perf_counter()
    settings, spec, day, params = task_setup(context)
    evaluation = EvaluationResult.from_xcom(evaluated["result"])
    allow = bool(params.get("promote", True))
    decision = promote.run(settings, spec, day, evaluation=evaluation, allow_promotion=allow)
    result = {**decision.to_xcom(), "rows_ingested": evaluated.get("rows_ingested", 0)}
    return _with_timings(result, "register", started, evaluated)


def publish_task(context: Mapping[str, Any], decision: Mapping[str, Any]) -> dict[str, Any]:
    """Push pipeline metrics; the task's outlet Asset tells downstream DAGs a run finished."""
    from retrain import publish
    from retrain.promote import RegisterResult

    settings, spec, day, _ = task_setup(context)
    report = publish.run(
        settings,
        spec,
        day,
        registered=RegisterResult.from_xcom(decision),
        rows_ingested=int(decision.get("rows_ingested") or 0),
        task_seconds=dict(decision.get("timings") or {}),
    )
    return {**dict(decision), "pushed": report.pushed}
