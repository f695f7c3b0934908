"""The warehouse's schema version: the Alembic revisions in `nightshift/stores/migrations`, applied in order under a
lock (a Postgres advisory lock, a file lock beside a SQLite database) so concurrent upgrades never meet; never down."""

from __future__ import annotations

import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from nightshift.stores.warehouse.database import (
    _SETTING,
    WarehouseError,
    _cannot_connect,
    _describe,
    _engine,
    _lock_key,
    _reason,
)

VERSION_TABLE = "nightshift_schema_version"
MIGRATIONS_DIR = Path(__file__).parent.with_name("migrations")

_UNVERSIONED_TABLES = frozenset(
    {"predictions", "validation_runs", "drift_metrics", "drift_nights", "retrain_decisions", "promotion_ledger"}
)

_MIGRATION_LOCK = _lock_key("nightshift.warehouse.migrate")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the warehouse, built in code (no alembic.ini); `connection` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["version_table"] = VERSION_TABLE
    config.attributes["connection"] = connection
    return config


@cache
def _revisions() -> tuple[str, ...]:
    """Every known schema version, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return tuple(reversed([revision.revision for revision in script.walk_revisions()]))


def head_version() -> str:
    """The newest schema version this code knows."""
    return _revisions()[-1]


def _current(connection: Connection) -> str | None:
    version = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
    connection.commit()
    return version


def schema_version(engine: Engine) -> str | None:
    """The version the warehouse's schema is at; None if it was never migrated."""
    try:
        with engine.connect() as connection:
            return _current(connection)
    except sa.exc.DBAPIError as exc:
        raise _cannot_connect(engine.url, exc) from None


@contextmanager
def _sqlite_file_lock(database: str | None) -> Iterator[None]:
    """An exclusive lock on a file beside the database, so two processes never migrate it at once."""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        handle = open(f"{database}.migrate-lock", "a")  # noqa: SIM115
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _sqlite_transactional_ddl(connection: Connection) -> Iterator[None]:
    """Make every transaction on `connection` a real `BEGIN IMMEDIATE`, so a migration's DDL commits or rolls back whole.

    Python's sqlite3 module otherwise runs CREATE/DROP outside any transaction (SQLAlchemy's documented recipe).
    """
    driver: Any = connection.connection.driver_connection
    previous = driver.isolation_level

    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    connection.rollback()
    driver.isolation_level = None
    sa.event.listen(connection, "begin", begin)
    try:
        yield
    finally:
        sa.event.remove(connection, "begin", begin)
        connection.rollback()
        driver.isolation_level = previous


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Serialise concurrent upgrades of one warehouse (Airflow runs tasks that all call `connect` in parallel)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_lock(_MIGRATION_LOCK)))
        connection.commit()
        try:
            yield
        finally:
            with suppress(sa.exc.SQLAlchemyError):
                connection.rollback()
                connection.execute(sa.select(sa.func.pg_advisory_unlock(_MIGRATION_LOCK)))
                connection.commit()
    elif connection.dialect.name == "sqlite":
        with _sqlite_file_lock(connection.engine.url.database), _sqlite_transactional_ddl(connection):
            yield
    else:
        yield


def _adopt_unversioned(connection: Connection, where: str) -> str | None:
    """Stamp a warehouse that `create_all` made before migrations existed as version 0001; its rows stay."""
    present = _UNVERSIONED_TABLES & set(sa.inspect(connection).get_table_names())
    connection.commit()
    if not present:
        return None
    if present != _UNVERSIONED_TABLES:
        raise WarehouseError(
            f"{where}: found tables {', '.join(sorted(present))} but not "
            f"{', '.join(sorted(_UNVERSIONED_TABLES - present))} and no {VERSION_TABLE} table, so this is not a "
            f"nightshift warehouse of any known version; check {_SETTING} or move those tables away"
        )
    first = _revisions()[0]
    command.stamp(alembic_config(connection), first)
    return first


def _position(version: str | None, where: str) -> int:
    """Where `version` sits in the history: -1 for an empty warehouse."""
    known = _revisions()
    if version is None:
        return -1
    if version not in known:
        raise WarehouseError(
            f"{where}: the schema is at version {version}, which this nightshift does not know "
            f"(newest {known[-1]}); upgrade nightshift here before using this warehouse"
        )
    return known.index(version)


def _upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema up to `revision` (never down); return the versions before and after."""
    known = _revisions()
    target = known[-1] if revision == "head" else revision
    where = _describe(engine.url)
    if target not in known:
        raise WarehouseError(f"{where}: there is no schema version {target!r}; known versions: {', '.join(known)}")
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise _cannot_connect(engine.url, exc) from None
    before: str | None = None
    with connection:
        try:
            current = _current(connection)
            if current is not None and _position(current, where) >= known.index(target):
                return current, current
            with _migration_lock(connection):
                before = _current(connection) or _adopt_unversioned(connection, where)
                if _position(before, where) < known.index(target):
                    command.upgrade(alembic_config(connection), target)
                after = _current(connection)
        except (sa.exc.SQLAlchemyError, CommandError) as exc:
            raise WarehouseError(
                f"{where}: upgrading the schema from {before or 'nothing'} to version {target} failed: {_reason(exc)}"
            ) from exc
    assert after is not None
    return before, after


def migrate(url: str, revision: str = "head") -> str:
    """Upgrade the warehouse schema to `revision` (the newest by default) and return the version it is at.

    Each version is applied in its own transaction; running it again is a no-op; it never downgrades.
    """
    engine = _engine(url)
    try:
        return _upgrade(engine, revision)[1]
    finally:
        engine.dispose()


def migrate_command(url: str | None = None, revision: str = "head") -> int:
    """`nightshift warehouse-migrate`: upgrade the configured warehouse, print one line, return the exit status."""
    if url is None:
        from nightshift.config import settings

        url = settings().warehouse_url
    try:
        engine = _engine(url)
        try:
            before, after = _upgrade(engine, revision)
        finally:
            engine.dispose()
    except WarehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    where = _describe(engine.url)
    if before == after:
        print(f"{where}: schema already at version {after}")
    else:
        print(f"{where}: schema upgraded from {before or 'nothing'} to version {after}")
    return 0


def connect(url: str) -> Engine:
    """An engine on the warehouse, its schema upgraded to the newest version first."""
    engine = _engine(url)
    try:
        _upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
