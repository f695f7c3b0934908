"""Live performance and data quality per night: each write replaces the night's rows in one transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores.warehouse.database import _reading, _transaction
from nightshift.stores.warehouse.tables import data_quality, performance_metrics, performance_nights


def record_performance(
    engine: Engine, model: str, day: dt.date, nights: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> None:
    """Replace night `day`'s performance rows (one per alias) and its metrics (per alias, kind, slice and metric)."""
    with _transaction(engine, f"recording the performance of {model} {day}") as connection:
        for table in (performance_metrics, performance_nights):
            connection.execute(table.delete().where(table.c.model == model, table.c.dt == day))
        if nights:
            connection.execute(performance_nights.insert(), nights)
        if metrics:
            connection.execute(performance_metrics.insert(), metrics)


def performance_history(
    engine: Engine, model: str, start: dt.date, end: dt.date, alias: str | None = "champion"
) -> list[dict[str, Any]]:
    """The `performance_nights` rows of nights `start`..`end` (of one alias unless None), oldest first."""
    t = performance_nights
    query = sa.select(t).where(t.c.model == model, t.c.dt >= start, t.c.dt <= end).order_by(t.c.dt, t.c.alias)
    if alias is not None:
        query = query.where(t.c.alias == alias)
    with _reading(engine, f"reading the performance history of {model}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def night_performance_metrics(engine: Engine, model: str, day: dt.date) -> list[dict[str, Any]]:
    """Every `performance_metrics` row of one night."""
    t = performance_metrics
    query = sa.select(t).where(t.c.model == model, t.c.dt == day).order_by(t.c.alias, t.c.kind, t.c.slice, t.c.metric)
    with _reading(engine, f"reading the performance metrics of {model} {day}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def record_data_quality(engine: Engine, model: str, day: dt.date, rows: list[dict[str, Any]]) -> None:
    """Replace night `day`'s data-quality rows (one per feature)."""
    with _transaction(engine, f"recording the data quality of {model} {day}") as connection:
        connection.execute(data_quality.delete().where(data_quality.c.model == model, data_quality.c.dt == day))
        if rows:
            connection.execute(data_quality.insert(), rows)
