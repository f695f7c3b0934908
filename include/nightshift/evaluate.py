"""Score candidate and champion on the same holdout, and decide promotion by the spec's gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from nightshift.config import ModelSpec

LOWER_IS_BETTER = {"log_loss"}


def metric_value(name: str, labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The metric on these rows, or None where it is undefined (e.g. AUC on one class)."""
    if len(labels) == 0:
        return None
    if name in ("roc_auc", "average_precision") and len(np.unique(labels)) < 2:
        return None
    if name == "roc_auc":
        return float(skm.roc_auc_score(labels, scores))
    if name == "average_precision":
        return float(skm.average_precision_score(labels, scores))
    if name == "log_loss":
        return float(skm.log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1]))
    predicted = (scores >= 0.5).astype(int)
    if name == "accuracy":
        return float(skm.accuracy_score(labels, predicted))
    if name == "f1":
        return float(skm.f1_score(labels, predicted, zero_division=0))
    raise ValueError(f"unknown metric {name!r}")


def evaluate_scores(spec: ModelSpec, holdout: pd.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    """The gate's metric overall and per slice value, plus the row counts behind them."""
    gate = spec.promotion
    labels = holdout[spec.target.column].to_numpy(dtype=int)
    result: dict[str, Any] = {
        "metric": gate.metric,
        "value": metric_value(gate.metric, labels, scores),
        "rows": len(labels),
        "slices": {},
    }
    for slice_ in gate.slices:
        values = holdout[slice_.column].astype(str).to_numpy()
        for level in sorted(set(values)):
            mask = values == level
            result["slices"][f"{slice_.column}={level}"] = {
                "value": metric_value(gate.metric, labels[mask], scores[mask]),
                "rows": int(mask.sum()),
            }
    return result


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons}


def _better(metric: str, candidate: float, baseline: float) -> float:
    """How much the candidate improves on the baseline, positive when better."""
    return baseline - candidate if metric in LOWER_IS_BETTER else candidate - baseline


def decide(spec: ModelSpec, candidate: dict[str, Any], champion: dict[str, Any] | None) -> GateDecision:
    """Promote only when the candidate clears the floor, beats the champion by the margin and no slice regresses."""
    gate = spec.promotion
    metric = gate.metric
    reasons: list[str] = []
    value = candidate["value"]
    if value is None:
        return GateDecision(False, [f"{metric} is undefined on the holdout ({candidate['rows']} rows)"])
    floor_ok = _better(metric, value, gate.floor) >= 0
    reasons.append(
        f"{metric} {value:.4f} {'meets' if floor_ok else 'misses'} the floor {gate.floor:.4f} (promotion.floor)"
    )
    if champion is None or champion.get("value") is None:
        reasons.append("no champion to compare with: the candidate becomes the first champion if it meets the floor")
        return GateDecision(floor_ok, reasons)
    gain = _better(metric, value, champion["value"])
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
        change = _better(metric, cand["value"], champ["value"])
        if change < -limit.max_regression:
            slices_ok = False
            reasons.append(
                f"slice {key}: {metric} {cand['value']:.4f} vs champion {champ['value']:.4f} regresses by "
                f"{-change:.4f}, more than the allowed {limit.max_regression:.4f}"
            )
    if slices_ok and gate.slices:
        reasons.append("no slice regresses beyond its tolerance")
    return GateDecision(floor_ok and gain_ok and slices_ok, reasons)
