"""Example models on data sets that ship inside scikit-learn, landed as daily drops the way the simulator lands them.

Each night is a bootstrap sample of the bundled data set with a little seeded jitter on the numeric features, fresh
entity ids and timestamps within the night, written in the spec's drop format(s) under `sources.drop.path`; its labels
land `target.label_delay_days` later under `sources.labels.path`, each partition with its `_SUCCESS` marker last. From
`shift_from` on, one or two features are rescaled or offset, as if an instrument were recalibrated: the population
drifts, and because the labels stay those of the original rows, the relation the champion learned no longer fits.
Nothing is downloaded: the data sets are the CSV files in sklearn/datasets/data/.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from nightshift.config import ModelSpec, Sources
from nightshift.stores.objects import ObjectStore, flat_partition_writer
from nightshift_dev.simulate import day_seed, split_rows

FORMATS = ("csv", "csv.gz", "parquet")
JITTER = 0.05
"""Standard deviation of the jitter on a numeric feature, as a share of that feature's in the data set."""
MAX_DECIMALS = 6
NUMERIC = ("int", "float")


def example_specs_dir() -> Path:
    """include/models, where the example specs ship beside the demo's (their DAGs are created paused)."""
    return Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True)
class Shift:
    """How a feature changes from `shift_from` on: each value times `scale`, plus `offset`."""

    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class ExampleData:
    """A bundled data set as an example model's rows: its features under snake_case names, and its target."""

    title: str
    load: Callable[[], pd.DataFrame]
    target: str
    """The target's column in `load()`'s frame; it lands under the spec's `target.column`."""
    shifts: Mapping[str, Shift]


def snake_case(name: str) -> str:
    """A data set column as a feature name: 'mean concave points' -> 'mean_concave_points'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.data.rename(columns=snake_case)
    frame["diagnosis"] = np.asarray(data.target_names, dtype=object)[data.target.to_numpy()]
    return frame


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.data.rename(columns=snake_case)
    frame["cultivar"] = data.target.astype("int64")
    return frame


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.data.rename(columns=snake_case)
    frame["progression"] = data.target.astype("float64")
    return frame


EXAMPLES: dict[str, ExampleData] = {
    "breast_cancer": ExampleData(
        "scikit-learn's breast cancer data (load_breast_cancer, 569 biopsies)",
        _breast_cancer,
        "diagnosis",
        {"mean_area": Shift(scale=1.3), "mean_texture": Shift(offset=4.0)},
    ),
    "wine_cultivar": ExampleData(
        "scikit-learn's wine data (load_wine, 178 wines of three cultivars)",
        _wine,
        "cultivar",
        {"color_intensity": Shift(scale=1.3), "alcohol": Shift(offset=0.5)},
    ),
    "diabetes_progression": ExampleData(
        "scikit-learn's diabetes data (load_diabetes(scaled=False), 442 patients)",
        _diabetes,
        "progression",
        {"bmi": Shift(scale=1.15), "bp": Shift(offset=8.0)},
    ),
}


def example_for(model: str) -> ExampleData:
    try:
        return EXAMPLES[model]
    except KeyError:
        raise ValueError(f"no bundled data set for model {model!r}; the examples are {sorted(EXAMPLES)}") from None


def read_example_yaml(model: str, models_dir: Path | str | None = None) -> dict[str, Any]:
    """An example spec as plain YAML, unvalidated (land_example accepts it as well as a ModelSpec)."""
    path = Path(models_dir or example_specs_dir()) / f"{model}.yaml"
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a model spec must be a YAML mapping")
    return raw


def _formats(model: str, setting: str, value: Any) -> tuple[str, ...]:
    formats = (value,) if isinstance(value, str) else tuple(value)
    unknown = [item for item in formats if item not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"{model}: {setting}.format {value!r}: use one of {list(FORMATS)} or a list of them")
    return formats


@dataclass(frozen=True)
class Landing:
    """What landing needs of a spec, read from a validated ModelSpec or from the spec's raw YAML."""

    name: str
    entity_id: str
    timestamp: str
    features: dict[str, str]
    """Feature name -> its type (int, float, category, bool), in spec order."""
    target: str
    label_delay_days: int
    drop_path: str
    drop_formats: tuple[str, ...]
    labels_path: str
    labels_formats: tuple[str, ...]

    @classmethod
    def of(cls, spec: ModelSpec | Mapping[str, Any]) -> Landing:
        raw = spec.model_dump() if isinstance(spec, ModelSpec) else spec
        name = str(raw["name"])
        sources, defaults = raw.get("sources") or {}, Sources().model_dump()
        drop = {**defaults["drop"], **(sources.get("drop") or {})}
        labels = {**defaults["labels"], **(sources.get("labels") or {})}
        return cls(
            name=name,
            entity_id=str(raw["entity_id"]),
            timestamp=str(raw["timestamp"]),
            features={str(key): str(value["type"]) for key, value in raw["features"].items()},
            target=str(raw["target"]["column"]),
            label_delay_days=int(raw["target"]["label_delay_days"]),
            drop_path=str(drop["path"]),
            drop_formats=_formats(name, "sources.drop", drop["format"]),
            labels_path=str(labels["path"]),
            labels_formats=_formats(name, "sources.labels", labels["format"]),
        )

    def drop_prefix(self, day: dt.date) -> str:
        return self.drop_path.format(model=self.name, dt=day.isoformat()).rstrip("/")

    def labels_prefix(self, day: dt.date) -> str:
        return self.labels_path.format(model=self.name, dt=day.isoformat()).rstrip("/")


def example_rows(landing: Landing, example: ExampleData) -> pd.DataFrame:
    """The data set's rows with the spec's features and its target (under the spec's target column).

    A category or bool feature held as whole floats (diabetes' sex, 1.0 and 2.0) lands as integers: 1 and 2.
    """
    frame = example.load()
    missing = [name for name in landing.features if name not in frame.columns]
    if missing:
        columns = [column for column in frame.columns if column != example.target]
        raise ValueError(
            f"{landing.name}: features {missing} are not columns of {example.title}; its columns are {columns}"
        )
    not_numeric = [
        name
        for name, kind in landing.features.items()
        if kind in NUMERIC and not pd.api.types.is_numeric_dtype(frame[name])
    ]
    if not_numeric:
        raise ValueError(f"{landing.name}: features {not_numeric} are int or float in the spec but text in the data")
    picked = frame[list(landing.features)].assign(**{landing.target: frame[example.target]})
    for name, kind in landing.features.items():
        values = picked[name]
        if kind not in NUMERIC and pd.api.types.is_float_dtype(values) and (values == values.round()).all():
            picked[name] = values.astype("int64")
    return picked


def _decimals(values: np.ndarray) -> int:
    """The fewest decimals (up to MAX_DECIMALS) that hold every value of the column."""
    return next(
        (places for places in range(MAX_DECIMALS) if np.allclose(np.round(values, places), values, rtol=0, atol=1e-9)),
        MAX_DECIMALS,
    )


def _numeric(values: np.ndarray, kind: str, shift: Shift | None, decimals: int, rng: np.random.Generator) -> np.ndarray:
    """Jittered (and, when shifted, rescaled and offset) values, rounded as the data set writes them."""
    spread = float(np.std(values)) * JITTER
    out = values.astype("float64") + rng.normal(0.0, spread, len(values))
    if shift is not None:
        out = out * shift.scale + shift.offset
    if np.min(values) >= 0:
        out = np.clip(out, 0, None)
    if kind == "int":
        return np.round(out).astype("int64")
    return np.round(out, decimals)


def night_rows(
    landing: Landing,
    example: ExampleData,
    rows: pd.DataFrame,
    day: dt.date,
    count: int,
    shifted: bool,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One night's drop (id, timestamp, features) and its labels (id, target), from a bootstrap of `rows`."""
    picked = rows.iloc[rng.integers(0, len(rows), count)].reset_index(drop=True)
    seconds = np.sort(rng.integers(0, 86_400, count))
    stamps = (pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = [f"{day:%Y%m%d}-{index:06d}" for index in range(count)]
    drop = pd.DataFrame({landing.entity_id: ids, landing.timestamp: list(stamps)})
    for name, kind in landing.features.items():
        values = picked[name].to_numpy()
        if kind in NUMERIC:
            shift = example.shifts.get(name) if shifted else None
            drop[name] = _numeric(values, kind, shift, _decimals(rows[name].to_numpy()), rng)
        else:
            drop[name] = values
    labels = pd.DataFrame({landing.entity_id: ids, landing.target: picked[landing.target].to_numpy()})
    return drop, labels


def _arrow_type(series: pd.Series) -> pa.DataType:
    if pd.api.types.is_bool_dtype(series):
        return pa.bool_()
    if pd.api.types.is_integer_dtype(series):
        return pa.int64()
    if pd.api.types.is_float_dtype(series):
        return pa.float64()
    return pa.string()


def write_frame(frame: pd.DataFrame, path: Path, file_format: str) -> Path:
    """Write `frame` to `path` plus the format's suffix: CSV, gzip CSV (no timestamp in the header) or Parquet."""
    target = path.with_name(f"{path.name}.{file_format}")
    if file_format == "parquet":
        schema = pa.schema([(str(name), _arrow_type(frame[name])) for name in frame.columns])
        pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), target)
    elif file_format == "csv.gz":
        with target.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
            handle.write(frame.to_csv(index=False).encode())
    elif file_format == "csv":
        frame.to_csv(target, index=False)
    else:
        raise ValueError(f"{file_format!r} is not a format the examples write; use one of {list(FORMATS)}")
    return target


def _land_partition(
    store: ObjectStore, prefix: str, frame: pd.DataFrame, formats: tuple[str, ...], stem: str, manifest: dict[str, Any]
) -> int:
    """Write `frame` as one file per format (its rows split between them), then the marker; return the file count."""
    with flat_partition_writer(store, prefix, manifest) as folder:
        start = 0
        sizes = split_rows(len(frame), len(formats))
        for part, (size, file_format) in enumerate(zip(sizes, formats, strict=False)):
            write_frame(frame.iloc[start : start + size], folder / f"{stem}-{part:05d}", file_format)
            start += size
    return len(sizes)


def land_example(
    store: ObjectStore,
    spec: ModelSpec | Mapping[str, Any],
    start: dt.date,
    nights: int,
    rows_per_night: int = 1000,
    shift_from: dt.date | None = None,
    seed: int = 42,
) -> dict[str, int]:
    """Land `nights` drops from `start` and each one's labels `label_delay_days` later; return the counts.

    The same seed writes the same bytes; a night from `shift_from` on has the example's shifted features. `spec` is
    a validated ModelSpec or the spec's raw YAML (read_example_yaml). Land 500 rows a night or more: with fewer,
    PSI between two nights of one population reaches the specs' 0.1 threshold now and then.
    """
    if nights < 1 or rows_per_night < 1:
        raise ValueError(f"nights ({nights}) and rows_per_night ({rows_per_night}) must both be at least 1")
    landing = Landing.of(spec)
    example = example_for(landing.name)
    rows = example_rows(landing, example)
    delay = dt.timedelta(days=landing.label_delay_days)
    totals = {"nights": 0, "rows": 0, "labels": 0, "files": 0}
    for offset in range(nights):
        day = start + dt.timedelta(days=offset)
        shifted = shift_from is not None and day >= shift_from
        rng = np.random.default_rng(day_seed(seed, day, landing.name))
        drop, labels = night_rows(landing, example, rows, day, rows_per_night, shifted, rng)
        manifest = {"model": landing.name, "dt": day.isoformat(), "rows": len(drop), "shifted": shifted}
        totals["files"] += _land_partition(
            store, landing.drop_prefix(day), drop, landing.drop_formats, "part", manifest
        )
        label_manifest = {"model": landing.name, "dt": (day + delay).isoformat(), "for_dt": day.isoformat()}
        totals["files"] += _land_partition(
            store, landing.labels_prefix(day + delay), labels, landing.labels_formats, "labels", label_manifest
        )
        totals["nights"] += 1
        totals["rows"] += len(drop)
        totals["labels"] += len(labels)
    return totals
