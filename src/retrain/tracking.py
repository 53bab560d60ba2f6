"""Thin MLflow tracking adapter: URIs from settings, experiments, logging the model, code version."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retrain.errors import RetrainError
from retrain.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    import pandas as pd

    from retrain.model import ForecastModel

logger = logging.getLogger(__name__)

# The pyfunc model needs these at load time; MLflow prepends its own pin.
PINNED_PACKAGES = ("xgboost", "numpy", "pandas")
_GIT_TIMEOUT_S = 5.0
# Prefixes the verdict line the smoke-test child prints, so stray output cannot be mistaken for it.
SMOKE_MARKER = "RETRAIN_SMOKE_RESULT "


def configure_mlflow(settings: Settings) -> None:
    """Point the MLflow client (tracking and registry) at the settings' URI; safe to call repeatedly."""
    settings.resolved_home.mkdir(parents=True, exist_ok=True)
    uri = settings.tracking_uri
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    if mlflow.get_registry_uri() != uri:
        mlflow.set_registry_uri(uri)


def experiment_id(settings: Settings, name: str) -> str:
    """Id of the experiment called ``name``, creating it with its artifacts under the artifact root."""
    configure_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    try:
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        location = f"{settings.artifact_root.rstrip('/')}/{name}"
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException as exc:
        raise RetrainError(
            f"MLflow at {settings.tracking_uri} refused experiment {name!r}: {exc.message}; "
            "check RETRAIN_MLFLOW_TRACKING_URI"
        ) from exc


def pip_requirements() -> list[str]:
    """Exact pins of the packages the logged model needs, from the running environment."""
    return [f"{pkg}=={metadata.version(pkg)}" for pkg in PINNED_PACKAGES]


def log_forecast_model(model: ForecastModel, *, input_example: pd.DataFrame, name: str = "model") -> str:
    """Log the model as an MLflow pyfunc (booster file + offset recipe) with signature and example."""
    import tempfile

    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from retrain.model_pyfunc import BOOSTER_ARTIFACT, BOOSTER_FILE, ForecastPyfunc

    run = mlflow.active_run()
    if run is None:
        raise RetrainError("log_forecast_model needs an active MLflow run: call it inside mlflow.start_run()")
    started = time.perf_counter()
    predictions = model.predict(input_example[model.feature_names].to_numpy(dtype="float64"))
    with tempfile.TemporaryDirectory() as tmp:
        booster_path = model.save(Path(tmp) / BOOSTER_FILE)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=ForecastPyfunc(),
            artifacts={BOOSTER_ARTIFACT: str(booster_path)},
            signature=infer_signature(input_example, predictions),
            input_example=input_example,
            # Inferring requirements imports the model in a subprocess: ~3 s per log (BASELINES.md).
            # The retrain package itself must be importable where the model is loaded.
            pip_requirements=pip_requirements(),
        )
    logger.info(
        "logged model run_id=%s model_uri=%s seconds=%.3f",
        run.info.run_id,
        info.model_uri,
        time.perf_counter() - started,
    )
    return str(info.model_uri)


def load_forecast_model(model_uri: str, nthread: int | None = None) -> ForecastModel:
    """Download a logged model's booster file and load it as a ForecastModel (no pyfunc overhead)."""
    import mlflow.artifacts

    from retrain.model import ForecastModel
    from retrain.model_pyfunc import BOOSTER_FILE

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except MlflowException as exc:
        raise RetrainError(f"cannot download {model_uri}: {exc.message}") from exc
    found = sorted(local.rglob(BOOSTER_FILE))
    if not found:
        raise RetrainError(f"{model_uri} has no {BOOSTER_FILE}: not a retrain forecast model")
    return ForecastModel.load(found[0], nthread=nthread)


def code_version() -> str:
    """Git commit of the repository (``+dirty`` with uncommitted changes), else the package version."""
    # An installed wheel has no .git next to it; git would otherwise report an enclosing repo.
    if not (REPO_ROOT / ".git").exists():
        return _package_version()
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return _package_version()
    return f"{commit}+dirty" if dirty else commit


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT_S,
        check=True,
    )
    return done.stdout.strip()


def _package_version() -> str:
    try:
        return metadata.version("retrain")
    except metadata.PackageNotFoundError:
        from retrain import __version__

        return __version__


def smoke_main(argv: list[str]) -> NoReturn:
    """Entry of the ``ModelRegistry.smoke_test`` child: argv ``[tracking_uri, model_uri]``, prints the verdict.

    Only for that child process: once the verdict is printed and flushed it ends the process at once
    (exit code 0 on pass, 1 on fail). Tearing down an interpreter holding MLflow, pandas, xgboost and
    sklearn takes 0.5-2.5 s and has nothing left to do here.
    """
    tracking_uri, model_uri = argv
    passed, message = load_and_predict_example(tracking_uri, model_uri)
    print(SMOKE_MARKER + json.dumps({"passed": passed, "message": message}), flush=True)  # noqa: T201
    sys.stderr.flush()
    os._exit(0 if passed else 1)


def load_and_predict_example(tracking_uri: str, model_uri: str) -> tuple[bool, str]:
    """Load ``model_uri`` as pyfunc and predict its logged input example: (passed, what happened)."""
    import mlflow.pyfunc
    import numpy as np

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        # suppress_warnings skips MLflow's scan of every installed distribution for requirement
        # mismatches (a warning only, and the child runs in the very environment that logged the pins).
        model = mlflow.pyfunc.load_model(model_uri, suppress_warnings=True)
    except Exception as exc:  # any failure to load is the verdict, not a crash
        return False, f"{model_uri} does not load: {_describe(exc)}"
    example = model.input_example
    if example is None:
        return False, f"{model_uri} has no input example to predict"
    rows = len(example)
    try:
        predictions = np.atleast_1d(np.asarray(model.predict(example), dtype=float))
    except Exception as exc:
        return False, f"{model_uri} loads but cannot predict its input example: {_describe(exc)}"
    if predictions.shape[0] != rows:
        return False, f"{model_uri} returned {predictions.shape[0]} predictions for {rows} example rows"
    not_finite = int((~np.isfinite(predictions.reshape(rows, -1))).any(axis=1).sum())
    if not_finite:
        return False, f"{model_uri}: {not_finite} of {rows} predictions are not finite"
    return True, f"{model_uri} loads in a fresh process and predicts {rows} finite values"


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
