"""Task bodies of the retrain_drift DAG: each resolves the run date and settings, then calls one stage.

Results travel between tasks as small JSON dicts (XCom): verdicts, scores and paths, never data.
Airflow is imported inside the functions, so the module also loads where Airflow is not configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from retrain.layout import DatasetLayout
from retrain.tasks import task_setup

DEFAULT_PREDICTIONS_WAIT_MINUTES = 60
"""How long after the run starts the DAG waits for a prediction log before checking input drift only."""


def curated_ready(context: Mapping[str, Any]) -> Any:
    """Sensor poke: done when ``curated/date=D`` exists (retrain_daily publishes it)."""
    from airflow.sdk import PokeReturnValue

    settings, spec, day, _ = task_setup(context)
    path = DatasetLayout.for_spec(settings, spec).curated_file(day)
    return PokeReturnValue(is_done=path.is_file(), xcom_value={"day": day.isoformat(), "curated": str(path)})


def predictions_ready(context: Mapping[str, Any], now: datetime | None = None) -> Any:
    """Sensor poke: done when the day has a prediction log, or once the wait is over (then input drift only).

    The wait is the ``predictions_wait_minutes`` param counted from the start of the DAG run, so a
    day nobody asked forecasts for still gets its input drift check; the sensor's own timeout is only
    a safety net.
    """
    from airflow.sdk import PokeReturnValue

    from retrain.monitoring.realized import prediction_files

    settings, spec, day, params = task_setup(context)
    files = prediction_files(DatasetLayout.for_spec(settings, spec), day)
    if files:
        return PokeReturnValue(is_done=True, xcom_value={"found": True, "files": len(files)})
    wait = params.get("predictions_wait_minutes")
    minutes = DEFAULT_PREDICTIONS_WAIT_MINUTES if wait is None else int(wait)
    dag_run = context.get("dag_run")
    started = getattr(dag_run, "start_date", None) or datetime.now(UTC)
    if (now or datetime.now(UTC)) < started + timedelta(minutes=minutes):
        return PokeReturnValue(is_done=False)
    reason = f"no prediction log for {day} after {minutes} min: input drift only"
    return PokeReturnValue(is_done=True, xcom_value={"found": False, "reason": reason})


def drift_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """Input and prediction-log drift of the day, email when a threshold is reached."""
    from retrain.monitoring import drift

    settings, spec, day, params = task_setup(context)
    result = drift.run(settings, spec, day, notify=bool(params.get("email", True)))
    return {**result.to_xcom(), "trigger_retrain": spec.drift.trigger_retrain}


def realized_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """Realized RMSE/WAPE of the day's served predictions; skipped when nothing was served that day."""
    from airflow.sdk.exceptions import AirflowSkipException

    from retrain.monitoring import realized

    settings, spec, day, params = task_setup(context)
    if not realized.prediction_files(DatasetLayout.for_spec(settings, spec), day):
        raise AirflowSkipException(f"no prediction log for {day}: nothing served, no realized performance")
    return realized.run(settings, spec, day, notify=bool(params.get("email", True))).to_xcom()


def signal_retrain_task(context: Mapping[str, Any], checked: Mapping[str, Any], asset: Any) -> dict[str, Any]:
    """Let the task's outlet Asset fire (retrain_daily can be scheduled on it) when drift alerted and
    the spec's ``drift.trigger_retrain`` is on; skipped otherwise, and a skipped task emits no event."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not checked.get("trigger_retrain"):
        raise AirflowSkipException("drift.trigger_retrain is off in the spec")
    alert = checked.get("alert") or {}
    if not alert.get("alert"):
        raise AirflowSkipException("no drift over the spec's thresholds")
    extra = {"date": checked["day"], "reasons": list(alert.get("reasons") or [])}
    outlet_events = context.get("outlet_events")
    if outlet_events is not None:
        outlet_events[asset].extra = extra
    return extra
