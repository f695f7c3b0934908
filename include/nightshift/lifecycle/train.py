"""Training sets from curated features joined with arrived labels, and the candidate pipeline."""

from __future__ import annotations

import datetime as dt
import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from nightshift.config import ModelSpec
from nightshift.kinds import BINARY, ModelKind, kind_of, model_inputs
from nightshift.stores.objects import ObjectStore, partition_files, partition_key

DATE_COLUMN = "_dt"


class TrainingDataError(ValueError):
    """Not enough labelled data to train or evaluate; the message says what is missing."""


@dataclass(frozen=True)
class TrainingSet:
    train: pd.DataFrame
    holdout: pd.DataFrame
    window_start: dt.date
    window_end: dt.date
    labelled_dates: list[dt.date]
    holdout_dates: list[dt.date]

    def describe(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "labelled_dates": [day.isoformat() for day in self.labelled_dates],
            "holdout_dates": [day.isoformat() for day in self.holdout_dates],
        }


def read_parquet_partition(store: ObjectStore, prefix: str, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A complete partition's Parquet files as one frame, or None when the partition is absent."""
    keys = partition_files(store, prefix, suffix=".parquet")
    if not keys:
        return None
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            path = store.get_file(key, Path(tmp) / Path(key).name)
            frames.append(pq.read_table(path, columns=columns).to_pandas())
    return pd.concat(frames, ignore_index=True)


def curated_features(store: ObjectStore, spec: ModelSpec, day: dt.date) -> pd.DataFrame | None:
    return read_parquet_partition(store, partition_key("curated", spec.name, day.isoformat()))


def curated_labels(store: ObjectStore, spec: ModelSpec, day: dt.date) -> pd.DataFrame | None:
    return read_parquet_partition(store, f"curated/{spec.name}/labels/dt={day.isoformat()}")


@dataclass(frozen=True)
class _Labelled:
    date: dt.date
    frame: pd.DataFrame


def _labelled_frames(store: ObjectStore, spec: ModelSpec, as_of: dt.date, days: int) -> list[_Labelled]:
    """Join each feature date's curated rows with the labels that arrived by `as_of`."""
    start = as_of - dt.timedelta(days=days - 1)
    label_frames = [
        frame
        for offset in range(days)
        if (frame := curated_labels(store, spec, start + dt.timedelta(days=offset))) is not None
    ]
    if not label_frames:
        return []
    labels = pd.concat(label_frames, ignore_index=True).drop_duplicates(spec.entity_id, keep="last")
    result = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        features = curated_features(store, spec, day)
        if features is None:
            continue
        joined = features.merge(labels, on=spec.entity_id, how="inner")
        if len(joined):
            result.append(_Labelled(day, joined.assign(**{DATE_COLUMN: day})))
    return result


def build_training_set(store: ObjectStore, spec: ModelSpec, as_of: dt.date) -> TrainingSet:
    """Labelled rows over the spec's window ending `as_of`; the latest `holdout_days` labelled dates are the holdout."""
    recipe = spec.training
    labelled = _labelled_frames(store, spec, as_of, recipe.window_days)
    dates = [item.date for item in labelled]
    needed = max(recipe.min_labelled_days, recipe.holdout_days + 1)
    if len(dates) < needed:
        window_start = as_of - dt.timedelta(days=recipe.window_days - 1)
        raise TrainingDataError(
            f"model {spec.name}: only {len(dates)} labelled day(s) between {window_start} and {as_of} "
            f"({', '.join(map(str, dates)) or 'none'}); training needs at least {needed} "
            "(training.min_labelled_days, and one more than training.holdout_days). "
            "Wait for more label drops or widen training.window_days."
        )
    holdout_dates = dates[-recipe.holdout_days :]
    frame = pd.concat([item.frame for item in labelled], ignore_index=True)
    is_holdout = frame[DATE_COLUMN].isin(holdout_dates)
    return TrainingSet(
        train=frame[~is_holdout].reset_index(drop=True),
        holdout=frame[is_holdout].reset_index(drop=True),
        window_start=as_of - dt.timedelta(days=recipe.window_days - 1),
        window_end=as_of,
        labelled_dates=dates,
        holdout_dates=holdout_dates,
    )


def resolve_estimator(
    dotted: str, params: dict[str, Any], context: str, kind: ModelKind | None = None
) -> BaseEstimator:
    """Instantiate a scikit-learn estimator of the kind (binary by default) from its dotted path, with a clear error
    for a wrong path, wrong params or an estimator the kind cannot use."""
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise TrainingDataError(
            f"{context}: estimator {dotted!r} not found; give the dotted path of a scikit-learn estimator, "
            "e.g. 'sklearn.ensemble.HistGradientBoostingClassifier' or 'sklearn.linear_model.Ridge'"
        ) from None
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise TrainingDataError(f"{context}: parameters {params} do not fit {dotted}: {exc}") from None
    problem = (kind or BINARY).estimator_problem(estimator, dotted)
    if problem:
        raise TrainingDataError(f"{context}: {problem}")
    return estimator


def build_pipeline(spec: ModelSpec, estimator: BaseEstimator) -> Pipeline:
    numeric = [name for name, feature in spec.features.items() if feature.type != "category"]
    categorical = [name for name, feature in spec.features.items() if feature.type == "category"]
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("preprocess", preprocess), ("estimator", clone(estimator))])


def fit_candidate(
    spec: ModelSpec, training: TrainingSet, estimator: str | None = None, params: dict[str, Any] | None = None
) -> Pipeline:
    """Fit the spec's recipe (or an override) on the training rows."""
    dotted = estimator or spec.estimator
    chosen = params if params is not None else spec.training.params
    kind = kind_of(spec)
    pipeline = build_pipeline(spec, resolve_estimator(dotted, chosen, f"model {spec.name} training recipe", kind))
    target, problem = kind.training_target(training.train[spec.target.column], spec)
    if problem:
        raise TrainingDataError(f"model {spec.name}: {problem}")
    pipeline.fit(model_inputs(training.train, spec), target)
    return pipeline


def reference_sample(frame: pd.DataFrame, spec: ModelSpec, outputs: np.ndarray, seed: int) -> pd.DataFrame:
    """A seeded sample of training rows with the model's own predictions (the kind's prediction columns): what
    drift is measured against."""
    columns = kind_of(spec).prediction_columns(outputs, spec)
    sample = frame[list(spec.features)].assign(**{name: np.asarray(values) for name, values in columns.items()})
    size = min(spec.training.reference_sample_size, len(sample))
    return sample.sample(n=size, random_state=seed).reset_index(drop=True)


def reference_statistics(sample: pd.DataFrame, spec: ModelSpec) -> dict[str, Any]:
    stats: dict[str, Any] = {"rows": len(sample), "features": {}}
    for name, feature in spec.features.items():
        values = sample[name]
        if feature.type == "category":
            shares = values.value_counts(normalize=True, dropna=False)
            stats["features"][name] = {
                "type": "category",
                "shares": {str(k): round(float(v), 6) for k, v in shares.items()},
            }
        else:
            numeric = pd.to_numeric(values, errors="coerce")
            stats["features"][name] = {
                "type": feature.type,
                "mean": float(numeric.mean()),
                "std": float(numeric.std()),
                "min": float(numeric.min()),
                "max": float(numeric.max()),
                "null_share": float(numeric.isna().mean()),
            }
    stats.update(kind_of(spec).output_statistics(sample))
    return stats
