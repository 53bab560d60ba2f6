"""Where every stage reads and writes: partitioned folders under RETRAIN_HOME/<dataset>/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from retrain.settings import Settings
from retrain.spec import DatasetSpec


def partition_name(day: date) -> str:
    """Hive-style partition folder name for a day."""
    return f"date={day.isoformat()}"


@dataclass(frozen=True)
class DatasetLayout:
    """Paths for one dataset; every per-day folder is keyed by the run date."""

    root: Path

    @classmethod
    def for_spec(cls, settings: Settings, spec: DatasetSpec) -> DatasetLayout:
        """Layout of a dataset under the settings' home."""
        return cls(settings.resolved_home / spec.name)

    @property
    def landing(self) -> Path:
        """Raw daily drops as delivered (simulator output or the user's feed)."""
        return self.root / "landing"

    @property
    def curated(self) -> Path:
        """Validated, typed daily partitions: the only input to features and training."""
        return self.root / "curated"

    @property
    def quarantine(self) -> Path:
        """Batches that failed validation, kept with their GX result."""
        return self.root / "quarantine"

    @property
    def staging(self) -> Path:
        """Typed batches waiting for validation."""
        return self.root / "staging"

    @property
    def features(self) -> Path:
        """Training tables and online feature snapshots per run date."""
        return self.root / "features"

    @property
    def online_snapshot(self) -> Path:
        """The newest online feature snapshot (any run date), which serving follows; its date sits beside it."""
        return self.features / "online" / "snapshot.parquet"

    @property
    def predictions(self) -> Path:
        """The serving prediction log."""
        return self.root / "predictions"

    @property
    def actuals(self) -> Path:
        """Realised targets landed after the fact, for realised-performance checks."""
        return self.root / "actuals"

    @property
    def reports(self) -> Path:
        """HTML reports (drift) per day."""
        return self.root / "reports"

    @property
    def simulator(self) -> Path:
        """Simulator ground truth (expected demand, noise floor); never read by the pipeline."""
        return self.root / "simulator"

    def landing_pattern(self, template: str, day: date) -> str:
        """The landing path (possibly a glob) for a day, from the spec's source template."""
        return str(self.root / template.format(date=day.isoformat()))

    def curated_partition(self, day: date) -> Path:
        """Folder of the curated partition for a day."""
        return self.curated / partition_name(day)

    def curated_file(self, day: date) -> Path:
        """The single Parquet file of a curated partition."""
        return self.curated_partition(day) / "part.parquet"

    def staging_partition(self, day: date) -> Path:
        """Folder of the staged (not yet validated) batch for a day."""
        return self.staging / partition_name(day)

    def quarantine_partition(self, day: date) -> Path:
        """Folder where a failed batch for a day is kept."""
        return self.quarantine / partition_name(day)

    def features_partition(self, day: date) -> Path:
        """Folder of the training table and feature snapshot built on a day."""
        return self.features / partition_name(day)

    def predictions_partition(self, day: date) -> Path:
        """Folder of the prediction log for a day."""
        return self.predictions / partition_name(day)

    def reports_partition(self, kind: str, day: date) -> Path:
        """Folder of a kind of report (e.g. drift) for a day."""
        return self.reports / kind / partition_name(day)

    def curated_days(self) -> list[date]:
        """Days that have a curated partition, oldest first."""
        if not self.curated.is_dir():
            return []
        days = []
        for child in self.curated.iterdir():
            if child.name.startswith("date=") and (child / "part.parquet").is_file():
                days.append(date.fromisoformat(child.name.removeprefix("date=")))
        return sorted(days)
