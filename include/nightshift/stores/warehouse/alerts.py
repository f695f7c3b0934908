"""The alerts delivered: what a retried alert task must not send again, and what the demo's summary lists."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores.warehouse.database import _reading, _transaction
from nightshift.stores.warehouse.tables import alerts_sent

DELIVERY_KEY = ("model", "dt", "event", "run_id", "key", "channel")


def delivered(engine: Engine, model: str, day: dt.date, run_id: str) -> set[tuple[str, str, str]]:
    """(event, key, channel) of every alert already delivered for this model, night and run."""
    t = alerts_sent
    query = sa.select(t.c.event, t.c.key, t.c.channel).where(t.c.model == model, t.c.dt == day, t.c.run_id == run_id)
    with _reading(engine, f"reading the alerts sent for {model} {day}") as connection:
        return {(row.event, row.key, row.channel) for row in connection.execute(query)}


def record_alert(engine: Engine, row: dict[str, Any]) -> None:
    """Record one delivery; recording it again replaces the row."""
    t = alerts_sent
    with _transaction(engine, f"recording the {row['event']} alert of {row['model']} {row['dt']}") as connection:
        connection.execute(t.delete().where(*(t.c[name] == row[name] for name in DELIVERY_KEY)))
        connection.execute(t.insert(), [row])


def alerts_sent_rows(engine: Engine, model: str) -> list[dict[str, Any]]:
    """Every alert delivered for `model`, in the order sent."""
    t = alerts_sent
    query = sa.select(t).where(t.c.model == model).order_by(t.c.sent_at, t.c.dt, t.c.event, t.c.channel)
    with _reading(engine, f"reading the alerts sent for {model}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
