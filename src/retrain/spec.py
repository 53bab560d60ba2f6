"""The dataset spec: a YAML file that makes the pipeline work for any daily tabular dataset."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from retrain.errors import SpecError


class ColumnType(StrEnum):
    """Logical column types; ingest normalises each column to one of these."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    DATE = "date"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One column of the daily drop: its type and the values it may take."""

    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = Field(default=None, description="Allowed values (categorical columns).")
    format: str | None = Field(
        default=None,
        description="strftime format of a date column as written in the drop (e.g. '%b %d %Y'); default ISO.",
    )

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.format is not None:
            if self.type is not ColumnType.DATE:
                raise ValueError(f"format applies to date columns only, not to type {self.type.value}")
            if "%" not in self.format:
                raise ValueError(f"format {self.format!r} is not a strftime pattern (e.g. '%d/%m/%Y')")
        return self


class SourceSpec(_Strict):
    """Where the day's drop lands: a file path template under the dataset root, or a SQL query."""

    format: Literal["csv", "parquet", "sql"] = "csv"
    path: str = Field(
        default="landing/date={date}/part.csv",
        description="Template relative to the dataset root; {date} is YYYY-MM-DD; globs allowed.",
    )
    sql_url: str | None = Field(default=None, description="SQLAlchemy URL, for format: sql.")
    sql_query: str | None = Field(default=None, description="Query with a :date bind parameter.")

    @model_validator(mode="after")
    def _sql_needs_url_and_query(self) -> SourceSpec:
        if self.format == "sql" and not (self.sql_url and self.sql_query):
            raise ValueError("format 'sql' needs both sql_url and sql_query")
        if self.format != "sql" and "{date}" not in self.path:
            raise ValueError("path must contain the {date} placeholder")
        return self


class FeatureSpec(_Strict):
    """Which columns are model inputs, and which of them a client sends at request time."""

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    request_time: list[str] = Field(
        default_factory=list, description="Features the client sends with a prediction request."
    )
    lags: list[int] = Field(default_factory=lambda: [1, 7, 14, 28])
    rolling_windows: list[int] = Field(default_factory=lambda: [7, 28])

    @model_validator(mode="after")
    def _windows_positive(self) -> FeatureSpec:
        for name in ("lags", "rolling_windows"):
            values = getattr(self, name)
            if any(v < 1 for v in values):
                raise ValueError(f"{name} must be positive whole numbers of days, got {values}")
        for name in ("numeric", "categorical", "request_time", "lags", "rolling_windows"):
            twice = _repeated(getattr(self, name))
            if twice:
                raise ValueError(f"{name} lists {twice} more than once")
        return self


def _repeated(values: list[Any]) -> list[Any]:
    """Values that appear more than once, in first-seen order."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return [value for value, count in counts.items() if count > 1]


class TrainingSpec(_Strict):
    """Training window, holdout and model hyper-parameters."""

    train_days: int = Field(default=180, ge=7)
    holdout_days: int = Field(default=14, ge=1)
    min_history_days: int = Field(default=14, ge=1, description="Days of curated history needed to train.")
    params: dict[str, Any] = Field(default_factory=dict, description="XGBoost parameters.")
    num_boost_round: int = Field(default=300, ge=1)
    offset: Literal["auto", "level", "last_value", "none"] = Field(
        default="auto",
        description="Where each row's prediction starts before the trees' corrections (see retrain.model): "
        "the entity's recent level, its last observed value (the trees learn the change), nothing, or "
        "auto: level or last value, whichever forecasts the training rows better on its own.",
    )
    level_offset: bool | None = Field(
        default=None, description="Deprecated: `false` means `offset: none`; `true` keeps `offset`."
    )

    @model_validator(mode="before")
    @classmethod
    def _old_level_offset_key(cls, data: Any) -> Any:
        # Specs written before `offset` existed say `level_offset: false` to turn the offset off.
        if isinstance(data, dict) and data.get("level_offset") is False:
            if data.get("offset", "none") != "none":
                raise ValueError(
                    f"level_offset: false contradicts offset: {data['offset']}; keep only offset"
                )
            data = {**data, "offset": "none"}
        return data

    @model_validator(mode="after")
    def _holdout_fits(self) -> TrainingSpec:
        if self.holdout_days >= self.train_days:
            raise ValueError("holdout_days must be smaller than train_days")
        return self


BaselineName = Literal["persistence", "seasonal_naive", "training_mean"]
ALL_BASELINES: tuple[BaselineName, ...] = ("persistence", "seasonal_naive", "training_mean")


class GateSpec(_Strict):
    """Promotion gate thresholds."""

    max_wape: float | None = Field(default=0.5, gt=0)
    min_r2: float | None = Field(default=0.0)
    baseline_margin: float = Field(
        default=0.05, ge=0, description="Relative RMSE gain required over the best baseline."
    )
    baselines: list[BaselineName] = Field(
        default_factory=lambda: list(ALL_BASELINES),
        min_length=1,
        description="Baselines scored on every holdout; the candidate must beat the best of them.",
    )
    production_tolerance: float = Field(
        default=0.02, ge=0, description="Relative RMSE worsening allowed versus production."
    )
    slice_degradation_limit: float = Field(
        default=0.10, ge=0, description="Relative RMSE worsening allowed on any slice versus production."
    )


class ValidationSpec(_Strict):
    """Data checks beyond what the columns declare."""

    row_count_tolerance: float = Field(default=0.5, gt=0, description="Allowed relative deviation.")
    row_count_lookback_days: int = Field(default=7, ge=1)
    min_rows: int = Field(default=1, ge=1)


class DriftSpec(_Strict):
    """Drift thresholds used by the monitoring DAG."""

    share_threshold: float = Field(default=0.3, gt=0, le=1)
    current_days: int = Field(
        default=7, ge=1, description="Recent days compared with the reference (the checked day and before)."
    )
    min_rows: int = Field(
        default=30, ge=2, description="Fewer current rows than this: too few to judge, no drift verdict."
    )
    feature_threshold: float = Field(default=0.1, gt=0, description="Per-feature drift score threshold.")
    feature_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-column overrides of feature_threshold (e.g. a seasonal weather column).",
    )
    key_features: list[str] = Field(default_factory=list)
    sample_cap: int = Field(default=100_000, ge=1000)
    trigger_retrain: bool = False


class DatasetSpec(_Strict):
    """A daily tabular dataset: schema, features, training, gates and monitoring settings."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    source: SourceSpec = Field(default_factory=SourceSpec)
    timestamp_column: str
    entity_keys: list[str] = Field(default_factory=list, description="Empty: a single series.")
    target: str
    columns: dict[str, ColumnSpec]
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    slices: list[str] = Field(default_factory=list, description="Columns to report per-slice metrics on.")
    registered_model_name: str | None = None
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    gates: GateSpec = Field(default_factory=GateSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)

    @model_validator(mode="after")
    def _references_are_declared(self) -> DatasetSpec:
        declared = set(self.columns)
        refs: dict[str, list[str]] = {
            "timestamp_column": [self.timestamp_column],
            "entity_keys": self.entity_keys,
            "target": [self.target],
            "features.numeric": self.features.numeric,
            "features.categorical": self.features.categorical,
            "slices": self.slices,
        }
        for field, names in refs.items():
            missing = [n for n in names if n not in declared]
            if missing:
                raise ValueError(f"{field}: names columns not declared under columns: {missing}")
        for field, names in (("entity_keys", self.entity_keys), ("slices", self.slices)):
            twice = _repeated(names)
            if twice:
                raise ValueError(f"{field}: lists {twice} more than once")
        if self.columns[self.timestamp_column].type is not ColumnType.DATE:
            raise ValueError(f"timestamp_column: {self.timestamp_column!r} must have type date")
        if self.columns[self.target].type not in (ColumnType.INT, ColumnType.FLOAT):
            kind = self.columns[self.target].type.value
            raise ValueError(f"target: {self.target!r} is {kind}; a forecasting target must be int or float")
        if self.target == self.timestamp_column or self.target in self.entity_keys:
            raise ValueError(f"target: {self.target!r} is also the timestamp or an entity key")
        if self.timestamp_column in self.entity_keys:
            raise ValueError(f"entity_keys: {self.timestamp_column!r} is the timestamp column")
        features = self.feature_columns
        not_features = [c for c in self.features.request_time if c not in features]
        if not_features:
            raise ValueError(f"features.request_time: must be features, not: {not_features}")
        for field, names in (("features.numeric", self.features.numeric),
                             ("features.categorical", self.features.categorical)):  # fmt: skip
            for reserved, what in ((self.target, "the target"), (self.timestamp_column, "the timestamp")):
                if reserved in names:
                    raise ValueError(f"{field}: {reserved!r} is {what} and cannot be a feature")
        both = set(self.features.numeric) & set(self.features.categorical)
        if both:
            raise ValueError(f"features: columns cannot be both numeric and categorical: {sorted(both)}")
        missing_drift = [c for c in self.drift.key_features if c not in declared]
        missing_drift += [c for c in self.drift.feature_thresholds if c not in declared | {"prediction"}]
        bad_thresholds = {c: t for c, t in self.drift.feature_thresholds.items() if not t > 0}
        if bad_thresholds:
            raise ValueError(f"drift.feature_thresholds: must be positive: {bad_thresholds}")
        if missing_drift:
            raise ValueError(f"drift: names columns not declared under columns: {missing_drift}")
        return self

    @property
    def feature_columns(self) -> list[str]:
        """Raw input columns used as model features (numeric then categorical)."""
        return [*self.features.numeric, *self.features.categorical]

    @property
    def model_name(self) -> str:
        """Name of the registered model in MLflow."""
        return self.registered_model_name or self.name


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"invalid dataset spec {path}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        # Cross-field checks run on the whole spec; their messages start with the field they concern.
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "\n".join(lines)


def parse_spec(data: dict[str, Any], origin: Path | str = "<memory>") -> DatasetSpec:
    """Validate a spec mapping, raising SpecError that names every bad field."""
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(Path(origin), exc)) from None


def load_spec(path: Path) -> DatasetSpec:
    """Read and validate a dataset spec YAML file."""
    if not path.is_file():
        raise SpecError(f"dataset spec not found: {path} (set RETRAIN_SPEC or pass --spec)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"dataset spec {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"dataset spec {path} must be a mapping at the top level")
    return parse_spec(data, path)
