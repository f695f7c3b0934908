"""Model specs and runtime settings: the light module DAG files import at parse time.

Only the standard library, pydantic, pydantic-settings, PyYAML and `embedded_db` (standard library only at import) are imported here,
so DAG files stay fast to parse.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightshift.alert_rules import Alerts
from nightshift.runtime import embedded_db
from nightshift.task_rules import TASKS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OBJECT_STORE_CONN_ID = "nightshift_object_store"
WAREHOUSE_CONN_ID = "nightshift_warehouse"
MLFLOW_CONN_ID = "nightshift_mlflow"
PROMOTION_POOL = "nightshift_promotions"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
ESTIMATOR_PATTERN = re.compile(r"^sklearn(\.[a-z_][a-z0-9_]*)+\.[A-Z][A-Za-z0-9]*$")

DriftMethod = Literal["psi", "wasserstein", "ks", "jensenshannon", "kl_div", "chisquare", "hellinger"]
Severity = Literal["block", "warn", "off"]
Task = Literal["binary", "multiclass", "regression"]


def _as_names(value: Any) -> Any:
    """Class and category names as strings: YAML numbers (1, 2.5) are accepted as they are written."""
    if not isinstance(value, list):
        return value
    return [str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item for item in value]


class SpecError(ValueError):
    """A model spec that cannot be used; the message names the file, the field and what is valid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Strict):
    type: Literal["int", "float", "category", "bool"]
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool = False

    @field_validator("categories", mode="before")
    @classmethod
    def _category_names(cls, value: Any) -> Any:
        return _as_names(value)

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type == "category" and not self.categories:
            raise ValueError("a category feature needs a non-empty 'categories' list")
        if self.type != "category" and self.categories is not None:
            raise ValueError(f"'categories' only applies to category features, not to type {self.type!r}")
        if self.type in ("category", "bool") and (self.min is not None or self.max is not None):
            raise ValueError(f"'min'/'max' only apply to int and float features, not to type {self.type!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) must not exceed 'max' ({self.max})")
        return self


class Target(_Strict):
    column: str
    label_delay_days: int = Field(ge=0, le=365)
    positive_label: int | str | None = None
    """Binary only: the label that means the positive class, besides 1/true (default 1)."""
    negative_label: int | str | None = None
    """Binary only: the label that means the negative class, besides 0/false (e.g. 'benign')."""
    classes: list[str] | None = None
    """Multiclass only: every class a label may name, in the order the per-class probabilities are written."""

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, value: Any) -> Any:
        return _as_names(value)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        stripped = [name.strip() for name in value]
        if len(stripped) < 2 or "" in stripped or len(set(stripped)) != len(stripped):
            raise ValueError("must list at least two distinct, non-blank class names")
        return stripped


class Source(_Strict):
    """Where a daily drop lives, relative to the object store root (`{model}` and `{dt}` are filled in), which file
    formats it may hold (`format`: one of FORMATS or a list of them; each file is read by its name), and how its
    text files are written: `encoding` (a Python codec name; a UTF-8 byte-order mark is accepted) and the
    one-character `delimiter`."""

    FORMATS: ClassVar[tuple[str, ...]] = ("csv", "csv.gz", "parquet")

    path: str
    format: Literal["csv", "csv.gz", "parquet"] | list[Literal["csv", "csv.gz", "parquet"]] = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats a drop may hold, in the order the spec lists them."""
        return (self.format,) if isinstance(self.format, str) else tuple(self.format)

    @field_validator("format", mode="before")
    @classmethod
    def _known_formats(cls, value: Any) -> Any:
        given = value if isinstance(value, list) else [value]
        valid = ", ".join(repr(name) for name in cls.FORMATS)
        if not given:
            raise ValueError(f"list at least one format: {valid}")
        unknown = [name for name in given if name not in cls.FORMATS]
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a drop format; use one of {valid} or a list of them, e.g. [csv, parquet]"
            )
        repeated = sorted({name for name in given if given.count(name) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]!r} is listed twice; list each format once")
        return value

    @field_validator("path")
    @classmethod
    def _has_date(cls, value: str) -> str:
        if "{dt}" not in value:
            raise ValueError("the path must contain '{dt}' so each day has its own partition")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codec = codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"{value!r} is not an encoding Python knows; use a codec name such as utf-8, latin-1 or cp1252"
            ) from None
        try:
            ascii_compatible = '\n\r,;|\t"'.encode(codec.name).removeprefix(codecs.BOM_UTF8) == b'\n\r,;|\t"'
        except (UnicodeError, LookupError):
            ascii_compatible = False
        if not ascii_compatible:
            raise ValueError(
                f"{value!r} is not ASCII-compatible; nightshift reads text drops in encodings such as utf-8, latin-1 "
                "or cp1252 (export UTF-16 or UTF-32 files as UTF-8)"
            )
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in ('"', "\n", "\r"):
            raise ValueError('must be one character other than a quote (") or a line break, e.g. "," or ";" or "\\t"')
        return value


class Sources(_Strict):
    drop: Source = Source(path="landing/{model}/dt={dt}/")
    labels: Source = Source(path="landing/{model}/labels/dt={dt}/")


class ExtraCheck(_Strict):
    """Any GX Core expectation by class name, with its keyword arguments."""

    expectation: str = Field(pattern=r"^Expect[A-Za-z]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["block", "warn"] = "warn"


class Checks(_Strict):
    types: Severity = "block"
    nulls: Severity = "block"
    ranges: Severity = "block"
    categories: Severity = "block"
    unique_ids: Severity = "block"
    row_count: Severity = "block"


class Validation(_Strict):
    min_rows: int = Field(default=1, ge=1)
    max_rows: int = Field(default=50_000_000, ge=1)
    max_bad_row_share: float = Field(default=0.05, ge=0.0, le=1.0)
    checks: Checks = Checks()
    extra_checks: list[ExtraCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Validation:
        if self.min_rows > self.max_rows:
            raise ValueError(f"'min_rows' ({self.min_rows}) must not exceed 'max_rows' ({self.max_rows})")
        return self


class FeatureDrift(_Strict):
    method: DriftMethod | None = None
    threshold: float | None = Field(default=None, gt=0)
    critical: bool = False


class DataQuality(_Strict):
    """When a night's feature is flagged for data quality, against the reference of the champion that scored it."""

    missing_share_increase: float = Field(default=0.05, ge=0.0, le=1.0)
    """Flag a feature whose share of missing values exceeds the reference's by more than this (0.10 -> 0.16 at 0.05)."""
    out_of_range_share: float = Field(default=0.01, ge=0.0, le=1.0)
    """Flag a numeric feature when more than this share of its values lies outside the reference's [min, max]."""
    unseen_category_share: float = Field(default=0.01, ge=0.0, le=1.0)
    """Flag a category feature when more than this share of its values never occurs in the reference."""


class Drift(_Strict):
    method: DriftMethod = "psi"
    threshold: float = Field(default=0.1, gt=0)
    features: dict[str, FeatureDrift] = Field(default_factory=dict)
    prediction: FeatureDrift = FeatureDrift()
    dataset_drift_share: float = Field(default=0.3, gt=0.0, le=1.0)
    sample_size: int = Field(default=50_000, ge=100)
    seed: int = 0
    window_nights: int = Field(default=3, ge=1, le=60)
    min_drifted_nights: int = Field(default=2, ge=1, le=60)
    cooldown_days: int = Field(default=5, ge=0, le=365)
    data_quality: DataQuality = DataQuality()

    @model_validator(mode="after")
    def _window(self) -> Drift:
        if self.min_drifted_nights > self.window_nights:
            raise ValueError(
                f"'min_drifted_nights' ({self.min_drifted_nights}) must not exceed 'window_nights' ({self.window_nights})"
            )
        return self

    def method_for(self, feature: str) -> str:
        override = self.features.get(feature)
        return (override.method if override and override.method else None) or self.method

    def threshold_for(self, feature: str) -> float:
        override = self.features.get(feature)
        return (override.threshold if override and override.threshold else None) or self.threshold

    def critical_features(self) -> list[str]:
        return sorted(name for name, override in self.features.items() if override.critical)


class Training(_Strict):
    estimator: str | None = None
    """Dotted path of a scikit-learn estimator of the task's kind; by default the task's (see TASKS)."""
    params: dict[str, Any] = Field(default_factory=dict)
    window_days: int = Field(default=14, ge=1, le=3650)
    holdout_days: int = Field(default=1, ge=1)
    min_labelled_days: int = Field(default=3, ge=1)
    reference_sample_size: int = Field(default=20_000, ge=100)
    seed: int = 0
    fallback_cron: str | None = "0 6 * * 0"

    @field_validator("estimator")
    @classmethod
    def _dotted(cls, value: str | None) -> str | None:
        if value is not None and not ESTIMATOR_PATTERN.match(value):
            raise ValueError(
                "must be the dotted path of a scikit-learn estimator class, "
                "e.g. 'sklearn.ensemble.HistGradientBoostingClassifier'"
            )
        return value

    @model_validator(mode="after")
    def _holdout(self) -> Training:
        if self.holdout_days >= self.window_days:
            raise ValueError(
                f"'holdout_days' ({self.holdout_days}) must be smaller than 'window_days' ({self.window_days})"
            )
        return self


class Slice(_Strict):
    column: str
    max_regression: float = Field(default=0.02, ge=0.0)
    min_rows: int = Field(default=50, ge=1)


class Promotion(_Strict):
    metric: str | None = None
    """One of the task's metrics (TASKS); by default roc_auc (binary), accuracy (multiclass) or r2 (regression)."""
    floor: float
    min_improvement: float = Field(default=0.0, ge=0.0)
    slices: list[Slice] = Field(default_factory=list)


class Performance(_Strict):
    """Live performance: realized once labels arrive, estimated (CBPE) before, and the retrain rule on either."""

    metric: str | None = None
    """The metric the performance rule judges, one of the task's live metrics (TASKS); by default the gate's."""
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Binary only: the score at or above which a row counts as positive (precision, recall, F1, accuracy)."""
    tolerance: float = Field(default=0.05, ge=0.0)
    """A night is degraded when its metric is worse than the scoring champion's holdout figure by more than this."""
    min_label_coverage: float = Field(default=0.5, gt=0.0, le=1.0)
    """The share of a night's predictions that must have a label before its realized figure is judged."""
    min_labelled_rows: int = Field(default=100, ge=1)
    estimated: bool = True
    """Judge a night without enough labels by its estimated figure (classification kinds)."""
    window_nights: int = Field(default=3, ge=1, le=60)
    min_degraded_nights: int = Field(default=2, ge=1, le=60)
    late_label_days: int = Field(default=7, ge=0, le=365)
    """How long after its label delay a night's realized figure is recomputed as late labels arrive."""
    simulations: int = Field(default=200, ge=20, le=10_000)
    """Label draws behind an estimate and its 95% band."""
    sample_size: int = Field(default=50_000, ge=100)
    """At most this many of a night's predictions are used for its estimate (seeded sample)."""
    seed: int = 0

    @model_validator(mode="after")
    def _window(self) -> Performance:
        if self.min_degraded_nights > self.window_nights:
            raise ValueError(
                f"'min_degraded_nights' ({self.min_degraded_nights}) must not exceed "
                f"'window_nights' ({self.window_nights})"
            )
        return self


class Schedule(_Strict):
    cron: str = "0 2 * * *"
    start_date: dt.date
    end_date: dt.date | None = None
    paused_at_creation: bool = False
    """Create the model's DAGs paused (unpaused in the Airflow UI once its drops flow), whatever Airflow's default."""

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5 and not value.startswith("@"):
            raise ValueError("must be a five-field cron expression such as '0 2 * * *' or a preset like '@daily'")
        return value


ModelName = Annotated[str, Field(pattern=NAME_PATTERN.pattern)]


class ModelSpec(_Strict):
    name: ModelName
    description: str = ""
    owner: str = "data-engineering"
    task: Task = "binary"
    entity_id: str
    timestamp: str
    schedule: Schedule
    features: dict[str, Feature] = Field(min_length=1)
    target: Target
    sources: Sources = Sources()
    validation: Validation = Validation()
    drift: Drift = Drift()
    training: Training = Training()
    promotion: Promotion
    performance: Performance = Performance()
    alerts: Alerts | None = None

    @model_validator(mode="after")
    def _columns_known(self) -> ModelSpec:
        reserved = {self.entity_id, self.timestamp, self.target.column}
        if len(reserved) != 3:
            raise ValueError("'entity_id', 'timestamp' and 'target.column' must be three different columns")
        clash = reserved & set(self.features)
        if clash:
            raise ValueError(f"features must not include the id, timestamp or target column: {sorted(clash)}")
        known = sorted(self.features)
        for name in self.drift.features:
            if name not in self.features:
                raise ValueError(f"drift.features.{name}: not a feature of this model; valid: {known}")
        for slice_ in self.promotion.slices:
            if slice_.column not in self.features:
                raise ValueError(f"promotion.slices: column {slice_.column!r} is not a feature; valid: {known}")
            if self.features[slice_.column].type not in ("category", "bool"):
                raise ValueError(f"promotion.slices: column {slice_.column!r} must be a category or bool feature")
        return self

    @model_validator(mode="after")
    def _task_fits(self) -> ModelSpec:
        rules = TASKS[self.task]
        metric = self.promotion.metric
        if metric is not None and metric not in rules.metrics:
            raise ValueError(
                f"promotion.metric: {metric!r} is not a {self.task} metric; valid: {', '.join(rules.metrics)}"
            )
        if self.training.estimator is not None and (problem := rules.estimator_problem(self.training.estimator)):
            raise ValueError(f"training.estimator: {problem} (task: {self.task})")
        target = self.target
        if self.task == "multiclass" and not target.classes:
            raise ValueError("target.classes: a multiclass model lists every class its labels may name")
        if self.task != "multiclass" and target.classes is not None:
            raise ValueError(f"target.classes: only multiclass models list classes, not {self.task} ones")
        for field in ("positive_label", "negative_label"):
            if self.task != "binary" and getattr(target, field) is not None:
                raise ValueError(f"target.{field}: only binary models have one, not {self.task} ones")
        if (
            target.negative_label is not None
            and str(target.negative_label).strip().lower() == str(self.positive_label).strip().lower()
        ):
            raise ValueError("target.negative_label: must differ from target.positive_label")
        watched = self.performance.metric or self.gate_metric
        if watched not in rules.live_metrics:
            field = "performance.metric" if self.performance.metric else "promotion.metric"
            raise ValueError(
                f"{field}: {watched!r} is not a live {self.task} metric the performance rule can judge; "
                f"valid: {', '.join(rules.live_metrics)} (set performance.metric)"
            )
        return self

    @property
    def gate_metric(self) -> str:
        """The promotion gate's metric: the spec's, or the task's default."""
        return self.promotion.metric or TASKS[self.task].default_metric

    @property
    def performance_metric(self) -> str:
        """The metric the performance rule judges: the spec's, or the gate's."""
        return self.performance.metric or self.gate_metric

    @property
    def estimator(self) -> str:
        """The training recipe's estimator: the spec's, or the task's default."""
        return self.training.estimator or TASKS[self.task].default_estimator

    @property
    def positive_label(self) -> int | str:
        return 1 if self.target.positive_label is None else self.target.positive_label

    @property
    def classes(self) -> list[str]:
        return list(self.target.classes or [])

    @property
    def registered_model_name(self) -> str:
        return self.name

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    @property
    def raw_columns(self) -> list[str]:
        """Columns a daily drop must carry, in order."""
        return [self.entity_id, self.timestamp, *self.features]


_FIELD_PREFIX = re.compile(r"^([a-z_]+(?:\.[A-Za-z0-9_]+)+): ")


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    named = _FIELD_PREFIX.match(message) if not error["loc"] else None
    if named:
        location, message = named.group(1), message[named.end() :]
    if error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling against the spec reference in the README)"
    if error["type"] == "missing":
        message = "required field is missing"
    given = error.get("input")
    suffix = f" (got {given!r})" if error["type"] not in ("missing",) and not isinstance(given, dict) else ""
    return f"  - {location}: {message}{suffix}"


_SPEC_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader (about 10x faster, which DAG parsing with many specs needs), else the pure-Python one."""


def load_spec(path: Path | str) -> ModelSpec:
    """Load and validate one model spec; raise SpecError naming the file, field and what is valid."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_SPEC_LOADER)
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: model spec file not found") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a model spec must be a YAML mapping with 'name', 'features', … at the top level")
    try:
        spec = ModelSpec.model_validate(raw)
    except ValidationError as exc:
        lines = "\n".join(_describe(error) for error in exc.errors())
        raise SpecError(f"{path}: invalid model spec:\n{lines}") from None
    if spec.name != path.stem:
        raise SpecError(f"{path}: name {spec.name!r} must match the file name {path.stem!r}")
    return spec


def load_specs(models_dir: Path | str | None = None) -> list[ModelSpec]:
    """All specs in the models folder, sorted by name."""
    folder = Path(models_dir) if models_dir else settings().models_dir
    return [load_spec(path) for path in sorted(folder.glob("*.yaml"))]


def get_spec(name: str, models_dir: Path | str | None = None) -> ModelSpec:
    folder = Path(models_dir) if models_dir else settings().models_dir
    return load_spec(folder / f"{name}.yaml")


@dataclass(frozen=True)
class Settings:
    """Where everything lives; each location is overridable by an environment variable."""

    home: Path
    models_dir: Path
    store_uri: str
    warehouse_url: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None
    schedule_start: dt.date | None
    schedule_end: dt.date | None


class _Environment(BaseSettings):
    """The environment variables settings() reads, by their exact names; an empty value counts as unset."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = Field(PROJECT_ROOT / ".nightshift", validation_alias="NIGHTSHIFT_HOME")
    models_dir: Path = Field(PROJECT_ROOT / "include" / "models", validation_alias="NIGHTSHIFT_MODELS_DIR")
    store_uri: str | None = Field(None, validation_alias="NIGHTSHIFT_STORE_URI")
    warehouse_url: str | None = Field(None, validation_alias="NIGHTSHIFT_WAREHOUSE_URL")
    mlflow_tracking_uri: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    mlflow_artifact_root: str | None = Field(None, validation_alias="NIGHTSHIFT_MLFLOW_ARTIFACT_ROOT")
    schedule_start: dt.date | None = Field(None, validation_alias="NIGHTSHIFT_SCHEDULE_START")
    schedule_end: dt.date | None = Field(None, validation_alias="NIGHTSHIFT_SCHEDULE_END")

    @field_validator("schedule_start", "schedule_end", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _environment() -> _Environment:
    try:
        return _Environment()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        expected = "a date as YYYY-MM-DD" if name.startswith("NIGHTSHIFT_SCHEDULE_") else error["msg"]
        raise SpecError(f"environment variable {name}={error['input']!r}: expected {expected}") from None


def settings() -> Settings:
    """Where everything lives, from the environment (in a task, the Airflow connections have set it: see
    nightshift.runtime.connections); without a URL, the embedded PostgreSQL's database."""
    env = _environment()
    home = env.home.resolve()
    tracking_uri = env.mlflow_tracking_uri or embedded_db.url(home, "mlflow")
    return Settings(
        home=home,
        models_dir=env.models_dir,
        store_uri=env.store_uri or (home / "store").as_uri(),
        warehouse_url=env.warehouse_url or embedded_db.url(home, "warehouse"),
        mlflow_tracking_uri=tracking_uri,
        mlflow_artifact_root=env.mlflow_artifact_root
        or (None if tracking_uri.startswith(("http:", "https:")) else (home / "mlartifacts").as_uri()),
        schedule_start=env.schedule_start,
        schedule_end=env.schedule_end,
    )


def retrain_asset_name(model: str) -> str:
    return f"{model}_retrain_request"


def retrain_asset_uri(model: str) -> str:
    return f"nightshift://{model}/retrain-request"


def schedule_window(spec: ModelSpec, config: Settings) -> tuple[dt.date, dt.date | None]:
    """The nightly schedule's first and last dates: the spec's, unless the environment overrides them."""
    return (config.schedule_start or spec.schedule.start_date, config.schedule_end or spec.schedule.end_date)


def catchup_enabled() -> bool:
    return os.environ.get("NIGHTSHIFT_CATCHUP", "false").strip().lower() in ("1", "true", "yes")
