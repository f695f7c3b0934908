"""On Postgres each (model, night) of `predictions` is a partition of its own, in the schema `<schema>_predictions`:
its names, its per-night lock, and swapping a loaded table in for it (or emptying it) without a gap."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nightshift.stores.warehouse.database import _SETTING, WarehouseError, _describe, _lock_key
from nightshift.stores.warehouse.tables import predictions

SWAP_LOCK_TIMEOUT_MS = 2_000
"""How long one attempt to swap a night in waits for the predictions table before it lets readers go on."""
SWAP_WAIT_SECONDS = 900.0
"""How long a load keeps retrying the swap before it gives up (its transaction, and so the old rows, stay intact)."""
PARTITION_SCHEMA_SUFFIX = "_predictions"
"""The nights of `<schema>.predictions` live in the schema `<schema>_predictions`, out of the way of the tables."""

_IDENTIFIER_MAX = 63
_RETRY_SWAP = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected


def _short(name: str, limit: int = _IDENTIFIER_MAX) -> str:
    """`name` if Postgres keeps it whole, else a prefix plus a hash of the whole, so distinct names stay distinct."""
    if len(name) <= limit:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{name[: limit - 9]}_{digest}"


def _plain(name: str) -> str:
    """`name` with anything but letters, digits and _ replaced, plus a hash of the original when that changed it."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return safe if safe == name else f"{safe}_{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}"


def partition_schema(schema: str) -> str:
    """The schema holding the night partitions of the predictions table in `schema`."""
    return _short(_plain(schema) + PARTITION_SCHEMA_SUFFIX)


def night_partition(model: str, day: dt.date) -> str:
    """The table holding one model's predictions for one night, e.g. `credit_risk_20261005`."""
    return _short(f"{_plain(model)}_{day:%Y%m%d}")


def _quote(connection: Connection, *parts: str) -> str:
    """A quoted, dot-joined identifier (ours never hold %, so they are safe in SQL that psycopg2 formats)."""
    return ".".join(connection.dialect.identifier_preparer.quote_identifier(part) for part in parts)


def _pgcode(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "pgcode", None)


def _require_psycopg2(engine: Engine) -> None:
    if engine.dialect.driver != "psycopg2":
        raise WarehouseError(
            f"{_describe(engine.url)}: loading predictions into Postgres needs the psycopg2 driver; "
            f"use a postgresql+psycopg2:// URL in {_SETTING}"
        )


def _night_schema(connection: Connection) -> str:
    """The partition schema of the `predictions` table the connection's search path finds."""
    schema = connection.exec_driver_sql(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass('predictions')"
    ).scalar()
    if schema is None:
        raise WarehouseError(f"{_describe(connection.engine.url)}: there is no predictions table; run migrate first")
    return partition_schema(str(schema))


def _night_lock(connection: Connection, schema: str, model: str, day: dt.date) -> None:
    """Hold the night's lock to the end of the transaction: loads of one night swap one after the other."""
    key = _lock_key(f"nightshift.predictions|{schema}|{model}|{day}")
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def _bounds(model: str, day: dt.date) -> tuple[str, dict[str, Any]]:
    clause = "FOR VALUES FROM (%(model)s, %(day)s) TO (%(model)s, %(next)s)"
    return clause, {"model": model, "day": day, "next": day + dt.timedelta(days=1)}


def _night_table_ddl(connection: Connection, table: str) -> str:
    """CREATE TABLE for a standalone night table: the predictions columns, and a CHECK that pins it to one night.

    The CHECK lets ATTACH PARTITION trust the rows without scanning them while it holds the parent's lock.
    """
    columns = ", ".join(
        str(sa.schema.CreateColumn(column).compile(dialect=connection.dialect)) for column in predictions.c
    )
    night = "CONSTRAINT night CHECK (model = %(model)s AND dt = %(day)s)"
    return f"CREATE TABLE {table} ({columns}, {night})"


def _swap_night(connection: Connection, schema: str, model: str, day: dt.date, new: str | None) -> None:
    """Replace the night's partition with the table `new` (or only remove it), retrying while readers hold the table.

    Attaching takes SHARE UPDATE EXCLUSIVE on `predictions` (readers and other loads' COPYs go on); replacing a night
    also detaches and drops the old partition, which needs ACCESS EXCLUSIVE for a moment. Each attempt waits at most
    SWAP_LOCK_TIMEOUT_MS, so a long query is never queued behind for long; the staged rows wait in a savepoint.
    """
    night = night_partition(model, day)
    target, parent = _quote(connection, schema, night), _quote(connection, "predictions")
    clause, bounds = _bounds(model, day)
    deadline = time.monotonic() + SWAP_WAIT_SECONDS
    pause = 0.05
    while True:
        savepoint = connection.begin_nested()
        try:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(SWAP_LOCK_TIMEOUT_MS)}")
            old = connection.exec_driver_sql("SELECT to_regclass(%(name)s) IS NOT NULL", {"name": target}).scalar()
            if old:
                connection.exec_driver_sql(f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE")
                connection.exec_driver_sql(f"ALTER TABLE {parent} DETACH PARTITION {target}")
                connection.exec_driver_sql(f"DROP TABLE {target}")
            if new is not None:
                if not old:
                    connection.exec_driver_sql(f"LOCK TABLE {parent} IN SHARE UPDATE EXCLUSIVE MODE")
                connection.exec_driver_sql(
                    f"ALTER TABLE {_quote(connection, schema, new)} RENAME TO {_quote(connection, night)}"
                )
                connection.exec_driver_sql(
                    f"ALTER INDEX {_quote(connection, schema, _short(new + '_pkey'))} "
                    f"RENAME TO {_quote(connection, _short(night + '_pkey'))}"
                )
                connection.exec_driver_sql(f"ALTER TABLE {parent} ATTACH PARTITION {target} {clause}", bounds)
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
            savepoint.commit()
            return
        except sa.exc.OperationalError as exc:
            if _pgcode(exc) not in _RETRY_SWAP:
                raise
            savepoint.rollback()
            if time.monotonic() + pause > deadline:
                raise WarehouseError(
                    f"{_describe(connection.engine.url)}: could not swap in the predictions of model {model!r} for "
                    f"{day}: other sessions held the predictions table for {SWAP_WAIT_SECONDS:.0f}s "
                    f"(long-running queries?); the night's previous rows are unchanged, load it again"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def empty_night(connection: Connection, model: str, day: dt.date) -> None:
    """In `connection`'s transaction, remove a night's predictions and leave it empty to write into row by row.

    On Postgres the night's partition is replaced by an empty one, under the night's lock.
    """
    if connection.dialect.name == "postgresql":
        _require_psycopg2(connection.engine)
        schema = _night_schema(connection)
        _night_lock(connection, schema, model, day)
        _swap_night(connection, schema, model, day, None)
        clause, bounds = _bounds(model, day)
        night = _quote(connection, schema, night_partition(model, day))
        connection.exec_driver_sql(
            f"CREATE TABLE {night} PARTITION OF {_quote(connection, 'predictions')} {clause}", bounds
        )
    else:
        t = predictions
        connection.execute(t.delete().where(t.c.model == model, t.c.dt == day))
