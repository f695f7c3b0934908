"""The page of one validation result: its view-model and `validation.html.j2`."""

from __future__ import annotations

import json
from typing import Any

from nightshift.pages import render
from nightshift.pages.navigation import index_link, page_link

GROUPS = (
    ("failed", "Failed checks", "blocking checks that failed the night: nothing of it was curated"),
    (
        "quarantined",
        "Quarantined rows (within the limit)",
        "blocking row-level checks whose failing rows were quarantined; the night passed, the other rows were curated",
    ),
    ("warned", "Warnings", "checks that only warn: their rows were kept"),
    ("passed", "Passed checks", ""),
)


def validation_page(result: dict[str, Any]) -> str:
    """A self-contained HTML page summarising one validation result dict.

    With `model` and `dt` in the result the page is dated, links back to the model's drift index and, when rows were
    quarantined, to the night's `rejected.csv` (relative to the page's place, `validation/<model>/dt=<dt>/`).
    """
    share, limit = result.get("bad_row_share"), result.get("max_bad_row_share")
    model, day = result.get("model"), result.get("dt")
    passed = bool(result.get("passed"))
    page_key = f"validation/{model}/dt={day}/result.html"
    rows = [_check_row(check, passed) for check in result.get("checks", [])]
    return render(
        "validation.html.j2",
        title=f"Validation of {model or ''}" + (f" on {day}" if day else ""),
        dt=day,
        passed=passed,
        source=result.get("source"),
        message=result.get("failure_message"),
        back=index_link(page_key, model) if model else None,
        rejected=page_link(
            page_key,
            f"quarantine/{model}/dt={day}/rejected.csv",
            f"rejected rows ({result.get('quarantined_rows')}, with their reasons, CSV)",
        )
        if model and day and result.get("quarantined_rows")
        else None,
        summary=[
            ("Rows", result.get("rows")),
            ("Accepted", result.get("accepted_rows")),
            ("Quarantined", result.get("quarantined_rows")),
            ("Bad-row share", _percent(share)),
            ("Limit", _percent(limit)),
        ],
        groups=[
            {"name": name, "title": title, "note": note, "checks": [row for row in rows if row["group"] == name]}
            for name, title, note in GROUPS
        ],
        gx_version=result.get("gx_version"),
    )


def _group(check: dict[str, Any], night_passed: bool) -> str:
    if check.get("success"):
        return "passed"
    if check.get("severity") != "block":
        return "warned"
    return "quarantined" if night_passed else "failed"


def _check_row(check: dict[str, Any], night_passed: bool) -> dict[str, Any]:
    """One row of a checks table: failed blocking checks red, quarantined rows and warnings amber."""
    group = _group(check, night_passed)
    examples = [
        {"row": example.get("row"), "value": json.dumps(example.get("value"), ensure_ascii=False)}
        for example in check.get("examples", [])
    ]
    detail = check.get("error") or check.get("problem")
    return {
        "group": group,
        "check": check.get("check"),
        "expectation": check.get("expectation") or "type coercion",
        "column": check.get("column") or "",
        "severity": check.get("severity"),
        "css": {"passed": "ok", "failed": "bad"}.get(group, "warn"),
        "outcome": {"passed": "passed", "failed": "failed", "quarantined": "rows quarantined"}.get(group, "warned"),
        "unexpected": check.get("unexpected_count"),
        "examples": examples,
        "detail": detail or None,
        "observed": not detail and not examples and "observed_value" in check,
        "observed_value": check.get("observed_value"),
    }


def _percent(value: Any) -> Any:
    return f"{value:.2%}" if isinstance(value, int | float) else value
