"""Send a run's alerts: build its messages, route each by severity to the spec's channels, skip what was delivered.

Each delivery is recorded in the warehouse's `alerts_sent`, keyed on (model, night, event, run, key, channel), before
the next one is tried, so a retried alert task sends only what did not go out. A channel whose address variable is
unset is skipped with a log line; a configured channel that fails raises NotifyFailed (the task fails and retries; the
night's outputs stay). A spec without `alerts` sends nothing and logs so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from nightshift import links
from nightshift.alert_rules import Alerts
from nightshift.alerting import messages
from nightshift.alerting.messages import Context
from nightshift.config import ModelSpec, get_spec, settings
from nightshift.notifiers import CHANNELS, Notification, Notifier, NotifyFailed
from nightshift.runs import RunInfo

logger = logging.getLogger(__name__)
ConnectionGetter = Callable[[str], Mapping[str, Any] | None]


def configure_channels(
    alerts: Alerts, environ: Mapping[str, str], connection: ConnectionGetter | None = None
) -> tuple[dict[str, Notifier], list[str]]:
    """The spec's channels that have an address, by name, and why each other one is skipped."""
    ready: dict[str, Notifier] = {}
    skipped: list[str] = []
    for name, channel in alerts.channels.items():
        fields = connection(channel.connection) if connection and channel.connection else None
        built = CHANNELS[channel.type].configure(name, channel, environ, fields)
        if isinstance(built, str):
            skipped.append(built)
        else:
            ready[name] = built
    return ready, skipped


def dispatch(
    spec: ModelSpec,
    day: dt.date,
    run_id: str,
    notifications: Sequence[Notification],
    connection: ConnectionGetter | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Deliver each notification to the channels its severity routes to, once per run; raise NotifyFailed at the end
    if a channel failed (every other delivery is made and recorded first)."""
    from nightshift.stores import warehouse

    if spec.alerts is None:
        logger.info("%s: the spec has no alerts section; %d alert(s) not sent", spec.name, len(notifications))
        return {"sent": [], "already_sent": [], "skipped": ["no alerts section in the spec"]}
    ready, skipped = configure_channels(spec.alerts, os.environ if environ is None else environ, connection)
    for reason in skipped:
        logger.info("%s: %s", spec.name, reason)
    if not notifications or not ready:
        logger.info(
            "%s %s: %d alert(s), %d channel(s) ready: nothing sent", spec.name, day, len(notifications), len(ready)
        )
        return {"sent": [], "already_sent": [], "skipped": skipped}
    engine = warehouse.connect(settings().warehouse_url)
    done = warehouse.delivered(engine, spec.name, day, run_id)
    sent, already, failures = [], [], []
    for note in notifications:
        for name in spec.alerts.channels_for(note.severity):
            label = f"{note.event}{'/' + note.key if note.key else ''} -> {name} ({note.severity})"
            if (str(note.event), note.key, name) in done:
                logger.info("%s: already delivered by an earlier try, not resent: %s", spec.name, label)
                already.append(label)
            elif name in ready:
                cause = _deliver(ready[name], note)
                if cause is not None:
                    failures.append((name, note, cause))
                    continue
                warehouse.record_alert(engine, _row(spec.name, day, run_id, note, name))
                logger.info("%s: alert sent: %s", spec.name, label)
                sent.append(label)
    if failures:
        raise NotifyFailed(failures)
    return {"sent": sent, "already_sent": already, "skipped": skipped}


def _deliver(notifier: Notifier, note: Notification) -> str | None:
    """Send one notification; the cause when the channel could not deliver it."""
    try:
        notifier.send(note)
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


def _row(model: str, day: dt.date, run_id: str, note: Notification, channel: str) -> dict[str, Any]:
    return {
        "model": model,
        "dt": day,
        "event": str(note.event),
        "run_id": run_id,
        "key": note.key,
        "channel": channel,
        "severity": str(note.severity),
        "title": note.title[:2000],
        "sent_at": dt.datetime.now(dt.UTC),
    }


def alert_context(spec: ModelSpec, day: str, run: RunInfo, dag_id: str) -> Context | None:
    if spec.alerts is None:
        return None
    page = {"run's pages": links.run_page_url(dag_id, run.run_id), "model index": links.model_index_url(spec.name)}
    return Context(spec.name, spec.alerts, day, run.run_id, run.is_backfill, page)


def night_notifications(
    spec: ModelSpec,
    day: str,
    run: RunInfo,
    results: Mapping[str, dict[str, Any] | None],
) -> list[Notification]:
    """A finished night's alerts from its `validated`, `drift`, `performance` and `decision` results."""
    from nightshift.stages.night import night
    from nightshift.stores.objects import read_json

    context = alert_context(spec, day, run, f"{spec.name}_nightly")
    if context is None:
        return []
    current = night(spec.name, day)
    drift_result = results.get("drift") or {}
    summary = read_json(current.store, drift_result["summary_key"]) if drift_result.get("summary_key") else None
    found: list[Notification | None] = []
    if summary is not None:
        report = drift_result["summary_key"].rsplit("/", 1)[0] + "/report.html"
        drift_context = replace(context, links={"drift report": links.store_page_url(report), **context.links})
        found.append(messages.drift_note(drift_context, summary))
    found.append(messages.quality_note(context, results.get("validated"), summary))
    found += messages.performance_notes(context, _with_page_keys(spec.name, results.get("performance")))
    found.append(messages.retrain_note(context, results.get("decision")))
    return [item for item in found if item is not None]


def _with_page_keys(model: str, performance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The performance result with each measured night's page as a store key (for the plugin's link)."""
    from nightshift.stages.night import night
    from nightshift.stages.performance.tasks import performance_prefix
    from nightshift.stores.objects.partitions import partition_file

    if not performance:
        return performance
    measured = []
    for item in performance.get("measured") or []:
        if item.get("degraded"):
            store = night(model, item["dt"]).store
            with contextlib.suppress(FileNotFoundError):
                page = partition_file(store, performance_prefix(model, item["dt"]), "performance.html")
                item = {**item, "page_key": page}
        measured.append(item)
    return {**performance, "measured": measured}


def night_alerts(
    model: str,
    day: str,
    run: RunInfo,
    results: Mapping[str, dict[str, Any] | None],
    connection: ConnectionGetter | None = None,
) -> dict[str, Any]:
    """The nightly DAG's `alert` task: the night's drift, data quality, performance and retrain-request alerts."""
    spec = get_spec(model, settings().models_dir)
    notes = night_notifications(spec, day, run, results)
    return dispatch(spec, dt.date.fromisoformat(day), run.run_id, notes, connection)


def decision_alert(
    model: str,
    outcome: dict[str, Any],
    evaluation: dict[str, Any],
    run: RunInfo,
    connection: ConnectionGetter | None = None,
) -> dict[str, Any]:
    """The retrain DAG's alert: the promotion or the refusal, keyed on the training set's as-of date."""
    spec = get_spec(model, settings().models_dir)
    context = alert_context(spec, str(evaluation["as_of"]), run, f"{model}_retrain")
    notes = [messages.decision_note(context, outcome, evaluation)] if context else []
    return dispatch(spec, dt.date.fromisoformat(str(evaluation["as_of"])), run.run_id, notes, connection)


def rollback_alert(
    model: str,
    outcome: dict[str, Any],
    reason: str,
    run: RunInfo,
    day: str,
    connection: ConnectionGetter | None = None,
) -> dict[str, Any]:
    """The rollback DAG's alert: `champion` moved back, keyed on the run's date."""
    spec = get_spec(model, settings().models_dir)
    context = alert_context(spec, day, run, f"{model}_rollback")
    notes = [messages.rollback_note(context, outcome, reason)] if context else []
    return dispatch(spec, dt.date.fromisoformat(day), run.run_id, notes, connection)


def alerts_sent(model: str) -> list[dict[str, Any]]:
    """Every alert delivered for `model` (event, night, channel, severity, title, run, when), from the warehouse."""
    from nightshift.stores import warehouse

    return warehouse.alerts_sent_rows(warehouse.connect(settings().warehouse_url), model)
