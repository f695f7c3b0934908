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

from nightshift.kinds.base import (
    Calibration,
    Metric,
    ParsedLabels,
    PredictionDrift,
    batched,
    defined,
    numeric_statistics,
    rejection_reasons,
    strings,
)
from nightshift.kinds.binary import probabilistic_classifier_problem, roc_auc_draws
from nightshift.kinds.calibration import OneVsRestCalibration

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

EPSILON = 1e-7


def _log_loss(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    clipped = np.clip(proba, EPSILON, 1.0)
    logs = np.log(clipped / clipped.sum(axis=1, keepdims=True))
    return -np.mean(logs[np.arange(proba.shape[0])[np.newaxis, :], labels], axis=1)


def _accuracy(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return np.mean(labels == np.argmax(proba, axis=1)[np.newaxis, :], axis=1)


def _macro_f1(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """F1 averaged over the classes that occur in the labels or the predictions (scikit-learn's macro average)."""
    predicted = np.argmax(proba, axis=1)
    scores = np.full((labels.shape[0], proba.shape[1]), np.nan)
    for code in range(proba.shape[1]):
        actual = labels == code
        predicted_here = predicted == code
        occurring = actual.sum(axis=1) + predicted_here.sum()
        hits = (actual & predicted_here[np.newaxis, :]).sum(axis=1)
        scores[:, code] = defined(2 * hits / np.maximum(occurring, 1), occurring == 0)
    return _mean_of_defined(scores, np.isfinite(scores).sum(axis=1) == 0)


def _roc_auc_ovr(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC averaged over the classes present in the labels (NaN with fewer than two)."""
    present = np.zeros((labels.shape[0], proba.shape[1]), dtype=bool)
    aucs = np.full(present.shape, np.nan)
    for code in range(proba.shape[1]):
        members = labels == code
        present[:, code] = members.any(axis=1)
        aucs[:, code] = roc_auc_draws(members.astype(np.int8), proba[:, code])
    return _mean_of_defined(aucs, present.sum(axis=1) < 2)


def _mean_of_defined(values: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    """Per row, the mean of its finite values; NaN where `undefined` holds."""
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return defined(total / np.maximum(finite.sum(axis=1), 1), undefined)


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
        "log_loss": batched(_log_loss, higher_is_better=False),
        "accuracy": batched(_accuracy),
        "macro_f1": batched(_macro_f1),
        "roc_auc_ovr": batched(_roc_auc_ovr),
    }
    prediction_drift = PredictionDrift("predicted_label", numeric=False)
    extra_columns: tuple[str, ...] = ("predicted_label", "class_probabilities")
    estimable = True

    def live_metrics(self, spec: ModelSpec) -> Mapping[str, Metric]:
        return {name: self.metrics[name] for name in ("accuracy", "macro_f1", "log_loss", "roc_auc_ovr")}

    def stored_outputs(self, frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        """The (rows, classes) probabilities in `target.classes` order from the `class_probabilities` JSON text
        (0 for a class the object does not name)."""
        texts = frame["class_probabilities"]
        if texts.isna().any():
            missing = frame.loc[texts.isna()].index[0]
            raise ValueError(f"class_probabilities is missing at row {missing!r}; every prediction row holds one")
        objects = json.loads("[" + ",".join(texts.astype(str)) + "]")
        rows = [[float(probabilities.get(name, 0.0)) for name in spec.classes] for probabilities in objects]
        return np.asarray(rows, dtype="float64").reshape(len(objects), len(spec.classes))

    def calibrate(self, outputs: np.ndarray, labels: np.ndarray) -> Calibration:
        """One-vs-rest logistic calibration per class, rows renormalised to sum to 1."""
        return OneVsRestCalibration.fit(outputs, labels)

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
