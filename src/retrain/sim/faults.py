"""Simulator side effects: drift/fault injections, (mis)delivery of day files, ground-truth records."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retrain.errors import DataMissingError, RetrainError, SpecError
from retrain.layout import DatasetLayout, partition_name
from retrain.spec import DatasetSpec

DRIFT_KINDS = ("price_shift", "category_mix", "level_shift")
FAULT_KINDS = (
    "missing_column",
    "wrong_type",
    "null_keys",
    "negative_sales",
    "duplicate_keys",
    "empty_file",
    "late_day",
    "missing_day",
)
# Faults that change how the file is delivered rather than what it holds.
DELIVERY_FAULTS = ("empty_file", "late_day", "missing_day")
# Values a careless export might put in a numeric column; none of them is in pandas' default NA list,
# so a reader sees strings, not missing values.
BAD_PRICE_STRINGS = ("free", "TBD", "twelve", "see shelf", "3,49 EUR")


@dataclass(frozen=True)
class Injection:
    """A drift (from `day` on) or a fault (on `day` only) of a given kind."""

    kind: str
    day: date

    def __str__(self) -> str:
        return f"{self.kind}@{self.day.isoformat()}"


def parse_injection(text: str, allowed: tuple[str, ...] = DRIFT_KINDS + FAULT_KINDS) -> Injection:
    """Parse 'kind@YYYY-MM-DD' (e.g. price_shift@2026-01-10), naming the allowed kinds on error."""
    kind, sep, when = text.strip().partition("@")
    if not sep or kind not in allowed:
        raise ValueError(
            f"bad injection {text!r}: expected KIND@YYYY-MM-DD with KIND one of {', '.join(allowed)}"
        )
    try:
        day = date.fromisoformat(when)
    except ValueError:
        raise ValueError(f"bad injection {text!r}: {when!r} is not a YYYY-MM-DD date") from None
    return Injection(kind, day)


class Delivery(StrEnum):
    """How a day's drop reaches landing."""

    ON_TIME = "on_time"
    EMPTY = "empty"
    LATE = "late"
    MISSING = "missing"


def delivery_for(faults: tuple[Injection, ...], day: date) -> Delivery:
    """The delivery of a day given the faults; a missing day beats an empty file beats a late one."""
    kinds = {f.kind for f in faults if f.day == day}
    if "missing_day" in kinds:
        return Delivery.MISSING
    if "empty_file" in kinds:
        return Delivery.EMPTY
    if "late_day" in kinds:
        return Delivery.LATE
    return Delivery.ON_TIME


def _pick(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """Row positions for a defect: a share of the rows, at least one."""
    k = min(n, max(1, round(n * share)))
    return np.sort(rng.choice(n, size=k, replace=False))


def apply_frame_faults(
    frame: pd.DataFrame, faults: tuple[Injection, ...], day: date, rng: np.random.Generator
) -> pd.DataFrame:
    """The landing frame with the content faults scheduled for `day` applied (a copy when any apply)."""
    kinds = [f.kind for f in faults if f.day == day and f.kind not in DELIVERY_FAULTS]
    if not kinds or frame.empty:
        return frame
    out = frame.copy()
    for kind in dict.fromkeys(kinds):
        n = len(out)
        if kind == "missing_column":
            out = out.drop(columns=["price"])
        elif kind == "wrong_type" and "price" in out:
            text = out["price"].map("{:.2f}".format).astype(object)
            rows = _pick(rng, n, 0.1)
            text.iloc[rows] = rng.choice(np.array(BAD_PRICE_STRINGS, dtype=object), size=len(rows))
            out["price"] = text
        elif kind == "null_keys":
            for key in ("store_id", "item_id"):
                column = out[key].astype("Int64")
                column.iloc[_pick(rng, n, 0.05)] = pd.NA
                out[key] = column
        elif kind == "negative_sales":
            rows = _pick(rng, n, 0.02)
            out.iloc[rows, out.columns.get_loc("sales")] = -(out["sales"].to_numpy()[rows] + 1)
        elif kind == "duplicate_keys":
            copies = out.iloc[_pick(rng, n, 0.02)]
            out = pd.concat([out, copies]).sort_index(kind="stable").reset_index(drop=True)
    return out


def landing_path(layout: DatasetLayout, spec: DatasetSpec, day: date) -> Path:
    """The concrete file the simulator writes for a day; refuses SQL sources and glob templates."""
    if spec.source.format == "sql":
        raise SpecError("the simulator writes files; the spec's source.format is sql")
    path = layout.landing_pattern(spec.source.path, day)
    if any(ch in path for ch in "*?["):
        raise SpecError(f"the simulator needs a concrete source.path, not the glob {spec.source.path!r}")
    return Path(path)


def late_path(layout: DatasetLayout, spec: DatasetSpec, day: date) -> Path:
    """Where a late day's file waits until `deliver_late` moves it into landing."""
    return layout.landing / "_late" / partition_name(day) / landing_path(layout, spec, day).name


def deliver_late(layout: DatasetLayout, spec: DatasetSpec, day: date) -> Path:
    """Move a late day's file into its landing place; returns the landing path."""
    source = late_path(layout, spec, day)
    if not source.is_file():
        raise DataMissingError(f"no late file for {day.isoformat()} at {source}")
    target = landing_path(layout, spec, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    source.replace(target)
    source.parent.rmdir()
    return target


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.date32()))
        elif pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def write_frame_atomic(frame: pd.DataFrame | None, path: Path, fmt: str) -> None:
    """Write a frame as CSV or Parquet via a temp file and a rename; None writes a 0-byte file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if frame is None:
        tmp.write_bytes(b"")
    elif fmt == "parquet":
        pq.write_table(_to_arrow(frame), tmp)
    else:
        pacsv.write_csv(_to_arrow(frame), tmp, pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(path)


def truth_file(layout: DatasetLayout, day: date) -> Path:
    """The ground-truth Parquet file of a day."""
    return layout.simulator / "truth" / partition_name(day) / "part.parquet"


def load_meta(layout: DatasetLayout, seed: int, n_stores: int, n_items: int) -> dict[str, Any]:
    """The simulator's meta.json (or a fresh one); refuses to mix runs with other seeds or sizes."""
    path = layout.simulator / "meta.json"
    fresh = {"seed": seed, "n_stores": n_stores, "n_items": n_items}
    if not path.is_file():
        return {**fresh, "noise": "poisson", "injections": [], "days": {}}
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if any(meta.get(k) != v for k, v in fresh.items()):
        raise RetrainError(
            f"{layout.simulator} was simulated with seed/n_stores/n_items {[meta.get(k) for k in fresh]}, "
            f"not {list(fresh.values())}: use the same settings or delete {layout.root}"
        )
    return meta


def write_meta(layout: DatasetLayout, meta: dict[str, Any], model: dict[str, Any]) -> Path:
    """Write meta.json atomically with the analytic noise floor over every recorded day."""
    days = meta["days"].values()
    meta["expected_noise_rmse"] = math.sqrt(
        sum(d["sum_expected"] for d in days) / sum(d["rows"] for d in days)
    )
    meta["days"] = dict(sorted(meta["days"].items()))
    meta["model"] = model
    path = layout.simulator / "meta.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".meta.json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def read_truth(layout: DatasetLayout, days: list[date], columns: list[str] | None = None) -> pd.DataFrame:
    """Ground truth (date, store_id, item_id, expected, sales) of these days, dates as datetime64."""
    missing = [d.isoformat() for d in days if not truth_file(layout, d).is_file()]
    if missing or not days:
        raise DataMissingError(
            f"no simulator truth for days {missing or '(none given)'} under {layout.simulator}"
        )
    frame = pd.concat(
        [pd.read_parquet(truth_file(layout, d), columns=columns) for d in days], ignore_index=True
    )
    if "date" in frame:
        frame["date"] = pd.to_datetime(frame["date"])
    return frame


def noise_floor_rmse(layout: DatasetLayout, days: list[date]) -> float:
    """Empirical irreducible RMSE, sqrt(mean((sales - expected)^2)), over the truth of these days."""
    truth = read_truth(layout, days, ["expected", "sales"])
    err = truth["sales"].to_numpy() - truth["expected"].to_numpy()
    return math.sqrt(float(err @ err) / len(err))


def expected_noise_rmse(layout: DatasetLayout, days: list[date]) -> float:
    """Analytic noise floor for Poisson sales, sqrt(mean(expected)), from meta.json's per-day sums."""
    path = layout.simulator / "meta.json"
    recorded = json.loads(path.read_text(encoding="utf-8"))["days"] if path.is_file() else {}
    missing = [d.isoformat() for d in days if d.isoformat() not in recorded]
    if missing or not days:
        raise DataMissingError(f"no simulator record for days {missing or '(none given)'} in {path}")
    stats = [recorded[d.isoformat()] for d in days]
    return math.sqrt(sum(s["sum_expected"] for s in stats) / sum(s["rows"] for s in stats))
