"""
### retrain_daily — retrain, gate and promote the forecasting model every day

`wait_for_drop → ingest → validate → features → train → evaluate → register (+ gates) → publish`, one run
per day, for any date: the DAG has no start date, so a run for 2012-03-04 works like one for 2026-03-04.

* **wait_for_drop** (sensor, reschedule mode) waits for the day's landing drop up to
  `RETRAIN_DROP_WAIT_TIMEOUT_S` (default 6 h), then fails naming the date and the path it looked at.
* **ingest** stages the drop (CSV / Parquet / SQL) with typed columns.
* **validate** runs the Great Expectations checkpoint generated from the dataset spec. A bad batch is moved
  to `quarantine/date=D/` with its GX result, the run fails there and production does not move.
* **features** builds leakage-free lags, rolling statistics and calendar features plus the online snapshot.
* **train** fits XGBoost and the baselines on the rolling window, logs everything to MLflow.
* **evaluate** scores candidate, production and baseline on the same holdout (overall and per slice).
* **register** creates a model version (`candidate`), smoke-tests it, applies the promotion gates and moves
  `production` (and `previous`) only if every gate passes. The gate report is in the task log and on the version.
* **publish** pushes pipeline metrics to the Pushgateway (when configured) and updates the model Asset.

Manual runs: set the `date` param (YYYY-MM-DD) to run a specific day; `promote=false` registers without
promoting. Backfills (`airflow backfill create`, the UI, or `retrain backfill`) register old dates but the
freshness gate never lets them replace a model trained on newer data.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

from retrain.dag_defaults import date_param, default_args, drop_sensor_args  # light: no MLflow nor GX

MODEL_ASSET = Asset(name="retrain_model", uri="retrain://model/production")


@dag(
    dag_id="retrain_daily",
    schedule="@daily",
    start_date=None,  # no fixed calendar: the data decides the dates (manual runs, backfills of any year)
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["retrain", "training", "mlflow"],
    default_args=default_args(),
    params={
        "date": date_param(),
        "promote": Param(True, type="boolean", description="Allow promotion when every gate passes."),
        "holdout_days": Param(
            None, type=["null", "integer"], minimum=1, description="Override the spec's holdout."
        ),
        "num_boost_round": Param(
            None, type=["null", "integer"], minimum=1, description="Override the spec's boosting rounds."
        ),
    },
)
def retrain_daily() -> None:
    """Wire the daily retraining tasks; every body is one call into retrain.tasks."""

    @task.sensor(**drop_sensor_args())
    def wait_for_drop(**context: object) -> object:
        from retrain import tasks

        return tasks.drop_ready(context)

    @task
    def ingest(**context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.ingest_task(context)

    @task
    def validate(staged: dict[str, object], **context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.validate_task(context, staged)

    @task
    def features(validated: dict[str, object], **context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.features_task(context, validated)

    @task
    def train(built: dict[str, object], **context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.train_task(context, built)

    @task
    def evaluate(trained: dict[str, object], **context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.evaluate_task(context, trained)

    @task
    def register(evaluated: dict[str, object], **context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.register_task(context, evaluated)

    @task(outlets=[MODEL_ASSET])
    def publish(decision: dict[str, object], **context: object) -> dict[str, object]:
        from retrain import tasks

        return tasks.publish_task(context, decision)

    staged = ingest()
    wait_for_drop() >> staged
    publish(register(evaluate(train(features(validate(staged))))))


retrain_daily()
