"""What a model kind decides, behind one interface: the estimators it takes, the model outputs its metrics read,
what a prediction row holds, how a label parses, and which metrics the promotion gate may use.

A new kind is one module beside `binary.py`, `multiclass.py` and `regression.py`, added to `nightshift.kinds.KINDS`
(and its metric names to `nightshift.task_rules.TASKS`, which checks specs without importing scikit-learn).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

MAX_SHOWN_CHARS = 60


def shown(value: str) -> str:
    return repr(value if len(value) <= MAX_SHOWN_CHARS else value[: MAX_SHOWN_CHARS - 1] + "…")


def strings(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, missing cells as nulls."""
    try:
        array = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array([None if pd.isna(value) else str(value) for value in values], type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


@dataclass(frozen=True)
class ParsedLabels:
    values: np.ndarray
    """The parsed label of every row; meaningful only where `failed` is False."""
    failed: np.ndarray
    """Per row, True when the value is not a label."""
    reasons: np.ndarray
    """For each failed row, in row order: why, naming the column, the value and what is valid."""


Draws = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A metric of many label vectors at once: (draws, rows) labels and the rows' outputs -> one value per draw, NaN where
undefined."""


@dataclass(frozen=True)
class Metric:
    """A metric: its value on labelled rows (None where undefined, e.g. AUC on one class) and its direction.

    `compute(labels, outputs)` takes the kind's metric labels and model outputs (see `ModelKind.outputs`); `draws`,
    when the metric has it, computes many label vectors against the same outputs at once (see `batched`).
    """

    compute: Callable[[np.ndarray, np.ndarray], float | None]
    higher_is_better: bool = True
    draws: Draws | None = None

    def improvement(self, candidate: float, baseline: float) -> float:
        """How much `candidate` improves on `baseline`, positive when better."""
        return candidate - baseline if self.higher_is_better else baseline - candidate

    def of_draws(self, labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """The metric of each row of a (draws, rows) label matrix against the same outputs, NaN where undefined."""
        if self.draws is not None:
            return self.draws(labels, outputs)
        values = (self.compute(row, outputs) for row in labels)
        return np.asarray([np.nan if value is None else value for value in values], dtype="float64")


def batched(draws: Draws, *, higher_is_better: bool = True) -> Metric:
    """A metric written once, for many label vectors; one label vector is computed as a single draw."""

    def compute(labels: np.ndarray, outputs: np.ndarray) -> float | None:
        if len(labels) == 0:
            return None
        value = float(draws(np.asarray(labels)[np.newaxis, :], outputs)[0])
        return None if np.isnan(value) else value

    return Metric(compute, higher_is_better, draws)


def defined(values: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    """The values as floats, NaN where `undefined` holds (computed without dividing by zero)."""
    return np.where(undefined, np.nan, values).astype("float64")


class Calibration(Protocol):
    """What a kind fits on a reference (outputs and metric labels) to turn model outputs into label probabilities."""

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: binary P(label 1) per row; multiclass one per class, each row summing to 1."""

    def draw_labels(self, probabilities: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
        """`draws` metric-label vectors, one per row of the result, each label drawn from its row's probabilities."""


@dataclass(frozen=True)
class PredictionDrift:
    """The prediction column drift compares between the reference and a night, and whether it is numeric."""

    column: str
    numeric: bool


class ModelKind(Protocol):
    name: str
    metrics: Mapping[str, Metric]
    prediction_drift: PredictionDrift
    extra_columns: tuple[str, ...]
    """The prediction columns the kind writes beside `score`, from `prediction_columns` (none for most kinds)."""
    estimable: bool
    """Whether performance can be estimated before labels arrive (CBPE): True for kinds that `calibrate`."""

    def estimator_problem(self, estimator: Any, dotted: str) -> str | None:
        """Why this estimator cannot serve the kind, or None when it can."""

    def training_target(self, labels: pd.Series, spec: ModelSpec) -> tuple[pd.Series, str | None]:
        """The training target as the estimator takes it, and why these labels cannot train a model (or None)."""

    def outputs(self, model: Any, inputs: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """The model's outputs the metrics read: one value per row, or (multiclass) one column per spec class."""

    def prediction_columns(self, outputs: np.ndarray, spec: ModelSpec) -> dict[str, Any]:
        """What a prediction row holds beside its id and version: always `score` (float), plus the kind's own."""

    def signature_output(self, model: Any, inputs: pd.DataFrame) -> Any:
        """The model output MLflow's signature describes."""

    def metric_labels(self, labels: pd.Series, spec: ModelSpec) -> np.ndarray:
        """Curated labels as the metrics take them."""

    def parse_labels(self, raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
        """Label values as they arrived (strings, missing cells as NA), parsed, with the rejected rows' reasons."""

    def output_statistics(self, sample: pd.DataFrame) -> dict[str, Any]:
        """What the reference statistics record of the reference sample's prediction columns."""

    def live_metrics(self, spec: ModelSpec) -> Mapping[str, Metric]:
        """What realized and estimated performance report, keyed as `nightshift.task_rules.TASKS[task].live_metrics`."""

    def stored_outputs(self, frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """The model outputs the metrics read, rebuilt from a predictions frame (the kind's prediction columns)."""

    def calibrate(self, outputs: np.ndarray, labels: np.ndarray) -> Calibration:
        """Fit on a reference's outputs and metric labels; only for estimable kinds (ValueError otherwise)."""


def rejection_reasons(raw: pd.Series, failed: np.ndarray, column: str, expected: str) -> np.ndarray:
    """The reasons of the failed rows, in row order: missing, or not a label, naming the value and what is valid."""
    given = raw.to_numpy(dtype=object)
    reasons = []
    for position in np.flatnonzero(failed):
        value = given[position]
        if value is None or pd.isna(value) or not str(value).strip():
            reasons.append(f"{column}: the label is missing; expected {expected}")
        else:
            reasons.append(f"{column}: {shown(str(value))} is not a label; expected {expected}")
    return np.asarray(reasons, dtype=object)


def numeric_statistics(values: pd.Series) -> dict[str, float]:
    numbers = pd.to_numeric(values, errors="coerce")
    return {"mean": float(numbers.mean()), "std": float(numbers.std())}
