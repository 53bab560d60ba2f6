"""Files the simulator and the benches write: curated partitions straight from a typed frame.

Skipping validation on purpose: benches and tests that measure training or drift start from data known
to be good, and one GX run a day would dominate their time. The pipeline itself always validates.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from retrain.layout import DatasetLayout
from retrain.spec import DatasetSpec


def write_curated_days(
    layout: DatasetLayout,
    spec: DatasetSpec,
    history: pd.DataFrame,
    start: date | None = None,
    end: date | None = None,
) -> list[date]:
    """One curated Parquet file per day of a typed frame (within [start, end]), as ingest publishes them."""
    days = pd.DatetimeIndex(pd.to_datetime(history[spec.timestamp_column])).date
    written = []
    for day, part in history.groupby(days, sort=True):
        if (start is None or start <= day) and (end is None or day <= end):
            path = layout.curated_file(day)
            path.parent.mkdir(parents=True, exist_ok=True)
            part.to_parquet(path, engine="pyarrow", compression="snappy", index=False)
            written.append(day)
    return written
