"""What each night's runs found: its validation, drift and retrain decision (the current row replaced, and every
run's row appended to `night_runs`, in one transaction) and the reads that trend them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nightshift.stores.warehouse.database import _reading, _transaction
from nightshift.stores.warehouse.tables import (
    STAGES,
    drift_metrics,
    drift_nights,
    night_runs_table,
    retrain_decisions,
    validation_runs,
)

_JSON_TEXT_COLUMNS = frozenset({"drifted_features", "critical_drifted", "reasons", "rules"})
_NIGHT_RUN_KEYS = frozenset({"model", "dt", "run_id", "run_type", "model_version", "report_uri", "result_uri"})


def _night_run(
    stage: str,
    row: dict[str, Any],
    address: str | None,
    run_type: str | None,
    model_version: str | None,
) -> dict[str, Any]:
    """The `night_runs` row for a stage's row: its run and version, the rest of it as JSON `details`."""
    if stage not in STAGES:
        raise ValueError(f"night run stage {stage!r}: expected one of {', '.join(STAGES)}")
    details = {
        key: json.loads(value) if key in _JSON_TEXT_COLUMNS and isinstance(value, str) else value
        for key, value in row.items()
        if key not in _NIGHT_RUN_KEYS
    }
    return {
        "model": row["model"],
        "dt": row["dt"],
        "stage": stage,
        "run_id": row["run_id"],
        "run_type": run_type,
        "model_version": None if model_version is None else str(model_version),
        "details": json.dumps(details, sort_keys=True, default=str),
        "address": address,
        "recorded_at": dt.datetime.now(dt.UTC),
    }


def _replace_current(connection: Connection, table: sa.Table, row: dict[str, Any], history: dict[str, Any]) -> None:
    """Append `history` to `night_runs` and replace the night's current row of `table` with `row`."""
    connection.execute(night_runs_table.insert(), [history])
    connection.execute(table.delete().where(table.c.model == row["model"], table.c.dt == row["dt"]))
    connection.execute(table.insert(), [row])


def record_validation(engine: Engine, row: dict[str, Any], *, run_type: str | None = None) -> None:
    """Replace the night's validation row and append it to `night_runs`, in one transaction."""
    history = _night_run("validation", row, row.get("result_uri"), run_type, None)
    with _transaction(engine, f"recording the validation of {row['model']} {row['dt']}") as connection:
        _replace_current(connection, validation_runs, row, history)


def record_drift(
    engine: Engine, night: dict[str, Any], features: list[dict[str, Any]], *, run_type: str | None = None
) -> None:
    """Replace one night's drift summary and per-feature metrics together, and append the summary to `night_runs`."""
    model, day = night["model"], night["dt"]
    history = _night_run("drift", night, night.get("report_uri"), run_type, night.get("model_version"))
    with _transaction(engine, f"recording the drift of {model} {day}") as connection:
        connection.execute(drift_metrics.delete().where(drift_metrics.c.model == model, drift_metrics.c.dt == day))
        _replace_current(connection, drift_nights, night, history)
        if features:
            connection.execute(drift_metrics.insert(), features)


def record_retrain_decision(engine: Engine, row: dict[str, Any], *, model_version: str | None = None) -> None:
    """Replace the night's retrain decision and append it to `night_runs` (with the champion it saw), together."""
    history = _night_run("decision", row, row.get("report_uri"), row.get("run_type"), model_version)
    with _transaction(engine, f"recording the retrain decision of {row['model']} {row['dt']}") as connection:
        _replace_current(connection, retrain_decisions, row, history)


def append_night_run(
    engine: Engine,
    stage: str,
    row: dict[str, Any],
    *,
    address: str | None = None,
    run_type: str | None = None,
    model_version: str | None = None,
) -> None:
    """Append a night's run that left no current row (a night not measured, say why in `row`) to `night_runs`."""
    history = _night_run(stage, row, address, run_type, model_version)
    with _transaction(engine, f"recording the {stage} run of {row['model']} {row['dt']}") as connection:
        connection.execute(night_runs_table.insert(), [history])


def night_runs(engine: Engine, model: str, day: dt.date | None = None) -> list[dict[str, Any]]:
    """The model's `night_runs` rows (of one night, when given), in the order they were recorded; details decoded."""
    t = night_runs_table
    query = sa.select(t).where(t.c.model == model).order_by(t.c.id)
    if day is not None:
        query = query.where(t.c.dt == day)
    with _reading(engine, f"reading the night runs of {model}") as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["details"] = json.loads(row["details"])
        if row["recorded_at"].tzinfo is None:
            row["recorded_at"] = row["recorded_at"].replace(tzinfo=dt.UTC)
    return rows


def drift_history(engine: Engine, model: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    t = drift_nights
    query = sa.select(t).where(t.c.model == model, t.c.dt >= start, t.c.dt <= end).order_by(t.c.dt)
    with _reading(engine, f"reading the drift history of {model}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def last_requested(engine: Engine, model: str, before: dt.date) -> dt.date | None:
    t = retrain_decisions
    query = sa.select(sa.func.max(t.c.dt)).where(t.c.model == model, t.c.requested.is_(True), t.c.dt < before)
    with _reading(engine, f"reading the retrain requests of {model}") as connection:
        value = connection.execute(query).scalar()
    return value
