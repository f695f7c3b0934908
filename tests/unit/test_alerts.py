"""Alerts: the spec's `alerts` section, routing by severity, channels from the environment, and each event's message."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from nightshift.alert_rules import DEFAULT_SEVERITIES, Alerts
from nightshift.alerting import messages
from nightshift.alerting.callback import model_of
from nightshift.alerting.messages import Context
from nightshift.alerting.tasks import configure_channels
from nightshift.config import SpecError, load_spec
from nightshift.notifiers import EmailNotifier, Event, Severity, WebhookNotifier
from nightshift.notifiers.email import build_message, subject
from nightshift.notifiers.webhook import payload

PROJECT = Path(__file__).resolve().parents[2]
DEMO = PROJECT / "include" / "models" / "credit_risk.yaml"


def _write_spec(tmp_path: Path, alerts: object) -> Path:
    raw = yaml.safe_load(DEMO.read_text())
    if alerts is None:
        raw.pop("alerts", None)
    else:
        raw["alerts"] = alerts
    path = tmp_path / "credit_risk.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _demo_alerts() -> dict:
    return copy.deepcopy(yaml.safe_load(DEMO.read_text())["alerts"])


def test_the_demo_spec_routes_pages_and_tickets_to_email_and_everything_to_the_webhook(demo_spec):
    alerts = demo_spec.alerts
    assert alerts is not None
    assert alerts.channels_for(Severity.PAGE) == ["oncall_email", "team_webhook"]
    assert alerts.channels_for(Severity.INFO) == ["team_webhook"]
    assert alerts.channels["oncall_email"].host_env == "NIGHTSHIFT_SMTP_HOST"
    assert alerts.channels["team_webhook"].url_env == "NIGHTSHIFT_ALERT_WEBHOOK_URL"


def test_default_severities_and_overrides():
    alerts = Alerts.model_validate(
        {
            "channels": {"hook": {"type": "webhook"}},
            "routes": {"ticket": ["hook"]},
            "severities": {"promoted": "ticket", "drift": "page"},
        }
    )
    assert alerts.severity(Event.TASK_FAILED) == Severity.PAGE
    assert alerts.severity(Event.ROLLED_BACK) == Severity.PAGE
    assert alerts.severity(Event.REFUSED) == Severity.TICKET
    assert alerts.severity(Event.RETRAIN_REQUESTED) == Severity.INFO
    assert alerts.severity(Event.PROMOTED) == Severity.TICKET
    assert alerts.severity(Event.DRIFT) == Severity.PAGE
    assert set(DEFAULT_SEVERITIES) == set(Event)


def test_a_backfill_sends_replayed_measurements_as_info_but_still_pages_failures():
    alerts = Alerts.model_validate({"channels": {"hook": {"type": "webhook"}}, "routes": {"page": ["hook"]}})
    for event in (Event.DRIFT, Event.DATA_QUALITY, Event.PERFORMANCE_DEGRADED):
        assert alerts.severity(event, is_backfill=True) == Severity.INFO
    assert alerts.severity(Event.TASK_FAILED, is_backfill=True) == Severity.PAGE


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda a: a["routes"].update(page=["pager"]), "alerts.routes.page: unknown channel 'pager'"),
        (lambda a: a["routes"].update(urgent=["team_webhook"]), "alerts.routes.urgent"),
        (lambda a: a.update(severities={"drifted": "page"}), "alerts.severities.drifted"),
        (lambda a: a.update(severities={"drift": "critical"}), "'page', 'ticket' or 'info'"),
        (lambda a: a["channels"]["oncall_email"].update(to=[]), "alerts.channels.oncall_email.email.to"),
        (lambda a: a["channels"]["oncall_email"].update(to=["oncall"]), "'oncall' is not an email address"),
        (lambda a: a["channels"]["team_webhook"].update(url_env="https://hooks.example/x"), "url_env"),
        (lambda a: a["channels"]["team_webhook"].update(url="https://hooks.example/x"), "unknown field"),
        (lambda a: a["channels"]["team_webhook"].update(type="pager"), "'email', 'webhook'"),
        (lambda a: a["routes"].update(info=[]) or a["routes"].update(page=[], ticket=[]), "receive no severity"),
    ],
)
def test_a_bad_alerts_section_names_the_field_and_what_is_valid(tmp_path, change, expected):
    alerts = _demo_alerts()
    change(alerts)
    with pytest.raises(SpecError) as failed:
        load_spec(_write_spec(tmp_path, alerts))
    assert expected in str(failed.value)
    assert str(tmp_path / "credit_risk.yaml") in str(failed.value)


def test_a_spec_without_alerts_loads(tmp_path):
    assert load_spec(_write_spec(tmp_path, None)).alerts is None


def test_a_channel_whose_variable_is_unset_is_skipped_saying_which(demo_spec):
    ready, skipped = configure_channels(demo_spec.alerts, {})
    assert ready == {}
    assert any("oncall_email (email) skipped" in line and "NIGHTSHIFT_SMTP_HOST unset" in line for line in skipped)
    assert any("team_webhook (webhook) skipped" in line and "NIGHTSHIFT_ALERT_WEBHOOK_URL" in line for line in skipped)


def test_channels_come_from_the_environment_or_a_connection(demo_spec):
    environ = {
        "NIGHTSHIFT_SMTP_HOST": "mail.local",
        "NIGHTSHIFT_SMTP_PORT": "2525",
        "NIGHTSHIFT_ALERT_WEBHOOK_URL": "http://h/x",
    }
    ready, skipped = configure_channels(demo_spec.alerts, environ)
    email = ready["oncall_email"]
    assert isinstance(email, EmailNotifier) and (email.host, email.port, email.to) == (
        "mail.local",
        2525,
        ["risk-oncall@example.com"],
    )
    assert isinstance(ready["team_webhook"], WebhookNotifier) and skipped == []
    channel = demo_spec.alerts.channels["oncall_email"].model_copy(update={"connection": "smtp_default"})
    built = EmailNotifier.configure("mail", channel, environ, {"host": "relay.corp", "port": 587, "login": "bot"})
    assert isinstance(built, EmailNotifier) and (built.host, built.port, built.user) == ("relay.corp", 587, "bot")


def test_a_bad_port_or_url_is_an_error_naming_the_variable(demo_spec):
    with pytest.raises(ValueError, match="NIGHTSHIFT_SMTP_PORT='smtp' is not a port number"):
        configure_channels(demo_spec.alerts, {"NIGHTSHIFT_SMTP_HOST": "h", "NIGHTSHIFT_SMTP_PORT": "smtp"})
    with pytest.raises(ValueError, match="NIGHTSHIFT_ALERT_WEBHOOK_URL must start with http"):
        configure_channels(demo_spec.alerts, {"NIGHTSHIFT_ALERT_WEBHOOK_URL": "hooks.example/x"})


def _context(demo_spec, backfill: bool = False) -> Context:
    links = {"run's pages": "http://ui/nightshift/runs/credit_risk_nightly/scheduled__2026-10-05"}
    return Context("credit_risk", demo_spec.alerts, "2026-10-05", "scheduled__2026-10-05", backfill, links)


SUMMARY = {
    "model_version": "3",
    "drift_share": 0.4,
    "dataset_drift": True,
    "critical_drifted": ["credit_score"],
    "features": [
        {
            "feature": "credit_score",
            "method": "wasserstein",
            "threshold": 0.1,
            "score": 0.3512,
            "drifted": True,
            "critical": True,
        },
        {"feature": "age", "method": "psi", "threshold": 0.1, "score": 0.1875, "drifted": True, "critical": False},
        {"feature": "purpose", "method": "psi", "threshold": 0.1, "score": 0.01, "drifted": False, "critical": False},
    ],
    "prediction": {"method": "psi", "threshold": 0.1, "score": 0.02, "drifted": False},
    "data_quality": {"features": [{"feature": "age", "flagged": True, "reasons": ["age: 3.0% of values outside"]}]},
}


def test_the_drift_message_names_the_features_scores_night_and_runbook(demo_spec):
    note = messages.drift_note(_context(demo_spec), SUMMARY)
    assert note is not None and note.event == Event.DRIFT and note.severity == Severity.TICKET
    assert note.title == "drift on credit_score, age"
    assert "credit_score (critical): wasserstein 0.3512 > threshold 0.1" in note.body
    assert "age: psi 0.1875" in note.body and "purpose" not in note.body
    assert "2 of 3 features drifted (share 40.0%, dataset drift)" in note.body
    assert note.runbook == "docs/runbook.md#drift"
    assert note.facts["drifted"] == {"credit_score": 0.3512, "age": 0.1875}
    assert note.night == "2026-10-05" and note.model == "credit_risk"
    quiet = {**SUMMARY, "dataset_drift": False, "critical_drifted": []}
    assert messages.drift_note(_context(demo_spec), quiet) is None


def test_a_replayed_night_s_drift_is_info_and_says_why(demo_spec):
    note = messages.drift_note(_context(demo_spec, backfill=True), SUMMARY)
    assert note is not None and note.severity == Severity.INFO
    assert "Run by a backfill" in note.body


def test_the_data_quality_message_gives_the_bad_row_share_and_flags(demo_spec):
    note = messages.quality_note(_context(demo_spec), {"rows": 2000, "quarantined": 50}, SUMMARY)
    assert note is not None and note.severity == Severity.TICKET
    assert "50 of 2000 rows quarantined (bad-row share 2.50%)" in note.body
    assert "age: 3.0% of values outside" in note.body
    assert note.facts["bad_row_share"] == 0.025 and note.runbook == "docs/runbook.md#data-quality"
    clean = {**SUMMARY, "data_quality": {"features": []}}
    assert messages.quality_note(_context(demo_spec), {"rows": 2000, "quarantined": 0}, clean) is None
    routine = messages.quality_note(_context(demo_spec), {"rows": 2000, "quarantined": 40}, clean)
    assert routine is None, "2% quarantined is not above the default quarantine_share of 2%"
    above = messages.quality_note(_context(demo_spec), {"rows": 2000, "quarantined": 41}, clean)
    assert above is not None and "41 of 2000 rows quarantined" in above.body and note.severity == Severity.TICKET


def test_the_performance_message_gives_the_metric_against_the_holdout(demo_spec):
    result = {
        "measured": [
            {
                "dt": "2026-10-04",
                "basis": "realized",
                "value": 0.71,
                "degraded": True,
                "page_key": "reports/p.html",
                "reason": "roc_auc realized 0.7100 vs holdout 0.8000: +0.0900 worse, degraded (tolerance 0.05)",
            },
            {"dt": "2026-10-05", "basis": "estimated", "value": 0.79, "degraded": False, "reason": "fine"},
        ]
    }
    notes = messages.performance_notes(_context(demo_spec), result)
    assert len(notes) == 1 and notes[0].severity == Severity.PAGE and notes[0].key == "2026-10-04"
    assert "roc_auc realized 0.7100 vs holdout 0.8000" in notes[0].body
    assert "Measured by tonight's run (2026-10-05)" in notes[0].body
    assert notes[0].links["performance page"].endswith("/nightshift/store/reports/p.html")


def test_retrain_promotion_refusal_and_rollback_messages(demo_spec):
    decision = {
        "requested": True,
        "fired": ["drift"],
        "reasons": ["2 of the last 3 nights drifted"],
        "drifted_features": {},
    }
    retrain = messages.retrain_note(_context(demo_spec), decision)
    assert (
        retrain is not None and retrain.severity == Severity.INFO and "2 of the last 3 nights drifted" in retrain.body
    )
    assert messages.retrain_note(_context(demo_spec), {"requested": False}) is None
    evaluation = {
        "candidate_version": "4",
        "champion_version": "3",
        "candidate": {"metric": "roc_auc", "value": 0.83},
        "champion": {"metric": "roc_auc", "value": 0.8},
    }
    promoted = messages.decision_note(
        _context(demo_spec), {"action": "promote", "champion": "4", "reasons": ["+0.03"]}, evaluation
    )
    assert promoted.event == Event.PROMOTED and promoted.title == "version 4 promoted to champion (was 3)"
    assert "roc_auc: candidate 0.8300 vs champion 0.8000" in promoted.body
    refused = messages.decision_note(
        _context(demo_spec), {"action": "refuse", "champion": "3", "reasons": ["gain 0.001 < 0.005"]}, evaluation
    )
    assert (
        refused.event == Event.REFUSED and refused.severity == Severity.TICKET and "gain 0.001 < 0.005" in refused.body
    )
    rolled = messages.rollback_note(_context(demo_spec), {"champion": "3", "previous": "4"}, "bad slice")
    assert rolled.severity == Severity.PAGE and rolled.title == "champion rolled back from version 4 to 3"
    assert rolled.runbook == "docs/runbook.md#rolled-back"


def test_the_failure_message_names_the_task_try_error_and_log(demo_spec):
    failure = {
        "dag_id": "credit_risk_nightly",
        "task_id": "commit_validation",
        "map_index": -1,
        "try_number": 3,
        "error": "AirflowFailException: 12% bad rows, over the 5% limit",
        "log_url": "http://ui/dags/credit_risk_nightly/runs/r/tasks/commit_validation?try_number=3",
    }
    note = messages.failure_note(_context(demo_spec), failure)
    assert (
        note.severity == Severity.PAGE
        and note.title == "task commit_validation of credit_risk_nightly failed (try 3, no retries left)"
    )
    assert "12% bad rows" in note.body and note.links["task log"] == failure["log_url"]
    assert note.key == "credit_risk_nightly.commit_validation#3"
    assert model_of("credit_risk_nightly") == "credit_risk" and model_of("other_dag") is None


def test_the_email_has_a_text_and_an_html_part_and_the_webhook_a_text_field(demo_spec):
    note = messages.drift_note(_context(demo_spec), SUMMARY)
    assert note is not None
    message = build_message(note, "nightshift@example.com", ["a@example.com"])
    assert message["Subject"] == subject(note) == "[TICKET] credit_risk 2026-10-05: drift on credit_score, age"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and rich is not None
    text, html = plain.get_content(), rich.get_content()
    assert "Runbook: docs/runbook.md#drift" in text and "credit_score (critical)" in text
    assert '<a href="docs/runbook.md#drift">' in html and "credit_score (critical)" in html and "<style>" in html
    body = payload(note)
    assert body["text"].startswith("[TICKET] credit_risk 2026-10-05") and body["severity"] == "ticket"
    assert body["facts"]["drifted"]["age"] == 0.1875


def test_every_event_s_runbook_section_exists():
    import re

    headings = re.findall(r"^## (.+)$", (PROJECT / "docs" / "runbook.md").read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}
    assert set(messages.RUNBOOK_SECTIONS.values()) <= anchors, anchors
    assert set(messages.RUNBOOK_SECTIONS) == set(Event)


def test_every_task_alerts_its_final_failure_and_not_its_retries():
    from nightshift.dag_defaults import alert_failure, default_args

    args = default_args("team", retries=2)
    assert args["on_failure_callback"] is alert_failure and "on_retry_callback" not in args
