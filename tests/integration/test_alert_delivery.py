"""Alerts delivered to real receivers: a local SMTP server (aiosmtpd) and an HTTP webhook (http.server), once per run."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from nightshift.alerting import alerts_sent
from nightshift.alerting.callback import on_task_failure
from nightshift.alerting.messages import Context
from nightshift.alerting.tasks import dispatch, night_alerts
from nightshift.notifiers import NotifyFailed
from nightshift.runs import RunInfo
from nightshift_dev.receivers import Mailbox, Webhook, smtp_server, webhook_receiver

NIGHT = "2026-10-05"
RUN = RunInfo("scheduled__2026-10-05T02:00:00+00:00", "scheduled")
SUMMARY = {
    "model_version": "1",
    "drift_share": 0.2,
    "dataset_drift": False,
    "critical_drifted": ["credit_score"],
    "features": [
        {
            "feature": "credit_score",
            "method": "wasserstein",
            "threshold": 0.1,
            "score": 0.42,
            "drifted": True,
            "critical": True,
        },
    ],
    "prediction": None,
    "data_quality": {"features": []},
}


@pytest.fixture
def receivers(home, monkeypatch) -> Iterator[tuple[Mailbox, Webhook]]:
    with smtp_server() as box, webhook_receiver() as hook:
        monkeypatch.setenv("NIGHTSHIFT_SMTP_HOST", box.host)
        monkeypatch.setenv("NIGHTSHIFT_SMTP_PORT", str(box.port))
        monkeypatch.setenv("NIGHTSHIFT_ALERT_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("NIGHTSHIFT_UI_URL", "http://airflow.test")
        yield box, hook


def _store_summary() -> str:
    from nightshift.stages.night import night
    from nightshift.stores.objects import write_json

    key = f"reports/drift/credit_risk/dt={NIGHT}/rev=1/summary.json"
    write_json(night("credit_risk", NIGHT).store, key, SUMMARY)
    return key


def _results(summary_key: str) -> dict[str, Any]:
    return {
        "validated": {"rows": 1000, "quarantined": 30},
        "drift": {"summary_key": summary_key},
        "performance": {"measured": []},
        "decision": {"requested": True, "fired": ["drift"], "reasons": ["credit_score drifted 2 of 3 nights"]},
    }


def test_a_night_s_alerts_reach_email_and_webhook_by_severity_once_per_run(receivers):
    box, hook = receivers
    sent = night_alerts("credit_risk", NIGHT, RUN, _results(_store_summary()))

    assert len(sent["sent"]) == 5, sent
    subjects = sorted(message["Subject"] for message in box.messages)
    assert subjects == [
        "[TICKET] credit_risk 2026-10-05: data quality: 3.00% rows quarantined",
        "[TICKET] credit_risk 2026-10-05: drift on credit_score",
    ]
    assert box.recipients[0] == ["risk-oncall@example.com"]
    drift = next(message for message in box.messages if "drift" in message["Subject"])
    text = drift.get_body(("plain",)).get_content()
    assert "credit_score (critical): wasserstein 0.4200 > threshold 0.1" in text
    assert "Runbook: docs/runbook.md#drift" in text
    assert "http://airflow.test/nightshift/store/reports/drift/credit_risk/dt%3D2026-10-05/rev%3D1/report.html" in text
    assert (
        "http://airflow.test/nightshift/runs/credit_risk_nightly/scheduled__2026-10-05T02%3A00%3A00%2B00%3A00" in text
    )
    html = drift.get_body(("html",)).get_content()
    assert 'href="docs/runbook.md#drift"' in html

    events = {post["event"]: post for post in hook.posts}
    assert set(events) == {"drift", "data_quality", "retrain_requested"}
    assert events["retrain_requested"]["severity"] == "info" and events["drift"]["night"] == NIGHT
    assert events["data_quality"]["facts"]["bad_row_share"] == pytest.approx(0.03)
    assert events["drift"]["text"].startswith("[TICKET] credit_risk 2026-10-05: drift on credit_score")

    again = night_alerts("credit_risk", NIGHT, RUN, _results(_store_summary()))
    assert again["sent"] == [] and len(again["already_sent"]) == 5
    assert len(box.messages) == 2 and len(hook.posts) == 3
    rows = alerts_sent("credit_risk")
    assert {(row["event"], row["channel"]) for row in rows} == {
        ("drift", "oncall_email"),
        ("drift", "team_webhook"),
        ("data_quality", "oncall_email"),
        ("data_quality", "team_webhook"),
        ("retrain_requested", "team_webhook"),
    }
    assert {row["dt"] for row in rows} == {dt.date(2026, 10, 5)} and {row["run_id"] for row in rows} == {RUN.run_id}


def test_a_failing_webhook_fails_loudly_and_a_retry_sends_only_what_was_missing(receivers, demo_spec):
    box, hook = receivers
    from nightshift.alerting import messages

    context = Context("credit_risk", demo_spec.alerts, NIGHT, RUN.run_id)
    note = messages.rollback_note(context, {"champion": "1", "previous": "2"}, "bad night")
    hook.status = 503
    with pytest.raises(NotifyFailed) as failed:
        dispatch(demo_spec, dt.date(2026, 10, 5), RUN.run_id, [note])
    assert "team_webhook: rolled_back for credit_risk: webhook answered HTTP 503" in str(failed.value)
    assert "receiver is down for maintenance" in str(failed.value)
    assert len(box.messages) == 1 and box.messages[0]["Subject"].startswith("[PAGE] credit_risk")

    hook.status = 200
    retried = dispatch(demo_spec, dt.date(2026, 10, 5), RUN.run_id, [note])
    assert retried["sent"] == ["rolled_back -> team_webhook (page)"]
    assert len(box.messages) == 1 and [post["event"] for post in hook.posts] == ["rolled_back"]


def test_an_unreachable_smtp_server_names_host_and_port(home, monkeypatch, demo_spec):
    from nightshift.alerting import messages
    from tests.servers import free_port

    port = free_port()
    monkeypatch.setenv("NIGHTSHIFT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NIGHTSHIFT_SMTP_PORT", str(port))
    monkeypatch.delenv("NIGHTSHIFT_ALERT_WEBHOOK_URL", raising=False)
    note = messages.rollback_note(Context("credit_risk", demo_spec.alerts, NIGHT, "r"), {"champion": "1"}, "x")
    with pytest.raises(NotifyFailed, match=f"oncall_email: rolled_back for credit_risk: SMTP 127.0.0.1:{port}"):
        dispatch(demo_spec, dt.date(2026, 10, 5), "r", [note])


def test_an_unset_channel_is_skipped_with_a_log_line_and_the_others_still_get_it(home, monkeypatch, caplog):
    monkeypatch.delenv("NIGHTSHIFT_SMTP_HOST", raising=False)
    with webhook_receiver() as hook:
        monkeypatch.setenv("NIGHTSHIFT_ALERT_WEBHOOK_URL", hook.url)
        with caplog.at_level(logging.INFO, logger="nightshift.alerting"):
            sent = night_alerts("credit_risk", NIGHT, RUN, _results(_store_summary()))
    assert "channel oncall_email (email) skipped: no SMTP host (environment variable NIGHTSHIFT_SMTP_HOST unset)" in (
        caplog.text
    )
    assert len(sent["sent"]) == 3 and len(hook.posts) == 3


class _TaskInstance:
    """The attributes of Airflow's RuntimeTaskInstance the callback reads."""

    dag_id, task_id, map_index, try_number = "credit_risk_nightly", "commit_validation", -1, 3
    log_url = "http://airflow.test/dags/credit_risk_nightly/runs/r/tasks/commit_validation?try_number=3"


class _DagRun:
    run_id, run_type, run_after = RUN.run_id, "scheduled", dt.datetime(2026, 10, 5, 2, tzinfo=dt.UTC)


def test_the_failure_callback_pages_with_the_task_error_and_log(receivers):
    box, hook = receivers
    try:
        raise RuntimeError("12.0% bad rows, over the 5% limit")
    except RuntimeError as exc:
        error = exc
    context = {
        "ti": _TaskInstance(),
        "dag_run": _DagRun(),
        "logical_date": dt.datetime(2026, 10, 5, tzinfo=dt.UTC),
        "exception": error,
    }
    on_task_failure(context)
    on_task_failure(context)
    [message] = box.messages
    assert message["Subject"] == (
        "[PAGE] credit_risk 2026-10-05: task commit_validation of credit_risk_nightly failed (try 3, no retries left)"
    )
    text = message.get_body(("plain",)).get_content()
    assert "Error: RuntimeError: 12.0% bad rows, over the 5% limit" in text
    assert f"task log: {_TaskInstance.log_url}" in text and "Runbook: docs/runbook.md#task-failed" in text
    [post] = hook.posts
    assert post["event"] == "task_failed" and post["facts"]["try_number"] == 3


def test_deliveries_are_recorded_once_on_a_postgres_warehouse(receivers, monkeypatch):
    from tests.integration import postgres

    reason = postgres.unavailable()
    if reason:
        pytest.skip(reason)
    box, hook = receivers
    with postgres.throwaway_database("nightshift_alerts") as database:
        monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URL", postgres.url_for(database))
        first = night_alerts("credit_risk", NIGHT, RUN, _results(_store_summary()))
        again = night_alerts("credit_risk", NIGHT, RUN, _results(_store_summary()))
        rows = alerts_sent("credit_risk")
    assert len(first["sent"]) == 5 and again["sent"] == [] and len(rows) == 5
    assert len(box.messages) == 2 and len(hook.posts) == 3
    assert all(row["sent_at"].tzinfo is not None for row in rows)
