"""Airflow plugin: links from the Airflow UI to MLflow (and Grafana when one is configured).

* A "Retrain" menu in the navigation (Airflow 3 `external_views`): MLflow experiments, the model
  registry, Grafana dashboards.
* An "MLflow run" button on task instances whose result names an MLflow run (train, evaluate): it opens
  the run that task logged. The api-server builds the URL from the task's XCom when the UI asks for it.

URLs come from the `[retrain]` config section, so AIRFLOW__RETRAIN__MLFLOW_URL and
AIRFLOW__RETRAIN__GRAFANA_URL set them per deployment (`retrain stack up` and docker-compose do).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

DEFAULT_MLFLOW_URL = "http://localhost:5000"
CATEGORY = "Retrain"


def retrain_links(mlflow_url: str, grafana_url: str | None) -> list[dict[str, Any]]:
    """External views for the Airflow navigation: MLflow experiments and registry, Grafana if configured."""
    mlflow_url = mlflow_url.rstrip("/")
    views = [
        {"name": "MLflow experiments", "href": f"{mlflow_url}/#/experiments", "category": CATEGORY},
        {"name": "MLflow model registry", "href": f"{mlflow_url}/#/models", "category": CATEGORY},
    ]
    if grafana_url:
        views.append(
            {
                "name": "Grafana dashboards",
                "href": f"{grafana_url.rstrip('/')}/dashboards",
                "category": CATEGORY,
            }
        )
    return views


def mlflow_run_id(task_result: Any) -> str | None:
    """The MLflow run a task result names: `result.run_id` (train) or `result.train.run_id` (evaluate)."""
    if isinstance(task_result, str):
        try:
            task_result = json.loads(task_result)
        except ValueError:
            return None
    result = task_result.get("result") if isinstance(task_result, Mapping) else None
    if not isinstance(result, Mapping):
        return None
    for holder in (result, result.get("train")):
        if isinstance(holder, Mapping) and isinstance(holder.get("run_id"), str):
            run_id: str = holder["run_id"]
            return run_id
    return None


def mlflow_run_url(mlflow_url: str, run_id: str) -> str:
    """MLflow UI page of one run (the UI finds its experiment)."""
    return f"{mlflow_url.rstrip('/')}/#/runs/{run_id}"


def _mlflow_url() -> str:
    from airflow.configuration import conf

    return str(conf.get("retrain", "mlflow_url", fallback=DEFAULT_MLFLOW_URL))


class MlflowRunLink(BaseOperatorLink):
    """Task button to the MLflow run the task logged; empty (hidden) for tasks that log none."""

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """Read the task's return value (runs in the api-server, which has the metadata DB)."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.execute(
                XComModel.get_many(
                    key="return_value",
                    run_id=ti_key.run_id,
                    dag_ids=ti_key.dag_id,
                    task_ids=ti_key.task_id,
                    map_indexes=ti_key.map_index,
                ).with_only_columns(XComModel.value)
            ).first()
        run_id = mlflow_run_id(row.value) if row is not None else None
        return mlflow_run_url(_mlflow_url(), run_id) if run_id else ""


class RetrainLinksPlugin(AirflowPlugin):
    """Adds the Retrain menu and the "MLflow run" task button to the Airflow UI."""

    name = "retrain_links"
    external_views: list[Any] = []
    global_operator_extra_links = [MlflowRunLink()]

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Read the URLs when the plugins manager loads the plugin, not at import time."""
        from airflow.configuration import conf

        cls.external_views = retrain_links(
            conf.get("retrain", "mlflow_url", fallback=DEFAULT_MLFLOW_URL),
            conf.get("retrain", "grafana_url", fallback=None),
        )
