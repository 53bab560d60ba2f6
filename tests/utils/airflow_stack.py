"""Factories for the real-Airflow-stack tests: a small simulated history in a throw-away home, free ports."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from retrain.layout import DatasetLayout
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import DatasetSpec, load_spec
from tests.utils.sim import sim_config


@dataclass(frozen=True)
class History:
    """A home with `history_days` of curated data published and landing drops for the days after."""

    settings: Settings
    spec: DatasetSpec
    layout: DatasetLayout
    first_day: date  # the first day without curated data: the first pipeline run


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def small_spec(target: Path, num_boost_round: int) -> Path:
    """A copy of the default spec with fewer boosting rounds (same data contract, faster training)."""
    data = yaml.safe_load((REPO_ROOT / "config" / "retail_demand.yaml").read_text(encoding="utf-8"))
    data["training"]["num_boost_round"] = num_boost_round
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def prepare_history(
    root: Path,
    start: date,
    history_days: int,
    extra_days: int = 1,
    n_stores: int = 8,
    n_items: int = 10,
    num_boost_round: int = 60,
) -> History:
    """Simulate history + extra days under root, publish the history to curated/, copy gx/ beside it."""
    from retrain import ingest
    from retrain.simulate import write_simulation

    gx_root = root / "gx"
    shutil.copytree(REPO_ROOT / "gx", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
    spec_file = small_spec(root / "spec.yaml", num_boost_round)
    settings = Settings(home=root / "var", gx_root=gx_root, spec=spec_file)
    spec = load_spec(spec_file)
    layout = DatasetLayout.for_spec(settings, spec)
    config = sim_config(start, history_days + extra_days, n_stores, n_items, seed=settings.seed)
    write_simulation(layout, spec, config)
    for offset in range(history_days):
        day = start + timedelta(days=offset)
        ingest.stage_batch(settings, spec, day)
        ingest.publish_batch(settings, spec, day)
    return History(settings, spec, layout, start + timedelta(days=history_days))


def subprocess_base_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The parent environment without Airflow/retrain variables: the stack sets its own, for itself only."""
    return {k: v for k, v in environ.items() if not k.startswith(("AIRFLOW", "RETRAIN_"))}
