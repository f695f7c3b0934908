"""`nightshift report-link` on a real S3 API (moto's server): a shared index whose every link is presigned and opens."""

from __future__ import annotations

import datetime as dt
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from nightshift import cli
from nightshift.stages.drift.share import SHARED_DIR, night_links, prune_shared, share_index
from nightshift.stores.objects import StorageError, open_store
from tests import report_store
from tests.report_store import MODEL, NIGHTS

NOW = dt.datetime(2026, 12, 4, 18, 0, tzinfo=dt.UTC)


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if tag == "a" and name == "href" and value]


def hrefs(page: str) -> list[str]:
    parser = Hrefs()
    parser.feed(page)
    return parser.hrefs


def key_of(link: str) -> str:
    """The store key a presigned link names (path style: /<bucket>/nightshift/<key>)."""
    return unquote(urlparse(link).path).split("/nightshift/", 1)[1]


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def fetch_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as answer:
        return str(answer.read().decode())


def test_every_link_of_the_shared_index_is_presigned_and_answers_200(s3_store_uri: str) -> None:
    store = open_store(s3_store_uri)
    report_store.build(store)
    shared = share_index(store, MODEL, 900, NOW)
    assert re.fullmatch(rf"reports/drift/{MODEL}/{SHARED_DIR}/20261204T181500Z-[0-9a-f]{{8}}/index.html", shared.key)
    page = fetch_text(shared.url)
    assert "Drift history: credit_risk" in page and "until 2026-12-04 18:15 UTC" in page
    links = hrefs(page)
    assert links
    for link in links:
        query = parse_qs(urlparse(link).query)
        assert "X-Amz-Signature" in query and query["X-Amz-Expires"] == ["900"], link
        assert status(link) == 200, link
    paths = {key_of(link) for link in links}
    for day in NIGHTS:
        assert f"validation/{MODEL}/dt={day}/result.html" in paths
        assert f"validation/{MODEL}/dt={day}/result.json" in paths
        assert f"quarantine/{MODEL}/dt={day}/rejected.csv" in paths
        assert f"reports/performance/{MODEL}/dt={day}/performance.html" in paths
        assert any(re.fullmatch(rf"reports/drift/{MODEL}/dt={day}/rev=[^/]+/report.html", path) for path in paths)
    night = next(link for link in links if re.search(rf"dt={NIGHTS[-1]}/rev=.*/report.html$", key_of(link)))
    assert f"Evidently report of {NIGHTS[-1]}" in fetch_text(night) and "model version 2" in fetch_text(night)
    rejected = next(link for link in links if key_of(link).endswith("rejected.csv"))
    assert "amount below 0" in fetch_text(rejected)
    # the index everyone else opens keeps its relative links
    plain = store.read_bytes(f"reports/drift/{MODEL}/index.html").decode()
    assert not any(link.startswith("http") for link in hrefs(plain))
    assert f"../../../validation/{MODEL}/dt={NIGHTS[0]}/result.html" in hrefs(plain)


def test_a_new_shared_copy_prunes_the_expired_ones_and_keeps_the_live(s3_store_uri: str) -> None:
    store = open_store(s3_store_uri)
    report_store.build(store)
    first = share_index(store, MODEL, 60, NOW)
    long_lived = share_index(store, MODEL, 3600, NOW)
    store.write_bytes(f"reports/drift/{MODEL}/{SHARED_DIR}/not-a-stamp/index.html", b"left alone")
    later = NOW + dt.timedelta(seconds=120)
    second = share_index(store, MODEL, 60, later)
    assert not store.exists(first.key)
    assert store.exists(long_lived.key) and store.exists(second.key)
    assert store.exists(f"reports/drift/{MODEL}/{SHARED_DIR}/not-a-stamp/index.html")
    assert prune_shared(store, MODEL, later + dt.timedelta(hours=2)) == sorted(
        key.rsplit("/", 1)[0] for key in (long_lived.key, second.key)
    )
    # the nightly index refresh ignores the shared folder
    from nightshift.stages.drift.index import night_summaries

    assert [night["dt"] for night in night_summaries(store, MODEL)] == list(NIGHTS)


def test_night_links_are_labelled_presigned_and_open(s3_store_uri: str) -> None:
    store = open_store(s3_store_uri)
    report_store.build(store)
    links = night_links(store, MODEL, dt.date.fromisoformat(NIGHTS[1]), 600)
    labels = [link.label for link in links]
    assert labels == [
        "drift report",
        "drift report JSON",
        "drift summary",
        "validation page",
        "validation JSON",
        "rejected rows",
        "performance page",
        "performance JSON",
    ]
    for link in links:
        assert "X-Amz-Signature" in link.url and status(link.url) == 200, link
    validation = fetch_text(next(link.url for link in links if link.label == "validation page"))
    assert f"on {NIGHTS[1]}" in validation and "Quarantined rows (within the limit)" in validation


def test_report_link_cli_prints_the_shared_index_and_the_nights_files(
    s3_store_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_STORE_URI", s3_store_uri)
    store = open_store(s3_store_uri)
    report_store.build(store)
    assert cli.main(["report-link", "--model", MODEL, "--expires", "300"]) == 0
    captured = capsys.readouterr()
    link = captured.out.strip()
    assert f"/{SHARED_DIR}/" in link and "every link in it is presigned" in captured.err
    assert all(status(href) == 200 for href in hrefs(fetch_text(link)))
    assert cli.main(["report-link", "--model", MODEL, "--night", NIGHTS[0], "--expires", "300"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("drift report: http") and any(line.startswith("rejected rows: http") for line in lines)
    assert cli.main(["report-link", "--model", MODEL, "--expires", str(8 * 24 * 3600)]) == 1
    assert "1 to 604800 seconds" in capsys.readouterr().err


def test_a_local_store_gets_its_plain_links_and_no_copy(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    report_store.build(store)
    shared = share_index(store, MODEL, 600, NOW)
    assert shared.url == store.url_for(f"reports/drift/{MODEL}/index.html")
    assert not store.list(f"reports/drift/{MODEL}/{SHARED_DIR}")
    links = night_links(store, MODEL, dt.date.fromisoformat(NIGHTS[0]), 600)
    assert all(link.url.startswith("file://") for link in links)
    with pytest.raises(StorageError, match="1 to 604800"):
        share_index(store, MODEL, 0, NOW)
