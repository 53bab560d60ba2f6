"""Fetching a registered version from MLflow: its booster and its run's feature snapshot, into a folder.

The MLflow client is set up for a poller: short HTTP timeouts, no retries (the next poll is the
retry), no progress bars.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from retrain.registry import VersionInfo
from serving.errors import ModelLoadError
from serving.model_cache import BOOSTER_NAME, SNAPSHOT_NAME
from serving.settings import ServingSettings

SNAPSHOT_ARTIFACT = "features/snapshot.parquet"


def configure_mlflow_client(settings: ServingSettings) -> None:
    """Short MLflow HTTP timeouts and no retries (the next poll is the retry), no progress bars."""
    from mlflow.environment_variables import (
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.set(False)  # type: ignore[no-untyped-call]

    MLFLOW_HTTP_REQUEST_MAX_RETRIES.set(settings.serving_registry_retries)  # type: ignore[no-untyped-call]
    MLFLOW_HTTP_REQUEST_TIMEOUT.set(settings.serving_registry_timeout_seconds)  # type: ignore[no-untyped-call]


def download_version(info: VersionInfo, target: Path) -> dict[str, Any]:
    """Fetch a version's booster and its run's feature snapshot into `target`; return its info."""
    import mlflow.artifacts

    from retrain.model_pyfunc import BOOSTER_FILE

    if info.run_id is None:
        raise ModelLoadError(f"version {info.version} of {info.name!r} has no MLflow run, hence no snapshot")
    scratch = target / "download"
    try:
        model_dir = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=str(scratch))
        )
        boosters = sorted(model_dir.rglob(BOOSTER_FILE))
        if not boosters:
            raise ModelLoadError(f"{info.model_uri} has no {BOOSTER_FILE}: not a retrain forecast model")
        shutil.move(str(boosters[0]), target / BOOSTER_NAME)
        snapshot = mlflow.artifacts.download_artifacts(
            run_id=info.run_id, artifact_path=SNAPSHOT_ARTIFACT, dst_path=str(scratch)
        )
        shutil.move(snapshot, target / SNAPSHOT_NAME)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot download version {info.version} of {info.name!r}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return info.to_dict()
