"""Binary classification: a probabilistic classifier, the positive class's probability as the score, 0/1 labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.kinds.base import Metric, ParsedLabels, PredictionDrift, numeric_statistics, rejection_reasons, strings

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
    """Accepted spellings (trimmed, lower-cased) -> 0 or 1, including the spec's positive and negative labels."""
    vocabulary = dict(BINARY_VALUES)
    vocabulary.setdefault(str(spec.positive_label).strip().lower(), 1)
    if spec.target.negative_label is not None:
        vocabulary.setdefault(str(spec.target.negative_label).strip().lower(), 0)
    return vocabulary


def binary_expected(spec: ModelSpec) -> str:
    expected = "0 or 1 (also 0.0/1.0 or true/false, any case"
    positive = str(spec.positive_label).strip().lower()
    if positive not in BINARY_VALUES:
        expected += f", or the positive label {positive!r}"
    negative = spec.target.negative_label
    if negative is not None and str(negative).strip().lower() not in BINARY_VALUES:
        expected += f", or the negative label {str(negative).strip().lower()!r}"
    return expected + ")"


def probabilistic_classifier_problem(estimator: Any, dotted: str) -> str | None:
    """Why the estimator cannot serve a classification kind: not a classifier, or no predict_proba."""
    from sklearn.base import is_classifier

    if not is_classifier(estimator):
        return f"{dotted} is not a classifier; a classification task needs a scikit-learn classifier"
    if hasattr(estimator, "predict_proba"):
        return None
    return f"{dotted} has no predict_proba; nightshift needs a probabilistic classifier"


class BinaryClassifier:
    name = "binary"
    metrics: Mapping[str, Metric] = {
        "roc_auc": Metric(_roc_auc),
        "average_precision": Metric(_average_precision),
        "accuracy": Metric(_accuracy),
        "f1": Metric(_f1),
        "log_loss": Metric(_log_loss, higher_is_better=False),
    }
    prediction_drift = PredictionDrift("score", numeric=True)
    extra_columns: tuple[str, ...] = ()

    def estimator_problem(self, estimator: Any, dotted: str) -> str | None:
        return probabilistic_classifier_problem(estimator, dotted)

    def training_target(self, labels: pd.Series, spec: ModelSpec) -> tuple[pd.Series, str | None]:
        target = labels.astype(int)
        if target.nunique() < 2:
            return target, f"the training rows hold only the label {target.iloc[0]!r}; both classes are needed"
        return target, None

    def outputs(self, model: Any, inputs: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """Probability of the positive class (label 1: the spec's positive label parses to 1) for each row."""
        proba = model.predict_proba(inputs)
        classes = [int(value) for value in getattr(model, "classes_", [0, 1])]
        return np.asarray(proba[:, classes.index(1) if 1 in classes else -1], dtype="float64")

    def prediction_columns(self, outputs: np.ndarray, spec: ModelSpec) -> dict[str, Any]:
        return {"score": np.asarray(outputs, dtype="float64")}

    def signature_output(self, model: Any, inputs: pd.DataFrame) -> Any:
        return model.predict_proba(inputs)

    def metric_labels(self, labels: pd.Series, spec: ModelSpec) -> np.ndarray:
        return labels.to_numpy(dtype=int)

    def parse_labels(self, raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
        """0/1, 0.0/1.0, true/false (any case, trimmed) and the spec's positive label, as 0 or 1 (int8)."""
        vocabulary = binary_vocabulary(spec)
        trimmed = pc.utf8_trim_whitespace(strings(raw))
        found = pc.index_in(pc.utf8_lower(trimmed), value_set=pa.array(list(vocabulary), type=pa.string()))
        index = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        failed = index < 0
        codes = np.asarray(list(vocabulary.values()), dtype=np.int8)
        values = np.where(failed, 0, codes[np.maximum(index, 0)]).astype(np.int8)
        reasons = rejection_reasons(raw, failed, spec.target.column, binary_expected(spec))
        return ParsedLabels(values=values, failed=failed, reasons=reasons)

    def output_statistics(self, sample: pd.DataFrame) -> dict[str, Any]:
        return {"score": numeric_statistics(sample["score"])}
