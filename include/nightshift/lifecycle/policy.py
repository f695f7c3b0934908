"""The retrain decision: pure rules over the last nights' drift and performance, the cooldown and the run type."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from nightshift.config import ModelSpec
from nightshift.stages.drift.verdict import night_drifted


@dataclass
class RetrainDecision:
    requested: bool
    decision: str
    reasons: list[str] = field(default_factory=list)
    drifted_features: dict[str, float] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each rule's verdict and the figures it judged (`drift`, `performance`), as the asset event's extra carries them."""

    @property
    def fired(self) -> list[str]:
        return [name for name, rule in self.rules.items() if rule["fired"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "decision": self.decision,
            "reasons": self.reasons,
            "drifted_features": self.drifted_features,
            "fired": self.fired,
            "rules": self.rules,
        }


def decide_retrain(
    spec: ModelSpec,
    day: dt.date,
    *,
    has_champion: bool,
    labelled_days: int,
    history: list[dict[str, Any]],
    tonight: dict[str, Any] | None,
    last_request: dt.date | None,
    is_backfill: bool,
    performance: list[dict[str, Any]] | None = None,
) -> RetrainDecision:
    """Decide whether night `day` requests a retrain.

    `labelled_days` counts feature dates whose label drop had accepted labels (an empty one does not count).
    `history` holds the drift summaries (`dt`, `dataset_drift`, `critical_drifted` list, `drift_share`) of
    the nights in the window ending `day`; `tonight` is tonight's full drift summary when one was computed;
    `performance` the champion's judged nights (`performance_nights` rows: dt, basis, realized, estimated, reference,
    coverage, degraded, concept_drift) of the performance window ending `day`.
    """
    if is_backfill:
        return RetrainDecision(False, "backfill", ["runs created by a backfill never request a retrain"])
    if not has_champion:
        return _first_training(spec, day, labelled_days, last_request)
    drift = _drift_rule(spec, day, history, tonight)
    degraded = performance_rule(spec, day, performance or [])
    rules = {"drift": drift, "performance": degraded}
    fired = [rule for rule in rules.values() if rule["fired"]]
    reasons = [reason for rule in (fired or rules.values()) for reason in rule["reasons"]]
    if not fired:
        return RetrainDecision(False, "no_trigger", reasons, rules=rules)
    decision = _cooldown_or_request(
        spec, day, last_request, reasons, _drifted_scores(tonight) if drift["fired"] else {}
    )
    decision.rules = rules
    return decision


def _first_training(spec: ModelSpec, day: dt.date, labelled_days: int, last_request: dt.date | None) -> RetrainDecision:
    """With no champion yet: wait until enough days are labelled, then request the first training."""
    needed = max(spec.training.min_labelled_days, spec.training.holdout_days + 1)
    if labelled_days < needed:
        return RetrainDecision(
            False,
            "waiting_for_labels",
            [
                f"no champion yet; {labelled_days} labelled day(s) of the {needed} the first training needs "
                "(a day counts once its label drop had accepted labels)"
            ],
        )
    return _cooldown_or_request(
        spec, day, last_request, ["no champion yet: train the first one from the labelled history"], {}
    )


def _drift_rule(
    spec: ModelSpec, day: dt.date, history: list[dict[str, Any]], tonight: dict[str, Any] | None
) -> dict[str, Any]:
    """The drift rule: enough nights of the window drifted (the dataset, or a critical feature)."""
    policy = spec.drift
    window_start = day - dt.timedelta(days=policy.window_nights - 1)
    nights = [night for night in history if window_start <= night["dt"] <= day]
    drifted = [night for night in nights if night_drifted(night)]
    rule: dict[str, Any] = {
        "fired": len(drifted) >= policy.min_drifted_nights,
        "drifted_nights": [str(night["dt"]) for night in drifted],
        "window_nights": policy.window_nights,
        "min_drifted_nights": policy.min_drifted_nights,
    }
    if not rule["fired"]:
        rule["reasons"] = [
            f"{len(drifted)} of the last {policy.window_nights} night(s) drifted; "
            f"{policy.min_drifted_nights} needed (drift.min_drifted_nights)"
        ]
        return rule
    rule["reasons"] = [
        f"{len(drifted)} of the last {policy.window_nights} nights drifted "
        f"({', '.join(str(night['dt']) for night in drifted)}); threshold {policy.min_drifted_nights}",
    ]
    if tonight:
        rule["drift_share"] = tonight["drift_share"]
        rule["reasons"].append(
            f"tonight {tonight['drift_share']:.0%} of features drifted "
            f"(dataset threshold {policy.dataset_drift_share:.0%}); critical drifted: "
            f"{', '.join(tonight['critical_drifted']) or 'none'}"
        )
    return rule


def performance_rule(spec: ModelSpec, day: dt.date, nights: list[dict[str, Any]]) -> dict[str, Any]:
    """The performance rule: the champion's metric (realized where labels cover the night, else estimated) worse than
    its holdout figure by more than the tolerance on enough nights of the window."""
    policy, metric = spec.performance, spec.performance_metric
    window_start = day - dt.timedelta(days=policy.window_nights - 1)
    judged = [night for night in nights if window_start <= night["dt"] <= day and night.get("basis")]
    degraded = [night for night in judged if night["degraded"]]
    figures = [
        {
            "dt": str(night["dt"]),
            "basis": night["basis"],
            "value": night[night["basis"]],
            "reference": night.get("reference"),
            "coverage": night.get("coverage"),
            "degraded": bool(night["degraded"]),
            "concept_drift": bool(night.get("concept_drift")),
        }
        for night in judged
    ]
    fired = len(degraded) >= policy.min_degraded_nights
    shown = "; ".join(
        f"{item['dt']} {item['basis']} {item['value']:.4f} vs {_number(item['reference'])}" for item in figures
    )
    verdict = "fired" if fired else "not fired"
    reason = (
        f"performance: {len(degraded)} of the last {policy.window_nights} night(s) degraded on {metric} (worse than the "
        f"champion's holdout by more than {policy.tolerance}); {policy.min_degraded_nights} needed "
        f"(performance.min_degraded_nights): {verdict}" + (f" [{shown}]" if shown else " [no night judged yet]")
    )
    concept = [item["dt"] for item in figures if item["concept_drift"]]
    reasons = [reason] + (
        [f"concept drift on {', '.join(concept)}: realized performance fell, features did not drift"] if concept else []
    )
    return {
        "fired": fired,
        "metric": metric,
        "tolerance": policy.tolerance,
        "window_nights": policy.window_nights,
        "min_degraded_nights": policy.min_degraded_nights,
        "nights": figures,
        "degraded_nights": [str(night["dt"]) for night in degraded],
        "concept_drift_nights": concept,
        "reasons": reasons,
    }


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _drifted_scores(tonight: dict[str, Any] | None) -> dict[str, float]:
    """Tonight's drifted features and their scores (rounded to six places); empty without a summary."""
    if not tonight:
        return {}
    return {
        item["feature"]: round(float(item["score"]), 6)
        for item in tonight["features"]
        if item["drifted"] and item["score"] is not None
    }


def _cooldown_or_request(
    spec: ModelSpec, day: dt.date, last_request: dt.date | None, reasons: list[str], scores: dict[str, float]
) -> RetrainDecision:
    cooldown = spec.drift.cooldown_days
    if last_request is not None and (day - last_request).days <= cooldown:
        return RetrainDecision(
            False,
            "cooldown",
            [*reasons, f"suppressed: a retrain was requested on {last_request}, within the {cooldown}-day cooldown"],
            scores,
        )
    return RetrainDecision(True, "requested", reasons, scores)
