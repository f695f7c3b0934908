"""Pages from templates: autoescape, one stylesheet on every page, undefined variables fail, templates ship."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import jinja2
import pytest

from nightshift import pages
from nightshift.config import PROJECT_ROOT
from nightshift.pages.report import empty_report, with_header
from nightshift.pages.validation import validation_page
from nightshift.stages.drift.measure import render_index

SCRIPT = "<script>alert(1)</script>"
FEATURE = "rate & \"term\" 'months'"
FEATURE_ESCAPED = "rate &amp; &quot;term&quot; &#x27;months&#x27;"
TEMPLATES = Path(pages.__file__).parent / "templates"


def validation_result(**overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "model": "credit_risk",
        "source": "landing/credit_risk/dt=2026-10-05/part-0.csv",
        "passed": False,
        "failure_message": None,
        "rows": 200,
        "accepted_rows": 199,
        "quarantined_rows": 1,
        "bad_row_share": 0.005,
        "max_bad_row_share": 0.05,
        "gx_version": "1.24.1",
        "checks": [
            {
                "check": f"categories:{FEATURE}",
                "expectation": "ExpectColumnValuesToBeInSet",
                "column": FEATURE,
                "severity": "block",
                "success": False,
                "unexpected_count": 1,
                "examples": [{"row": 3, "value": SCRIPT}],
            }
        ],
    }
    result.update(overrides)
    return result


def index_night(**overrides: Any) -> dict[str, Any]:
    night: dict[str, Any] = {
        "model": "credit_risk",
        "dt": "2026-10-05",
        "model_version": "3",
        "features": [{"feature": FEATURE}, {"feature": "age"}],
        "prediction": None,
        "drifted_features": [FEATURE, SCRIPT],
        "drift_share": 1.0,
        "dataset_drift": True,
        "critical_drifted": [FEATURE],
        "report_html": "dt=2026-10-05/report.html",
        "report_json": "dt=2026-10-05/report.json",
    }
    night.update(overrides)
    return night


def drift_summary(**overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "model": "credit_risk",
        "dt": "2026-10-05",
        "model_version": "3",
        "reference_rows": 5000,
        "current_rows": 1200,
        "sample": {"size": 5000, "seed": 7, "reference_sampled": 5000, "current_sampled": 1200},
        "drifted_features": [FEATURE, SCRIPT],
        "dataset_drift": True,
    }
    summary.update(overrides)
    return summary


EVIDENTLY_PAGE = "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><div id='root'></div></body></html>"


def all_pages() -> dict[str, str]:
    return {
        "validation": validation_page(validation_result()),
        "index": render_index([index_night()], "credit_risk"),
        "report": with_header(EVIDENTLY_PAGE, drift_summary()),
        "empty report": empty_report(drift_summary()),
    }


def test_hostile_values_are_escaped_on_the_validation_page() -> None:
    page = validation_page(validation_result(source=f"<b>{FEATURE}</b>.csv", failure_message=SCRIPT))
    assert SCRIPT not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"<td>{FEATURE_ESCAPED}</td>" in page
    assert f"<code>categories:{FEATURE_ESCAPED}</code>" in page
    assert "row 3: <code>&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;</code>" in page


def test_hostile_values_are_escaped_on_the_index() -> None:
    page = render_index([index_night()], f"<b>{FEATURE}</b>")
    assert SCRIPT not in page and "<b>" not in page
    assert f"<title>Drift history: &lt;b&gt;{FEATURE_ESCAPED}&lt;/b&gt;</title>" in page
    assert f'<span class="critical" title="critical feature">{FEATURE_ESCAPED}</span>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_hostile_values_are_escaped_in_the_drift_report_header() -> None:
    for page in (with_header(EVIDENTLY_PAGE, drift_summary(model=SCRIPT)), empty_report(drift_summary(model=SCRIPT))):
        assert SCRIPT not in page
        assert "<title>Drift report: &lt;script&gt;alert(1)&lt;/script&gt; 2026-10-05</title>" in page
        assert f"drifted features: {FEATURE_ESCAPED}, &lt;script&gt;" in page


def test_hostile_values_are_escaped_in_the_data_quality_table_and_column() -> None:
    quality = {
        "rows": 10,
        "thresholds": {"missing_share_increase": 0.05, "out_of_range_share": 0.01, "unseen_category_share": 0.01},
        "flagged": [SCRIPT],
        "features": [
            {
                "feature": SCRIPT,
                "missing_share": 0.5,
                "reference_missing_share": 0.0,
                "out_of_range_share": None,
                "unseen_category_share": 0.5,
                "flagged": True,
                "reasons": [f"{SCRIPT}: 50.0% are categories the reference never saw ('\"><img src=x>')"],
            }
        ],
    }
    report = with_header(EVIDENTLY_PAGE, drift_summary(data_quality=quality))
    index = render_index([index_night(data_quality=quality)], "credit_risk")
    for page in (report, index):
        assert SCRIPT not in page and "<img" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;: 50.0% are categories" in page
    assert 'title="&lt;script&gt;alert(1)&lt;/script&gt;: 50.0% are categories' in index


def test_every_page_embeds_the_one_stylesheet_once() -> None:
    css = pages.stylesheet()
    assert css.strip() and "#nightshift-banner" in css
    for name, page in all_pages().items():
        assert page.count(css) == 1, name
        assert page.count("<style>") == 1, name


def test_the_stylesheet_leaves_evidentlys_own_page_alone() -> None:
    """Every rule is scoped to nightshift's pages (`.nightshift`) or its banner, so Evidently's layout keeps its look."""
    rules = [rule.split("{")[0] for rule in pages.stylesheet().replace("\n", "").split("}") if rule.strip()]
    for selectors in rules:
        for selector in selectors.split(","):
            assert selector.strip().startswith((".nightshift", "body.nightshift", "#nightshift-banner")), selector


def test_the_header_goes_into_evidentlys_head_and_body() -> None:
    page = with_header(EVIDENTLY_PAGE, drift_summary())
    assert page.startswith("<!DOCTYPE html><html><head><title>Drift report: credit_risk 2026-10-05</title><style>")
    assert '<body><div id="nightshift-banner"><a class="back" href="../index.html"' in page
    assert "</a> credit_risk · 2026-10-05 · model version 3 · reference 5,000 rows" in page
    assert page.endswith("<div id='root'></div></body></html>")


def test_the_empty_report_is_a_nightshift_page_with_the_banner() -> None:
    page = empty_report(drift_summary(drifted_features=[], dataset_drift=False, model_version=None))
    assert page.startswith("<!DOCTYPE html>")
    assert '<body class="nightshift">' in page
    assert (
        "model version — ·" in page
        and 'drifted features: none · <span class="drift-no">dataset drift: no</span>' in page
    )
    assert "No column had values on both sides, so nothing was compared." in page


@pytest.mark.parametrize("template", ["validation.html.j2", "index.html.j2", "report_banner.html.j2"])
def test_a_missing_template_variable_fails_loudly(template: str) -> None:
    with pytest.raises(jinja2.UndefinedError):
        pages.render(template, title="only a title")


def test_a_missing_attribute_fails_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError, match="when"):
        pages.render(
            "index.html.j2",
            title="t",
            notice=None,
            task=None,
            nights=1,
            flagged=0,
            quality_flagged=0,
            rows=[],
            versions=[],
            charts=[],
            unscored={"count": 1, "dates": "2026-10-01", "reasons": "r", "commands": ["c"]},
        )


def test_values_are_escaped_and_markup_from_templates_is_not() -> None:
    banner = pages.render(
        "report_banner.html.j2", banner=SCRIPT, quality=None, back=None, dataset_drift=False, directions=[]
    )
    assert banner == (
        '<div id="nightshift-banner">&lt;script&gt;alert(1)&lt;/script&gt; · '
        '<span class="drift-no">dataset drift: no</span></div>\n'
    )


def test_importing_the_pages_package_does_not_import_jinja2() -> None:
    code = "import sys, nightshift.pages; print('jinja2' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_templates_ship_with_the_package() -> None:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["nightshift.pages"]
    files = sorted(path.relative_to(TEMPLATES.parent).as_posix() for path in TEMPLATES.iterdir())
    assert files and "templates/style.css" in files and "templates/base.html.j2" in files
    for name in files:
        assert any(fnmatch(name, pattern) for pattern in patterns), f"{name} is not in pyproject's package-data"
