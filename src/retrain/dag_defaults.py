"""What every retrain DAG shares: owner, retries with backoff, the failure email, the `date` param.

Light on purpose (DAG files import it at parse time): no MLflow, GX, Evidently or XGBoost.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from retrain.notify import failure_notifier


def default_args() -> dict[str, Any]:
    """Task defaults: owner, 2 retries with exponential backoff (2 min to 30 min), email on failure."""
    return {
        "owner": "mlops",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": failure_notifier(),
    }


def drop_sensor_args() -> dict[str, Any]:
    """The wait for a day's drop: reschedule mode (no worker slot held), RETRAIN_DROP_WAIT_TIMEOUT_S long.

    A sensor that times out fails at once (no retries): a missing drop is not a transient error.
    """
    from retrain.settings import Settings  # pydantic-settings only: cheap at parse time

    settings = Settings()
    return {
        "mode": "reschedule",
        "poke_interval": timedelta(seconds=settings.drop_poke_interval_s),
        "timeout": timedelta(seconds=settings.drop_wait_timeout_s),
    }


def date_param() -> Param:
    """The run date of a manual trigger (a trigger without a logical date has no data interval)."""
    return Param(
        None, type=["null", "string"], format="date", description="Run date (default: data interval)."
    )
