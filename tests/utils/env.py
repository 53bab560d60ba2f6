"""Environment isolation for fixtures that run DAGs in-process: tasks read their settings from os.environ."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# What one test world exports and the next must not inherit (another world's MLflow store, SMTP
# server, Pushgateway, Airflow SMTP connection).
WORLD_PREFIXES = ("RETRAIN_SMTP", "RETRAIN_MLFLOW", "RETRAIN_PUSHGATEWAY", "AIRFLOW_CONN_RETRAIN")


def clear_world_variables() -> None:
    """Drop the variables an earlier world left behind (they would point Settings() at its servers)."""
    for name in [k for k in os.environ if k.startswith(WORLD_PREFIXES)]:
        del os.environ[name]


@contextmanager
def isolated_environment() -> Iterator[None]:
    """A clean slate of world variables inside; the environment exactly as it was afterwards."""
    saved = dict(os.environ)
    clear_world_variables()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
