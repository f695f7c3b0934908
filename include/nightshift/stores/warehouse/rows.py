"""Any warehouse table's rows: counted, read, or replaced in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores.warehouse.database import _reading, _transaction


def _replace(engine: Engine, table: sa.Table, where: Sequence[Any], rows: Iterable[dict[str, Any]], step: str) -> int:
    """Delete the rows matching `where` and insert `rows`, in one transaction."""
    count = 0
    with _transaction(engine, step) as connection:
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


def count_rows(engine: Engine, table: sa.TableClause, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(*(table.c[k] == v for k, v in where.items()))
    with _reading(engine, f"counting the rows of {table.name}") as connection:
        return int(connection.execute(query).scalar() or 0)


def fetch_all(engine: Engine, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
    query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
    with _reading(engine, f"reading the rows of {table.name}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
