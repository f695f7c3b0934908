"""The nightshift header of a drift report: a title and a banner added to Evidently's page, or a page of its own."""

from __future__ import annotations

from typing import Any

from nightshift.pages import render


def with_header(page: str, summary: dict[str, Any]) -> str:
    """Give Evidently's page a title, the stylesheet and a one-line banner naming the model, night and sample."""
    context = _header(summary)
    page = page.replace("<head>", "<head>" + render("report_head.html.j2", **context).strip(), 1)
    return page.replace("<body>", "<body>" + render("report_banner.html.j2", **context).strip(), 1)


def empty_report(summary: dict[str, Any]) -> str:
    """The report of a night where no column had values on both sides."""
    return render("report_empty.html.j2", **_header(summary))


def _header(summary: dict[str, Any]) -> dict[str, str]:
    sample = summary["sample"]
    drifted = ", ".join(summary["drifted_features"]) or "none"
    banner = (
        f"{summary['model']} · {summary['dt']} · model version {summary['model_version'] or '—'} · "
        f"reference {summary['reference_rows']:,} rows (sampled {sample['reference_sampled']:,}), "
        f"current {summary['current_rows']:,} rows (sampled {sample['current_sampled']:,}), seed {sample['seed']} · "
        f"drifted features: {drifted} · dataset drift: {'yes' if summary['dataset_drift'] else 'no'}"
    )
    return {"title": f"Drift report: {summary['model']} {summary['dt']}", "banner": banner}
