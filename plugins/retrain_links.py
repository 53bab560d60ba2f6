"""Airflow plugin: links from the Airflow UI to MLflow (runs, model registry) and Grafana.

Airflow 3 replaced Flask menu items with `external_views`: dicts the React UI renders as links in the
navigation ("Retrain" menu). URLs come from the `[retrain]` config section, so the env vars
AIRFLOW__RETRAIN__MLFLOW_URL / AIRFLOW__RETRAIN__GRAFANA_URL set them per deployment.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

DEFAULT_MLFLOW_URL = "http://localhost:5000"
DEFAULT_GRAFANA_URL = "http://localhost:3000"
CATEGORY = "Retrain"


def retrain_links(mlflow_url: str, grafana_url: str) -> list[dict[str, Any]]:
    """External views for the Airflow navigation: MLflow experiments, model registry, Grafana."""
    mlflow_url, grafana_url = mlflow_url.rstrip("/"), grafana_url.rstrip("/")
    return [
        {"name": "MLflow experiments", "href": f"{mlflow_url}/#/experiments", "category": CATEGORY},
        {"name": "MLflow model registry", "href": f"{mlflow_url}/#/models", "category": CATEGORY},
        {"name": "Grafana dashboards", "href": f"{grafana_url}/dashboards", "category": CATEGORY},
    ]


class RetrainLinksPlugin(AirflowPlugin):
    """Adds the Retrain menu (MLflow, Grafana) to the Airflow UI."""

    name = "retrain_links"
    external_views: list[Any] = []

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Read the URLs when the plugins manager loads the plugin, not at import time."""
        from airflow.configuration import conf

        cls.external_views = retrain_links(
            conf.get("retrain", "mlflow_url", fallback=DEFAULT_MLFLOW_URL),
            conf.get("retrain", "grafana_url", fallback=DEFAULT_GRAFANA_URL),
        )
