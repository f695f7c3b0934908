"""What a model kind decides, behind one interface: the estimators it takes, the model outputs its metrics read,
what a prediction row holds, how a label parses, and which metrics the promotion gate may use.

A new kind is one module beside `binary.py`, `multiclass.py` and `regression.py`, added to `nightshift.kinds.KINDS`
(and its metric names to `nightshift.config.TASKS`, which checks specs without importing scikit-learn).
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


@dataclass(frozen=True)
class Metric:
    """A gate metric: its value on labelled rows (None where undefined, e.g. AUC on one class) and its direction.

    `compute(labels, outputs)` takes the kind's metric labels and model outputs (see `ModelKind.outputs`).
    """

    compute: Callable[[np.ndarray, np.ndarray], float | None]
    higher_is_better: bool = True

    def improvement(self, candidate: float, baseline: float) -> float:
        """How much `candidate` improves on `baseline`, positive when better."""
        return candidate - baseline if self.higher_is_better else baseline - candidate


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
