"""Calibrations behind estimated performance (CBPE): isotonic maps from a model's outputs to how often its labels
follow them, fitted on a reference (the champion's holdout), and label draws from the calibrated probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def isotonic(outputs: np.ndarray, targets: np.ndarray) -> Any:
    """A fitted isotonic regression of the 0/1 targets on the outputs, clipped outside the reference's range."""
    from sklearn.isotonic import IsotonicRegression

    if len(outputs) == 0:
        raise ValueError("the reference holds no rows to calibrate on")
    if len(outputs) != len(targets):
        raise ValueError(f"the reference holds {len(outputs)} outputs but {len(targets)} labels")
    curve = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    return curve.fit(np.asarray(outputs, dtype="float64"), np.asarray(targets, dtype="float64"))


@dataclass(frozen=True)
class BinaryCalibration:
    """P(label 1) as an isotonic function of the score."""

    curve: Any

    @classmethod
    def fit(cls, outputs: np.ndarray, labels: np.ndarray) -> BinaryCalibration:
        return cls(isotonic(np.asarray(outputs).reshape(-1), labels))

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        scores = np.asarray(outputs, dtype="float64").reshape(-1)
        return np.clip(np.asarray(self.curve.predict(scores), dtype="float64"), 0.0, 1.0)

    def draw_labels(self, probabilities: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
        """0/1 labels (int8), each 1 with its row's probability."""
        return (rng.random((draws, len(probabilities))) < probabilities).astype(np.int8)


@dataclass(frozen=True)
class OneVsRestCalibration:
    """Per class, P(that class) as an isotonic function of its output column; rows renormalised to sum to 1."""

    curves: tuple[Any, ...]

    @classmethod
    def fit(cls, outputs: np.ndarray, labels: np.ndarray) -> OneVsRestCalibration:
        proba = np.asarray(outputs, dtype="float64")
        codes = np.asarray(labels)
        return cls(tuple(isotonic(proba[:, code], codes == code) for code in range(proba.shape[1])))

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """One column per class; a row every curve maps to 0 becomes uniform."""
        proba = np.asarray(outputs, dtype="float64")
        columns = [np.asarray(curve.predict(proba[:, code]), dtype="float64") for code, curve in enumerate(self.curves)]
        calibrated = np.column_stack(columns).reshape(len(proba), len(self.curves))
        total = calibrated.sum(axis=1, keepdims=True)
        return np.where(total > 0, calibrated / np.where(total > 0, total, 1.0), 1.0 / len(self.curves))

    def draw_labels(self, probabilities: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Class positions (int64), each drawn from its row's probabilities by inverting their running sum."""
        bounds = np.cumsum(probabilities, axis=1)[:, :-1]
        uniform = rng.random((draws, len(probabilities)))
        return np.asarray((uniform[:, :, np.newaxis] >= bounds[np.newaxis, :, :]).sum(axis=2), dtype=np.int64)
