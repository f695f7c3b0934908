"""Estimated performance before labels arrive: confidence-based performance estimation (CBPE) by Monte Carlo.

The champion's holdout outputs and labels (its reference, stored beside the model as a calibration frame) fit the
kind's calibration; a night's outputs are turned into calibrated label probabilities, label vectors are drawn from
them, and each live metric is computed of every draw against the raw outputs: the mean is the estimate, the 2.5th and
97.5th percentiles its band. The calibration is refitted on `REFITS` bootstrap resamples of the reference, the draws
shared among them, so the band holds the reference's own noise as well as the night's (with one fit on a 4,000-row
holdout, bands missed the realized figure of unshifted nights two to three times as often as 5%). It sees what covariate shift does to the metrics, never a change in how labels follow
the features (concept shift): realized performance catches that.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from nightshift.config import ModelSpec
from nightshift.kinds import kind_of
from nightshift.kinds.base import Calibration

DRAW_CELLS = 1_000_000
"""About how many labels are drawn at once (draws x rows): bounds memory on large nights."""
BAND = (2.5, 97.5)
"""The percentiles of the draws that bound an estimate's 95% band."""
REFITS = 20
"""How many bootstrap resamples of the reference the calibration is refitted on (the draws shared among them)."""


def estimate_metrics(
    spec: ModelSpec,
    reference: pd.DataFrame,
    outputs: np.ndarray,
    *,
    simulations: int,
    seed: int,
    sample_size: int,
    refits: int = REFITS,
) -> dict[str, dict[str, float | None]]:
    """Per live metric of the spec's kind: {"value": mean over draws, "lower", "upper": its 95% band}, None where the
    metric is undefined in every draw (or the night has no rows). `reference` is a calibration frame (see
    `calibration_frame`); with `refits` 0 the calibration is fitted once on it whole. The same seed gives the same
    figures."""
    kind = kind_of(spec)
    if not kind.estimable:
        raise ValueError(f"{kind.name} performance is not estimable before labels arrive; it is only realized")
    metrics = kind.live_metrics(spec)
    rng = np.random.default_rng(seed)
    sample = _sample(np.asarray(outputs, dtype="float64"), sample_size, rng)
    if len(sample) == 0:
        return {name: _summary(np.empty(0)) for name in metrics}
    values: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    for calibration, share in _calibrations(spec, reference, simulations, refits, rng):
        probabilities = calibration.probabilities(sample)
        for draws in _batches(share, len(sample)):
            labels = calibration.draw_labels(probabilities, draws, rng)
            for name, metric in metrics.items():
                values[name].append(metric.of_draws(labels, sample))
    return {name: _summary(np.concatenate(parts)) for name, parts in values.items()}


def _calibrations(
    spec: ModelSpec, reference: pd.DataFrame, simulations: int, refits: int, rng: np.random.Generator
) -> Iterator[tuple[Calibration, int]]:
    """Calibrations fitted on bootstrap resamples of the reference (the whole of it when `refits` is 0), each with
    its share of the `simulations` label draws."""
    kind = kind_of(spec)
    outputs, labels = calibration_arrays(reference)
    if refits <= 0:
        yield kind.calibrate(outputs, labels), simulations
        return
    rounds = min(refits, simulations)
    for round_number in range(rounds):
        share = simulations // rounds + (1 if round_number < simulations % rounds else 0)
        picked = rng.integers(0, len(outputs), len(outputs))
        yield kind.calibrate(outputs[picked], labels[picked]), share


def _sample(outputs: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most `size` rows, chosen at random without replacement, kept in their order."""
    if len(outputs) <= size:
        return outputs
    return outputs[np.sort(rng.choice(len(outputs), size=size, replace=False))]


def _batches(simulations: int, rows: int) -> Iterator[int]:
    """How many label vectors to draw at a time, `simulations` in all."""
    step = max(1, DRAW_CELLS // max(rows, 1))
    for start in range(0, simulations, step):
        yield min(step, simulations - start)


def _summary(values: np.ndarray) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"value": None, "lower": None, "upper": None}
    lower, upper = np.percentile(finite, BAND)
    return {"value": float(np.mean(finite)), "lower": float(lower), "upper": float(upper)}


def calibration_frame(outputs: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """A reference as a table to store: `output` (one output per row) or `output_0`..`output_{k-1}`, and `label`."""
    values = np.asarray(outputs, dtype="float64")
    if len(values) != len(labels):
        raise ValueError(f"a reference needs one label per output row, not {len(labels)} labels for {len(values)}")
    if values.ndim == 1:
        columns = {"output": values}
    else:
        columns = {f"output_{position}": values[:, position] for position in range(values.shape[1])}
    return pd.DataFrame({**columns, "label": np.asarray(labels)})


def calibration_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The outputs and labels of a stored reference (see `calibration_frame`)."""
    if "output" in frame.columns:
        outputs = frame["output"].to_numpy(dtype="float64")
    else:
        count = sum(1 for column in frame.columns if str(column).startswith("output_"))
        if count == 0:
            raise ValueError(f"a calibration frame holds `output` or `output_0`.. columns; found {list(frame.columns)}")
        outputs = frame[[f"output_{position}" for position in range(count)]].to_numpy(dtype="float64")
    return outputs, frame["label"].to_numpy()


def fit_calibration(spec: ModelSpec, frame: pd.DataFrame) -> Calibration:
    """The spec's kind's calibration, fitted on a stored reference."""
    outputs, labels = calibration_arrays(frame)
    return kind_of(spec).calibrate(outputs, labels)
