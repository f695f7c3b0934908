"""The night's retrain decision: apply the drift and performance policy, record it, and say why."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from nightshift.config import ModelSpec
from nightshift.runs import RunInfo
from nightshift.stages.night import night, open_warehouse
from nightshift.stores.objects import ObjectStore, read_json


def labelled_day_count(store: ObjectStore, spec: ModelSpec, day: dt.date) -> int:
    """Feature dates in the training window whose curated rows and accepted labels have both arrived by `day`."""
    from nightshift.stages.labels.parse import labelled_days

    return len(labelled_days(store, spec, day))


def decide(model: str, day: str, run: RunInfo, drift_result: dict[str, Any] | None) -> dict[str, Any]:
    """Decide, record and return whether tonight requests a retrain, with the reasons for the asset event."""
    from nightshift.lifecycle.policy import decide_retrain
    from nightshift.stores import registry, warehouse

    current = night(model, day)
    spec = current.spec
    engine = open_warehouse(current.settings)
    champion = registry.alias_version(current.settings, model, registry.CHAMPION)
    window_start = current.day - dt.timedelta(days=spec.drift.window_nights - 1)
    history = [
        {**row, "critical_drifted": json.loads(row["critical_drifted"])}
        for row in warehouse.drift_history(engine, model, window_start, current.day)
    ]
    performance_start = current.day - dt.timedelta(days=spec.performance.window_nights - 1)
    performance = warehouse.performance_history(engine, model, performance_start, current.day, alias="champion")
    tonight = None
    if drift_result and "summary_key" in drift_result:
        tonight = read_json(current.store, drift_result["summary_key"])
    decision = decide_retrain(
        spec,
        current.day,
        has_champion=champion is not None,
        labelled_days=labelled_day_count(current.store, spec, current.day),
        history=history,
        tonight=tonight,
        last_request=warehouse.last_requested(engine, model, current.day),
        is_backfill=run.is_backfill,
        performance=performance,
    )
    report = (drift_result or {}).get("report")
    warehouse.record_retrain_decision(
        engine,
        {
            "model": model,
            "dt": current.day,
            "requested": decision.requested,
            "decision": decision.decision,
            "reasons": json.dumps(decision.reasons),
            "rules": json.dumps(decision.rules, default=str) if decision.rules else None,
            "report_uri": report,
            "run_id": run.run_id,
            "run_type": run.run_type,
        },
        model_version=champion.version if champion else None,
    )
    return {
        "model": model,
        "dt": current.dt,
        **decision.as_dict(),
        "report": report,
        "champion_version": champion.version if champion else None,
    }
