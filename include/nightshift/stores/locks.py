"""The promotion lock: one promotion or rollback of a model at a time, across processes and machines.

On PostgreSQL it is a transaction-level advisory lock (`pg_advisory_xact_lock`) keyed on the model's name, so it
holds across every process and machine that uses the warehouse, and a killed process releases it with its session.
On SQLite (unit tests) it is an exclusive `flock` on a file beside the database
(`<database>.promotion-<model>.lock`), which holds across the processes of one machine. Either way the caller gets a
connection inside an open transaction: what it writes there commits when the lock is released, and rolls back if the
block raises.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nightshift.stores.warehouse import WarehouseError

LOCK_TIMEOUT_SECONDS = 300.0
_LOCK_NOT_AVAILABLE = "55P03"
_MEMORY_LOCKS: dict[str, threading.Lock] = {}


class PromotionLockTimeout(WarehouseError):
    """Another promotion or rollback of the model held the lock for longer than the wait allows."""


def lock_key(model: str) -> int:
    """The signed 64-bit advisory-lock key of a model's promotions (the same in every process)."""
    digest = hashlib.blake2b(f"nightshift.promotion|{model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _timed_out(model: str, seconds: float, where: str) -> PromotionLockTimeout:
    return PromotionLockTimeout(
        f"model {model}: another promotion or rollback has held the promotion lock ({where}) for more than "
        f"{seconds:g} s; nothing was changed. Wait for it to finish, then run this one again"
    )


@contextmanager
def _postgres_lock(engine: Engine, model: str, timeout: float) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'")
        try:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(model))))
        except sa.exc.OperationalError as exc:
            if getattr(getattr(exc, "orig", None), "pgcode", None) != _LOCK_NOT_AVAILABLE:
                raise
            raise _timed_out(model, timeout, f"PostgreSQL advisory lock {lock_key(model)}") from None
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
        yield connection


def _flock(handle: Any, model: str, timeout: float, where: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _timed_out(model, timeout, where) from None
            time.sleep(0.02)


@contextmanager
def _sqlite_lock(engine: Engine, model: str, timeout: float) -> Iterator[Connection]:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        memory = _MEMORY_LOCKS.setdefault(model, threading.Lock())
        if not memory.acquire(timeout=timeout):
            raise _timed_out(model, timeout, "in-process lock of an in-memory SQLite warehouse")
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            memory.release()
        return
    path = f"{database}.promotion-{re.sub(r'[^A-Za-z0-9_.-]', '_', model)}.lock"
    with open(path, "a") as handle:
        _flock(handle, model, timeout, f"file lock {path}")
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def promotion_lock(engine: Engine, model: str, timeout: float | None = None) -> Iterator[Connection]:
    """Hold `model`'s promotion lock; yield a connection in a transaction that commits as the lock is released.

    Waits at most `timeout` seconds (default LOCK_TIMEOUT_SECONDS) for another holder, then raises
    PromotionLockTimeout.
    """
    timeout = LOCK_TIMEOUT_SECONDS if timeout is None else timeout
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with _postgres_lock(engine, model, timeout) as connection:
            yield connection
    elif dialect == "sqlite":
        with _sqlite_lock(engine, model, timeout) as connection:
            yield connection
    else:
        raise WarehouseError(
            f"model {model}: the warehouse is {dialect}; promotion locks exist for PostgreSQL and SQLite only"
        )
