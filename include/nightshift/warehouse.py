"""What people query and trend: predictions, validation runs, drift, retrain requests, the promotion ledger.

SQLite on the embedded default, Postgres in production: the same SQLAlchemy Core tables. The schema is versioned
by the Alembic revisions in `nightshift/migrations`; `connect` upgrades it to the newest version (a no-op when it
is current). Every write for a night replaces that night's rows in one transaction, so reruns never duplicate; on
Postgres, predictions are streamed with COPY into a temporary table and merged from there.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import hashlib
import io
import json
import operator
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from nightshift.config import WAREHOUSE_CONN_ID

VERSION_TABLE = "nightshift_schema_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
COPY_BATCH_ROWS = 50_000
"""Rows per COPY: bounds the CSV buffer held in memory while predictions load."""

_UNVERSIONED_TABLES = frozenset(
    {"predictions", "validation_runs", "drift_metrics", "drift_nights", "retrain_decisions", "promotion_ledger"}
)
_POSTGRES_CONNECT_ARGS = {"connect_timeout": 10, "application_name": "nightshift"}
_SETTING = f"NIGHTSHIFT_WAREHOUSE_URL (or the Airflow connection {WAREHOUSE_CONN_ID})"

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
    sa.Index("ux_predictions_night_entity", "model", "dt", "alias", "entity_id", unique=True),
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
    sa.Index("ix_drift_metrics_feature_trend", "model", "feature", "dt"),
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
_requested = retrain_decisions.c.requested.is_(True)
sa.Index(
    "ix_retrain_decisions_requested",
    retrain_decisions.c.model,
    retrain_decisions.c.dt,
    postgresql_where=_requested,
    sqlite_where=_requested,
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


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for a Postgres advisory lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


_MIGRATION_LOCK = _lock_key("nightshift.warehouse.migrate")


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


_PREDICTION_COLUMNS = tuple(column.name for column in predictions.columns)
_STAGE = "nightshift_predictions_stage"


class _Null:
    """Counts as a number for csv.QUOTE_NONNUMERIC, so it is written bare and empty: NULL to COPY … CSV."""

    def __float__(self) -> float:
        return 0.0

    def __str__(self) -> str:
        return ""


_NULL = _Null()


def _csv_batches(rows: Iterable[dict[str, Any]], batch_rows: int) -> Iterator[tuple[io.StringIO, int]]:
    """`rows` as COPY CSV, `batch_rows` at a time; strings are quoted, so only a missing or None value reads as NULL."""
    pick = operator.itemgetter(*_PREDICTION_COLUMNS)
    buffer, size = io.StringIO(), 0
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    for row in rows:
        try:
            values = pick(row)
        except KeyError:
            values = tuple(row.get(name) for name in _PREDICTION_COLUMNS)
        if None in values:
            values = tuple(_NULL if value is None else value for value in values)
        writer.writerow(values)
        size += 1
        if size == batch_rows:
            buffer.seek(0)
            yield buffer, size
            buffer, size = io.StringIO(), 0
            writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    if size:
        buffer.seek(0)
        yield buffer, size


def _copy_predictions(engine: Engine, model: str, day: dt.date, rows: Iterable[dict[str, Any]]) -> int:
    """COPY `rows` into a temporary table, then delete the night's rows it lacks and upsert it; one transaction."""
    if engine.dialect.driver != "psycopg2":
        raise WarehouseError(
            f"{_describe(engine.url)}: loading predictions into Postgres needs the psycopg2 driver; "
            f"use a postgresql+psycopg2:// URL in {_SETTING}"
        )
    t = predictions
    stage = sa.table(_STAGE, *(sa.column(name) for name in _PREDICTION_COLUMNS))
    copy = f"COPY {_STAGE} ({', '.join(_PREDICTION_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    count = 0
    with engine.begin() as connection:
        driver: Any = connection.connection.driver_connection
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {_STAGE} (LIKE predictions INCLUDING DEFAULTS, PRIMARY KEY (prediction_id))"
            " ON COMMIT DROP"
        )
        with driver.cursor() as cursor:
            for buffer, size in _csv_batches(rows, COPY_BATCH_ROWS):
                try:
                    cursor.copy_expert(copy, buffer)
                except engine.dialect.loaded_dbapi.Error as exc:
                    dropped = engine.dialect.is_disconnect(exc, driver, cursor)
                    if dropped:
                        connection.invalidate(exc)
                    raise sa.exc.DBAPIError.instance(
                        copy,
                        {"rows_before_this_copy": count},
                        exc,
                        engine.dialect.loaded_dbapi.Error,
                        connection_invalidated=dropped,
                        dialect=engine.dialect,
                    ) from exc
                count += size
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(f"nightshift.predictions|{model}|{day}"))))
        connection.execute(
            t.delete().where(
                t.c.model == model,
                t.c.dt == day,
                ~sa.exists().where(stage.c.prediction_id == t.c.prediction_id),
            )
        )
        insert = postgresql.insert(t).from_select(_PREDICTION_COLUMNS, sa.select(*stage.c))
        changed = [name for name in _PREDICTION_COLUMNS if name != "prediction_id"]
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[t.c.prediction_id],
                set_={name: insert.excluded[name] for name in changed},
                where=sa.or_(*(t.c[name].is_distinct_from(insert.excluded[name]) for name in changed)),
            )
        )
    return count


def replace_predictions(engine: Engine, model: str, day: dt.date, rows: Iterable[dict[str, Any]]) -> int:
    """Replace all predictions of one model and night (every alias) with `rows`; all or nothing.

    On Postgres the rows stream through COPY and the night is merged under a per-night lock, so two loads of the
    same night never mix; elsewhere the night is deleted and re-inserted in one transaction.
    """
    if engine.dialect.name == "postgresql":
        return _copy_predictions(engine, model, day, rows)
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
