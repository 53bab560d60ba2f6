"""The demo's later scenes: serving that follows a promotion, and a drifted day caught by monitoring."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from rich.console import Console

from retrain.errors import RetrainError
from retrain.layout import DatasetLayout
from retrain.settings import Settings
from retrain.spec import DatasetSpec

REQUEST_ROWS = 5
POLL_SECONDS = 1.0


class ServedBatch(BaseModel):
    """One batch prediction the demo made: which version answered, and the first predictions."""

    model_config = ConfigDict(frozen=True)

    version: int
    predictions: list[float]


def request_rows(
    settings: Settings, spec: DatasetSpec, source_day: date, ask_for: date
) -> list[dict[str, Any]]:
    """Request rows as a client would send them: keys and request-time features of curated `source_day`
    (today's prices and promotions), asking for the forecast of `ask_for`."""
    from serving.schemas import request_fields

    layout = DatasetLayout.for_spec(settings, spec)
    frame = pd.read_parquet(layout.curated_file(source_day)).head(REQUEST_ROWS)
    fields = list(request_fields(spec))
    rows: list[dict[str, Any]] = json.loads(frame[fields].to_json(orient="records"))
    for row in rows:
        row[spec.timestamp_column] = ask_for.isoformat()
    return rows


def predict_batch(server: Any, rows: list[dict[str, Any]]) -> ServedBatch:
    """POST /predict/batch; RetrainError with the server's detail unless it answers 200."""
    status, body = server.post_json("/predict/batch", {"rows": rows})
    if status != 200:
        raise RetrainError(f"serving answered {status}: {body.get('detail', body)}")
    return ServedBatch(
        version=int(body["model_version"]), predictions=[round(float(p), 2) for p in body["predictions"]]
    )


def wait_for_version(server: Any, version: int, timeout: float = 60.0) -> float:
    """Seconds until GET /model reports `version` (the alias poll picked it up)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        status, body = server.get_json("/model")
        if status == 200 and int(body.get("model_version", -1)) == version:
            return time.perf_counter() - started
        time.sleep(POLL_SECONDS / 4)
    raise RetrainError(f"serving did not switch to version {version} within {timeout:.0f} s")


@contextmanager
def serving(settings: Settings, console: Console) -> Iterator[Any]:
    """The prediction service on a free localhost port for the demo's home, stopped (log flushed) on exit."""
    from retrain.local.launcher import serving_in_background

    with serving_in_background(settings, poll_seconds=POLL_SECONDS) as server:
        console.print(
            f"serving on {server.base_url} (docs: {server.base_url}/docs), polling the alias every 1 s"
        )
        yield server
    console.print("serving stopped; its prediction log was flushed")


def serve_across_promotion(
    settings: Settings,
    spec: DatasetSpec,
    console: Console,
    source_day: date,
    ask_for: date,
    promote: Callable[[], int | None],
) -> list[ServedBatch]:
    """Predict with the production model, run `promote` (returns the newly promoted version, or None),
    and predict again once the server follows the alias."""
    rows = request_rows(settings, spec, source_day, ask_for)
    served: list[ServedBatch] = []
    with serving(settings, console) as server:
        before = predict_batch(server, rows)
        served.append(before)
        console.print(f"  v{before.version} predicts {before.predictions} for {ask_for}")
        promoted = promote()
        if promoted is not None and promoted != before.version:
            seconds = wait_for_version(server, promoted)
            after = predict_batch(server, rows)
            served.append(after)
            console.print(
                f"  production moved to v{promoted}: the server switched in {seconds:.1f} s with no restart;"
                f" v{after.version} predicts {after.predictions}"
            )
    return served


class DriftScene(BaseModel):
    """What the drift check of the drifted day found and where it left things."""

    model_config = ConfigDict(frozen=True)

    drifted: list[str]
    share: float
    alerted: bool
    report: Path
    email: str | None


def check_drift(settings: Settings, spec: DatasetSpec, day: date, console: Console) -> DriftScene:
    """Run the drift job on `day` (curated already) and narrate the report and the email."""
    from retrain.monitoring import drift

    # Prices shift on the very day the demo checks: compare that day alone (1,000 rows are enough),
    # not the week ending on it, where one shifted day of seven stays under the price threshold.
    spec = spec.model_copy(update={"drift": spec.drift.model_copy(update={"current_days": 1})})
    result = drift.run(settings, spec, day, notify=True)
    scene = DriftScene(
        drifted=list(result.input.drifted_features),
        share=result.input.share or 0.0,
        alerted=result.alert.alert,
        report=Path(result.input.report_path or result.input.summary_path),
        email=result.alert.delivered_to,
    )
    console.print(
        f"  drifted features: {', '.join(scene.drifted) or 'none'} (share {scene.share:.0%});"
        f" alert {'sent' if scene.alerted else 'not needed'}"
    )
    console.print(f"  open the report: {scene.report}")
    if scene.email:
        console.print(f"  the drift email went to {scene.email}")
    return scene
