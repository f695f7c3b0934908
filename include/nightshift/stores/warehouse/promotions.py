"""The promotion ledger: who promoted or rolled back which version over which, when, why and from which run."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nightshift.stores.warehouse.database import _reading, _transaction
from nightshift.stores.warehouse.tables import promotion_ledger


def append_ledger(target: Engine | Connection, row: dict[str, Any]) -> None:
    """Append a decision; a retried task that already recorded it replaces its own row, never adds a second.

    Given a connection (the promotion lock's), the row is written in that connection's open transaction.
    """
    if isinstance(target, Engine):
        step = f"appending the {row['action']} decision of {row['model']} to the promotion ledger"
        with _transaction(target, step) as connection:
            append_ledger(connection, row)
        return
    t = promotion_ledger
    values = {**row, "details": json.dumps(row.get("details", {}), sort_keys=True, default=str)}
    values["reasons"] = json.dumps(row.get("reasons", []))
    target.execute(
        t.delete().where(t.c.model == row["model"], t.c.run_id == row["run_id"], t.c.action == row["action"])
    )
    target.execute(t.insert(), [values])


def ledger(engine: Engine, model: str) -> list[dict[str, Any]]:
    t = promotion_ledger
    query = sa.select(t).where(t.c.model == model).order_by(t.c.id)
    with _reading(engine, f"reading the promotion ledger of {model}") as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
        row["details"] = json.loads(row["details"])
    return rows
