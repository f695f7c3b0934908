"""Binary classification: a probabilistic classifier, the positive class's probability as the score, 0/1 labels."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
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
from nightshift.kinds.calibration import BinaryCalibration

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

BINARY_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}
"""Binary label spellings after trimming and lower-casing: what pandas, spreadsheets and SQL exports write."""
THRESHOLD = 0.5
"""The score at or above which the gate's accuracy and F1 count a row as positive."""


EPSILON = 1e-7
CALIBRATION_BINS = 10


def _counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: how many labels are 1 and how many 0."""
    positives = labels.sum(axis=1).astype("float64")
    return positives, labels.shape[1] - positives


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return np.asarray((ends - (counts - 1) / 2.0)[inverse.reshape(-1)], dtype="float64")


def roc_auc_draws(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC per draw by the rank-sum (Mann-Whitney) identity, ties counting half; NaN with one class."""
    positives, negatives = _counts(labels)
    rank_sums = labels @ midranks(scores)
    undefined = (positives == 0) | (negatives == 0)
    return defined(
        (rank_sums - positives * (positives + 1) / 2) / np.where(undefined, 1.0, positives * negatives), undefined
    )


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision per draw: precision at each distinct score, weighted by the recall it adds; NaN with one class."""
    positives, negatives = _counts(labels)
    undefined = (positives == 0) | (negatives == 0)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    hits = np.cumsum(labels[:, order], axis=1, dtype=np.int64)[:, ends]
    added_recall = np.diff(hits, axis=1, prepend=0) / np.where(undefined, 1.0, positives)[:, np.newaxis]
    return defined(np.sum(added_recall * hits / (ends + 1), axis=1), undefined)


def _log_loss(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, EPSILON, 1 - EPSILON)
    if_one, if_zero = np.log(clipped), np.log1p(-clipped)
    return -(labels @ (if_one - if_zero) + if_zero.sum()) / labels.shape[1]


def _calibration_error(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Expected calibration error over 10 equal-width score bins: the row-weighted gap of label rate and mean score."""
    bins = np.minimum((np.clip(scores, 0.0, 1.0) * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    members = np.eye(CALIBRATION_BINS)[bins]
    score_sums = np.bincount(bins, weights=scores, minlength=CALIBRATION_BINS)
    return np.abs(labels @ members - score_sums).sum(axis=1) / labels.shape[1]


def _confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Per draw: true positives, false positives, false negatives, true negatives (score >= threshold is positive)."""
    predicted = (scores >= threshold).astype("float64")
    positives, _ = _counts(labels)
    true_positives = labels @ predicted
    false_positives = predicted.sum() - true_positives
    false_negatives = positives - true_positives
    return true_positives, false_positives, false_negatives, labels.shape[1] - positives - false_positives


def _accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    true_positives, _, _, true_negatives = _confusion(labels, scores, threshold)
    return (true_positives + true_negatives) / labels.shape[1]


def _precision(labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """NaN where no row is predicted positive."""
    true_positives, false_positives, _, _ = _confusion(labels, scores, threshold)
    predicted = true_positives + false_positives
    return defined(true_positives / np.where(predicted == 0, 1.0, predicted), predicted == 0)


def _recall(labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """NaN where no label is positive."""
    true_positives, _, false_negatives, _ = _confusion(labels, scores, threshold)
    actual = true_positives + false_negatives
    return defined(true_positives / np.where(actual == 0, 1.0, actual), actual == 0)


def _f1(labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """0 where no row is positive or predicted positive (scikit-learn's zero_division=0)."""
    true_positives, false_positives, false_negatives, _ = _confusion(labels, scores, threshold)
    total = 2 * true_positives + false_positives + false_negatives
    return 2 * true_positives / np.where(total == 0, 1.0, total)


def threshold_metrics(threshold: float) -> dict[str, Metric]:
    """Precision, recall, F1 and accuracy with rows at or above `threshold` counted positive."""
    return {
        name: batched(partial(draws, threshold=threshold))
        for name, draws in (("precision", _precision), ("recall", _recall), ("f1", _f1), ("accuracy", _accuracy))
    }


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
        "roc_auc": batched(roc_auc_draws),
        "average_precision": batched(_average_precision),
        "accuracy": threshold_metrics(THRESHOLD)["accuracy"],
        "f1": threshold_metrics(THRESHOLD)["f1"],
        "log_loss": batched(_log_loss, higher_is_better=False),
    }
    prediction_drift = PredictionDrift("score", numeric=True)
    extra_columns: tuple[str, ...] = ()
    estimable = True

    def live_metrics(self, spec: ModelSpec) -> Mapping[str, Metric]:
        """The gate's ranking metrics, the thresholded ones at `performance.threshold`, log loss and calibration error."""
        return {
            "roc_auc": self.metrics["roc_auc"],
            "average_precision": self.metrics["average_precision"],
            **threshold_metrics(spec.performance.threshold),
            "log_loss": self.metrics["log_loss"],
            "calibration_error": batched(_calibration_error, higher_is_better=False),
        }

    def stored_outputs(self, frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        return frame["score"].to_numpy(dtype="float64")

    def calibrate(self, outputs: np.ndarray, labels: np.ndarray) -> Calibration:
        """A logistic curve of the 0/1 label on the score's log-odds (Platt scaling)."""
        return BinaryCalibration.fit(outputs, labels)

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
