"""The demo's Airflow API client: bounded retries of transient answers, clear errors, a backfill created once."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nightshift_dev.airflow_api import AirflowApi, AirflowApiError
from nightshift_dev.demo import DemoStepFailed, step


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next (status, body) of the server's script; records what was asked."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, body))  # type: ignore[attr-defined]
        status, payload = self.server.script.pop(0)  # type: ignore[attr-defined]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.script, httpd.seen = [], []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def api_for(server: ThreadingHTTPServer, attempts: int = 4) -> AirflowApi:
    return AirflowApi(f"http://127.0.0.1:{server.server_address[1]}", attempts=attempts, backoff=0.01)


def test_transient_answers_are_retried_until_one_succeeds(server):
    server.script[:] = [(503, {"detail": "busy"}), (502, {}), (200, {"dag_runs": [], "total_entries": 0})]
    assert api_for(server).runs("credit_risk_nightly") == []
    assert len(server.seen) == 3


def test_retries_are_bounded_and_the_error_names_the_call(server):
    server.script[:] = [(503, {"detail": "Database is locked"})] * 3
    with pytest.raises(AirflowApiError) as failure:
        api_for(server, attempts=3).trigger("credit_risk_retrain", {})
    assert "POST /dags/credit_risk_retrain/dagRuns answered 503" in str(failure.value)
    assert "gave up after 3 attempts" in str(failure.value)
    assert len(server.seen) == 3


def test_a_client_error_is_not_retried(server):
    server.script[:] = [(404, {"detail": "The Dag with ID: `x` was not found"})]
    assert api_for(server).has_dag("x") is False
    assert len(server.seen) == 1


def test_a_backfill_whose_first_answer_was_lost_is_not_created_twice(server):
    running = {"id": 7, "dag_id": "n", "from_date": "2026-10-20T00:00:00Z", "completed_at": None}
    server.script[:] = [
        (409, {"detail": "AlreadyRunningBackfill"}),
        (200, {"backfills": [running], "total_entries": 1}),
    ]
    created = api_for(server).backfill("n", dt.date(2026, 10, 20), dt.date(2026, 10, 21))
    assert created["id"] == 7
    sent = json.loads(server.seen[0][2])
    assert sent["from_date"] == "2026-10-20T00:00:00Z" and sent["to_date"] == "2026-10-21T23:59:59Z"


def test_an_unreachable_server_is_retried_then_named(monkeypatch):
    api = AirflowApi("http://127.0.0.1:9", attempts=2, backoff=0.01, timeout=1)
    with pytest.raises(AirflowApiError, match=r"GET /dags/d unreachable .*gave up after 2 attempts"):
        api.has_dag("d")


def test_a_failed_step_names_itself_and_how_to_resume():
    with pytest.raises(DemoStepFailed) as failure, step("backfill"):
        raise AirflowApiError("Airflow API POST /backfills answered 409: conflict", 409)
    message = str(failure.value)
    assert message.startswith("the demo's 'backfill' step failed: Airflow API POST /backfills answered 409")
    assert "to resume: `make airflow`, then Trigger -> Backfill" in message


def test_a_run_whose_first_answer_was_lost_is_found_by_its_id(server):
    night = dt.datetime(2026, 10, 1, 2, tzinfo=dt.UTC)
    existing = {"dag_run_id": "manual__2026-10-01T02:00:00+00:00", "state": "queued"}
    server.script[:] = [(503, {"detail": "busy"}), (409, {"detail": "Unique constraint violation"}), (200, existing)]
    run = api_for(server).trigger("credit_risk_nightly", {}, logical_date=night)
    assert run["dag_run_id"] == "manual__2026-10-01T02:00:00+00:00"
    first, second = (json.loads(body) for _, _, body in server.seen[:2])
    assert first["dag_run_id"] == second["dag_run_id"] == run["dag_run_id"]
    assert server.seen[2][1].endswith("/dagRuns/manual__2026-10-01T02%3A00%3A00%2B00%3A00")


def test_a_conflict_with_no_run_behind_it_is_reported(server):
    server.script[:] = [(409, {"detail": "Unique constraint violation"}), (404, {"detail": "not found"})]
    with pytest.raises(AirflowApiError, match="answered 409"):
        api_for(server).trigger("credit_risk_retrain", {})
