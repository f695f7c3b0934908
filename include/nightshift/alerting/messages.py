"""Each event's message, from the results the stages and the lifecycle return: what happened, with its figures.

Plain functions of dicts (no store, no warehouse): `nightshift.alerting.tasks` reads what they need and sends what they
return. A message names the model, the night, the figures, the pages (through the plugin) and the runbook section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nightshift import links
from nightshift.alert_rules import Alerts
from nightshift.notifiers.base import Event, Notification

RUNBOOK_SECTIONS: dict[Event, str] = {
    Event.TASK_FAILED: "task-failed",
    Event.DRIFT: "drift",
    Event.DATA_QUALITY: "data-quality",
    Event.PERFORMANCE_DEGRADED: "performance-degraded",
    Event.RETRAIN_REQUESTED: "retrain-requested",
    Event.PROMOTED: "promoted",
    Event.REFUSED: "refused",
    Event.ROLLED_BACK: "rolled-back",
}
"""The runbook's heading anchor for each event (docs/runbook.md)."""


@dataclass(frozen=True)
class Context:
    """Who and when: the model's alerts section, the night, the run and the pages its messages link to."""

    model: str
    alerts: Alerts
    night: str
    run_id: str
    is_backfill: bool = False
    links: dict[str, str] = field(default_factory=dict)


def note(
    context: Context, event: Event, title: str, lines: list[str], facts: dict[str, Any], **extra: Any
) -> Notification:
    """One notification of `event` with its severity, the context's links and its runbook section."""
    if context.is_backfill:
        lines = [*lines, "Run by a backfill: a replayed night, sent as info."]
    return Notification(
        event=event,
        severity=context.alerts.severity(event, context.is_backfill),
        model=context.model,
        title=title,
        body="\n".join(lines),
        night=context.night,
        links={**context.links, **extra.pop("links", {})},
        runbook=links.runbook_url(RUNBOOK_SECTIONS[event]),
        run_id=context.run_id,
        facts=facts,
        key=extra.pop("key", ""),
    )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def drift_note(context: Context, summary: dict[str, Any]) -> Notification | None:
    """Tonight's drift when the spec's drift policy flags it: the drifted features with score and threshold."""
    prediction = summary.get("prediction") or {}
    if not (summary.get("dataset_drift") or summary.get("critical_drifted") or prediction.get("drifted")):
        return None
    drifted = [row for row in summary.get("features") or [] if row.get("drifted")]
    lines = [
        f"{len(drifted)} of {len(summary.get('features') or [])} features drifted (share {_share(summary.get('drift_share'))}"
        f"{', dataset drift' if summary.get('dataset_drift') else ''}) against champion version "
        f"{summary.get('model_version')}'s reference."
    ]
    lines += [
        f"- {row['feature']}{' (critical)' if row.get('critical') else ''}: {row['method']} {row['score']:.4f} "
        f"> threshold {row['threshold']}"
        for row in drifted
    ]
    if prediction.get("drifted"):
        lines.append(
            f"- prediction: {prediction['method']} {prediction['score']:.4f} > threshold {prediction['threshold']}"
        )
    facts = {
        "drift_share": summary.get("drift_share"),
        "dataset_drift": bool(summary.get("dataset_drift")),
        "drifted": {row["feature"]: row["score"] for row in drifted},
        "critical_drifted": list(summary.get("critical_drifted") or []),
        "model_version": summary.get("model_version"),
    }
    names = ", ".join(row["feature"] for row in drifted) or "the prediction"
    return note(context, Event.DRIFT, f"drift on {names}", lines, facts)


def quality_note(
    context: Context, validated: dict[str, Any] | None, summary: dict[str, Any] | None
) -> Notification | None:
    """Rows quarantined tonight and features the data-quality thresholds flag, with their shares and reasons."""
    rows = int((validated or {}).get("rows") or 0)
    quarantined = int((validated or {}).get("quarantined") or 0)
    flagged = [
        item for item in ((summary or {}).get("data_quality") or {}).get("features") or [] if item.get("flagged")
    ]
    share = quarantined / rows if rows else 0.0
    if share <= context.alerts.quarantine_share and not flagged:
        return None
    lines = []
    if quarantined:
        lines.append(f"{quarantined} of {rows} rows quarantined (bad-row share {share:.2%}); the rest were scored.")
    lines += [f"- {reason}" for item in flagged for reason in item.get("reasons") or [item["feature"]]]
    facts = {
        "rows": rows,
        "quarantined": quarantined,
        "bad_row_share": share,
        "flagged": {item["feature"]: item.get("reasons") or [] for item in flagged},
    }
    parts = ([f"{share:.2%} rows quarantined"] if quarantined else []) + (
        [f"{len(flagged)} feature(s) flagged"] if flagged else []
    )
    return note(context, Event.DATA_QUALITY, "data quality: " + ", ".join(parts), lines, facts)


def performance_notes(context: Context, performance: dict[str, Any] | None) -> list[Notification]:
    """One message per measured night the performance rule judges degraded, with the metric against the holdout."""
    found = []
    for item in (performance or {}).get("measured") or []:
        if not item.get("degraded"):
            continue
        lines = [f"Night {item['dt']}: {item.get('reason')}."]
        if item.get("dt") != context.night:
            lines.append(f"Measured by tonight's run ({context.night}) as that night's labels arrived.")
        facts = {"dt": item["dt"], "basis": item.get("basis"), "value": item.get("value"), "reason": item.get("reason")}
        extra_links = {"performance page": links.store_page_url(item["page_key"])} if item.get("page_key") else {}
        title = f"performance degraded ({item.get('basis')}) on night {item['dt']}"
        found.append(
            note(context, Event.PERFORMANCE_DEGRADED, title, lines, facts, key=str(item["dt"]), links=extra_links)
        )
    return found


def retrain_note(context: Context, decision: dict[str, Any] | None) -> Notification | None:
    """Tonight requested a retrain: the rules that fired and their reasons."""
    if not (decision or {}).get("requested"):
        return None
    assert decision is not None
    fired = ", ".join(decision.get("fired") or []) or "a rule"
    lines = [f"The {fired} rule requested a retrain of {context.model}."]
    lines += [f"- {reason}" for reason in decision.get("reasons") or []]
    facts = {
        "fired": list(decision.get("fired") or []),
        "reasons": list(decision.get("reasons") or []),
        "drifted_features": dict(decision.get("drifted_features") or {}),
        "champion_version": decision.get("champion_version"),
    }
    return note(context, Event.RETRAIN_REQUESTED, f"retrain requested ({fired})", lines, facts)


def decision_note(context: Context, outcome: dict[str, Any], evaluation: dict[str, Any]) -> Notification:
    """A retrain's promotion or refusal: the versions, the gate metric's scores and the reasons."""
    promoted = outcome["action"] == "promote"
    candidate, previous = evaluation.get("candidate_version"), evaluation.get("champion_version")
    metric = (evaluation.get("candidate") or {}).get("metric") or evaluation.get("metric") or "metric"
    scores = (
        f"{metric}: candidate {_score(evaluation.get('candidate'))} vs champion {_score(evaluation.get('champion'))}"
    )
    if promoted:
        title = f"version {candidate} promoted to champion (was {previous or 'none'})"
    else:
        title = f"version {candidate} refused; champion stays {outcome.get('champion') or 'none'}"
    lines = [title + ".", scores + " on the same holdout."]
    lines += [f"- {reason}" for reason in outcome.get("reasons") or []]
    facts = {
        "action": outcome["action"],
        "candidate_version": candidate,
        "previous_version": previous,
        "champion": outcome.get("champion"),
        "reasons": list(outcome.get("reasons") or []),
    }
    return note(context, Event.PROMOTED if promoted else Event.REFUSED, title, lines, facts)


def _score(side: dict[str, Any] | None) -> str:
    value = (side or {}).get("value")
    return "none" if value is None else f"{value:.4f}"


def rollback_note(context: Context, outcome: dict[str, Any], reason: str) -> Notification:
    """`champion` moved back: from which version to which, and why."""
    title = f"champion rolled back from version {outcome.get('previous')} to {outcome.get('champion')}"
    lines = [title + ".", f"Reason given: {reason or 'manual rollback'}."]
    facts = {"champion": outcome.get("champion"), "previous": outcome.get("previous"), "reason": reason}
    return note(context, Event.ROLLED_BACK, title, lines, facts)


def failure_note(context: Context, failure: dict[str, Any]) -> Notification:
    """A task that failed after its retries: which, in which run, the error and its log."""
    task = failure["task_id"] + (f"[{failure['map_index']}]" if (failure.get("map_index") or -1) >= 0 else "")
    title = f"task {task} of {failure['dag_id']} failed (try {failure.get('try_number')}, no retries left)"
    lines = [f"{title}.", f"Error: {failure.get('error')}"]
    facts = {key: failure.get(key) for key in ("dag_id", "task_id", "map_index", "try_number", "error")}
    key = f"{failure['dag_id']}.{task}#{failure.get('try_number')}"
    extra_links = {"task log": failure["log_url"]} if failure.get("log_url") else {}
    return note(context, Event.TASK_FAILED, title, lines, facts, key=key, links=extra_links)
