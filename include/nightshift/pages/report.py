"""The nightshift header of a drift report: a title and a banner added to Evidently's page, or a page of its own."""

from __future__ import annotations

from typing import Any

from nightshift.pages import render
from nightshift.pages.navigation import index_link
from nightshift.pages.trends import direction


def with_header(page: str, summary: dict[str, Any]) -> str:
    """Give Evidently's page a title, the stylesheet and a banner naming the model, night and sample, with the night's
    data-quality table when the summary has one."""
    context = _header(summary)
    page = page.replace("<head>", "<head>" + render("report_head.html.j2", **context).strip(), 1)
    return page.replace("<body>", "<body>" + render("report_banner.html.j2", **context).strip(), 1)


def empty_report(summary: dict[str, Any]) -> str:
    """The report of a night where no column had values on both sides."""
    return render("report_empty.html.j2", **_header(summary))


def _header(summary: dict[str, Any]) -> dict[str, Any]:
    sample = summary["sample"]
    drifted = ", ".join(summary["drifted_features"]) or "none"
    banner = (
        f"{summary['model']} · {summary['dt']} · model version {summary['model_version'] or '—'} · "
        f"reference {summary['reference_rows']:,} rows (sampled {sample['reference_sampled']:,}), "
        f"current {summary['current_rows']:,} rows (sampled {sample['current_sampled']:,}), seed {sample['seed']} · "
        f"drifted features: {drifted}"
    )
    methods = sorted({str(item.get("method")) for item in summary.get("features") or [] if item.get("method")})
    prediction = summary.get("prediction") or {}
    if prediction.get("method"):
        methods = sorted({*methods, str(prediction["method"])})
    return {
        "title": f"Drift report: {summary['model']} {summary['dt']}",
        "banner": banner,
        "dataset_drift": bool(summary["dataset_drift"]),
        "back": index_link(f"reports/drift/{summary['model']}/dt={summary['dt']}/report.html", summary["model"]),
        "directions": [direction(method) for method in methods],
        "quality": _quality(summary.get("data_quality")),
    }


def _quality(quality: dict[str, Any] | None) -> dict[str, Any] | None:
    """The banner's data-quality table: one row per feature, shares as percentages, the thresholds in words."""
    if not quality:
        return None
    flagged = [str(name) for name in quality.get("flagged") or []]
    limits = quality.get("thresholds") or {}
    return {
        "rows": f"{int(quality.get('rows') or 0):,}",
        "flagged": ", ".join(flagged),
        "count": len(flagged),
        "thresholds": (
            f"A feature is flagged when its missing share rises more than "
            f"{_points(limits.get('missing_share_increase'))} above the reference's, when more than "
            f"{_percent(limits.get('out_of_range_share'))} of its values lie outside the reference's range, or when "
            f"more than {_percent(limits.get('unseen_category_share'))} of its values are categories the reference "
            "never saw (drift.data_quality in the model's spec)."
        ),
        "features": [
            {
                "name": item.get("feature"),
                "missing": _percent(item.get("missing_share")),
                "reference_missing": _percent(item.get("reference_missing_share")),
                "out_of_range": _percent(item.get("out_of_range_share")),
                "unseen": _percent(item.get("unseen_category_share")),
                "flagged": bool(item.get("flagged")),
                "reasons": [str(reason) for reason in item.get("reasons") or []],
            }
            for item in quality.get("features") or []
        ],
    }


def _percent(share: Any) -> str:
    return f"{share:.1%}" if isinstance(share, int | float) else "—"


def _points(share: Any) -> str:
    return f"{share * 100:.1f} points" if isinstance(share, int | float) else "—"
