"""Realized performance: a night's predictions against the labels that arrived for them, overall and per slice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from nightshift.config import ModelSpec
from nightshift.kinds import Metric, kind_of

OVERALL = ""
"""The slice name of all of a night's rows."""


def realized_metrics(
    spec: ModelSpec, predictions: pd.DataFrame, labels: pd.DataFrame, slices: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """One row per (slice, live metric): its value on the labelled predictions (None where undefined or unlabelled),
    the slice's predictions, how many of them have a label, and that share.

    `predictions`: entity_id and the kind's prediction columns; `labels`: entity_id and `label` as the curated labels
    hold them (the last of an entity's labels counts); `slices`: entity_id and the spec's slice columns as strings.
    Every level of a slice column among the night's predictions is reported, labelled or not; a prediction whose
    entity `slices` does not hold counts overall only.
    """
    kind = kind_of(spec)
    frame = predictions.reset_index(drop=True)
    entity_ids = frame["entity_id"].astype(str)
    latest = _by_entity(labels)["label"]
    labelled = np.flatnonzero(entity_ids.isin(latest.index).to_numpy())
    metric_labels = kind.metric_labels(latest.reindex(entity_ids.iloc[labelled]), spec)
    outputs = kind.stored_outputs(frame, spec)[labelled]
    metrics = kind.live_metrics(spec)
    rows: list[dict[str, Any]] = []
    for name, members in _slices(spec, entity_ids, slices):
        chosen = members[labelled]
        rows.extend(_measure(name, metrics, metric_labels[chosen], outputs[chosen], int(members.sum())))
    return rows


def _by_entity(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame indexed by entity_id as text, the last row of each entity kept."""
    keyed = frame.assign(entity_id=frame["entity_id"].astype(str))
    return keyed.drop_duplicates("entity_id", keep="last").set_index("entity_id")


def _slices(spec: ModelSpec, entity_ids: pd.Series, slices: pd.DataFrame | None) -> list[tuple[str, np.ndarray]]:
    """Each slice's name and which prediction rows it holds: all rows, then every level of every slice column."""
    chosen = [(OVERALL, np.ones(len(entity_ids), dtype=bool))]
    if slices is None:
        return chosen
    known = _by_entity(slices)
    for column in dict.fromkeys(slice_.column for slice_ in spec.promotion.slices):
        values = entity_ids.map(known[column])
        present = values.notna().to_numpy()
        text = values.astype(str).to_numpy()
        for level in sorted(set(text[present])):
            chosen.append((f"{column}={level}", present & (text == level)))
    return chosen


def _measure(
    name: str, metrics: Mapping[str, Metric], labels: np.ndarray, outputs: np.ndarray, rows: int
) -> list[dict[str, Any]]:
    counted = len(labels)
    coverage = counted / rows if rows else 0.0
    return [
        {
            "slice": name,
            "metric": metric,
            "value": measure.compute(labels, outputs) if counted else None,
            "rows": rows,
            "labelled_rows": counted,
            "coverage": coverage,
        }
        for metric, measure in metrics.items()
    ]
