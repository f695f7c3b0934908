"""Multiclass classification: a probabilistic classifier over the spec's `target.classes`; each prediction row holds
the predicted class, its probability as the score, and one probability per class."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.kinds.base import Metric, ParsedLabels, PredictionDrift, numeric_statistics, rejection_reasons, strings
from nightshift.kinds.binary import probabilistic_classifier_problem

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

EPSILON = 1e-7


def _present(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels)


def _log_loss(labels: np.ndarray, proba: np.ndarray) -> float | None:
    clipped = np.clip(proba, EPSILON, 1.0)
    picked = clipped[np.arange(len(labels)), labels] / clipped.sum(axis=1)
    return float(-np.mean(np.log(picked)))


def _accuracy(labels: np.ndarray, proba: np.ndarray) -> float | None:
    return float(np.mean(np.argmax(proba, axis=1) == labels))


def _macro_f1(labels: np.ndarray, proba: np.ndarray) -> float | None:
    """F1 averaged over the classes that occur in the labels or the predictions."""
    from sklearn.metrics import f1_score

    return float(f1_score(labels, np.argmax(proba, axis=1), average="macro", zero_division=0))


def _roc_auc_ovr(labels: np.ndarray, proba: np.ndarray) -> float | None:
    """One-vs-rest ROC AUC averaged over the classes present in the labels (None with fewer than two)."""
    from sklearn.metrics import roc_auc_score

    present = _present(labels)
    if len(present) < 2:
        return None
    return float(np.mean([roc_auc_score(labels == code, proba[:, code]) for code in present]))


def _numeric(name: str) -> float | None:
    try:
        value = float(name)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def class_vocabulary(spec: ModelSpec) -> dict[str, int]:
    """Accepted spellings -> class position: each class as written, and, for numeric names, e.g. 2.0 for 2."""
    vocabulary = {name: position for position, name in enumerate(spec.classes)}
    for position, name in enumerate(spec.classes):
        number = _numeric(name)
        if number is not None and number.is_integer():
            vocabulary.setdefault(str(int(number)), position)
            vocabulary.setdefault(f"{number:.1f}", position)
    return vocabulary


class MulticlassClassifier:
    name = "multiclass"
    metrics: Mapping[str, Metric] = {
        "log_loss": Metric(_log_loss, higher_is_better=False),
        "accuracy": Metric(_accuracy),
        "macro_f1": Metric(_macro_f1),
        "roc_auc_ovr": Metric(_roc_auc_ovr),
    }
    prediction_drift = PredictionDrift("predicted_label", numeric=False)
    extra_columns: tuple[str, ...] = ("predicted_label", "class_probabilities")

    def estimator_problem(self, estimator: Any, dotted: str) -> str | None:
        return probabilistic_classifier_problem(estimator, dotted)

    def training_target(self, labels: pd.Series, spec: ModelSpec) -> tuple[pd.Series, str | None]:
        target = labels.astype(str)
        unknown = sorted(set(target) - set(spec.classes))
        if unknown:
            return target, f"the training labels hold {unknown}, which target.classes does not list"
        if target.nunique() < 2:
            return target, f"the training rows hold only the class {target.iloc[0]!r}; at least two are needed"
        return target, None

    def outputs(self, model: Any, inputs: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """Per row, the probability of each of the spec's classes, in `target.classes` order (0 for a class the
        model never saw in training)."""
        proba = np.asarray(model.predict_proba(inputs), dtype="float64")
        seen = [str(value) for value in model.classes_]
        out = np.zeros((len(proba), len(spec.classes)), dtype="float64")
        for position, name in enumerate(spec.classes):
            if name in seen:
                out[:, position] = proba[:, seen.index(name)]
        return out

    def prediction_columns(self, outputs: np.ndarray, spec: ModelSpec) -> dict[str, Any]:
        """`score` is the predicted class's probability; `class_probabilities` a JSON object per row."""
        classes = pa.array(spec.classes, type=pa.string())
        predicted = np.argmax(outputs, axis=1)
        pieces: list[Any] = []
        for position, name in enumerate(spec.classes):
            pieces.append(("{" if position == 0 else ", ") + json.dumps(name) + ": ")
            pieces.append(pc.cast(pa.array(outputs[:, position]), pa.string()))
        pieces.append("}")
        return {
            "score": outputs[np.arange(len(outputs)), predicted],
            "predicted_label": pc.take(classes, pa.array(predicted)),
            "class_probabilities": pc.binary_join_element_wise(*pieces, ""),
        }

    def signature_output(self, model: Any, inputs: pd.DataFrame) -> Any:
        return model.predict_proba(inputs)

    def metric_labels(self, labels: pd.Series, spec: ModelSpec) -> np.ndarray:
        """Class positions in `target.classes` order."""
        positions = {name: position for position, name in enumerate(spec.classes)}
        return np.asarray([positions[str(value)] for value in labels], dtype=np.int64)

    def parse_labels(self, raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
        """A class of `target.classes`, trimmed (numeric class names also as 2.0 for 2), as the class's name."""
        vocabulary = class_vocabulary(spec)
        trimmed = pc.utf8_trim_whitespace(strings(raw))
        found = pc.index_in(trimmed, value_set=pa.array(list(vocabulary), type=pa.string()))
        index = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        failed = index < 0
        names = np.asarray(spec.classes, dtype=object)
        codes = np.asarray(list(vocabulary.values()), dtype=np.int64)
        values = names[codes[np.maximum(index, 0)]]
        values[failed] = None
        expected = f"one of target.classes: {', '.join(spec.classes)}"
        reasons = rejection_reasons(raw, failed, spec.target.column, expected)
        return ParsedLabels(values=values, failed=failed, reasons=reasons)

    def output_statistics(self, sample: pd.DataFrame) -> dict[str, Any]:
        shares = sample["predicted_label"].value_counts(normalize=True)
        return {
            "score": numeric_statistics(sample["score"]),
            "predicted_label": {str(name): round(float(share), 6) for name, share in shares.items()},
        }
