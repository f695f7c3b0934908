"""Binary classification: a probabilistic classifier, the positive class's probability as the score, 0/1 labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.kinds.base import Metric, ParsedLabels, shown, strings

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

BINARY_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}
"""Binary label spellings after trimming and lower-casing: what pandas, spreadsheets and SQL exports write."""
THRESHOLD = 0.5
"""The score at or above which accuracy and F1 count a row as positive."""


def _both_classes(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) >= 2


def _roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if _both_classes(labels) else None


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores)) if _both_classes(labels) else None


def _log_loss(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import log_loss

    return float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1]))


def _accuracy(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, (scores >= THRESHOLD).astype(int)))


def _f1(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, (scores >= THRESHOLD).astype(int), zero_division=0))


def binary_vocabulary(spec: ModelSpec) -> dict[str, int]:
    """Accepted spellings (trimmed, lower-cased) -> 0 or 1, including the spec's positive label."""
    vocabulary = dict(BINARY_VALUES)
    vocabulary.setdefault(str(spec.target.positive_label).strip().lower(), 1)
    return vocabulary


def binary_expected(spec: ModelSpec) -> str:
    expected = "0 or 1 (also 0.0/1.0 or true/false, any case"
    positive = str(spec.target.positive_label).strip().lower()
    if positive not in BINARY_VALUES:
        expected += f", or the positive label {positive!r}"
    return expected + ")"


class BinaryClassifier:
    name = "binary"
    metrics: Mapping[str, Metric] = {
        "roc_auc": Metric(_roc_auc),
        "average_precision": Metric(_average_precision),
        "accuracy": Metric(_accuracy),
        "f1": Metric(_f1),
        "log_loss": Metric(_log_loss, higher_is_better=False),
    }

    def estimator_problem(self, estimator: Any, dotted: str) -> str | None:
        if hasattr(estimator, "predict_proba"):
            return None
        return f"{dotted} has no predict_proba; nightshift needs a probabilistic classifier"

    def training_target(self, labels: pd.Series, spec: ModelSpec) -> tuple[pd.Series, str | None]:
        target = labels.astype(int)
        if target.nunique() < 2:
            return target, f"the training rows hold only the label {target.iloc[0]!r}; both classes are needed"
        return target, None

    def scores(self, model: Any, inputs: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """Probability of the positive label for each row."""
        proba = model.predict_proba(inputs)
        classes = list(getattr(model, "classes_", [0, 1]))
        column = classes.index(spec.target.positive_label) if spec.target.positive_label in classes else -1
        return np.asarray(proba[:, column], dtype="float64")

    def signature_output(self, model: Any, inputs: pd.DataFrame) -> Any:
        return model.predict_proba(inputs)

    def metric_labels(self, labels: pd.Series) -> np.ndarray:
        return labels.to_numpy(dtype=int)

    def parse_labels(self, raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
        """0/1, 0.0/1.0, true/false (any case, trimmed) and the spec's positive label, as 0 or 1 (int8)."""
        column = spec.target.column
        expected = binary_expected(spec)
        vocabulary = binary_vocabulary(spec)
        trimmed = pc.utf8_trim_whitespace(strings(raw))
        found = pc.index_in(pc.utf8_lower(trimmed), value_set=pa.array(list(vocabulary), type=pa.string()))
        index = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        failed = index < 0
        codes = np.asarray(list(vocabulary.values()), dtype=np.int8)
        values = np.where(failed, 0, codes[np.maximum(index, 0)]).astype(np.int8)
        blank = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(trimmed), 0), True).to_numpy(zero_copy_only=False))
        given = raw.to_numpy(dtype=object)
        reasons = [
            f"{column}: the label is missing; expected {expected}"
            if blank[position]
            else f"{column}: {shown(str(given[position]))} is not a label; expected {expected}"
            for position in np.flatnonzero(failed)
        ]
        return ParsedLabels(values=values, failed=failed, reasons=np.asarray(reasons, dtype=object))
