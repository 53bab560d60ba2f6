"""Realized performance: served predictions joined to the day's actuals, in retrain_drift's realized task.

Expected metrics are recomputed here with numpy from the rows the test itself logged, so the join
(latest prediction per entity, landed actuals preferred over curated ones) is checked end to end.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain.settings import Settings
from tests.utils.drift_data import (
    TrainedWorld,
    pushed_samples,
    pushed_value,
    served_rows,
    write_prediction_log,
)
from tests.utils.prom import LocalServer
from tests.utils.smtp import SmtpServer, html_body

GOOD_DAY = date(2026, 3, 3)
BAD_DAY = date(2026, 3, 4)
KEYS = ["date", "store_id", "item_id"]


def numpy_metrics(predictions: pd.DataFrame, actuals: pd.DataFrame) -> dict[str, float]:
    """RMSE and WAPE of predictions joined to actuals, computed independently of retrain.metrics."""
    joined = predictions.merge(actuals, on=KEYS, how="inner")
    error = joined["prediction"].to_numpy(float) - joined["sales"].to_numpy(float)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "wape": float(np.abs(error).sum() / np.abs(joined["sales"].to_numpy(float)).sum()),
        "rows": len(joined),
    }


def curated_actuals(world: Any, day: date) -> pd.DataFrame:
    frame = pd.read_parquet(world.layout.curated_file(day), columns=[*KEYS, "sales"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def run_day(day: date, smtp: SmtpServer) -> Any:
    from retrain.local.orchestrate import run_dag

    smtp.clear()
    outcome = run_dag("retrain_drift", day, {"predictions_wait_minutes": 0})
    assert outcome.succeeded, outcome.task_states
    return outcome


@pytest.mark.slow
def test_realized_metrics_match_numpy_and_latest_prediction_wins(
    drift_env: Settings, trained_world: TrainedWorld, smtp: SmtpServer, pushgateway: LocalServer
) -> None:
    world = trained_world.world
    served = served_rows(world, GOOD_DAY)
    # 25 entities were asked again later with another answer: only the latest answer counts.
    again = served.head(25).assign(prediction=lambda f: f["prediction"] * 0.5)
    write_prediction_log(
        world, GOOD_DAY, pd.concat([served, again], ignore_index=True), trained_world.version
    )
    final = pd.concat([served.iloc[25:], again], ignore_index=True)
    expected = numpy_metrics(final, curated_actuals(world, GOOD_DAY))

    outcome = run_day(GOOD_DAY, smtp)
    realized = outcome.xcoms["realized"]
    assert realized["evaluated_rows"] == expected["rows"] == 1000
    assert realized["superseded_rows"] == 25 and realized["unmatched_rows"] == 0
    assert realized["metrics"]["rmse"] == pytest.approx(expected["rmse"], rel=1e-9)
    assert realized["metrics"]["wape"] == pytest.approx(expected["wape"], rel=1e-9)
    assert realized["actuals_source"].endswith("curated/date=2026-03-03/part.parquet")
    assert realized["degraded"] is False and realized["model_versions"] == [trained_world.version]
    # A good model on a day without drift: no email at all.
    assert smtp.messages == [], smtp.subjects()
    samples = pushed_samples(pushgateway.url)
    labels = {"dataset": "retail_demand", "stage": "actuals"}
    assert pushed_value(samples, "model_realized_rmse", **labels) == pytest.approx(expected["rmse"])
    assert pushed_value(samples, "model_realized_wape", **labels) == pytest.approx(expected["wape"])


@pytest.mark.slow
def test_degraded_day_with_landed_actuals_emails(
    drift_env: Settings, trained_world: TrainedWorld, smtp: SmtpServer, pushgateway: LocalServer
) -> None:
    world = trained_world.world
    served = served_rows(world, BAD_DAY, factor=1.6)  # over-forecasting by 60 %
    write_prediction_log(world, BAD_DAY, served, trained_world.version)
    # Actuals landed for half the entities so far, in their own feed: they take precedence over curated.
    landed = curated_actuals(world, BAD_DAY).iloc[::2].reset_index(drop=True)
    folder = world.layout.actuals / f"date={BAD_DAY.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    landed.assign(date=landed["date"].dt.date).to_parquet(folder / "part.parquet", index=False)
    expected = numpy_metrics(served, landed)

    outcome = run_day(BAD_DAY, smtp)
    realized = outcome.xcoms["realized"]
    assert realized["evaluated_rows"] == expected["rows"] == 500 and realized["unmatched_rows"] == 500
    assert realized["metrics"]["wape"] == pytest.approx(expected["wape"], rel=1e-9)
    assert realized["metrics"]["rmse"] == pytest.approx(expected["rmse"], rel=1e-9)
    assert realized["degraded"] is True and expected["wape"] > world.spec.gates.max_wape
    subjects = smtp.subjects()
    wanted = f"[retrain] realized performance degraded in retail_demand on {BAD_DAY}: WAPE {expected['wape']:.3f} > 0.350"
    assert subjects == [wanted], subjects
    body = html_body(smtp.messages[0])
    assert "500 of 1,000 logged" in body and f"v{trained_world.version}" in body
    samples = pushed_samples(pushgateway.url)
    wape = pushed_value(samples, "model_realized_wape", dataset="retail_demand", stage="actuals")
    assert wape == pytest.approx(expected["wape"])


def test_join_keeps_latest_prediction_and_counts_unmatched() -> None:
    from retrain.monitoring.realized import join_actuals
    from retrain.spec import load_spec

    spec = load_spec(Settings().spec)
    stamp = pd.Timestamp("2026-03-03T06:00", tz="UTC")
    logged = pd.DataFrame(
        {
            "date": [date(2026, 3, 3)] * 4,
            "store_id": [1, 1, 2, 9],
            "item_id": [5, 5, 5, 5],
            "prediction": [10.0, 12.0, 3.0, 7.0],
            "timestamp": [stamp + pd.Timedelta(minutes=m) for m in (5, 1, 0, 0)],
        }
    )
    actuals = pd.DataFrame(
        {"date": pd.to_datetime(["2026-03-03"] * 2), "store_id": [1, 2], "item_id": [5, 5], "sales": [11, 4]}
    )
    joined, unmatched, superseded = join_actuals(logged, actuals, spec)
    # store 1 was asked twice: the answer logged at 06:05 (10.0) is the latest, not the row order.
    assert joined.set_index("store_id")["prediction"].to_dict() == {1: 10.0, 2: 3.0}
    assert joined.set_index("store_id")["actual"].to_dict() == {1: 11, 2: 4}
    assert (unmatched, superseded) == (1, 1)


def test_actuals_missing_is_a_clear_error(tmp_path: Any) -> None:
    from retrain.errors import DataMissingError
    from retrain.layout import DatasetLayout
    from retrain.monitoring.realized import read_actuals
    from retrain.spec import load_spec

    settings = Settings(home=tmp_path)
    spec = load_spec(settings.spec)
    with pytest.raises(DataMissingError, match="no actuals for 2026-03-03 yet"):
        read_actuals(DatasetLayout.for_spec(settings, spec), spec, date(2026, 3, 3))
