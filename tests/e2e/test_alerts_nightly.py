"""Alerts from the real nightly DAG (dag.test) to real receivers: a drifted night's alerts from the `alert` task, and
a task's final failure paging through the failure callback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.airflow_helpers import load_dag, migrate_airflow_db, night_at, task_states, use_local_stores

pytestmark = pytest.mark.e2e

START = dt.date(2026, 10, 1)
SHIFTED = dt.date(2026, 10, 2)


@pytest.fixture
def nightly(tmp_path, monkeypatch) -> Iterator[dict[str, Any]]:
    """The credit_risk nightly DAG with a champion, two landed nights (the second shifted) and live receivers."""
    from nightshift.config import get_spec, settings
    from nightshift.stores.objects import open_store
    from nightshift_dev.receivers import smtp_server, webhook_receiver
    from nightshift_dev.simulate import SimulationPlan, simulate
    from tests.champions import register_champion

    use_local_stores(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("NIGHTSHIFT_SCHEDULE_START", START.isoformat())
    monkeypatch.setenv("NIGHTSHIFT_SCHEDULE_END", "2026-10-21")
    monkeypatch.setenv("NIGHTSHIFT_UI_URL", "http://airflow.test")
    store = open_store(settings().store_uri)
    simulate(store, get_spec("credit_risk"), SimulationPlan(start=START, days=2, rows_per_day=1500, shift_date=SHIFTED))
    register_champion(START - dt.timedelta(days=1), holdout_rows=1000)
    migrate_airflow_db()
    with smtp_server() as box, webhook_receiver() as hook:
        monkeypatch.setenv("NIGHTSHIFT_SMTP_HOST", box.host)
        monkeypatch.setenv("NIGHTSHIFT_SMTP_PORT", str(box.port))
        monkeypatch.setenv("NIGHTSHIFT_ALERT_WEBHOOK_URL", hook.url)
        yield {"dag": load_dag("credit_risk_nightly"), "box": box, "hook": hook}


def test_a_drifted_night_alerts_and_a_failed_task_pages(nightly):
    from nightshift.alerting import alerts_sent

    dag, box, hook = nightly["dag"], nightly["box"], nightly["hook"]
    run = dag.test(logical_date=night_at(SHIFTED), run_after=night_at(SHIFTED))
    states = task_states(run)
    assert states["alert"] == "success", states
    drift = [post for post in hook.posts if post["event"] == "drift"]
    assert len(drift) == 1, hook.posts
    assert drift[0]["night"] == SHIFTED.isoformat() and drift[0]["model"] == "credit_risk"
    assert drift[0]["runbook"] == "docs/runbook.md#drift" and drift[0]["severity"] == "ticket"
    assert drift[0]["links"]["drift report"].startswith(
        "http://airflow.test/nightshift/store/reports/drift/credit_risk/"
    )
    assert drift[0]["facts"]["drifted"], drift[0]
    mails = [message for message in box.messages if "drift on" in message["Subject"]]
    assert len(mails) == 1 and mails[0]["Subject"].startswith(f"[TICKET] credit_risk {SHIFTED}: drift on ")

    outside = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
    failed = dag.test(logical_date=outside, run_after=outside)
    assert str(failed.state) == "failed"
    degraded = [post for post in hook.posts if post["event"] == "performance_degraded"]
    assert degraded and degraded[0]["severity"] == "page" and "vs holdout" in degraded[0]["body"], hook.posts
    pages = [
        message for message in box.messages if message["Subject"].startswith("[PAGE]") and "task " in message["Subject"]
    ]
    assert [message["Subject"] for message in pages] == [
        "[PAGE] credit_risk 2026-12-03: task wait_for_drop of credit_risk_nightly failed (try 1, no retries left)"
    ]
    text = pages[0].get_body(("plain",)).get_content()
    assert "is after its last night" in text and "Runbook: docs/runbook.md#task-failed" in text
    assert "task log: http" in text and "/tasks/wait_for_drop" in text
    sent = {(row["event"], row["channel"], row["dt"]) for row in alerts_sent("credit_risk")}
    assert ("task_failed", "oncall_email", dt.date(2026, 12, 3)) in sent
    assert ("drift", "team_webhook", SHIFTED) in sent
