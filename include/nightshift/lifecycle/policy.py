"""The retrain decision: pure rules over the last nights' drift, the cooldown and the run type."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from nightshift.config import ModelSpec


@dataclass
class RetrainDecision:
    requested: bool
    decision: str
    reasons: list[str] = field(default_factory=list)
    drifted_features: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "decision": self.decision,
            "reasons": self.reasons,
            "drifted_features": self.drifted_features,
        }


def night_drifted(night: dict[str, Any]) -> bool:
    """A night counts as drifted when the dataset drifted or any critical feature did."""
    return bool(night["dataset_drift"]) or bool(night["critical_drifted"])


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
) -> RetrainDecision:
    """Decide whether night `day` requests a retrain.

    `labelled_days` counts feature dates whose label drop had accepted labels (an empty one does not count).
    `history` holds the drift summaries (`dt`, `dataset_drift`, `critical_drifted` list, `drift_share`) of
    the nights in the window ending `day`; `tonight` is tonight's full drift summary when one was computed.
    """
    if is_backfill:
        return RetrainDecision(False, "backfill", ["runs created by a backfill never request a retrain"])
    if not has_champion:
        return _first_training(spec, day, labelled_days, last_request)
    return _drift_decision(spec, day, history, tonight, last_request)


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


def _drift_decision(
    spec: ModelSpec,
    day: dt.date,
    history: list[dict[str, Any]],
    tonight: dict[str, Any] | None,
    last_request: dt.date | None,
) -> RetrainDecision:
    """With a champion: request a retrain when enough nights of the window drifted (and no cooldown holds)."""
    policy = spec.drift
    window_start = day - dt.timedelta(days=policy.window_nights - 1)
    nights = [night for night in history if window_start <= night["dt"] <= day]
    drifted = [night for night in nights if night_drifted(night)]
    if len(drifted) < policy.min_drifted_nights:
        return RetrainDecision(
            False,
            "no_drift",
            [
                f"{len(drifted)} of the last {policy.window_nights} night(s) drifted; "
                f"{policy.min_drifted_nights} needed (drift.min_drifted_nights)"
            ],
        )
    reasons = [
        f"{len(drifted)} of the last {policy.window_nights} nights drifted "
        f"({', '.join(str(night['dt']) for night in drifted)}); threshold {policy.min_drifted_nights}",
    ]
    if tonight:
        reasons.append(
            f"tonight {tonight['drift_share']:.0%} of features drifted "
            f"(dataset threshold {policy.dataset_drift_share:.0%}); critical drifted: "
            f"{', '.join(tonight['critical_drifted']) or 'none'}"
        )
    return _cooldown_or_request(spec, day, last_request, reasons, _drifted_scores(tonight))


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
