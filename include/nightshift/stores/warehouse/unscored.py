"""The scoring backlog: nights left without predictions (`unscored`, with reason and command) until a run scores
them (`scored`, with the version and run); see `nightshift.stages.backlog`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores.warehouse.database import _reading, _transaction
from nightshift.stores.warehouse.rows import _replace
from nightshift.stores.warehouse.tables import SCORED, UNSCORED, scoring_backlog


def record_unscored(engine: Engine, row: dict[str, Any]) -> None:
    """Mark one night `unscored` with its reason, command and run (replacing any earlier row for the night)."""
    t = scoring_backlog
    row = {**row, "status": UNSCORED, "scored_version": None, "scored_run_id": None}
    step = f"recording {row['model']} {row['dt']} as unscored"
    _replace(engine, t, [t.c.model == row["model"], t.c.dt == row["dt"]], [row], step)


def resolve_unscored(engine: Engine, model: str, day: dt.date, version: str, run_id: str) -> bool:
    """Turn the night's `unscored` row `scored` by `version` in `run_id`; False when it had no such row."""
    t = scoring_backlog
    query = (
        t.update()
        .where(t.c.model == model, t.c.dt == day, t.c.status == UNSCORED)
        .values(status=SCORED, scored_version=version, scored_run_id=run_id)
    )
    with _transaction(engine, f"recording {model} {day} as scored by version {version}") as connection:
        return bool(connection.execute(query).rowcount)


def backlog(
    engine: Engine,
    model: str,
    status: str | None = None,
    *,
    through: dt.date | None = None,
    night: dt.date | None = None,
) -> list[dict[str, Any]]:
    """The model's backlog rows, oldest night first; only those of `status`, up to `through`, of `night`, when given."""
    t = scoring_backlog
    query = sa.select(t).where(t.c.model == model).order_by(t.c.dt)
    if status is not None:
        query = query.where(t.c.status == status)
    if through is not None:
        query = query.where(t.c.dt <= through)
    if night is not None:
        query = query.where(t.c.dt == night)
    with _reading(engine, f"reading the scoring backlog of {model}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
