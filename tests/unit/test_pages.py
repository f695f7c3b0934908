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


# Trends, filter, links between pages, the validation page's groups.


def trend_night(day: str, version: str = "3", **overrides: Any) -> dict[str, Any]:
    night = index_night(
        dt=day,
        model_version=version,
        features=[
            {"feature": "amount", "method": "psi", "threshold": 0.1, "score": 0.05, "drifted": False},
            {"feature": "income", "method": "psi", "threshold": 0.2, "score": 0.25, "drifted": True},
            {"feature": "age", "method": "ks", "threshold": 0.05, "score": 0.01, "drifted": True},
        ],
        prediction={"method": "ks", "threshold": 0.05, "score": 0.5, "drifted": False},
        performance={"metric": "roc_auc", "estimated": 0.8, "estimated_lower": 0.75, "estimated_upper": 0.85},
    )
    night.update(overrides)
    return night


def svg(page: str, chart: str) -> str:
    start = page.index(f'data-chart="{chart}"')
    return page[start : page.index("</svg>", start)]


def series_points(chart: str, name: str) -> list[tuple[str, float, float]]:
    import re

    block = chart[chart.index(f'data-series="{name}"') :]
    block = block[: block.index("</g>")]
    return [
        (day, float(x), float(y))
        for day, x, y in re.findall(r'<circle data-dt="([^"]+)" data-value="[^"]+" cx="([^"]+)" cy="([^"]+)"', block)
    ]


def test_the_index_plots_one_series_per_feature_with_its_nights_and_thresholds() -> None:
    nights = [trend_night("2026-10-01"), trend_night("2026-10-03"), trend_night("2026-10-04", skipped="no champion")]
    nights[1]["features"][0]["score"] = None  # no score that night: no point
    page = render_index(nights, "credit_risk")
    psi, ks = svg(page, "drift-psi"), svg(page, "drift-ks")
    assert psi.count('<g class="series"') == 2 and ks.count('<g class="series"') == 1
    assert [day for day, _, _ in series_points(psi, "income")] == ["2026-10-01", "2026-10-03"]
    assert [day for day, _, _ in series_points(psi, "amount")] == ["2026-10-01"]
    first, last = series_points(psi, "income")
    assert first[1] < last[1] and first[2] == last[2]  # later night further right, same score same height
    assert 'data-threshold="0.1"' in psi and 'data-threshold="0.2"' in psi and 'data-threshold="0.05"' in ks
    assert "ks: the score is a p-value, lower means drift; below the threshold is flagged" in page
    assert "psi: the score is a distance, higher means drift" in page
    assert 'stroke="#cf222e" stroke-width="2"><title>income 2026-10-01: 0.25 (flagged)</title>' in psi
    assert 'data-series="prediction"' in svg(page, "prediction")
    performance = svg(page, "performance")
    assert 'data-series="estimated"' in performance and '<polygon class="band"' in performance
    assert 'data-series="holdout"' not in performance  # index_night's holdout has no roc_auc


def test_a_p_value_chart_puts_a_lower_score_lower_and_spans_zero_to_one() -> None:
    page = render_index([trend_night("2026-10-01"), trend_night("2026-10-02")], "credit_risk")
    ks = svg(page, "drift-ks")
    [(_, _, low_y), _] = series_points(ks, "age")
    assert '<text x="52" y="188.0" text-anchor="end" font-size="10" fill="#59636e">0</text>' in ks
    assert '<text x="52" y="16.0" text-anchor="end" font-size="10" fill="#59636e">1</text>' in ks
    assert low_y > 160  # 0.01 sits near the bottom


def test_no_charts_without_measured_nights() -> None:
    page = render_index([index_night(skipped="no champion")], "credit_risk")
    assert "<svg" not in page and "Trends over nights" not in page


def test_the_version_filter_needs_no_script_and_shows_every_row_by_default() -> None:
    nights = [trend_night("2026-10-01", "2"), trend_night("2026-10-02", "10"), trend_night("2026-10-03", "2")]
    page = render_index(nights, "credit_risk")
    assert '<input type="radio" name="version" id="version-all" checked>' in page
    assert '<label for="version-1">2</label>' in page and '<label for="version-2">10</label>' in page
    assert page.count('<td data-version="1">2</td>') == 2 and page.count('<td data-version="2">10</td>') == 1
    assert '.nightshift:has(#version-2:checked) #nights tbody tr:not(:has(td[data-version="2"])){display:none}' in page
    assert "<script" not in page
    one = render_index([trend_night("2026-10-01")], "credit_risk")
    assert 'id="version-filter"' not in one


def test_dataset_drift_no_is_not_red_on_a_flagged_row() -> None:
    page = render_index([index_night(dataset_drift=False, critical_drifted=["age"])], "credit_risk")
    assert '<tr class="drifted">' in page
    assert '<td class="ok">no</td>' in page and '<td class="flag">' not in page
    assert '<td class="flag">yes</td>' in render_index([index_night()], "credit_risk")


def test_index_links_go_through_the_href_function() -> None:
    night = index_night(
        validation={"page": "../../../validation/credit_risk/dt=2026-10-05/result.html", "json": None, "rejected": None}
    )
    relative = render_index([night], "credit_risk")
    assert 'href="../../../validation/credit_risk/dt=2026-10-05/result.html"' in relative
    assert 'href="dt=2026-10-05/report.html"' in relative
    signed = render_index([night], "credit_risk", href=lambda key: f"https://signed.example/{key}?sig=1")
    assert 'href="https://signed.example/validation/credit_risk/dt=2026-10-05/result.html?sig=1"' in signed
    assert 'href="https://signed.example/reports/drift/credit_risk/dt=2026-10-05/report.html?sig=1"' in signed


def test_every_page_links_back_to_the_index() -> None:
    report = with_header(EVIDENTLY_PAGE, drift_summary())
    assert '<a class="back" href="../index.html" data-revision-href="../../index.html"' in report
    validation = validation_page(validation_result(dt="2026-10-05"))
    assert (
        '<a class="back" href="../../../reports/drift/credit_risk/index.html" '
        'data-revision-href="../../../../reports/drift/credit_risk/index.html"' in validation
    )
    from nightshift.pages.performance import performance_page

    performance = performance_page({"model": "credit_risk", "dt": "2026-10-05", "metric": "roc_auc", "aliases": {}})
    assert '<a class="back" href="../../../drift/credit_risk/index.html"' in performance
    for page in (report, validation, performance):
        assert 'querySelectorAll("a[data-revision-href]")' in page


def test_the_report_banner_explains_each_methods_direction() -> None:
    summary = drift_summary(
        features=[{"feature": "age", "method": "ks"}, {"feature": "amount", "method": "psi"}],
        prediction={"method": "wasserstein"},
    )
    page = with_header(EVIDENTLY_PAGE, summary)
    assert "ks: the score is a p-value, lower means drift" in page
    assert "psi: the score is a distance, higher means drift" in page and "wasserstein: the score is a distance" in page


def test_the_validation_page_is_dated_links_its_rejected_rows_and_tells_quarantined_from_failed() -> None:
    passing = validation_page(validation_result(dt="2026-10-05", passed=True))
    assert "<title>Validation of credit_risk on 2026-10-05</title>" in passing
    assert '<time datetime="2026-10-05">2026-10-05</time>' in passing
    assert 'href="../../../quarantine/credit_risk/dt=2026-10-05/rejected.csv"' in passing
    assert "Quarantined rows (within the limit) (1)" in passing and "Failed checks" not in passing
    assert '<td class="warn">rows quarantined</td>' in passing
    failing = validation_page(validation_result(dt="2026-10-05"))
    assert "Failed checks (1)" in failing and "Quarantined rows" not in failing
    assert '<td class="bad">failed</td>' in failing
    clean = validation_page(validation_result(dt="2026-10-05", passed=True, quarantined_rows=0))
    assert "rejected.csv" not in clean


def test_checks_are_grouped_failed_quarantined_warned_passed() -> None:
    checks = [
        {"check": "ok", "severity": "block", "success": True},
        {"check": "soft", "severity": "warn", "success": False},
        {"check": "hard", "severity": "block", "success": False},
    ]
    page = validation_page(validation_result(dt="2026-10-05", checks=checks))
    order = [page.index(text) for text in ("Failed checks (1)", "Warnings (1)", "Passed checks (1)")]
    assert order == sorted(order)
    assert "No checks ran." in validation_page(validation_result(checks=[]))
