"""Whether a night's performance is degraded: its realized figure once enough labels arrived, else its estimate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightshift.config import Performance
from nightshift.task_rules import LOWER_IS_BETTER

REALIZED, ESTIMATED = "realized", "estimated"


@dataclass(frozen=True)
class Judgement:
    basis: str | None
    """Which figure judged the night: realized, estimated, or None when neither could."""
    value: float | None
    degraded: bool
    reason: str


def worse_by(metric: str, value: float, reference: float) -> float:
    """How much worse `value` is than `reference` (positive when worse), whichever way the metric points."""
    return value - reference if metric in LOWER_IS_BETTER else reference - value


def judge_night(
    policy: Performance,
    metric: str,
    reference: float | None,
    realized: float | None,
    coverage: float,
    labelled_rows: int,
    estimated: float | None,
) -> Judgement:
    """Judge one night by its realized `metric` when its labels cover enough rows, else by its estimate (if allowed)."""
    enough = coverage >= policy.min_label_coverage and labelled_rows >= policy.min_labelled_rows
    if enough and realized is not None:
        basis, value = REALIZED, realized
    elif policy.estimated and estimated is not None:
        basis, value = ESTIMATED, estimated
    else:
        why = f"labels cover {coverage:.0%} ({labelled_rows} rows)"
        return Judgement(None, None, False, f"{metric}: not judged; {why} and no estimate")
    if reference is None:
        return Judgement(basis, value, False, f"{metric} {basis} {value:.4f}: no holdout figure to judge it against")
    gap = worse_by(metric, value, reference)
    degraded = round(gap, 9) > policy.tolerance
    verdict = "degraded" if degraded else "within tolerance"
    return Judgement(
        basis,
        value,
        degraded,
        f"{metric} {basis} {value:.4f} vs holdout {reference:.4f}: {gap:+.4f} worse, {verdict} "
        f"(performance.tolerance {policy.tolerance})",
    )


def is_concept_drift(judgement: Judgement, drift_night: dict[str, Any] | None, drifted: bool) -> bool:
    """A night whose realized performance is degraded while its features did not drift (`drifted` from its drift row)."""
    return judgement.basis == REALIZED and judgement.degraded and drift_night is not None and not drifted
