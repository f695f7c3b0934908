"""The index's trend plots: per-feature drift score against its threshold, prediction drift and performance over
nights, as coordinates for the inline SVG of `trends.html.j2` (no JavaScript, nothing fetched)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

P_VALUE_METHODS = frozenset({"ks", "chisquare"})
"""Drift methods whose score is a p-value: lower means drift, a score below the threshold is flagged."""

PALETTE = ("#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#1b7c83", "#6e7781", "#fb8f44")
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 36


def is_p_value(method: Any) -> bool:
    return str(method) in P_VALUE_METHODS


def direction(method: Any) -> str:
    """What a score of `method` means, in words shown beside every score."""
    if is_p_value(method):
        return f"{method}: the score is a p-value, lower means drift; below the threshold is flagged"
    return f"{method}: the score is a distance, higher means drift; at or above the threshold is flagged"


@dataclass
class _Axes:
    """Maps dates and values to the plot's pixels: dates spaced by day, values from `low` to `high`."""

    first: dt.date
    last: dt.date
    low: float
    high: float
    ticks: list[dict[str, Any]] = field(default_factory=list)

    def x(self, day: str) -> float:
        span = max((self.last - self.first).days, 1)
        offset = (dt.date.fromisoformat(day) - self.first).days
        inner = WIDTH - LEFT - RIGHT
        return round(LEFT + (inner * offset / span if self.last > self.first else inner / 2), 1)

    def y(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - self.low) / span), 1)


def trend_charts(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The charts for the nights given (any order): one per drift method of the features, prediction drift,
    performance; a chart with no measured point is left out."""
    nights = sorted(
        (s for s in summaries if not s.get("skipped") and _is_date(s.get("dt"))), key=lambda s: str(s["dt"])
    )
    if not nights:
        return []
    days = [str(night["dt"]) for night in nights]
    charts = [*_feature_charts(nights, days), _prediction_chart(nights, days), _performance_chart(nights, days)]
    return [chart for chart in charts if chart is not None]


def _is_date(value: Any) -> bool:
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _feature_charts(nights: list[dict[str, Any]], days: list[str]) -> list[dict[str, Any]]:
    """One chart per drift method: a series per feature of that method, its threshold(s) as dashed lines."""
    by_method: dict[str, dict[str, list[tuple[str, float, bool]]]] = {}
    thresholds: dict[str, set[float]] = {}
    for night in nights:
        for item in night.get("features") or []:
            if not isinstance(item.get("score"), int | float):
                continue
            method = str(item.get("method"))
            by_method.setdefault(method, {}).setdefault(str(item.get("feature")), []).append(
                (str(night["dt"]), float(item["score"]), bool(item.get("drifted")))
            )
            if isinstance(item.get("threshold"), int | float):
                thresholds.setdefault(method, set()).add(float(item["threshold"]))
    return [
        _chart(
            f"drift-{method}",
            f"Feature drift ({method})",
            direction(method),
            days,
            series,
            sorted(thresholds.get(method, set())),
            p_value=is_p_value(method),
        )
        for method, series in sorted(by_method.items())
    ]


def _prediction_chart(nights: list[dict[str, Any]], days: list[str]) -> dict[str, Any] | None:
    points = []
    limits: set[float] = set()
    method = None
    for night in nights:
        prediction = night.get("prediction") or {}
        if isinstance(prediction.get("score"), int | float):
            method = prediction.get("method")
            points.append((str(night["dt"]), float(prediction["score"]), bool(prediction.get("drifted"))))
            if isinstance(prediction.get("threshold"), int | float):
                limits.add(float(prediction["threshold"]))
    if not points:
        return None
    return _chart(
        "prediction",
        f"Prediction drift ({method})",
        direction(method),
        days,
        {"prediction": points},
        sorted(limits),
        p_value=is_p_value(method),
    )


def _performance_chart(nights: list[dict[str, Any]], days: list[str]) -> dict[str, Any] | None:
    """The champion's rule metric: estimated (with its 95% band), realized once labelled, and its holdout figure."""
    series: dict[str, list[tuple[str, float, bool]]] = {}
    band: list[tuple[str, float, float]] = []
    metric = None
    for night in nights:
        performance = night.get("performance") or {}
        if not performance:
            continue
        metric = performance.get("metric")
        day, degraded = str(night["dt"]), bool(performance.get("degraded"))
        for name, key in (("estimated", "estimated"), ("realized", "realized")):
            if isinstance(performance.get(key), int | float):
                series.setdefault(name, []).append((day, float(performance[key]), degraded))
        lower, upper = performance.get("estimated_lower"), performance.get("estimated_upper")
        if isinstance(lower, int | float) and isinstance(upper, int | float):
            band.append((day, float(lower), float(upper)))
        holdout = ((night.get("champion_holdout") or {}).get("metrics") or {}).get(metric)
        if isinstance(holdout, int | float):
            series.setdefault("holdout", []).append((day, float(holdout), False))
    if not series:
        return None
    from nightshift.task_rules import LOWER_IS_BETTER

    better = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    text = f"{metric} of the champion, {better}; the shaded band is the estimate's 95% band; red points: degraded"
    return _chart("performance", f"Performance ({metric})", text, days, series, [], band=band)


def _chart(
    ident: str,
    title: str,
    legend: str,
    days: list[str],
    series: dict[str, list[tuple[str, float, bool]]],
    thresholds: list[float],
    *,
    p_value: bool = False,
    band: list[tuple[str, float, float]] | None = None,
) -> dict[str, Any]:
    """A chart's coordinates: axes from the nights and values, one polyline per series, threshold lines, a band."""
    values = [value for points in series.values() for _, value, _ in points] + thresholds
    values += [bound for _, low, high in band or [] for bound in (low, high)]
    low, high = _value_range(values, p_value=p_value, from_zero=band is None)
    axes = _Axes(dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1]), low, high)
    return {
        "id": ident,
        "title": title,
        "legend": legend,
        "width": WIDTH,
        "height": HEIGHT,
        "plot": {"left": LEFT, "right": WIDTH - RIGHT, "top": TOP, "bottom": HEIGHT - BOTTOM},
        "x_ticks": _x_ticks(axes, days),
        "y_ticks": [
            {"y": axes.y(low + (high - low) * step / 4), "label": f"{low + (high - low) * step / 4:.3g}"}
            for step in range(5)
        ],
        "thresholds": [{"y": axes.y(limit), "label": f"threshold {limit:g}", "value": limit} for limit in thresholds],
        "band": [{"x": axes.x(day), "y": axes.y(high)} for day, _, high in band or []]
        + [{"x": axes.x(day), "y": axes.y(low)} for day, low, _ in reversed(band or [])],
        "series": [
            {
                "name": name,
                "color": PALETTE[number % len(PALETTE)],
                "points": [
                    {"x": axes.x(day), "y": axes.y(value), "dt": day, "value": f"{value:.4g}", "flagged": flagged}
                    for day, value, flagged in points
                ],
            }
            for number, (name, points) in enumerate(series.items())
        ],
    }


def _value_range(values: list[float], *, p_value: bool, from_zero: bool) -> tuple[float, float]:
    """A p-value's whole 0 to 1; a distance from 0 to a tenth above its largest; a metric around its values."""
    if p_value:
        return 0.0, 1.0
    if from_zero:
        return min(0.0, *values), max(values) * 1.1 or 1.0
    pad = (max(values) - min(values)) * 0.1 or 0.05
    return min(values) - pad, max(values) + pad


def _x_ticks(axes: _Axes, days: list[str], most: int = 8) -> list[dict[str, Any]]:
    """At most `most` date labels, evenly picked from the nights, the first and last always among them."""
    step = max(1, -(-len(days) // most))
    picked = days[::step]
    if picked[-1] != days[-1]:
        picked.append(days[-1])
    anchors = {picked[0]: "start", picked[-1]: "end"} if len(picked) > 1 else {}
    return [{"x": axes.x(day), "label": day, "anchor": anchors.get(day, "middle")} for day in picked]
