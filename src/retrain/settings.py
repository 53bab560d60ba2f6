"""Typed settings for the pipeline, read from the environment with the RETRAIN_ prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Pipeline settings; every field can be set as RETRAIN_<FIELD> (e.g. RETRAIN_HOME)."""

    model_config = SettingsConfigDict(env_prefix="RETRAIN_", extra="ignore")

    home: Path = Field(default=Path("var"), description="Root of all local data, models and reports.")
    spec: Path = Field(
        default=REPO_ROOT / "config" / "retail_demand.yaml", description="Dataset spec (YAML) to run."
    )
    gx_root: Path = Field(
        default=Path("var") / "gx",
        description="Great Expectations file context (suites, results, Data Docs); default: <home>/gx, "
        "seeded from the repository's committed gx/great_expectations.yml.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: SQLite database under home."
    )
    mlflow_artifact_root: str | None = Field(
        default=None, description="Artifact root for new experiments; default: home/mlartifacts."
    )
    pushgateway_url: str | None = Field(
        default=None, description="Prometheus Pushgateway, e.g. localhost:9091."
    )
    smtp_host: str | None = Field(default=None, description="SMTP host for emails; none: write to a maildir.")
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "retrain@localhost"
    mail_to: list[str] = Field(default_factory=lambda: ["mlops@localhost"])
    seed: int = 42
    drop_wait_timeout_s: int = Field(
        default=6 * 3600, ge=0, description="How long the scheduled DAG waits for a day's drop to land."
    )
    drop_poke_interval_s: int = Field(default=300, ge=1, description="How often it looks for the drop.")

    @model_validator(mode="before")
    @classmethod
    def _gx_root_under_home(cls, data: Any) -> Any:
        # GX writes suites, results and Data Docs: that state belongs to the home, never to the checkout.
        if isinstance(data, dict) and not data.get("gx_root"):
            home = Path(data.get("home") or "var").expanduser().resolve()
            data = {**data, "gx_root": home / "gx"}
        return data

    @property
    def resolved_home(self) -> Path:
        """Absolute home directory."""
        return self.home.expanduser().resolve()

    @property
    def log_file(self) -> Path:
        """Where the CLI sends Airflow, MLflow and library logs (the terminal gets one line per event)."""
        return self.resolved_home / "logs" / "retrain.log"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI, defaulting to a SQLite store under home."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.resolved_home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        """Artifact root for new MLflow experiments."""
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        return (self.resolved_home / "mlartifacts").as_uri()
