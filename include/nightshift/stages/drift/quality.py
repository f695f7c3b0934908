"""Data quality of a night against the reference of the champion that scored it: missing values, numbers outside the
reference's range and categories the reference never saw, per feature, flagged by the spec's `drift.data_quality`.

Drift compares the distributions of the values that are present, so a feature whose values go missing more often, or
that starts to hold values the model never learned from, passes unseen: this is what catches it. Plain Python: frames
and a spec in, a JSON-serialisable dict out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from nightshift.config import DataQuality, Feature, ModelSpec

NUMERIC_TYPES = frozenset({"int", "float"})
MISSING_KEYS = frozenset({"nan", "None", "<NA>", "NaT"})
"""How `reference_statistics` writes a missing value among a category's `shares` keys (`str` of NaN, None, NA)."""
SETTING = "drift.data_quality"
EXAMPLES = 3


@dataclass(frozen=True)
class _Reference:
    """What the reference says of one feature; None where it cannot say (no such feature, or no values)."""

    missing_share: float | None = None
    low: float | None = None
    high: float | None = None
    categories: frozenset[str] | None = None


def data_quality(
    sample: pd.DataFrame, reference: pd.DataFrame, statistics: dict[str, Any] | None, spec: ModelSpec
) -> dict[str, Any]:
    """Each feature of the spec measured on the night's `sample` against the champion's reference, and flagged.

    Per feature: `missing_share` (of the sample's rows), `reference_missing_share`, `out_of_range_share` (numeric
    features: the share of present values outside the reference's [min, max]) and `unseen_category_share` (category
    features: the share of present values the reference never held); a share is None where it does not apply or there
    is nothing to measure. `reasons` says, per threshold of `drift.data_quality` crossed, what was found. The reference
    figures come from the reference sample frame; `statistics` (the version's statistics.json) only stands in for a
    feature the frame lacks.
    """
    absent = [name for name in spec.feature_names if name not in sample.columns]
    if absent:
        raise ValueError(f"the night's sample lacks feature columns {absent}; it has {list(sample.columns)}")
    rules = spec.drift.data_quality
    known = (statistics or {}).get("features") or {}
    features = [
        _measure(name, feature, sample[name], _reference(name, feature, reference, known.get(name)), rules)
        for name, feature in spec.features.items()
    ]
    return {
        "rows": len(sample),
        "thresholds": rules.model_dump(),
        "features": features,
        "flagged": [item["feature"] for item in features if item["flagged"]],
    }


def _reference(name: str, feature: Feature, frame: pd.DataFrame, recorded: dict[str, Any] | None) -> _Reference:
    """The reference's figures of one feature: from the frame when it has the column, else from its statistics."""
    if name in frame.columns:
        values = frame[name]
        present = values.dropna()
        missing = float(values.isna().mean()) if len(values) else None
        if feature.type in NUMERIC_TYPES:
            numbers = _numbers(present)
            if numbers.empty:
                return _Reference(missing)
            return _Reference(missing, float(numbers.min()), float(numbers.max()))
        categories = frozenset(present.astype(str)) if feature.type == "category" else None
        return _Reference(missing, categories=categories)
    return _recorded_reference(feature, recorded) if recorded else _Reference()


def _recorded_reference(feature: Feature, recorded: dict[str, Any]) -> _Reference:
    """The figures statistics.json records of a feature (see `lifecycle.train.reference_statistics`)."""
    if feature.type == "category":
        shares = {str(key): float(value) for key, value in (recorded.get("shares") or {}).items()}
        missing = sum(share for key, share in shares.items() if key in MISSING_KEYS)
        seen = frozenset(key for key, share in shares.items() if key not in MISSING_KEYS and share > 0)
        return _Reference(missing, categories=seen)
    low, high = _finite(recorded.get("min")), _finite(recorded.get("max"))
    bounded = feature.type in NUMERIC_TYPES and low is not None and high is not None
    return _Reference(_finite(recorded.get("null_share")), low if bounded else None, high if bounded else None)


def _measure(
    name: str, feature: Feature, values: pd.Series, reference: _Reference, rules: DataQuality
) -> dict[str, Any]:
    rows = len(values)
    missing_share = float(values.isna().sum()) / rows if rows else 0.0
    present = values.dropna()
    out_of_range = _out_of_range(present, reference) if feature.type in NUMERIC_TYPES else None
    unseen = _unseen(present, reference) if feature.type == "category" else None
    reasons = [
        reason
        for reason in (
            _missing_reason(name, missing_share, reference.missing_share, rules.missing_share_increase),
            _range_reason(name, out_of_range, reference, rules.out_of_range_share),
            _unseen_reason(name, unseen, rules.unseen_category_share),
        )
        if reason
    ]
    return {
        "feature": name,
        "type": feature.type,
        "missing_share": missing_share,
        "reference_missing_share": reference.missing_share,
        "out_of_range_share": out_of_range[0] if out_of_range else None,
        "unseen_category_share": unseen[0] if unseen else None,
        "flagged": bool(reasons),
        "reasons": reasons,
    }


def _out_of_range(present: pd.Series, reference: _Reference) -> tuple[float, float, float] | None:
    """The share of present values outside the reference's [min, max], with the lowest and highest value seen."""
    numbers = _numbers(present)
    if numbers.empty or reference.low is None or reference.high is None:
        return None
    outside = (numbers < reference.low) | (numbers > reference.high)
    return float(outside.mean()), float(numbers.min()), float(numbers.max())


def _unseen(present: pd.Series, reference: _Reference) -> tuple[float, list[str], int] | None:
    """The share of present values the reference never held, the most frequent of them and how many there are."""
    if present.empty or reference.categories is None:
        return None
    names = present.astype(str)
    unseen = names[~names.isin(reference.categories)]
    counts = unseen.value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return len(unseen) / len(names), [str(name) for name, _ in ranked], len(ranked)


def _missing_reason(name: str, share: float, reference: float | None, increase: float) -> str | None:
    if reference is None or not _exceeds(share - reference, increase):
        return None
    return (
        f"{name}: {share:.1%} missing vs {reference:.1%} in the reference "
        f"(more than +{increase * 100:.1f} points, {SETTING}.missing_share_increase)"
    )


def _range_reason(
    name: str, found: tuple[float, float, float] | None, reference: _Reference, limit: float
) -> str | None:
    if found is None or not _exceeds(found[0], limit) or reference.low is None or reference.high is None:
        return None
    share, lowest, highest = found
    seen = [
        text
        for text, beyond in (
            (f"as low as {_number(lowest)}", lowest < reference.low),
            (f"as high as {_number(highest)}", highest > reference.high),
        )
        if beyond
    ]
    return (
        f"{name}: {share:.1%} of values lie outside the reference's range "
        f"[{_number(reference.low)}, {_number(reference.high)}] ({'; '.join(seen)}) "
        f"(more than {limit:.1%}, {SETTING}.out_of_range_share)"
    )


def _unseen_reason(name: str, found: tuple[float, list[str], int] | None, limit: float) -> str | None:
    if found is None or not _exceeds(found[0], limit):
        return None
    share, names, count = found
    listed = ", ".join(repr(value) for value in names[:EXAMPLES])
    more = f" and {count - EXAMPLES} more" if count > EXAMPLES else ""
    return (
        f"{name}: {share:.1%} of values are categories the reference never saw ({listed}{more}) "
        f"(more than {limit:.1%}, {SETTING}.unseen_category_share)"
    )


def _exceeds(value: float, limit: float) -> bool:
    """`value` > `limit`, blind to float noise (0.15 - 0.10 is not more than 0.05)."""
    return round(value - limit, 9) > 0


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64").dropna()


def _finite(value: Any) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def _number(value: float) -> str:
    """A value as an analyst reads it: 98,000 or 0.35 or 1.2e-05."""
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if 1e-3 <= abs(value) < 1e15:
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"
