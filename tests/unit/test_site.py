"""The plugin's site without Airflow: which keys it serves, a nightly run's pages, a retrain run's ledger entry.

The app is mounted with a fake user dependency (a header names the user) and a fake run lookup; the store is a real
LocalStore with partitions written by `publish_partition`, the warehouse a real SQLite one.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from nightshift.config import settings
from nightshift.site.app import create_app
from nightshift.site.keys import RefusedKey, checked_key
from nightshift.site.runs import RunFacts, nightly_pages
from nightshift.stores import warehouse
from nightshift.stores.objects import LocalStore, publish_partition

MODEL = "credit_risk"
MODELS = ["credit_risk", "wine_cultivar"]
NIGHT = dt.date(2026, 10, 3)
RUN = "scheduled__2026-10-03T00:00:00+00:00"
RETRAIN_RUN = "manual__2026-10-05T10:00:00+00:00"


def user(x_user: str | None = Header(None)) -> str:
    if not x_user:
        raise HTTPException(401, "Not authenticated")
    return x_user


def can_read(who: Any, dag_id: str) -> bool:
    return who == "admin" or (who == "wine" and dag_id.startswith("wine_cultivar_"))


RUNS = {
    (f"{MODEL}_nightly", RUN): RunFacts(f"{MODEL}_nightly", RUN, NIGHT, "success", "scheduled"),
    (f"{MODEL}_nightly", "failed-night"): RunFacts(f"{MODEL}_nightly", "failed-night", dt.date(2026, 10, 4), "failed"),
    (f"{MODEL}_retrain", RETRAIN_RUN): RunFacts(f"{MODEL}_retrain", RETRAIN_RUN, None, "success", "manual"),
}


def publish(store: LocalStore, prefix: str, files: dict[str, str], run_id: str, tmp: Path) -> None:
    local = {}
    for name, text in files.items():
        path = tmp / f"{prefix.replace('/', '_')}_{name}"
        path.write_text(text)
        local[name] = path
    publish_partition(store, prefix, {"model": MODEL, "run_id": run_id}, local=local)


def validation_result(passed: bool, quarantined: int) -> str:
    body = {"passed": passed, "rows": 100, "accepted_rows": 100 - quarantined, "quarantined_rows": quarantined}
    return json.dumps({**body, "failure_message": None if passed else "column age: 40% of rows out of range"})


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, LocalStore]:
    home = tmp_path / "home"
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    config = settings()
    store = LocalStore(config.store_uri)
    night = NIGHT.isoformat()
    publish(
        store,
        f"validation/{MODEL}/dt={night}",
        {"result.json": validation_result(True, 3), "result.html": "<h1>ok</h1>"},
        RUN,
        tmp_path,
    )
    publish(
        store, f"quarantine/{MODEL}/dt={night}", {"rejected.csv": "row,reason\n7,age out of range\n"}, RUN, tmp_path
    )
    summary = json.dumps({"model": MODEL, "dt": night, "model_version": "4", "run_id": RUN})
    drift = {"report.html": "<h1>drift of the night</h1>", "report.json": "{}", "summary.json": summary}
    publish(store, f"reports/drift/{MODEL}/dt={night}", drift, RUN, tmp_path)
    store.write_bytes(f"reports/drift/{MODEL}/index.html", b'<a href="dt=2026-10-03/report.html">2026-10-03</a>')
    failed = {"result.json": validation_result(False, 0), "result.html": "<h1>failed</h1>"}
    publish(store, f"validation/{MODEL}/dt=2026-10-04", failed, "failed-night", tmp_path)
    (home / "secret.txt").write_text("not served")
    app = FastAPI()
    app.mount("/nightshift", create_app(user, can_read, settings, lambda dag, run: RUNS.get((dag, run))))
    return TestClient(app), store


ADMIN = {"X-User": "admin"}


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("reports/../../secret.txt", 400),
        ("reports/drift/credit_risk/../../../secret.txt", 400),
        ("/etc/passwd", 400),
        ("reports\\drift\\credit_risk\\index.html", 400),
        ("reports/drift/credit_risk/index.html\x00.png", 400),
        ("reports/%2e%2e/secret.txt", 400),
        ("reports//drift/credit_risk/index.html", 400),
        ("curated/credit_risk/dt=2026-10-03/_SUCCESS", 404),
        ("landing/credit_risk/dt=2026-10-03/drop.csv", 404),
        ("reports/drift/no_such_model/index.html", 404),
        ("reports/weird/credit_risk/index.html", 404),
        ("reports/drift/credit_risk/.index.html.tmp", 404),
        ("", 400),
    ],
)
def test_keys_outside_the_report_areas_or_models_are_refused(key: str, status: int) -> None:
    with pytest.raises(RefusedKey) as refused:
        checked_key(key, MODELS)
    assert refused.value.status == status
    assert repr(key) in refused.value.message


def test_keys_of_the_report_areas_name_their_model() -> None:
    assert checked_key("reports/drift/credit_risk/index.html", MODELS) == (
        "reports/drift/credit_risk/index.html",
        MODEL,
    )
    assert checked_key("quarantine/wine_cultivar/dt=2026-10-03/rejected.csv", MODELS)[1] == "wine_cultivar"
    assert checked_key("reports/performance/credit_risk/dt=2026-10-03/performance.html", MODELS)[1] == MODEL


@pytest.mark.parametrize(
    "path",
    [
        "/nightshift/store/reports/%2e%2e/%2e%2e/secret.txt",
        "/nightshift/store/reports/drift/credit_risk/%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "/nightshift/store/reports%2f..%2f..%2fsecret.txt",
        "/nightshift/store/reports/drift/credit_risk/%252e%252e/index.html",
        "/nightshift/store/reports/drift/credit_risk/%5c..%5csecret.txt",
        "/nightshift/store/reports/drift/credit_risk/index.html%00",
        "/nightshift/store/landing/credit_risk/dt=2026-10-03/drop.csv",
        "/nightshift/store/reports/drift/nobody/index.html",
    ],
)
def test_traversal_over_http_is_refused_with_a_message(site: tuple[TestClient, LocalStore], path: str) -> None:
    client, _ = site
    response = client.get(path, headers=ADMIN)
    assert 400 <= response.status_code < 500, response.text
    assert "not served" not in response.text
    assert "store key" in response.text or "no model" in response.text or response.status_code == 404


def test_every_route_answers_401_without_a_user_and_403_without_the_dag(site: tuple[TestClient, LocalStore]) -> None:
    client, _ = site
    paths = [
        "/nightshift/",
        "/nightshift/models/credit_risk/",
        "/nightshift/store/reports/drift/credit_risk/index.html",
        f"/nightshift/runs/credit_risk_nightly/{RUN}",
    ]
    for path in paths:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 401 and "drift" not in response.text, path
    for path in paths[1:]:
        response = client.get(path, headers={"X-User": "wine"}, follow_redirects=False)
        assert response.status_code == 403, path
    home = client.get("/nightshift/", headers={"X-User": "wine"})
    assert "wine_cultivar" in home.text and "/nightshift/models/credit_risk/" not in home.text


def test_the_home_page_and_the_index_with_its_relative_links(site: tuple[TestClient, LocalStore]) -> None:
    client, _ = site
    home = client.get("/nightshift/", headers=ADMIN)
    assert home.status_code == 200 and 'href="/nightshift/models/credit_risk/"' in home.text
    index = client.get("/nightshift/models/credit_risk/", headers=ADMIN, follow_redirects=False)
    assert index.status_code == 307
    assert index.headers["location"] == "/nightshift/store/reports/drift/credit_risk/index.html"
    served = client.get(index.headers["location"], headers=ADMIN)
    assert served.headers["content-type"] == "text/html; charset=utf-8" and "dt=2026-10-03/report.html" in served.text
    report = client.get("/nightshift/store/reports/drift/credit_risk/dt=2026-10-03/report.html", headers=ADMIN)
    assert report.status_code == 200 and "drift of the night" in report.text
    rejected = client.get("/nightshift/store/quarantine/credit_risk/dt=2026-10-03/rejected.csv", headers=ADMIN)
    assert rejected.headers["content-type"] == "text/csv; charset=utf-8" and "age out of range" in rejected.text
    table = client.get("/nightshift/store/quarantine/credit_risk/dt=2026-10-03/rejected.csv?view=table", headers=ADMIN)
    assert table.headers["content-type"].startswith("text/html") and "<td>age out of range</td>" in table.text
    assert (
        client.get("/nightshift/store/reports/drift/credit_risk/index.html?view=table", headers=ADMIN).status_code
        == 400
    )
    missing = client.get("/nightshift/store/reports/drift/credit_risk/dt=2026-10-09/report.html", headers=ADMIN)
    assert missing.status_code == 404 and "no such object" in missing.text
    assert client.get("/nightshift/models/nobody/", headers=ADMIN).status_code == 404
    unmeasured = client.get("/nightshift/models/wine_cultivar/", headers=ADMIN)
    assert unmeasured.status_code == 404 and "no drift index of wine_cultivar yet" in unmeasured.text


def test_a_nightly_run_lists_its_pages_and_says_why_others_are_absent(site: tuple[TestClient, LocalStore]) -> None:
    client, store = site
    night = nightly_pages(store, MODEL, RUNS[(f"{MODEL}_nightly", RUN)])
    pages = {page.label: page for page in night.pages}
    assert night.model_version == "4" and night.day == "2026-10-03"
    assert pages["drift report"].key == "reports/drift/credit_risk/dt=2026-10-03/report.html"
    assert pages["rejected rows (CSV)"].key == "quarantine/credit_risk/dt=2026-10-03/rejected.csv"
    assert pages["validation page"].key == "validation/credit_risk/dt=2026-10-03/result.html"
    assert pages["performance page"].key is None and pages["performance page"].note == "not written by this run"
    page = client.get(f"/nightshift/runs/credit_risk_nightly/{RUN}", headers=ADMIN)
    assert page.status_code == 200
    assert "2026-10-03" in page.text and "model version 4" in page.text
    assert 'href="/nightshift/store/reports/drift/credit_risk/dt=2026-10-03/report.html"' in page.text
    assert 'href="/nightshift/store/quarantine/credit_risk/dt=2026-10-03/rejected.csv?view=table"' in page.text


def test_a_night_that_failed_in_validation_says_so(site: tuple[TestClient, LocalStore]) -> None:
    client, store = site
    night = nightly_pages(store, MODEL, RUNS[(f"{MODEL}_nightly", "failed-night")])
    notes = {page.label: page.note for page in night.pages if page.key is None}
    assert notes["drift report"] == "not written: the night failed in validation"
    assert notes["rejected rows (CSV)"] == "not written: validation rejected no row of this night"
    store.write_bytes("quarantine/credit_risk/dt=2026-10-04/rejected.csv", b"row,_reasons\n")
    empty = {page.label: page for page in nightly_pages(store, MODEL, RUNS[(f"{MODEL}_nightly", "failed-night")]).pages}
    assert empty["rejected rows (CSV)"].key and empty["rejected rows (CSV)"].note.startswith(
        "empty: validation rejected"
    )
    page = client.get("/nightshift/runs/credit_risk_nightly/failed-night", headers=ADMIN)
    assert "failed" in page.text and "40% of rows out of range" in page.text


def test_unknown_dags_and_runs_are_404(site: tuple[TestClient, LocalStore]) -> None:
    client, _ = site
    other = client.get("/nightshift/runs/some_other_dag/x", headers=ADMIN)
    assert other.status_code == 404 and "none of nightshift" in other.text
    missing = client.get("/nightshift/runs/credit_risk_nightly/no-such-run", headers=ADMIN)
    assert missing.status_code == 404 and "no run &#x27;no-such-run&#x27;" in missing.text


def test_a_retrain_run_shows_its_ledger_entry(site: tuple[TestClient, LocalStore]) -> None:
    client, _ = site
    engine = warehouse.connect(settings().warehouse_url)
    row = {
        "model": MODEL,
        "action": "promote",
        "as_of": dt.date(2026, 10, 5),
        "candidate_version": "5",
        "previous_version": "4",
        "champion_after": "5",
        "metric": "roc_auc",
        "candidate_score": 0.91,
        "champion_score": 0.87,
        "reasons": ["candidate beats the champion by 0.04 roc_auc"],
        "details": {},
        "actor": "user:admin",
        "run_id": RETRAIN_RUN,
        "decided_at": dt.datetime(2026, 10, 5, 10, 5, tzinfo=dt.UTC),
    }
    warehouse.append_ledger(engine, row)
    warehouse.append_ledger(engine, {**row, "run_id": "another-run", "champion_after": "9"})
    page = client.get(f"/nightshift/runs/credit_risk_retrain/{RETRAIN_RUN}", headers=ADMIN)
    assert page.status_code == 200
    assert "promote of credit_risk" in page.text and "candidate beats the champion" in page.text
    assert "version 5" in page.text and "version 9" not in page.text
