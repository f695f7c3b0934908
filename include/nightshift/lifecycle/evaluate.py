"""Score candidate and champion on the same holdout, and decide promotion by the spec's gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nightshift.config import ModelSpec
from nightshift.kinds import BINARY, Metric, ModelKind, kind_of


def _metric(name: str, kind: ModelKind) -> Metric:
    try:
        return kind.metrics[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r} for {kind.name} models; use one of {sorted(kind.metrics)}") from None


def metric_value(name: str, labels: np.ndarray, scores: np.ndarray, kind: ModelKind = BINARY) -> float | None:
    """The metric on these rows, or None where it is undefined (no rows, or e.g. AUC on one class)."""
    metric = _metric(name, kind)
    return None if len(labels) == 0 else metric.compute(labels, scores)


def evaluate_scores(spec: ModelSpec, holdout: pd.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    """The gate's metric overall and per slice value, every metric of the kind overall, and the row counts (`scores`: the model's
    outputs on the holdout, see `nightshift.kinds.outputs`)."""
    gate, kind = spec.promotion, kind_of(spec)
    metric = spec.gate_metric
    labels = kind.metric_labels(holdout[spec.target.column], spec)
    result: dict[str, Any] = {
        "metric": metric,
        "value": metric_value(metric, labels, scores, kind),
        "rows": len(labels),
        "metrics": {name: metric_value(name, labels, scores, kind) for name in kind.metrics},
        "slices": {},
    }
    for slice_ in gate.slices:
        values = holdout[slice_.column].astype(str).to_numpy()
        for level in sorted(set(values)):
            mask = values == level
            result["slices"][f"{slice_.column}={level}"] = {
                "value": metric_value(metric, labels[mask], scores[mask], kind),
                "rows": int(mask.sum()),
            }
    return result


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons}


def decide(spec: ModelSpec, candidate: dict[str, Any], champion: dict[str, Any] | None) -> GateDecision:
    """Promote only when the candidate clears the floor, beats the champion by the margin and no slice regresses."""
    gate = spec.promotion
    metric = spec.gate_metric
    measure = _metric(metric, kind_of(spec))
    better = measure.improvement
    bound = "floor" if measure.higher_is_better else "ceiling (lower is better)"
    reasons: list[str] = []
    value = candidate["value"]
    if value is None:
        return GateDecision(False, [f"{metric} is undefined on the holdout ({candidate['rows']} rows)"])
    floor_ok = better(value, gate.floor) >= 0
    reasons.append(
        f"{metric} {value:.4f} {'meets' if floor_ok else 'misses'} the {bound} {gate.floor:.4f} (promotion.floor)"
    )
    if champion is None or champion.get("value") is None:
        reasons.append("no champion to compare with: the candidate becomes the first champion if it meets the floor")
        return GateDecision(floor_ok, reasons)
    gain = better(value, champion["value"])
    gain_ok = gain >= gate.min_improvement
    reasons.append(
        f"{metric} {value:.4f} vs champion {champion['value']:.4f} on the same holdout: change {gain:+.4f}, "
        f"{'at least' if gain_ok else 'below'} the required {gate.min_improvement:+.4f} (promotion.min_improvement)"
    )
    slices_ok = True
    limits = {slice_.column: slice_ for slice_ in gate.slices}
    for key, cand in candidate["slices"].items():
        column = key.split("=", 1)[0]
        limit = limits[column]
        champ = champion["slices"].get(key)
        if champ is None or cand["value"] is None or champ["value"] is None or cand["rows"] < limit.min_rows:
            continue
        change = better(cand["value"], champ["value"])
        if change < -limit.max_regression:
            slices_ok = False
            reasons.append(
                f"slice {key}: {metric} {cand['value']:.4f} vs champion {champ['value']:.4f} regresses by "
                f"{-change:.4f}, more than the allowed {limit.max_regression:.4f}"
            )
    if slices_ok and gate.slices:
        reasons.append("no slice regresses beyond its tolerance")
    return GateDecision(floor_ok and gain_ok and slices_ok, reasons)
