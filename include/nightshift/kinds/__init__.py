"""Model kinds: each module holds one kind behind `nightshift.kinds.base.ModelKind`; `kind_of` picks the spec's.

The spec names no kind yet, so every model is binary; multiclass and regression add one module each here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nightshift.kinds.base import Metric, ModelKind, ParsedLabels
from nightshift.kinds.binary import BinaryClassifier

if TYPE_CHECKING:
    import pandas as pd

    from nightshift.config import ModelSpec

BINARY = BinaryClassifier()
KINDS: dict[str, ModelKind] = {BINARY.name: BINARY}


def kind_of(spec: ModelSpec) -> ModelKind:
    """The kind of the spec's model; binary until the spec names a kind."""
    return BINARY


def parse_labels(raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
    return kind_of(spec).parse_labels(raw, spec)


__all__ = ["BINARY", "KINDS", "Metric", "ModelKind", "ParsedLabels", "kind_of", "parse_labels"]
