"""
### retrain_drift — daily drift and realized-performance checks of the production model

`wait_for_curated` + `wait_for_predictions` → `drift` and `realized` → `signal_retrain`, one run per day D.

* **wait_for_curated** (sensor, reschedule mode: frees its worker slot between pokes every 10 min, fails
  after 12 h) waits for `curated/date=D/`, which retrain_daily publishes. Without it nothing can be checked.
* **wait_for_predictions** (sensor, reschedule mode) waits for serving's prediction log of D for at most
  `predictions_wait_minutes` (param, default 60) after the run starts, then lets the run go on with
  **input drift only**: a day nobody asked forecasts for still gets checked.
* **drift** runs Evidently's `DataDriftPreset` on the window of `drift.current_days` days ending on D:
  the curated batches (features, and the realised target reported apart) and, when there is one, the
  prediction log (served inputs and predictions), each against the production version's reference.
  A window with fewer than `drift.min_rows` rows gets the verdict "insufficient data" and no alert.
  Thresholds are the spec's, raised above what windows of the training data itself score. HTML
  reports go to `reports/drift/date=D/` and to the production run in MLflow;
  `model_feature_drift_score{feature}`, `model_drift_share` and `model_drift_insufficient_data` go to
  the Pushgateway. When the share, a key feature or the target drifts it emails a summary table and
  where the reports are (attached gzipped only when at most 1 MB; SMTP when configured, else the
  local maildir).
* **realized** joins the day's actuals to the prediction log and pushes `model_realized_rmse` and
  `model_realized_wape`; WAPE above `gates.max_wape` emails. Skipped when nothing was served.
* **signal_retrain** updates the `retrain_drift_detected` Asset when drift alerted and the spec sets
  `drift.trigger_retrain` (the event's extra carries the date and the alert reasons). retrain_daily stays
  on its daily schedule; a DAG scheduled on this Asset (e.g. an on-demand retrain) runs on drift. Skipped
  otherwise.

Manual runs: set the `date` param (YYYY-MM-DD); `email=false` checks without emailing.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, task

from retrain.dag_defaults import date_param, default_args  # light: imports neither Evidently nor MLflow

DRIFT_ASSET = Asset(name="retrain_drift_detected", uri="retrain://drift/detected")


@dag(
    dag_id="retrain_drift",
    schedule="@daily",
    start_date=None,  # any date: checks run for whatever days the data has
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["retrain", "monitoring", "drift"],
    default_args=default_args(),
    params={
        "date": date_param(),
        "email": Param(
            True, type="boolean", description="Email when drift or degraded performance is found."
        ),
        "predictions_wait_minutes": Param(
            60, type="integer", minimum=0, description="How long to wait for the prediction log of the day."
        ),
    },
)
def retrain_drift() -> None:
    """Wire the monitoring tasks; every body is one call into retrain.monitoring.drift_tasks."""

    @task.sensor(poke_interval=timedelta(minutes=10), timeout=timedelta(hours=12), mode="reschedule")
    def wait_for_curated(**context: object) -> object:
        from retrain.monitoring import drift_tasks

        return drift_tasks.curated_ready(context)

    @task.sensor(
        poke_interval=timedelta(minutes=5), timeout=timedelta(hours=24), mode="reschedule", soft_fail=True
    )
    def wait_for_predictions(**context: object) -> object:
        from retrain.monitoring import drift_tasks

        return drift_tasks.predictions_ready(context)

    @task(trigger_rule="none_failed")
    def drift(**context: object) -> dict[str, object]:
        from retrain.monitoring import drift_tasks

        return drift_tasks.drift_task(context)

    @task(trigger_rule="none_failed")
    def realized(**context: object) -> dict[str, object]:
        from retrain.monitoring import drift_tasks

        return drift_tasks.realized_task(context)

    @task(outlets=[DRIFT_ASSET])
    def signal_retrain(checked: dict[str, object], **context: object) -> dict[str, object]:
        from retrain.monitoring import drift_tasks

        return drift_tasks.signal_retrain_task(context, checked, DRIFT_ASSET)

    waits = [wait_for_curated(), wait_for_predictions()]
    checked = drift()
    waits >> checked
    waits >> realized()
    signal_retrain(checked)


retrain_drift()
