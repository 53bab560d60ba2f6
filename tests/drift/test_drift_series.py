"""Drift on a real single series (seattle-weather from vega_datasets, config/seattle_weather.yaml): one
row a day, no exogenous features, a strongly seasonal target. The production model is trained on the
spec's three years up to 2014-12-31 (SEATTLE_TRAIN_END); the spec compares 28-day windows and needs 28 rows.

Before windows and noise-aware thresholds, every day of this series was flagged: one row against years of
reference, and a month of winter against whole years.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrain.settings import Settings
from retrain.spec import DatasetSpec, load_spec
from tests.utils.airflow_stack import subprocess_base_env
from tests.utils.drift_data import SeriesWorld, build_seattle_world, seattle_csv, write_curated_series

pytestmark = pytest.mark.slow

INSIDE_TRAINING = [
    date(2012, 7, 1),
    date(2013, 2, 10),
    date(2013, 7, 15),
    date(2014, 1, 31),
    date(2014, 12, 31),
]
OUTSIDE_TRAINING = [date(2015, 2, 20), date(2015, 4, 15), date(2015, 8, 15), date(2015, 12, 31)]
FAHRENHEIT_DAY = date(2016, 1, 28)  # a feed that switched to °F: 2016-01-01..28 written below


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> SeriesWorld:
    return build_seattle_world(tmp_path_factory.mktemp("seattle"))


@pytest.fixture
def settings(series: SeriesWorld, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The series' settings with no SMTP or Pushgateway: emails go to the home's maildir."""
    for name in (
        "RETRAIN_SMTP_HOST",
        "RETRAIN_SMTP_PORT",
        "RETRAIN_PUSHGATEWAY_URL",
        "AIRFLOW_CONN_RETRAIN_SMTP",
    ):
        monkeypatch.delenv(name, raising=False)
    return series.settings.model_copy(update={"smtp_host": None, "pushgateway_url": None})


def with_drift(spec: DatasetSpec, **changes: int) -> DatasetSpec:
    return spec.model_copy(update={"drift": spec.drift.model_copy(update=changes)})


@pytest.mark.parametrize("day", INSIDE_TRAINING + OUTSIDE_TRAINING, ids=str)
def test_a_stationary_year_does_not_alert_inside_or_outside_the_training_window(
    series: SeriesWorld, settings: Settings, day: date
) -> None:
    from retrain.monitoring import drift

    result = drift.run(settings, series.spec, day)
    check = result.input
    assert (check.window_start, check.window_end) == (day - timedelta(days=27), day)
    assert check.rows == 28 and check.reference_rows == series.spec.training.train_days
    assert not check.insufficient_data
    assert check.features == () and check.target is not None and check.target.column == "temp_max"
    # A month of one season is far from three whole years (score ~0.6-1.4, the spec's floor is 0.1),
    # but no further than the months of the training window were.
    assert check.target.score > check.feature_threshold
    assert check.target.noise is not None and check.target.threshold > check.target.noise
    assert check.verdict == "no drift" and not result.alert.alert, check.target
    assert result.predictions is None
    assert Path(check.report_path or "").is_file() and Path(check.summary_path).is_file()
    assert not (settings.resolved_home / "mail").exists()


def test_too_few_rows_is_a_verdict_not_an_alert(series: SeriesWorld, settings: Settings) -> None:
    from retrain.monitoring import drift

    spec = with_drift(series.spec, min_rows=60)
    result = drift.run(settings, spec, date(2015, 4, 15))
    check = result.input
    assert check.insufficient_data and check.verdict == "insufficient data: 28 rows < min_rows 60"
    assert check.features == () and check.target is None and check.share is None and check.report_path is None
    assert not result.alert.alert and not result.alert.emailed
    saved = pd.read_json(check.summary_path, typ="series")
    assert saved["verdict"] == check.verdict and bool(saved["insufficient_data"])


def test_a_unit_change_in_the_target_alerts_with_a_small_email(
    series: SeriesWorld, settings: Settings
) -> None:
    from retrain.monitoring import drift

    january = pd.read_csv(seattle_csv()).iloc[1096 : 1096 + 28].copy()  # 2015-01-01..28
    assert january["date"].iloc[0] == "2015/01/01"
    january["date"] = pd.date_range("2016-01-01", periods=28, freq="D").strftime("%Y/%m/%d")
    january["temp_max"] = january["temp_max"] * 1.8 + 32
    write_curated_series(settings, series.spec, january)

    result = drift.run(settings, series.spec, FAHRENHEIT_DAY)
    check = result.input
    assert check.target_drift and check.verdict == "drift: target temp_max"
    assert result.alert.emailed and result.alert.reasons[0].startswith("input: target temp_max score")
    mail = Path(result.alert.delivered_to or "")
    assert mail.stat().st_size < 1_500_000  # the raw Evidently report alone is several MB
    assert Path(check.report_path or "").stat().st_size > mail.stat().st_size
    text = mail.read_text(encoding="utf-8")
    assert "[retrain] drift detected in seattle_weather on 2016-01-28: target temp_max" in text


def test_cli_prints_the_insufficient_verdict(series: SeriesWorld, tmp_path: Path) -> None:
    data = yaml.safe_load(series.settings.spec.read_text(encoding="utf-8"))
    data["drift"]["min_rows"] = 60
    spec_file = tmp_path / "seattle-min60.yaml"
    spec_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_spec(spec_file)
    env = {
        **subprocess_base_env(os.environ),
        "RETRAIN_HOME": str(series.settings.resolved_home),
        "RETRAIN_GX_ROOT": str(series.settings.gx_root),
        "RETRAIN_SPEC": str(spec_file),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "retrain", "drift", "--date", "2015-04-15", "--no-email"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "input window 2015-03-19..2015-04-15 (28 days with data): 28 rows vs 1,095 reference rows"
        in done.stdout
    )
    assert "insufficient data: 28 rows < min_rows 60" in done.stdout
    assert "alert: none" in done.stdout
