"""An analyst with only the link `nightshift report-link` prints: the shared index on S3, in headless Chromium.

A moto S3 server holds a few nights of real pages (tests/report_store.py: nightshift's own header, validation and
performance pages, published partitions and the real index refresh); `nightshift report-link` writes the shared
index and prints its presigned link; Chromium opens it, sees the trend plots, clicks a night's report, the night's
validation page and its rejected rows, each opening without credentials. No Airflow. Screenshots:
`artifacts/browser/test_presigned_index/`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nightshift import cli
from nightshift.stores.objects import ensure_bucket, open_store
from tests import report_store
from tests.browser.conftest import Screenshots
from tests.report_store import MODEL, NIGHTS, VERSIONS
from tests.servers import moto_server

pytestmark = [pytest.mark.browser]

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/nightshift-no-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/nightshift-no-aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`s3://<bucket>/nightshift` on a moto server of this module, holding a few nights of real pages."""
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("no `chromium` on PATH: install Debian's chromium (apt-get install chromium); .ci/run does")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        for name, value in AWS.items():
            patch.setenv(name, value)
        with moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as endpoint:
            patch.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", endpoint)
            uri = "s3://nightshift-browser/nightshift"
            ensure_bucket("s3://nightshift-browser")
            patch.setenv("NIGHTSHIFT_STORE_URI", uri)
            report_store.build(open_store(uri))
            yield uri


def report_link(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert cli.main(["report-link", "--model", MODEL, *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip().splitlines()


def refused(page: Any) -> bool:
    text = page.content()
    return "AccessDenied" in text or "SignatureDoesNotMatch" in text or "<Error>" in text


def test_the_printed_link_opens_the_index_and_every_page_from_it(
    s3_store: str, page: Any, screenshots: Screenshots, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.sync_api import expect

    [link] = report_link(capsys, "--expires", "1800")
    answer = page.goto(link)
    assert answer is not None and answer.status == 200, link
    expect(page.locator("h1")).to_have_text(f"Drift history: {MODEL}")
    expect(page.locator("section.trends svg[data-chart='drift-psi'] g.series")).to_have_count(2)
    expect(page.locator("section.trends svg[data-chart='drift-ks'] line.threshold")).to_have_count(1)
    expect(page.locator("figure#trend-drift-ks figcaption")).to_contain_text("lower means drift")
    expect(page.locator("#nights tbody tr")).to_have_count(len(NIGHTS))
    screenshots.take(page, "shared-index")

    page.locator("#version-filter label", has_text=VERSIONS[NIGHTS[0]]).click()
    expect(page.locator("#nights tbody tr:visible")).to_have_count(2)
    screenshots.take(page, "filtered-by-version")
    page.locator("#version-filter label", has_text="all versions").click()
    expect(page.locator("#nights tbody tr:visible")).to_have_count(len(NIGHTS))

    night = NIGHTS[-1]
    row = page.locator("#nights tbody tr", has_text=night)
    with page.expect_navigation():
        row.get_by_role("link", name="HTML", exact=True).click()
    assert not refused(page), page.content()[:500]
    banner = page.locator("#nightshift-banner")
    expect(banner).to_contain_text(f"{MODEL} · {night} · model version {VERSIONS[night]}")
    expect(banner).to_contain_text("psi: the score is a distance, higher means drift")
    expect(page.locator("#root")).to_have_text(f"Evidently report of {night}")
    screenshots.take(page, "night-report")

    page.go_back()
    with page.expect_navigation():
        page.locator("#nights tbody tr", has_text=night).get_by_role("link", name="validation", exact=True).click()
    assert not refused(page), page.content()[:500]
    expect(page.locator("h1")).to_contain_text(f"Validation of {MODEL} on {night}")
    expect(page.locator("h2#checks-quarantined")).to_contain_text("Quarantined rows (within the limit)")
    screenshots.take(page, "validation-page")

    page.go_back()
    rejected = page.locator("#nights tbody tr", has_text=night).get_by_role("link", name="rejected rows", exact=True)
    href = rejected.get_attribute("href")
    assert href and "X-Amz-Signature" in href
    answer = page.request.get(href)
    assert answer.status == 200 and "amount below 0" in answer.text()
    screenshots.take(page, "index-after-clicks")


def test_a_nights_printed_links_each_open(s3_store: str, page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    lines = report_link(capsys, "--night", NIGHTS[0])
    links = dict(line.split(": ", 1) for line in lines)
    assert {"drift report", "validation page", "validation JSON", "rejected rows"} <= set(links)
    for label, url in links.items():
        answer = page.request.get(url)
        assert answer.status == 200, (label, url, answer.text()[:300])
    answer = page.goto(links["validation page"])
    assert answer is not None and answer.status == 200
    assert Path(page.url).name.startswith("result.html")
