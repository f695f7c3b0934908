"""What a model kind decides, behind one interface: the estimators it takes, what a prediction row's score holds,
how a label parses, and which metrics the promotion gate may use.

A new kind (multiclass, regression) is one module beside `binary.py`, added to `nightshift.kinds.KINDS`.
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
    """A gate metric: its value on labelled rows (None where undefined, e.g. AUC on one class) and its direction."""

    compute: Callable[[np.ndarray, np.ndarray], float | None]
    higher_is_better: bool = True

    def improvement(self, candidate: float, baseline: float) -> float:
        """How much `candidate` improves on `baseline`, positive when better."""
        return candidate - baseline if self.higher_is_better else baseline - candidate


class ModelKind(Protocol):
    name: str
    metrics: Mapping[str, Metric]

    def estimator_problem(self, estimator: Any, dotted: str) -> str | None:
        """Why this estimator cannot serve the kind, or None when it can."""

    def training_target(self, labels: pd.Series, spec: ModelSpec) -> tuple[pd.Series, str | None]:
        """The training target as the estimator takes it, and why these labels cannot train a model (or None)."""

    def scores(self, model: Any, inputs: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """What each prediction row's `score` holds for these model inputs."""

    def signature_output(self, model: Any, inputs: pd.DataFrame) -> Any:
        """The model output MLflow's signature describes."""

    def metric_labels(self, labels: pd.Series) -> np.ndarray:
        """Curated labels as the metrics take them."""

    def parse_labels(self, raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
        """Label values as they arrived (strings, missing cells as NA), parsed, with the rejected rows' reasons."""
