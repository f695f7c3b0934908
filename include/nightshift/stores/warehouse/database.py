"""Reaching the warehouse: an engine for a URL, connections for a step (written in one transaction, or read), and
errors that name the warehouse (password masked), the step and what to check, never SQL or a traceback."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nightshift.config import WAREHOUSE_CONN_ID

_POSTGRES_CONNECT_ARGS = {"connect_timeout": 10, "application_name": "nightshift"}
_SETTING = f"NIGHTSHIFT_WAREHOUSE_URL (or the Airflow connection {WAREHOUSE_CONN_ID})"


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or written; the message names it and what to check."""


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for a Postgres advisory lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _masked(url: str) -> str:
    """`url` with its password replaced by ***, for strings SQLAlchemy cannot parse."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _describe(url: sa.URL) -> str:
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        return f"warehouse {shown}"
    return (
        f"warehouse {shown} (host {url.host or 'local socket'}, port {url.port or 'default'}, database {url.database})"
    )


def _reason(exc: BaseException) -> str:
    """The first line of the driver's message, whitespace collapsed."""
    orig = getattr(exc, "orig", None) or exc
    lines = [" ".join(line.split()) for line in str(orig).splitlines()]
    return next((line for line in lines if line), type(orig).__name__)


def _cannot_connect(url: sa.URL, exc: BaseException) -> WarehouseError:
    if url.get_backend_name() == "sqlite":
        check = f"check that the folder exists and is writable and that {_SETTING} names the right file"
    else:
        check = (
            "check that the server is up and accepts connections from here, and that "
            f"{_SETTING} names the right host, port, database, user and password"
        )
    return WarehouseError(f"cannot connect to the {_describe(url)}: {_reason(exc)}; {check}")


def _lost(url: sa.URL, step: str, exc: sa.exc.DBAPIError, when: str) -> WarehouseError:
    """The error for a database failure during `step`: the warehouse, the step, what happened; no SQL, no traceback.

    `when` is "reading" (nothing written), "writing" (rolled back) or "committing" (the outcome is not known).
    """
    what = "the connection was lost" if exc.connection_invalidated else "the database refused it"
    told = f"{_describe(url)}: {step} failed: {what} ({_reason(exc)})"
    if when == "reading":
        return WarehouseError(f"{told}; check that the server is up, then run the step again")
    if when == "committing":
        return WarehouseError(
            f"{told} while committing, so the step may or may not have been committed; check that the server is up, "
            "then run the step again (it replaces what it wrote)"
        )
    return WarehouseError(
        f"{told}; nothing of the step was committed (its transaction was rolled back); check that the server is up, "
        "then run the step again"
    )


@contextmanager
def _session(engine: Engine, step: str, *, write: bool) -> Iterator[Connection]:
    """A connection for `step`, in one transaction committed at the end when `write`; database failures become
    WarehouseError (a write's IntegrityError is left for the caller to explain)."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise WarehouseError(f"{step}: {_cannot_connect(engine.url, exc)}") from None
    with connection:
        try:
            transaction = connection.begin() if write else None
            yield connection
        except sa.exc.DBAPIError as exc:
            if write and isinstance(exc, sa.exc.IntegrityError):
                raise
            raise _lost(engine.url, step, exc, "writing" if write else "reading") from None
        if transaction is not None:
            try:
                transaction.commit()
            except sa.exc.DBAPIError as exc:
                raise _lost(engine.url, step, exc, "committing") from None


def _transaction(engine: Engine, step: str) -> AbstractContextManager[Connection]:
    """A connection in one transaction for `step`, committed at the end; database failures become WarehouseError."""
    return _session(engine, step, write=True)


def _reading(engine: Engine, step: str) -> AbstractContextManager[Connection]:
    """A connection for the reads of `step`; database failures become WarehouseError."""
    return _session(engine, step, write=False)


def _engine(url: str) -> Engine:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise WarehouseError(
            f"warehouse URL {_masked(url)!r} is not a database URL (for example "
            "postgresql+psycopg2://user:password@host:5432/nightshift or sqlite:////path/to/warehouse.db); "
            f"check {_SETTING}"
        ) from None
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": 60}
    elif parsed.get_backend_name() == "postgresql":
        options["pool_pre_ping"] = True
        if parsed.get_driver_name() in ("psycopg2", "psycopg"):
            options["connect_args"] = {k: v for k, v in _POSTGRES_CONNECT_ARGS.items() if k not in parsed.query}
    try:
        return sa.create_engine(parsed, **options)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise WarehouseError(
            f"{_describe(parsed)}: cannot load its database driver ({_reason(exc)}); "
            f"use postgresql+psycopg2://… or sqlite:///… in {_SETTING}"
        ) from None


def open_engine(url: str) -> Engine:
    """An engine for the database `url` names that leaves its schema as it is (`connect` upgrades it)."""
    return _engine(url)
