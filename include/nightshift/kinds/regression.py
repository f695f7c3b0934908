"""Regression: a scikit-learn regressor; each prediction row's score is the predicted value; labels are numbers."""

from __future__ import annotations

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
    numeric_statistics,
    rejection_reasons,
    strings,
)

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

EXPECTED = "a finite number, such as 12, -0.5 or 1.2e3"


def _rmse(labels: np.ndarray, predicted: np.ndarray) -> float | None:
    return float(np.sqrt(np.mean((labels - predicted) ** 2)))


def _mae(labels: np.ndarray, predicted: np.ndarray) -> float | None:
    return float(np.mean(np.abs(labels - predicted)))


def _r2(labels: np.ndarray, predicted: np.ndarray) -> float | None:
    """The coefficient of determination; None where the labels do not vary (it is undefined there)."""
    spread = float(np.sum((labels - labels.mean()) ** 2))
    if len(labels) < 2 or spread == 0.0:
        return None
    return 1.0 - float(np.sum((labels - predicted) ** 2)) / spread


class Regressor:
    name = "regression"
    metrics: Mapping[str, Metric] = {
        "rmse": Metric(_rmse, higher_is_better=False),
        "mae": Metric(_mae, higher_is_better=False),
        "r2": Metric(_r2),
    }
    prediction_drift = PredictionDrift("score", numeric=True)
    extra_columns: tuple[str, ...] = ()
    estimable = False
    """A regressor's outputs carry no distribution of its labels to draw from: performance waits for labels."""

    def live_metrics(self, spec: ModelSpec) -> Mapping[str, Metric]:
        return self.metrics

    def stored_outputs(self, frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        return frame["score"].to_numpy(dtype="float64")

    def calibrate(self, outputs: np.ndarray, labels: np.ndarray) -> Calibration:
        raise ValueError("regression performance is not estimable before labels arrive; it is only realized")

    def estimator_problem(self, estimator: Any, dotted: str) -> str | None:
        from sklearn.base import is_regressor

        if is_regressor(estimator):
            return None
        return f"{dotted} is not a regressor; a regression task needs a scikit-learn regressor"

    def training_target(self, labels: pd.Series, spec: ModelSpec) -> tuple[pd.Series, str | None]:
        target = labels.astype("float64")
        if len(target) < 2:
            return target, "fewer than two labelled training rows"
        return target, None

    def outputs(self, model: Any, inputs: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
        return np.asarray(model.predict(inputs), dtype="float64").reshape(-1)

    def prediction_columns(self, outputs: np.ndarray, spec: ModelSpec) -> dict[str, Any]:
        return {"score": np.asarray(outputs, dtype="float64")}

    def signature_output(self, model: Any, inputs: pd.DataFrame) -> Any:
        return model.predict(inputs)

    def metric_labels(self, labels: pd.Series, spec: ModelSpec) -> np.ndarray:
        return labels.to_numpy(dtype="float64")

    def parse_labels(self, raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
        """Numbers as written (trimmed); blanks, text, NaN and infinities are rejected."""
        trimmed = pc.utf8_trim_whitespace(strings(raw))
        values = _to_float(trimmed)
        failed = ~np.isfinite(values)
        reasons = rejection_reasons(raw, failed, spec.target.column, EXPECTED)
        return ParsedLabels(values=np.where(failed, 0.0, values), failed=failed, reasons=reasons)

    def output_statistics(self, sample: pd.DataFrame) -> dict[str, Any]:
        return {"score": numeric_statistics(sample["score"])}


def _to_float(values: pa.Array) -> np.ndarray:
    """Each string as a float, NaN where it is not a number."""
    return pd.to_numeric(pd.Series(values.to_numpy(zero_copy_only=False), dtype=object), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
