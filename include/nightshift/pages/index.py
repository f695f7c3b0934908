"""The drift index of one model: its view-model and `index.html.j2`."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from nightshift.pages import render
from nightshift.pages.navigation import drift_index_key as index_key
from nightshift.pages.trends import direction, trend_charts

Href = Callable[[str], str]
"""Maps a store key to the address a page links it by: relative to the page, or a presigned URL."""


def relative_href(page_key: str) -> Href:
    """Links relative to the page stored at `page_key` (what the index in the store uses)."""
    folder = posixpath.dirname(page_key)
    return lambda key: posixpath.relpath(key, folder)


class Links:
    """The index's links: targets relative to the index's folder (as summaries hold them) turned into hrefs."""

    def __init__(self, model: str, href: Href | None = None) -> None:
        self.folder = posixpath.dirname(index_key(model))
        self.href = href or relative_href(index_key(model))

    def __call__(self, target: Any) -> str | None:
        """`target` as a link address: a relative one through `href`, http(s) as it is, None for anything else."""
        if not target:
            return None
        text = str(target)
        scheme = urlsplit(text).scheme
        if scheme in ("http", "https"):
            return text
        if scheme:
            return None
        return self.href(posixpath.normpath(posixpath.join(self.folder, text)))


def index_page(
    model: str,
    nights: list[dict[str, Any]],
    unscored: list[dict[str, Any]],
    href: Href | None = None,
    notice: str | None = None,
) -> str:
    """The index of `nights` in the order given; each holds a `summary`, `flagged` and its `first` scored measurement.

    `first_report` is the first measurement's report relative to the index; `unscored` lists the nights without
    predictions (date, reason, command, when) oldest first. `flagged` counts drifted nights only (what the drift rule
    of the retrain decision counts); nights with a data-quality flag are counted apart, as `quality_flagged`, since a
    data problem wants fixing at its source, not a model trained on it. `href` maps each linked store key to its
    address (default: relative to the index, as stored; a shared copy passes presigned URLs); `notice` heads the
    page (a shared copy says until when its links work).
    """
    links = Links(model, href)
    tasks = [night["summary"].get("task") for night in nights if night["summary"].get("task")]
    rows = [_row(links, **night) for night in nights]
    return render(
        "index.html.j2",
        title=f"Drift history: {model}",
        notice=notice,
        task=tasks[-1] if tasks else None,
        nights=len(nights),
        flagged=sum(1 for night in nights if night["flagged"]),
        quality_flagged=sum(1 for night in nights if _quality(night["summary"])),
        unscored=_unscored_note(unscored),
        rows=rows,
        versions=sorted({row["version"] for row in rows if row["scored"]}, key=_version_order),
        charts=trend_charts([night["summary"] for night in nights]),
    )


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


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
    links: Links, summary: dict[str, Any], flagged: bool, first: dict[str, Any] | None, first_report: str | None
) -> dict[str, Any]:
    """One night's row: date with its marks, version, drift share, features, prediction drift, data quality and
    report links (the night's report, its validation page and JSON, its rejected rows)."""
    critical = set(summary.get("critical_drifted") or [])
    drifted = summary.get("drifted_features") or []
    share = summary.get("drift_share")
    total = len(summary.get("features") or [])
    late = summary.get("scored_late")
    validation = summary.get("validation") or {}
    targets = (
        (summary.get("report_html"), "HTML", "the night's drift report"),
        (summary.get("report_json"), "JSON", "Evidently's JSON of the report"),
        (validation.get("page"), "validation", "the night's validation result page"),
        (validation.get("json"), "validation JSON", "the validation result as JSON"),
        (validation.get("rejected"), "rejected rows", "the rows quarantined, with their reasons (CSV)"),
    )
    hrefs = [{"href": links(target), "label": label, "title": title} for target, label, title in targets]
    return {
        "flagged": flagged,
        "dt": summary.get("dt"),
        "late": f"{late.get('reason')} in run {late.get('unscored_by')}; scored by run {late.get('scored_by')}"
        if late
        else None,
        "remeasured": _remeasured(links, summary.get("measurements") or [], first, first_report),
        "scored": not summary.get("skipped"),
        "version": summary.get("model_version") or "—",
        "share": f"{share:.0%} ({len(drifted)}/{total})" if isinstance(share, int | float) else "—",
        "dataset_drift": bool(summary.get("dataset_drift")),
        "unscored": summary.get("unscored") or None,
        "skipped": summary.get("skipped") or None,
        "features": [{"name": name, "critical": name in critical} for name in drifted],
        "prediction": _prediction(summary.get("prediction")),
        "quality": _quality(summary),
        "performance": _performance(links, summary.get("performance")),
        "holdout": _holdout(summary.get("champion_holdout")),
        "links": [link for link in hrefs if link["href"]],
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


def _performance(links: Links, performance: dict[str, Any] | None) -> dict[str, Any] | None:
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
        "href": links(performance.get("page")),
    }


def _holdout(holdout: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The scoring champion's metrics on its own training holdout, the gate's metric first."""
    if not holdout:
        return []
    gate = holdout.get("gate_metric")
    metrics = holdout.get("metrics") or {}
    names = sorted(metrics, key=lambda name: (name != gate, name))
    return [{"name": name, "value": f"{float(metrics[name]):.3f}", "gate": name == gate} for name in names]


def _prediction(prediction: dict[str, Any] | None) -> dict[str, Any] | None:
    """The prediction drift verdict with its score, and what the method's score means."""
    if not prediction:
        return None
    score = prediction.get("score")
    score_text = f" ({prediction.get('method')} {score:.3f})" if isinstance(score, int | float) else ""
    return {
        "text": ("yes" if prediction.get("drifted") else "no") + score_text,
        "drifted": bool(prediction.get("drifted")),
        "direction": direction(prediction.get("method")),
    }


def _remeasured(
    links: Links, measurements: list[dict[str, Any]], first: dict[str, Any] | None, first_report: str | None
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
    return {"now": now, "earlier": earlier, "runs": runs, "href": links(first_report)}
