"""Serving settings: the pipeline's settings plus RETRAIN_SERVING_* fields (one env prefix for the project)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec

DEFAULT_PREDICTION_BUCKETS = (0.0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000)


class ServingSettings(Settings):
    """Settings of the prediction service; every field can be set as RETRAIN_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="RETRAIN_", extra="ignore", populate_by_name=True)

    serving_host: str = Field(default="127.0.0.1", description="Interface `retrain serve` binds.")
    serving_port: int = Field(default=8000, ge=1, le=65535, description="Port `retrain serve` binds.")
    serving_workers: int = Field(
        default=1, ge=1, description="Uvicorn worker processes; above 1 metrics use multiprocess mode."
    )
    serving_model_name: str | None = Field(
        default=None, description="Registered model to serve; default: the spec's registered model name."
    )
    serving_alias: str = Field(default="production", description="Registry alias the service follows.")
    serving_poll_seconds: float = Field(
        default=30.0, gt=0, description="How often the alias is polled for a new version."
    )
    serving_max_batch_rows: int = Field(default=1000, ge=1, description="Most rows in one batch request.")
    serving_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest accepted request body (413 above)."
    )
    serving_max_horizon_days: int = Field(
        default=7, ge=1, description="Latest date served, in days after the feature snapshot in use."
    )
    serving_follow_online_snapshot: bool = Field(
        default=True,
        description="Feed the served model the dataset's newest online feature snapshot (moves with every "
        "curated day); off: only the snapshot logged with the model's run.",
    )
    serving_online_snapshot: Path | None = Field(
        default=None,
        description="Parquet file of the online feature snapshot the features stage publishes; default: "
        "<home>/<dataset>/features/online/snapshot.parquet.",
    )
    serving_api_key: SecretStr | None = Field(
        default=None, description="Key for POST /admin/reload (header X-API-Key); unset: admin disabled."
    )
    serving_nthread: int = Field(
        default=1, ge=1, description="Booster threads per worker (1 when workers fill the cores)."
    )
    serving_fast_predict: bool = Field(
        default=True, description="Call XGBoost's in-place predict through its C API (skips wrapper cost)."
    )
    serving_registry_timeout_seconds: int = Field(
        default=5, ge=1, description="Timeout of one MLflow HTTP request made by the poller."
    )
    serving_registry_retries: int = Field(
        default=0, ge=0, description="MLflow HTTP retries per request (the poll interval is the retry)."
    )
    serving_log_predictions: bool = Field(default=True, description="Append predictions to the log.")
    serving_log_flush_seconds: float = Field(
        default=5.0, gt=0, description="How often buffered predictions are written to Parquet."
    )
    serving_log_max_buffered_rows: int = Field(
        default=50_000, ge=1, description="Buffered rows that trigger an early flush."
    )
    serving_cache_versions: int = Field(
        default=2, ge=1, description="Model versions kept in the local cache under home/serving_cache."
    )
    serving_prediction_buckets: tuple[float, ...] = Field(
        default=DEFAULT_PREDICTION_BUCKETS, description="Buckets of the model_prediction_value histogram."
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
        description="prometheus-client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR, no prefix).",
    )

    @property
    def cache_root(self) -> Path:
        """Local copies of the versions the service loaded (cold start with the registry down)."""
        return self.resolved_home / "serving_cache"

    def online_snapshot_path(self, spec: DatasetSpec) -> Path:
        """Where the dataset's online feature snapshot is published (the features stage writes it)."""
        if self.serving_online_snapshot is not None:
            return self.serving_online_snapshot.expanduser()
        return DatasetLayout.for_spec(self, spec).online_snapshot

    def api_key(self) -> str | None:
        """The admin API key in clear, or None when admin endpoints are disabled."""
        return self.serving_api_key.get_secret_value() if self.serving_api_key else None
