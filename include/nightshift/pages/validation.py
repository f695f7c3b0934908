"""The page of one validation result: its view-model and `validation.html.j2`."""

from __future__ import annotations

import json
from typing import Any

from nightshift.pages import render


def validation_page(result: dict[str, Any]) -> str:
    """A self-contained HTML page summarising one validation result dict."""
    share, limit = result.get("bad_row_share"), result.get("max_bad_row_share")
    checks = sorted(
        result.get("checks", []), key=lambda check: (bool(check.get("success")), check.get("severity") != "block")
    )
    return render(
        "validation.html.j2",
        title=f"Validation of {result.get('model', '')}",
        passed=bool(result.get("passed")),
        source=result.get("source"),
        message=result.get("failure_message"),
        summary=[
            ("Rows", result.get("rows")),
            ("Accepted", result.get("accepted_rows")),
            ("Quarantined", result.get("quarantined_rows")),
            ("Bad-row share", _percent(share)),
            ("Limit", _percent(limit)),
        ],
        checks=[_check_row(check) for check in checks],
        gx_version=result.get("gx_version"),
    )


def _check_row(check: dict[str, Any]) -> dict[str, Any]:
    """One row of the checks table: failed blocking checks red, failed warnings amber."""
    success = bool(check.get("success"))
    severity = check.get("severity")
    examples = [
        {"row": example.get("row"), "value": json.dumps(example.get("value"), ensure_ascii=False)}
        for example in check.get("examples", [])
    ]
    detail = check.get("error") or check.get("problem")
    return {
        "check": check.get("check"),
        "expectation": check.get("expectation") or "type coercion",
        "column": check.get("column") or "",
        "severity": severity,
        "css": "ok" if success else ("bad" if severity == "block" else "warn"),
        "outcome": "passed" if success else "failed",
        "unexpected": check.get("unexpected_count"),
        "examples": examples,
        "detail": detail or None,
        "observed": not detail and not examples and "observed_value" in check,
        "observed_value": check.get("observed_value"),
    }


def _percent(value: Any) -> Any:
    return f"{value:.2%}" if isinstance(value, int | float) else value
