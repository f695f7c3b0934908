"""Model kinds: each module holds one kind behind `nightshift.kinds.base.ModelKind`; `kind_of` picks the spec's
(its `task`). `inputs` turns curated rows into what the pipeline takes; `outputs` what the kind's metrics read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nightshift.kinds.base import Calibration, Metric, ModelKind, ParsedLabels, PredictionDrift
from nightshift.kinds.binary import BinaryClassifier
from nightshift.kinds.inputs import model_inputs
from nightshift.kinds.multiclass import MulticlassClassifier
from nightshift.kinds.regression import Regressor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from nightshift.config import ModelSpec

BINARY = BinaryClassifier()
MULTICLASS = MulticlassClassifier()
REGRESSION = Regressor()
KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (BINARY, MULTICLASS, REGRESSION)}


def kind_of(spec: ModelSpec) -> ModelKind:
    """The kind of the spec's model, named by its `task`."""
    return KINDS[spec.task]


def parse_labels(raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
    return kind_of(spec).parse_labels(raw, spec)


def outputs(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The model's outputs on curated rows, as the spec's kind defines them (binary: the positive-class probability)."""
    return kind_of(spec).outputs(model, model_inputs(frame, spec), spec)


__all__ = [
    "BINARY",
    "KINDS",
    "MULTICLASS",
    "REGRESSION",
    "Calibration",
    "Metric",
    "ModelKind",
    "ParsedLabels",
    "PredictionDrift",
    "kind_of",
    "model_inputs",
    "outputs",
    "parse_labels",
]
