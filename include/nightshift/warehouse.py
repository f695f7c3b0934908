"""What people query and trend: predictions, validation runs, drift, retrain requests, the promotion ledger.

SQLite on the embedded default, Postgres in production: the same SQLAlchemy Core code. Every write for
a night replaces that night's rows in one transaction, so reruns never duplicate.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("dt", sa.Date, nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("alias", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Index("ix_predictions_model_dt_alias", "model", "dt", "alias"),
)

validation_runs = sa.Table(
    "validation_runs",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("accepted_rows", sa.Integer, nullable=False),
    sa.Column("quarantined_rows", sa.Integer, nullable=False),
    sa.Column("bad_row_share", sa.Float, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("result_uri", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
)

drift_metrics = sa.Table(
    "drift_metrics",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("critical", sa.Boolean, nullable=False),
    sa.Column("model_version", sa.String(32)),
)

drift_nights = sa.Table(
    "drift_nights",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("model_version", sa.String(32)),
    sa.Column("drift_share", sa.Float, nullable=False),
    sa.Column("dataset_drift", sa.Boolean, nullable=False),
    sa.Column("drifted_features", sa.Text, nullable=False),
    sa.Column("critical_drifted", sa.Text, nullable=False),
    sa.Column("prediction_drifted", sa.Boolean),
    sa.Column("report_uri", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
)

retrain_decisions = sa.Table(
    "retrain_decisions",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("requested", sa.Boolean, nullable=False),
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("report_uri", sa.Text),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("run_type", sa.String(32), nullable=False),
)

promotion_ledger = sa.Table(
    "promotion_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("as_of", sa.Date),
    sa.Column("candidate_version", sa.String(32)),
    sa.Column("previous_version", sa.String(32)),
    sa.Column("champion_after", sa.String(32)),
    sa.Column("metric", sa.String(32)),
    sa.Column("candidate_score", sa.Float),
    sa.Column("champion_score", sa.Float),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model", "run_id", "action", name="uq_ledger_run"),
)


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or written; the message names it and what to check."""


def connect(url: str) -> Engine:
    connect_args = {"timeout": 60} if url.startswith("sqlite") else {}
    engine = sa.create_engine(url, connect_args=connect_args)
    try:
        metadata.create_all(engine)
    except sa.exc.OperationalError as exc:
        raise WarehouseError(
            f"warehouse {engine.url.render_as_string(hide_password=True)}: cannot connect or create tables "
            f"({exc.orig}); check that the server is up and the URL in NIGHTSHIFT_WAREHOUSE_URL is right"
        ) from None
    return engine


def _replace(engine: Engine, table: sa.Table, where: Sequence[Any], rows: Iterable[dict[str, Any]]) -> int:
    """Delete the rows matching `where` and insert `rows`, in one transaction."""
    count = 0
    with engine.begin() as connection:
        connection.execute(table.delete().where(*where))
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 20_000:
                connection.execute(table.insert(), batch)
                count += len(batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
            count += len(batch)
    return count


def replace_predictions(engine: Engine, model: str, day: dt.date, rows: Iterable[dict[str, Any]]) -> int:
    """Replace all predictions of one model and night (every alias) with `rows`."""
    return _replace(engine, predictions, [predictions.c.model == model, predictions.c.dt == day], rows)


def record_validation(engine: Engine, row: dict[str, Any]) -> None:
    t = validation_runs
    _replace(engine, t, [t.c.model == row["model"], t.c.dt == row["dt"]], [row])


def record_drift(engine: Engine, night: dict[str, Any], features: list[dict[str, Any]]) -> None:
    """Replace one night's drift summary and per-feature metrics together."""
    model, day = night["model"], night["dt"]
    with engine.begin() as connection:
        connection.execute(drift_metrics.delete().where(drift_metrics.c.model == model, drift_metrics.c.dt == day))
        connection.execute(drift_nights.delete().where(drift_nights.c.model == model, drift_nights.c.dt == day))
        connection.execute(drift_nights.insert(), [night])
        if features:
            connection.execute(drift_metrics.insert(), features)


def record_retrain_decision(engine: Engine, row: dict[str, Any]) -> None:
    t = retrain_decisions
    _replace(engine, t, [t.c.model == row["model"], t.c.dt == row["dt"]], [row])


def append_ledger(engine: Engine, row: dict[str, Any]) -> None:
    """Append a decision; a retried task that already recorded it replaces its own row, never adds a second."""
    t = promotion_ledger
    row = {**row, "details": json.dumps(row.get("details", {}), sort_keys=True, default=str)}
    row["reasons"] = json.dumps(row.get("reasons", []))
    _replace(engine, t, [t.c.model == row["model"], t.c.run_id == row["run_id"], t.c.action == row["action"]], [row])


def drift_history(engine: Engine, model: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    t = drift_nights
    query = sa.select(t).where(t.c.model == model, t.c.dt >= start, t.c.dt <= end).order_by(t.c.dt)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def last_requested(engine: Engine, model: str, before: dt.date) -> dt.date | None:
    t = retrain_decisions
    query = sa.select(sa.func.max(t.c.dt)).where(t.c.model == model, t.c.requested.is_(True), t.c.dt < before)
    with engine.connect() as connection:
        value = connection.execute(query).scalar()
    return value


def ledger(engine: Engine, model: str) -> list[dict[str, Any]]:
    t = promotion_ledger
    query = sa.select(t).where(t.c.model == model).order_by(t.c.id)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
        row["details"] = json.loads(row["details"])
    return rows


def count_rows(engine: Engine, table: sa.Table, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(*(table.c[k] == v for k, v in where.items()))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def fetch_all(engine: Engine, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
    query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
