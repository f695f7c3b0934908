"""The season summary: what the nightly runs did, read back from the warehouse and the object store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from nightshift.config import Settings, get_spec
from nightshift.stages.drift.verdict import night_drifted
from nightshift.stores import warehouse
from nightshift.stores.objects import open_store


def season_summary(config: Settings, model: str) -> dict[str, Any]:
    engine = warehouse.connect(config.warehouse_url)
    store = open_store(config.store_uri)

    def by_date(table: sa.Table) -> list[dict[str, Any]]:
        query = sa.select(table).where(table.c.model == model).order_by(table.c.dt)
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    validations = by_date(warehouse.validation_runs)
    nights = by_date(warehouse.drift_nights)
    decisions = by_date(warehouse.retrain_decisions)
    scored = _scored_by_alias(engine, model)
    ledger = warehouse.ledger(engine, model)
    backlog = warehouse.backlog(engine, model)
    return {
        "model": model,
        "nights_run": len(validations),
        "nights_failed_validation": [str(row["dt"]) for row in validations if not row["passed"]],
        "rows_received": sum(row["rows"] for row in validations),
        "rows_quarantined": sum(row["quarantined_rows"] for row in validations),
        "rows_scored": {alias: count for alias, count, _ in scored},
        "nights_scored": {alias: days for alias, _, days in scored},
        **_backlog_nights(backlog),
        "nights_with_drift_report": len(nights),
        "nights_drifted": [
            str(row["dt"])
            for row in nights
            if night_drifted({**row, "critical_drifted": row["critical_drifted"] != "[]"})
        ],
        "backfill_nights": [
            {"dt": str(row["dt"]), "decision": row["decision"]} for row in decisions if row["run_type"] == "backfill"
        ],
        "retrain_requests": _retrain_requests(engine, model),
        "refused_batches": _refused_batches(engine, model),
        "alerts_sent": _alerts_sent(warehouse.alerts_sent_rows(engine, model)),
        "performance": _performance_nights(by_date(warehouse.performance_nights)),
        "performance_tolerance": get_spec(model, config.models_dir).performance.tolerance,
        "ledger": [_ledger_entry(row) for row in ledger],
        "drift_index": store.url_for(f"reports/drift/{model}/index.html"),
    }


def _retrain_requests(engine: sa.Engine, model: str) -> list[dict[str, Any]]:
    """Every run's retrain request, oldest night first, with the rules that fired it (none: the first training),
    from `night_runs`: a request stays listed after a backfill replaced its night's current decision."""
    requests = [
        {
            "dt": str(row["dt"]),
            "decision": row["details"].get("decision"),
            "fired": [name for name, rule in (row["details"].get("rules") or {}).items() if rule.get("fired")],
            "run_id": row["run_id"],
        }
        for row in warehouse.night_runs(engine, model)
        if row["stage"] == "decision" and row["details"].get("requested")
    ]
    return sorted(requests, key=lambda request: request["dt"])


def _alerts_sent(deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """The alerts sent (one per event, night, run and key, whatever the channels), by severity and event, with the
    deliveries per channel and the first night of each event."""
    alerts: dict[tuple[Any, ...], dict[str, Any]] = {}
    channels: dict[str, int] = {}
    for row in deliveries:
        alerts.setdefault((row["event"], row["dt"], row["run_id"], row["key"]), row)
        channels[row["channel"]] = channels.get(row["channel"], 0) + 1
    by_severity: dict[str, dict[str, dict[str, Any]]] = {}
    for row in alerts.values():
        event = by_severity.setdefault(row["severity"], {}).setdefault(row["event"], {"count": 0, "first": None})
        event["count"] += 1
        event["first"] = min(filter(None, (event["first"], str(row["dt"]))))
    return {"alerts": len(alerts), "deliveries": channels, "by_severity": by_severity}


def _refused_batches(engine: sa.Engine, model: str) -> list[dict[str, Any]]:
    """Every run whose batch validation refused, oldest night first, and whether the night has passed since (a rerun
    on a repaired drop), from `night_runs`: the current `validation_runs` row keeps only the last run."""
    history = [row for row in warehouse.night_runs(engine, model) if row["stage"] == "validation"]
    passed_later = {(row["dt"], row["id"]) for row in history if row["details"].get("passed")}
    refused = [
        {
            "dt": str(row["dt"]),
            "run_id": row["run_id"],
            "bad_row_share": row["details"].get("bad_row_share"),
            "message": row["details"].get("message"),
            "repaired": any(day == row["dt"] and later > row["id"] for day, later in passed_later),
        }
        for row in history
        if not row["details"].get("passed")
    ]
    return sorted(refused, key=lambda batch: batch["dt"])


def _performance_nights(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The champion's performance per night: the rule's metric estimated (with its band) and realized (coverage)."""
    return [
        {
            "dt": str(row["dt"]),
            "version": row["model_version"],
            "metric": row["metric"],
            "reference": row["reference"],
            "estimated": row["estimated"],
            "lower": row["estimated_lower"],
            "upper": row["estimated_upper"],
            "realized": row["realized"],
            "coverage": row["coverage"],
            "basis": row["basis"],
            "degraded": row["degraded"],
            "concept_drift": row["concept_drift"],
        }
        for row in rows
        if row["alias"] == "champion"
    ]


def _scored_by_alias(engine: sa.Engine, model: str) -> Sequence[sa.Row[str, int, int]]:
    """(alias, predictions, nights) for each alias that scored the model."""
    predictions = warehouse.predictions
    with engine.connect() as connection:
        return connection.execute(
            sa.select(predictions.c.alias, sa.func.count(), sa.func.count(sa.distinct(predictions.c.dt)))
            .where(predictions.c.model == model)
            .group_by(predictions.c.alias)
        ).all()


def _backlog_nights(backlog: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The nights still unscored (why, and the command) and the nights a later champion scored."""
    return {
        "nights_unscored": [
            {"dt": str(row["dt"]), "reason": row["reason"], "command": row["command"]}
            for row in backlog
            if row["status"] == warehouse.UNSCORED
        ],
        "nights_scored_late": [
            {"dt": str(row["dt"]), "version": row["scored_version"], "run_id": row["scored_run_id"]}
            for row in backlog
            if row["status"] == warehouse.SCORED
        ],
    }


def _ledger_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as the summary shows it."""
    return {
        "action": row["action"],
        "as_of": str(row["as_of"]) if row["as_of"] else None,
        "candidate_version": row["candidate_version"],
        "previous_version": row["previous_version"],
        "champion_after": row["champion_after"],
        "metric": row["metric"],
        "candidate_score": row["candidate_score"],
        "champion_score": row["champion_score"],
        "reasons": row["reasons"],
        "actor": row["actor"],
    }


def format_summary(summary: dict[str, Any]) -> str:
    def score(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        f"nightshift season summary: {summary['model']}",
        f"  nights run:              {summary['nights_run']}"
        + (
            f" (failed validation: {', '.join(summary['nights_failed_validation'])})"
            if summary["nights_failed_validation"]
            else ""
        ),
        *_refused_lines(summary.get("refused_batches") or []),
        f"  rows received:           {summary['rows_received']}",
        f"  rows quarantined:        {summary['rows_quarantined']}",
        "  rows scored:             "
        + (
            ", ".join(
                f"{alias} {count} over {summary['nights_scored'][alias]} nights"
                for alias, count in summary["rows_scored"].items()
            )
            or "none"
        ),
        *_backlog_lines(summary),
        f"  drift reports:           {summary['nights_with_drift_report']} nights",
        f"  nights with drift:       {len(summary['nights_drifted'])} ({', '.join(summary['nights_drifted']) or 'none'})",
        f"  retrain requests:        {len(summary['retrain_requests'])} ({_requests(summary['retrain_requests'])})",
        *_performance_lines(summary.get("performance") or [], summary.get("performance_tolerance")),
    ]
    if summary["backfill_nights"]:
        lines.append(
            "  backfilled nights:       "
            + ", ".join(f"{row['dt']} ({row['decision']})" for row in summary["backfill_nights"])
        )
    promotions = [row for row in summary["ledger"] if row["action"] == "promote"]
    refusals = [row for row in summary["ledger"] if row["action"] == "refuse"]
    lines.append(f"  promotions:              {len(promotions)}")
    lines.append(f"  refusals:                {len(refusals)}")
    lines.append("  ledger:")
    for row in summary["ledger"]:
        lines.append(
            f"    {row['action']:<8} v{row['candidate_version']} over v{row['previous_version'] or '-'} as of {row['as_of'] or '-'}: "
            f"{row['metric'] or ''} candidate {score(row['candidate_score'])} vs champion {score(row['champion_score'])}"
            f" -> champion v{row['champion_after'] or '-'} ({row['actor']})"
        )
        for reason in row["reasons"]:
            lines.append(f"             - {reason}")
    lines.extend(_alert_lines(summary.get("alerts_sent")))
    lines.append(f"  drift index:             {summary['drift_index']}")
    return "\n".join(lines)


def _alert_lines(sent: dict[str, Any] | None) -> list[str]:
    """How many alerts went out, per severity and event (with the first night of each), and per channel."""
    if not sent or not sent["alerts"]:
        return ["  alerts sent:             none"]
    order = {"page": 0, "ticket": 1, "info": 2}
    groups = [
        f"{severity}: "
        + ", ".join(f"{event} {item['count']} (first {item['first']})" for event, item in sorted(events.items()))
        for severity, events in sorted(sent["by_severity"].items(), key=lambda pair: order.get(pair[0], 9))
    ]
    channels = ", ".join(f"{channel} {count}" for channel, count in sorted(sent["deliveries"].items()))
    return [
        f"  alerts sent:             {sent['alerts']} ({sum(sent['deliveries'].values())} deliveries: {channels})",
        *(f"    {group}" for group in groups),
    ]


def _refused_lines(batches: list[dict[str, Any]]) -> list[str]:
    """The batches validation refused: night, bad-row share, and whether a rerun on a repaired drop passed."""
    if not batches:
        return []

    def one(batch: dict[str, Any]) -> str:
        share = batch["bad_row_share"]
        figure = f"{share:.1%} bad rows" if isinstance(share, int | float) else "refused"
        return f"{batch['dt']} {figure}, " + ("repaired and rerun" if batch["repaired"] else "not repaired yet")

    return [f"  refused batches:         {len(batches)} ({'; '.join(one(batch) for batch in batches)})"]


def _requests(requests: list[dict[str, Any]]) -> str:
    """Each request's date and the rules that fired it (none: the first training)."""
    return (
        ", ".join(f"{row['dt']} {'+'.join(row.get('fired') or []) or 'first training'}" for row in requests) or "none"
    )


def _performance_lines(nights: list[dict[str, Any]], tolerance: float | None) -> list[str]:
    """One line per scored night: the rule's metric estimated [band] and realized (label coverage), and which of the
    two was worse than the version's holdout figure by more than the tolerance."""
    from nightshift.stages.performance.judge import worse_by

    if not nights:
        return []

    def figure(value: float | None) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    def worse(night: dict[str, Any], key: str) -> bool:
        value, reference = night[key], night["reference"]
        return (
            value is not None
            and reference is not None
            and worse_by(night["metric"], value, reference) > (tolerance or 0)
        )

    metric = nights[-1]["metric"]
    lines = [f"  performance ({metric}; est [95% band] when scored, real once labelled, vs the version's holdout):"]
    for night in nights:
        band = f"[{figure(night['lower'])}-{figure(night['upper'])}]" if night["lower"] is not None else " " * 13
        coverage = f"({night['coverage']:.0%})" if night["realized"] is not None else ""
        flagged = [name for name, key in (("est", "estimated"), ("real", "realized")) if worse(night, key)]
        marks = [
            f"DEGRADED ({' and '.join(flagged)})" if night["degraded"] and flagged else "",
            "concept drift" if night["concept_drift"] else "",
        ]
        lines.append(
            f"    {night['dt']} v{night['version']:<3} est {figure(night['estimated'])} {band}  "
            f"real {figure(night['realized'])} {coverage:<6} holdout {figure(night['reference'])}  "
            + " ".join(mark for mark in marks if mark)
        )
    return [line.rstrip() for line in lines]


def _backlog_lines(summary: dict[str, Any]) -> list[str]:
    """The nights scored late and the nights still unscored (with why and the command), when there are any."""
    lines = []
    late = summary.get("nights_scored_late") or []
    if late:
        versions = ", ".join(sorted({f"v{row['version']}" for row in late}))
        lines.append(
            f"  scored late:             {len(late)} nights ({', '.join(row['dt'] for row in late)}) by champion {versions}"
        )
    unscored = summary.get("nights_unscored") or []
    if unscored:
        reasons = "; ".join(sorted({row["reason"] for row in unscored}))
        commands = " or ".join(sorted({row["command"] for row in unscored}))
        lines.append(
            f"  unscored nights:         {len(unscored)} ({', '.join(row['dt'] for row in unscored)}): {reasons}; "
            f"score them with: {commands}"
        )
    return lines
