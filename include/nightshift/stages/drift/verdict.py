"""When a night counts as drifted for the retrain rule: light, so the policy, the summary and performance share it."""

from __future__ import annotations

from typing import Any


def night_drifted(night: dict[str, Any]) -> bool:
    """A night counts as drifted when the dataset drifted or any critical feature did (`critical_drifted`: a list)."""
    return bool(night["dataset_drift"]) or bool(night["critical_drifted"])
