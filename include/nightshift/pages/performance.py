"""The performance page of one scored night: its view-model and `performance.html.j2`."""

from __future__ import annotations

from typing import Any

from nightshift.pages import render
from nightshift.pages.navigation import index_link
from nightshift.task_rules import LOWER_IS_BETTER


def performance_page(document: dict[str, Any]) -> str:
    """A self-contained page of a night's performance.json: per alias, each metric estimated (with its band),
    realized (with the label coverage), the estimate's error, the holdout figure, and the slices."""
    metric = document.get("metric")
    model, day = document.get("model"), document.get("dt")
    return render(
        "performance.html.j2",
        title=f"Performance of {document.get('model', '')} on {document.get('dt', '')}",
        dt=day,
        back=index_link(f"reports/performance/{model}/dt={day}/performance.html", model) if model else None,
        metric=metric,
        direction="lower is better" if metric in LOWER_IS_BETTER else "higher is better",
        labels_through=document.get("labels_through"),
        delay=document.get("label_delay_days"),
        aliases=[_alias(name, section) for name, section in sorted((document.get("aliases") or {}).items())],
    )


def _alias(name: str, section: dict[str, Any]) -> dict[str, Any]:
    realized = section.get("realized") or {}
    estimated = section.get("estimated") or {}
    reference = section.get("reference") or {}
    names = list(dict.fromkeys([*realized, *estimated]))
    judgement = section.get("judgement") or {}
    slices = section.get("slices") or {}
    return {
        "name": name,
        "version": section.get("model_version"),
        "rows": section.get("rows"),
        "labelled": section.get("labelled_rows"),
        "coverage": _percent(section.get("coverage")),
        "estimable": bool(estimated),
        "judgement": judgement,
        "metrics": [
            _metric_row(metric, realized.get(metric), estimated.get(metric), reference.get(metric)) for metric in names
        ],
        "slice_metrics": sorted({metric for entry in slices.values() for metric in entry.get("metrics") or {}}),
        "slices": [
            {
                "name": key,
                "rows": entry.get("rows"),
                "labelled": entry.get("labelled_rows"),
                "values": entry.get("metrics") or {},
            }
            for key, entry in sorted(slices.items())
        ],
    }


def _metric_row(
    metric: str, realized: float | None, estimated: dict[str, Any] | None, reference: float | None
) -> dict[str, Any]:
    """One metric: the estimate and its band, the realized figure, the estimate's error and whether the band held it."""
    guess = (estimated or {}).get("value")
    lower, upper = (estimated or {}).get("lower"), (estimated or {}).get("upper")
    error = None if guess is None or realized is None else realized - guess
    within = None if realized is None or lower is None or upper is None else lower <= realized <= upper
    return {
        "name": metric,
        "estimated": _number(guess),
        "band": f"{lower:.3f} – {upper:.3f}" if lower is not None and upper is not None else None,
        "realized": _number(realized),
        "error": None if error is None else f"{error:+.3f}",
        "within": within,
        "reference": _number(reference),
    }


def _number(value: Any) -> str | None:
    return f"{value:.3f}" if isinstance(value, int | float) else None


def _percent(value: Any) -> str | None:
    return f"{value:.0%}" if isinstance(value, int | float) else None
