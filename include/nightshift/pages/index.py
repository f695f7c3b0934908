"""The drift index of one model: its view-model and `index.html.j2`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from nightshift.pages import render


def index_page(model: str, nights: list[dict[str, Any]], unscored: list[dict[str, Any]]) -> str:
    """The index of `nights` in the order given; each holds a `summary`, `flagged` and its `first` scored measurement.

    `first_report` is the first measurement's report relative to the index; `unscored` lists the nights without
    predictions (date, reason, command, when) oldest first. `flagged` counts drifted nights only (what the drift rule
    of the retrain decision counts); nights with a data-quality flag are counted apart, as `quality_flagged`, since a
    data problem wants fixing at its source, not a model trained on it.
    """
    tasks = [night["summary"].get("task") for night in nights if night["summary"].get("task")]
    return render(
        "index.html.j2",
        title=f"Drift history: {model}",
        task=tasks[-1] if tasks else None,
        nights=len(nights),
        flagged=sum(1 for night in nights if night["flagged"]),
        quality_flagged=sum(1 for night in nights if _quality(night["summary"])),
        unscored=_unscored_note(unscored),
        rows=[_row(**night) for night in nights],
    )


def _unscored_note(unscored: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The banner naming the nights without predictions, why, and the commands that score them (None when none)."""
    if not unscored:
        return None
    return {
        "count": len(unscored),
        "dates": ", ".join(str(night["dt"]) for night in unscored),
        "reasons": "; ".join(sorted({str(night["reason"]) for night in unscored})),
        "commands": sorted({str(night["command"]) for night in unscored}),
        "when": unscored[0].get("when"),
    }


def _row(
    summary: dict[str, Any], flagged: bool, first: dict[str, Any] | None, first_report: str | None
) -> dict[str, Any]:
    """One night's row: date with its marks, version, drift share, features, prediction drift, data quality and
    report links."""
    critical = set(summary.get("critical_drifted") or [])
    drifted = summary.get("drifted_features") or []
    share = summary.get("drift_share")
    total = len(summary.get("features") or [])
    late = summary.get("scored_late")
    links = [
        {"href": href, "label": label}
        for href, label in ((_href(summary.get("report_html")), "HTML"), (_href(summary.get("report_json")), "JSON"))
        if href
    ]
    return {
        "flagged": flagged,
        "dt": summary.get("dt"),
        "late": f"{late.get('reason')} in run {late.get('unscored_by')}; scored by run {late.get('scored_by')}"
        if late
        else None,
        "remeasured": _remeasured(summary.get("measurements") or [], first, first_report),
        "scored": not summary.get("skipped"),
        "version": summary.get("model_version") or "—",
        "share": f"{share:.0%} ({len(drifted)}/{total})" if isinstance(share, int | float) else "—",
        "dataset_drift": bool(summary.get("dataset_drift")),
        "unscored": summary.get("unscored") or None,
        "skipped": summary.get("skipped") or None,
        "features": [{"name": name, "critical": name in critical} for name in drifted],
        "prediction": _prediction(summary.get("prediction")),
        "quality": _quality(summary),
        "performance": _performance(summary.get("performance")),
        "holdout": _holdout(summary.get("champion_holdout")),
        "links": links,
    }


def _quality(summary: dict[str, Any]) -> list[dict[str, str]] | None:
    """The night's flagged data-quality features, each with its reasons; None when the night has no such measure
    (not scored, or measured before nightshift measured data quality)."""
    quality = summary.get("data_quality")
    if not quality:
        return None
    return [
        {"name": str(item.get("feature")), "reasons": "\n".join(str(reason) for reason in item.get("reasons") or [])}
        for item in quality.get("features") or []
        if item.get("flagged")
    ]


def _performance(performance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The champion's rule metric on the night: estimated with its band, realized with its coverage, the verdict and
    the link to the night's performance page; None before the night was measured."""
    if not performance:
        return None

    def number(value: Any) -> str | None:
        return f"{value:.3f}" if isinstance(value, int | float) else None

    lower, upper = number(performance.get("estimated_lower")), number(performance.get("estimated_upper"))
    coverage = performance.get("coverage")
    return {
        "metric": performance.get("metric"),
        "estimated": number(performance.get("estimated")),
        "band": f"{lower}–{upper}" if lower and upper else None,
        "realized": number(performance.get("realized")),
        "coverage": f"{coverage:.0%}" if isinstance(coverage, int | float) else None,
        "basis": performance.get("basis"),
        "degraded": bool(performance.get("degraded")),
        "concept_drift": bool(performance.get("concept_drift")),
        "href": _href(performance.get("page")),
    }


def _holdout(holdout: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The scoring champion's metrics on its own training holdout, the gate's metric first."""
    if not holdout:
        return []
    gate = holdout.get("gate_metric")
    metrics = holdout.get("metrics") or {}
    names = sorted(metrics, key=lambda name: (name != gate, name))
    return [{"name": name, "value": f"{float(metrics[name]):.3f}", "gate": name == gate} for name in names]


def _prediction(prediction: dict[str, Any] | None) -> str | None:
    if not prediction:
        return None
    score = prediction.get("score")
    score_text = f" ({prediction.get('method')} {score:.3f})" if isinstance(score, int | float) else ""
    return ("yes" if prediction.get("drifted") else "no") + score_text


def _remeasured(
    measurements: list[dict[str, Any]], first: dict[str, Any] | None, first_report: str | None
) -> dict[str, Any] | None:
    """The date cell's mark of a night measured more than once, linked to the first measurement's report."""
    if len(measurements) < 2:
        return None
    last = measurements[-1]
    when = str(last.get("measured_at") or "")[:10]
    version = f"v{last.get('model_version')}"
    if not last.get("scored"):
        now, earlier = f"re-run {when}: not scored", "first measured against " if first else "still not scored"
    elif first is None:
        now, earlier = f"measured {when} against {version}", "not scored before"
    elif first.get("model_version") == last.get("model_version"):
        now, earlier = f"re-measured {when} ({version} again)", "first measured "
    else:
        now, earlier = f"re-measured {when} against {version}", "first measured against "
    if first is not None:
        same = first.get("model_version") == last.get("model_version") and last.get("scored")
        earlier += str(first.get("measured_at") or "")[:10] if same else f"v{first.get('model_version')}"
    runs = "; ".join(
        f"{entry.get('measured_at')} run {entry.get('run_id')}: "
        + (f"v{entry.get('model_version')}" if entry.get("scored") else "not scored")
        for entry in measurements
    )
    return {"now": now, "earlier": earlier, "runs": runs, "href": _href(first_report)}


def _href(target: Any) -> str | None:
    """`target` as a link address when it is relative or http(s); None otherwise (no `javascript:` and the like)."""
    if not target:
        return None
    text = str(target)
    return text if urlsplit(text).scheme in ("", "http", "https") else None
