"""nightshift's pages inside the Airflow UI: the plugin on a real API server, over HTTP and in headless Chromium.

`nightshift airflow` catches up a short season (conftest's `local_airflow`), which writes real reports, validation
pages and rejected rows. It signs everyone in as admin (SimpleAuthManager's all-admins mode), so a second
`airflow api-server` on the same metadata database and store runs with the login on (the generated admin password);
the plugin is checked there: no bytes without a token, the night's pages with one, traversal refused, the plugin and
its external views listed by `/api/v2/plugins`. Then Chromium signs in, opens the "nightshift" navigation entry, a
model's drift index, a nightly run's "nightshift" tab, and clicks through to the drift report, the validation page and
the rejected rows. Screenshots: `artifacts/browser/`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.conftest import BIN, MODEL, NIGHTLY, LocalAirflow, Screenshots
from tests.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SEASON_START = dt.date(2026, 10, 1)
NIGHTS = 2
ROWS = 300
NIGHT_TIMEOUT = 1500
NIGHT = SEASON_START  # the simulator's first night has rejected rows (5 of 300); the second has none


class LoginServer:
    """An `airflow api-server` with the login on, beside `nightshift airflow`'s (same database, store, plugin)."""

    def __init__(self, airflow: LocalAirflow, folder: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.passwords = folder / "passwords.json"
        self.log = airflow.home / "logs" / "login-api-server.log"
        self.env = {
            **airflow.airflow_env(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, airflow: LocalAirflow, timeout: float = 300) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "airflow"), "api-server", "--port", str(self.port), "--host", "127.0.0.1"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            return status(f"{self.base_url}/api/v2/monitor/health") == 200 and self.passwords.exists()

        airflow.wait_until(up, "starting an `airflow api-server` with the login on", timeout)

    def password(self) -> str:
        return str(json.loads(self.passwords.read_text())["admin"])

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.password()}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(json.loads(response.read())["access_token"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def fetch(url: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of a GET (no redirect followed), with the token as a bearer or none."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=120) as response:
            return response.status, response.read().decode(errors="replace"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


def status(url: str) -> int:
    try:
        return fetch(url)[0]
    except OSError:
        return 0


def night_runs(airflow: LocalAirflow) -> dict[dt.date, dict[str, Any]]:
    page = airflow.api(f"/dags/{NIGHTLY}/dagRuns?limit=100&order_by=id")
    runs = {}
    for run in page["dag_runs"]:
        runs[dt.datetime.fromisoformat(run["logical_date"].replace("Z", "+00:00")).date()] = run
    return runs


@pytest.fixture(scope="module")
def season(local_airflow: LocalAirflow) -> dict[dt.date, dict[str, Any]]:
    """The season's nightly runs, once every one succeeded."""

    def done() -> dict[dt.date, dict[str, Any]] | None:
        runs = night_runs(local_airflow)
        failed = [str(day) for day, run in runs.items() if run["state"] == "failed"]
        if failed:
            pytest.fail(f"nightly runs failed for {failed}; {local_airflow.logs}")
        ok = len(runs) >= NIGHTS and all(run["state"] == "success" for run in runs.values())
        return runs if ok else None

    return local_airflow.wait_until(done, "waiting for the season's nightly runs", NIGHT_TIMEOUT, every=5)


@pytest.fixture(scope="module")
def login_server(
    local_airflow: LocalAirflow, season: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoginServer]:
    server = LoginServer(local_airflow, tmp_path_factory.mktemp("login-api-server"))
    try:
        server.start(local_airflow)
        yield server
    finally:
        server.stop()


def run_path(run: dict[str, Any]) -> str:
    return f"/nightshift/runs/{NIGHTLY}/{quote(run['dag_run_id'], safe='')}"


def test_the_plugin_answers_only_with_a_token(login_server: LoginServer, season: dict) -> None:
    base, run = login_server.base_url, season[NIGHT]
    paths = [
        "/nightshift/",
        f"/nightshift/models/{MODEL}/",
        f"/nightshift/store/reports/drift/{MODEL}/index.html",
        run_path(run),
    ]
    for path in paths:
        code, body, _ = fetch(f"{base}{path}")
        assert code in (401, 403), f"{path} without a token: {code} {body[:300]}"
        assert "nightshift" not in body.lower() or "detail" in body, (
            f"{path} leaked content without a token: {body[:300]}"
        )
    token = login_server.token()
    code, body, _ = fetch(f"{base}{run_path(run)}", token)
    assert code == 200, body[:500]
    version = login_server_champion(login_server)
    assert f"Night {NIGHT}" in body and f"model version {version}" in body, body
    for key in (
        f"reports/drift/{MODEL}/dt={NIGHT}/report.html",
        f"validation/{MODEL}/dt={NIGHT}/result.html",
        f"quarantine/{MODEL}/dt={NIGHT}/rejected.csv",
    ):
        assert f'href="/nightshift/store/{key}"' in body, f"{key} not linked from the run page"
        code, served, headers = fetch(f"{base}/nightshift/store/{key}", token)
        assert code == 200, f"{key}: {code} {served[:300]}"
        assert headers["content-type"].split(";")[0] in ("text/html", "text/csv"), headers
        if key.endswith(".csv"):
            assert "_reasons" in served and len(served.splitlines()) > 1, f"{key} holds no rejected row"
    code, _, headers = fetch(f"{base}/nightshift/models/{MODEL}/", token)
    assert code == 307 and headers["location"] == f"/nightshift/store/reports/drift/{MODEL}/index.html"
    code, index, _ = fetch(f"{base}{headers['location']}", token)
    links = re.findall(rf'href="(dt={NIGHT}/rev=[^"]+/report\.html)"', index)
    assert code == 200 and links, f"the index links no report of {NIGHT}: {index[-2000:]}"
    code, report, _ = fetch(f"{base}/nightshift/store/reports/drift/{MODEL}/{links[0]}", token)
    assert code == 200 and f"{NIGHT} · model version {version}" in report, "the index's relative link does not resolve"


def login_server_champion(server: LoginServer) -> str:
    code, body, _ = fetch(
        f"{server.base_url}/nightshift/store/reports/drift/{MODEL}/dt={NIGHT}/summary.json", server.token()
    )
    assert code == 200, body
    return str(json.loads(body)["model_version"])


@pytest.mark.parametrize(
    "path",
    [
        "/nightshift/store/reports/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/nightshift/store/reports/drift/credit_risk/%2e%2e%2f%2e%2e%2f%2e%2e%2fcurated/credit_risk/dt=2026-10-01/_SUCCESS",
        "/nightshift/store/reports/drift/credit_risk/..%5c..%5c..%5cetc%5cpasswd",
        "/nightshift/store/reports/drift/credit_risk/%252e%252e/index.html",
        "/nightshift/store/landing/credit_risk/dt=2026-10-01/_SUCCESS",
        "/nightshift/store/reports/drift/no_such_model/index.html",
        "/nightshift/store//etc/passwd",
    ],
)
def test_traversal_is_refused(login_server: LoginServer, path: str) -> None:
    code, body, _ = fetch(f"{login_server.base_url}{path}", login_server.token())
    assert 400 <= code < 500, f"{path}: {code} {body[:300]}"
    assert "root:" not in body and "revision" not in body, body[:300]


def test_the_api_lists_the_plugin_and_its_views(login_server: LoginServer) -> None:
    code, body, _ = fetch(f"{login_server.base_url}/api/v2/plugins", login_server.token())
    assert code == 200, body[:300]
    plugins = {plugin["name"]: plugin for plugin in json.loads(body)["plugins"]}
    assert "nightshift" in plugins, f"no nightshift plugin in {sorted(plugins)}"
    views = {view["destination"]: view for view in plugins["nightshift"]["external_views"]}
    assert views["nav"]["href"] == "/nightshift/"
    assert views["dag_run"]["href"] == "/nightshift/runs/{DAG_ID}/{RUN_ID}"
    assert [app["url_prefix"] for app in plugins["nightshift"]["fastapi_apps"]] == ["/nightshift"]


def no_error(frame: Any) -> None:
    """The page in `frame` shows none of the site's or the server's error texts."""
    text = frame.locator("body").inner_text()
    for phrase in ("Internal Server Error", "Not authenticated", "Not served", "Not in the store", "Traceback"):
        assert phrase not in text, f"{phrase!r} on the page: {text[:500]}"


def test_the_pages_in_the_browser(page: Any, login_server: LoginServer, season: dict, screenshots: Screenshots) -> None:
    """Sign in, the navigation entry, a model's index, a nightly run's tab, then its report, validation and rows."""
    from playwright.sync_api import expect

    base, run = login_server.base_url, season[NIGHT]
    version = login_server_champion(login_server)
    page.goto(f"{base}/")
    page.locator('input[name="username"]').fill("admin")
    page.locator('input[name="password"]').fill(login_server.password())
    screenshots.take(page, "login")
    page.get_by_role("button", name="Sign in").click()
    nav = page.get_by_role("link", name="nightshift", exact=True)
    expect(nav).to_be_visible()
    screenshots.take(page, "signed-in")
    nav.click()
    home = page.frame_locator("iframe").first
    expect(home.get_by_role("link", name=f"drift index of {MODEL}")).to_be_visible()
    no_error(home)
    screenshots.take(page, "nightshift-home")
    home.get_by_role("link", name=f"drift index of {MODEL}").click()
    expect(home.locator("body")).to_contain_text(f"Drift history: {MODEL}")
    expect(home.locator("body")).to_contain_text(str(NIGHT))
    no_error(home)
    screenshots.take(page, "drift-index")
    run_tab = f"{base}/dags/{NIGHTLY}/runs/{quote(run['dag_run_id'], safe='')}"
    page.goto(run_tab)
    page.get_by_role("link", name="nightshift pages").click()
    frame = page.frame_locator("iframe").first
    heading = f"Night {NIGHT}, scored by model version {version}"
    expect(frame.get_by_text(heading)).to_be_visible()
    no_error(frame)
    screenshots.take(page, "run-tab")
    tab_url = page.url
    for key, expected, name in (
        (f"reports/drift/{MODEL}/dt={NIGHT}/report.html", f"{NIGHT} · model version {version}", "drift-report"),
        (f"validation/{MODEL}/dt={NIGHT}/result.html", f"Validation of {MODEL}", "validation-page"),
        (f"quarantine/{MODEL}/dt={NIGHT}/rejected.csv", "_reasons", "rejected-rows"),
    ):
        page.goto(tab_url)
        expect(frame.get_by_text(heading)).to_be_visible()
        frame.get_by_role("link", name=key, exact=True).click()
        expect(frame.locator("body")).to_contain_text(expected, timeout=120_000)
        no_error(frame)
        screenshots.take(page, name)
    expect(frame.locator("tbody tr").first).to_contain_text("maximum")  # a rejected row, with its reason
