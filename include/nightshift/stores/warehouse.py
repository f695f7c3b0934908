"""What people query and trend: predictions, validation runs, drift, retrain requests, the promotion ledger.

SQLite on the embedded default, Postgres in production: the same SQLAlchemy Core tables. The schema is versioned
by the Alembic revisions in `nightshift/stores/migrations`; `connect` upgrades it to the newest version (a no-op when it
is current). Every write for a night replaces that night's rows in one transaction, so reruns never duplicate; the
validation, drift and retrain-decision writers also append the run's row to `night_runs` in that transaction, so the
history of a rerun night keeps what every run found.

Predictions are the bulk: `load_predictions` takes a night's frames. On Postgres, `predictions` is partitioned by
(model, dt); a night streams through binary COPY into a new table, gets its primary key once loaded, and is swapped in
as the night's partition in one short step (see `load_predictions`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import math
import queue
import re
import struct
import sys
import threading
import time
import uuid
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
from sqlalchemy.engine import Connection, Engine

from nightshift.config import WAREHOUSE_CONN_ID

VERSION_TABLE = "nightshift_schema_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_UNVERSIONED_TABLES = frozenset(
    {"predictions", "validation_runs", "drift_metrics", "drift_nights", "retrain_decisions", "promotion_ledger"}
)
_POSTGRES_CONNECT_ARGS = {"connect_timeout": 10, "application_name": "nightshift"}
_SETTING = f"NIGHTSHIFT_WAREHOUSE_URL (or the Airflow connection {WAREHOUSE_CONN_ID})"

metadata = sa.MetaData()


def _key_text(length: int) -> sa.types.TypeEngine[str]:
    """A key column's type: on Postgres it compares bytewise (COLLATE "C"), so a night's key sorts fast in any locale."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(64), nullable=False),
    sa.Column("model", _key_text(64), nullable=False),
    sa.Column("dt", sa.Date, nullable=False),
    sa.Column("entity_id", _key_text(128), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("alias", _key_text(32), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.PrimaryKeyConstraint("model", "dt", "entity_id", "alias", name="predictions_pkey"),
    postgresql_partition_by="RANGE (model, dt)",
)
"""One row per model, night, entity and alias.

On Postgres each (model, night) is a partition of its own, and the key's columns are ordered POSTGRES_KEY: pruning
already finds a night, so its index leads with the entity (it sorts twice as fast when a night's key is built, and
serves an entity's predictions across nights). SQLite keeps model and dt first, for its night deletes.
"""
POSTGRES_KEY = ("entity_id", "alias", "model", "dt")


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


scoring_backlog = sa.Table(
    "scoring_backlog",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("dt", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("scored_version", sa.String(32)),
    sa.Column("scored_run_id", sa.String(250)),
)
"""One row per night left without predictions: `unscored` with its reason and command until the night is scored and
re-measured, then `scored` with the version and run that did it (see `nightshift.stages.backlog`)."""
UNSCORED, SCORED = "unscored", "scored"

STAGES = ("validation", "drift", "decision")
night_runs_table = sa.Table(
    "night_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("dt", sa.Date, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("run_type", sa.String(32)),
    sa.Column("model_version", sa.String(32)),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("stage IN ('validation', 'drift', 'decision')", name="ck_night_runs_stage"),
    sa.Index("ix_night_runs_model_dt", "model", "dt"),
)
"""Append-only: one row each time a run records a night's validation, drift or retrain decision (`STAGES`), beside
the night's current row that the rerun replaced; `details` is the row that stage wrote, as JSON."""


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
def _transaction(engine: Engine, step: str) -> Iterator[Connection]:
    """A connection in one transaction for `step`, committed at the end; database failures become WarehouseError."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise WarehouseError(f"{step}: {_cannot_connect(engine.url, exc)}") from None
    with connection:
        try:
            transaction = connection.begin()
            yield connection
        except sa.exc.IntegrityError:
            raise
        except sa.exc.DBAPIError as exc:
            raise _lost(engine.url, step, exc, "writing") from None
        try:
            transaction.commit()
        except sa.exc.DBAPIError as exc:
            raise _lost(engine.url, step, exc, "committing") from None


@contextmanager
def _reading(engine: Engine, step: str) -> Iterator[Connection]:
    """A connection for the reads of `step`; database failures become WarehouseError."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise WarehouseError(f"{step}: {_cannot_connect(engine.url, exc)}") from None
    with connection:
        try:
            yield connection
        except sa.exc.DBAPIError as exc:
            raise _lost(engine.url, step, exc, "reading") from None


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


PREDICTION_COLUMNS = ("prediction_id", "entity_id", "score", "model", "model_version", "alias", "run_id")
"""The columns of a frame given to `load_predictions`, exactly; the loader adds `dt`."""
LOAD_SLICE_ROWS = 100_000
"""Rows checked and encoded at a time: bounds a load's memory whatever the size of the frames it is given."""
COPY_BATCH_ROWS = 50_000
"""Rows per frame when `replace_predictions` turns dict rows into frames."""
INDEX_BUILD_MEMORY = "256MB"
"""`maintenance_work_mem` while a loaded night's primary key is built (the server's default, 64MB, spills 1M rows)."""
SWAP_LOCK_TIMEOUT_MS = 2_000
"""How long one attempt to swap a night in waits for the predictions table before it lets readers go on."""
SWAP_WAIT_SECONDS = 900.0
"""How long a load keeps retrying the swap before it gives up (its transaction, and so the old rows, stay intact)."""
PARTITION_SCHEMA_SUFFIX = "_predictions"
"""The nights of `<schema>.predictions` live in the schema `<schema>_predictions`, out of the way of the tables."""

_IDENTIFIER_MAX = 63
_COPY_COLUMNS = ("prediction_id", "entity_id", "score", "model_version", "alias", "run_id")
"""The columns COPY sends, in its order; model and dt are the same on every row, so the table's defaults fill them."""
_ROW_COLUMNS = _COPY_COLUMNS[:3]
_GROUP_COLUMNS = _COPY_COLUMNS[3:]
"""Columns that hold one value through long runs of rows (one scorer's output): COPY leaves them to defaults then."""
_INSERT_COLUMNS = tuple(column.name for column in predictions.columns)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_COPY_READ_BYTES = 1 << 20
_STRING_LIMITS = {name: int(predictions.c[name].type.length) for name in PREDICTION_COLUMNS if name != "score"}  # type: ignore[attr-defined]
_RETRY_SWAP = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected


class BadPredictions(ValueError):
    """Predictions that cannot be loaded; the message names the model, night, frame, row, column and value."""


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


# Checking frames


def _not_a_string(value: Any) -> bool:
    return not (value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value)))


def _not_a_number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating)


def _first(mask: Any) -> int:
    """The position of the first true value of a boolean Arrow array."""
    import pyarrow.compute as pc

    return int(pc.index(mask, True).as_py())


def _string_offsets(array: Any) -> Any:
    import numpy as np

    return np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)


def _has_nul(array: Any) -> bool:
    """Whether any string of the Arrow string array holds a NUL byte (one pass over its bytes)."""
    import numpy as np

    offsets = _string_offsets(array)
    data = array.buffers()[2]
    if data is None or offsets[-1] == offsets[0]:
        return False
    return not np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0])).all()


def _too_long(array: Any, limit: int) -> int | None:
    """The position of the first string longer than `limit` characters, or None (bytes are counted first: cheaper)."""
    import pyarrow.compute as pc

    if not len(array) or pc.max(pc.binary_length(array)).as_py() <= limit:
        return None
    longer = pc.greater(pc.utf8_length(array), limit)
    return _first(longer) if pc.any(longer).as_py() else None


def _checked_table(part: Any, model: str, locate: Any) -> Any:
    """One slice of a frame as an Arrow table in COPY's column order, after checking every value the warehouse holds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays: dict[str, Any] = {}
    for name in PREDICTION_COLUMNS:
        array = _column_array(part[name], name, locate)
        if name == "score":
            _check_scores(array, locate)
        else:
            _check_text(array, name, locate)
        arrays[name] = array
    other = pc.invert(pc.equal(arrays["model"], model))
    if pc.any(other).as_py():
        bad = _first(other)
        raise BadPredictions(
            f"{locate(bad)}: model {arrays['model'][bad].as_py()!r} is not the model being loaded ({model!r})"
        )
    return pa.table({name: arrays[name] for name in _INSERT_COLUMNS if name != "dt"})


def _column_array(series: Any, name: str, locate: Any) -> Any:
    """The column as one Arrow array (float64 scores, strings otherwise); BadPredictions on a value that is neither
    or a missing one."""
    import pandas as pd
    import pyarrow as pa

    if name == "score":
        if pd.api.types.is_bool_dtype(series.dtype):
            raise BadPredictions(f"{locate(0)}: score holds booleans ({series.dtype}), not numbers")
        arrow_type, odd, kind = pa.float64(), _not_a_number, "a number"
    else:
        arrow_type, odd, kind = pa.string(), _not_a_string, "a string"
    try:
        array = pa.array(series, type=arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        bad = next((pos for pos, value in enumerate(series) if value is not None and odd(value)), None)
        if bad is None:
            raise BadPredictions(f"{locate(0)}: {name} ({series.dtype}) is not {kind}: {exc}") from None
        raise BadPredictions(f"{locate(bad)}: {name} {series.iloc[bad]!r} is not {kind}") from None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise BadPredictions(f"{locate(_first(array.is_null()))}: {name} is missing (None or NaN)")
    return array


def _check_scores(array: Any, locate: Any) -> None:
    import pyarrow.compute as pc

    finite = pc.is_finite(array)
    if not pc.all(finite).as_py():
        bad = _first(pc.invert(finite))
        raise BadPredictions(f"{locate(bad)}: score {array[bad].as_py()!r} is not a finite number")


def _check_text(array: Any, name: str, locate: Any) -> None:
    """Within the column's length limit and free of NUL characters (PostgreSQL text refuses them)."""
    import pyarrow.compute as pc

    limit = _STRING_LIMITS[name]
    bad = _too_long(array, limit)
    if bad is not None:
        raise BadPredictions(
            f"{locate(bad)}: {name} {array[bad].as_py()[:80]!r}… is {len(array[bad].as_py())} characters long; "
            f"the warehouse holds at most {limit}"
        )
    if _has_nul(array):
        bad = _first(pc.match_substring(array, "\x00"))
        raise BadPredictions(f"{locate(bad)}: {name} contains a NUL character, which Postgres refuses")


def _checked_tables(frames: Iterable[Any], model: str, day: dt.date) -> Iterator[Any]:
    """Every frame, checked and cut into Arrow tables of at most LOAD_SLICE_ROWS rows; one frame in memory at a time."""
    import pandas as pd

    where = f"predictions of model {model!r} for {day}"
    expected = set(PREDICTION_COLUMNS)
    loaded = 0
    for number, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise BadPredictions(f"{where}: frame {number} is a {type(frame).__name__}, not a pandas DataFrame")
        columns = [str(column) for column in frame.columns]
        missing = [name for name in PREDICTION_COLUMNS if name not in columns]
        extra = [name for name in columns if name not in expected]
        twice = sorted({name for name in columns if columns.count(name) > 1})
        if missing or extra or twice:
            problems = [
                *([f"missing {', '.join(missing)}"] if missing else []),
                *([f"unexpected {', '.join(extra)}"] if extra else []),
                *([f"repeated {', '.join(twice)}"] if twice else []),
            ]
            raise BadPredictions(
                f"{where}: frame {number} has the wrong columns ({'; '.join(problems)}); expected exactly "
                f"{', '.join(PREDICTION_COLUMNS)} (the loader adds dt)"
            )
        for offset in range(0, len(frame), LOAD_SLICE_ROWS):
            part = frame.iloc[offset : offset + LOAD_SLICE_ROWS]

            def locate(
                pos: int, number: int = number, row: int = offset, frame: Any = frame, first: int = loaded
            ) -> str:
                row += pos
                return f"{where}: frame {number}, row {row} (index {frame.index[row]!r}; row {first + row} of the load)"

            yield _checked_table(part, model, locate)
        loaded += len(frame)


# Postgres: binary COPY into a new night table, its key built after the load, swapped in as a partition


def _constant(values: Any) -> str | None:
    """The one value of an Arrow string array that holds nothing else, or None."""
    import pyarrow.compute as pc

    first = values[0].as_py()
    return first if pc.all(pc.equal(values, first)).as_py() else None


def _copy_rows(table: Any, columns: Sequence[str]) -> Any:
    """`table`'s `columns` as rows of COPY's binary format (no header), built by Arrow: no Python loop over rows.

    A column holding one value throughout is written as a constant, merged with its constant neighbours.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = table.num_rows

    def fixed(data: bytes, width: int) -> Any:
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), rows, [None, pa.py_buffer(data)]).cast(
            pa.binary()
        )

    parts: list[Any] = []
    constant = bytearray(struct.pack("!h", len(columns)))
    for name in columns:
        values = table[name].combine_chunks()
        if name == "score":
            cells = np.empty(rows, dtype=[("size", ">i4"), ("value", ">f8")])
            cells["size"] = 8
            cells["value"] = values.to_numpy()
            field = [fixed(cells.tobytes(), 12)]
        elif (value := _constant(values)) is not None:
            encoded = value.encode()
            constant += struct.pack("!i", len(encoded)) + encoded
            continue
        else:
            field = [fixed(np.diff(_string_offsets(values)).astype(">i4").tobytes(), 4), values.cast(pa.binary())]
        if constant:
            parts.append(pa.scalar(bytes(constant), pa.binary()))
            constant = bytearray()
        parts += field
    if constant:
        parts.append(pa.scalar(bytes(constant), pa.binary()))
    joined = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))
    offsets = _string_offsets(joined)
    return joined.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _encoded(table: Any) -> tuple[tuple[str, ...] | None, int, Any]:
    """A slice ready for COPY: its group (the values of _GROUP_COLUMNS when each holds one value), rows, bytes.

    A slice of one group leaves those columns to the table's defaults and sends only _ROW_COLUMNS.
    """
    values = [_constant(table[name].combine_chunks()) for name in _GROUP_COLUMNS]
    if all(value is not None for value in values):
        group = tuple(str(value) for value in values)
        return group, table.num_rows, _copy_rows(table, _ROW_COLUMNS)
    return None, table.num_rows, _copy_rows(table, _COPY_COLUMNS)


_END = object()


class _CopyStream:
    """What psycopg2's `copy_expert` reads: binary COPY data that a worker thread encodes from the frames meanwhile.

    The worker checks and encodes the next slice while the server parses this one; at most two encoded slices wait.
    The data comes in segments, one COPY each: a run of slices of one group (see `_encoded`), or of mixed slices.
    `next_segment` starts the next one and returns its group; `read` gives its bytes, ending where it ends.
    A problem in the frames stops the COPY and is kept in `error`, for the caller to raise instead of the driver's.
    """

    def __init__(self, tables: Iterator[Any]) -> None:
        self.rows = 0
        self.error: BaseException | None = None
        self._tables = tables
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._next: Any = None
        self._group: tuple[str, ...] | None = None
        self._pending = memoryview(b"")
        self._ended = True
        self._worker = threading.Thread(target=self._encode, name="nightshift-copy", daemon=True)

    def __enter__(self) -> _CopyStream:
        self._worker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._worker.join()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            with suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def _encode(self) -> None:
        try:
            for table in self._tables:
                if table.num_rows and not self._put(_encoded(table)):
                    return
        except BaseException as exc:
            self._put(exc)
        else:
            self._put(_END)

    def _take(self) -> Any:
        """The next encoded slice, or _END; a failure of the worker is raised here."""
        item, self._next = (self._next if self._next is not None else self._queue.get()), None
        if isinstance(item, BaseException):
            self.error = item
            raise item
        return item

    def next_segment(self) -> object:
        """Start the next segment and return its group (None for mixed slices), or _END when all is sent."""
        item = self._take()
        if item is _END:
            return _END
        self._group = item[0]
        self._next = item
        self._pending = memoryview(_COPY_HEADER)
        self._ended = False
        return self._group

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            if self._ended:
                return b""
            item = self._take()
            if item is _END or item[0] != self._group:
                self._next = item
                self._ended = True
                self._pending = memoryview(_COPY_TRAILER)
            else:
                self.rows += item[1]
                self._pending = memoryview(item[2])
        size = len(self._pending) if size is None or size < 0 else size
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return bytes(chunk)


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


def _night_defaults(table: str, on: bool) -> str:
    """Make the night's model and dt the defaults of `table` (while COPY leaves them out), or drop every default."""
    if on:
        return f"ALTER TABLE {table} ALTER model SET DEFAULT %(model)s, ALTER dt SET DEFAULT %(day)s"
    return f"ALTER TABLE {table} " + ", ".join(
        f"ALTER {name} DROP DEFAULT" for name in ("model", "dt", *_GROUP_COLUMNS)
    )


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


def _copy(connection: Connection, table: str, tables: Iterator[Any]) -> int:
    """Stream `tables` into `table` with binary COPY, one COPY per segment; the number of rows."""
    engine = connection.engine
    driver: Any = connection.connection.driver_connection
    copy = ""
    with _CopyStream(tables) as stream, driver.cursor() as cursor:
        try:
            while (group := stream.next_segment()) is not _END:
                columns: tuple[str, ...] = _COPY_COLUMNS
                if isinstance(group, tuple):
                    columns = _ROW_COLUMNS
                    defaults = ", ".join(f"ALTER {name} SET DEFAULT %({name})s" for name in _GROUP_COLUMNS)
                    connection.exec_driver_sql(
                        f"ALTER TABLE {table} {defaults}", dict(zip(_GROUP_COLUMNS, group, strict=True))
                    )
                copy = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary, FREEZE)"
                cursor.copy_expert(copy, stream, size=_COPY_READ_BYTES)
        except engine.dialect.loaded_dbapi.Error as exc:
            if stream.error is not None:
                raise stream.error from None
            dropped = engine.dialect.is_disconnect(exc, driver, cursor)
            if dropped:
                connection.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                copy,
                {"rows_before_the_error": stream.rows},
                exc,
                engine.dialect.loaded_dbapi.Error,
                connection_invalidated=dropped,
                dialect=engine.dialect,
            ) from exc
        return stream.rows


def _duplicate(exc: sa.exc.IntegrityError, model: str, day: dt.date) -> BadPredictions:
    orig: Any = exc.orig
    detail = getattr(getattr(orig, "diag", None), "message_detail", None) or _reason(exc)
    return BadPredictions(
        f"predictions of model {model!r} for {day}: two rows have the same entity and alias "
        f"(the key is model, dt, entity_id, alias): {detail}"
    )


def _loading(model: str, day: dt.date) -> str:
    return f"loading the predictions of {model} {day}"


def _load_postgres(engine: Engine, model: str, day: dt.date, tables: Iterator[Any]) -> int:
    """COPY into a new table, build its key, swap it in as the night's partition: one transaction."""
    _require_psycopg2(engine)
    with _transaction(engine, _loading(model, day)) as connection:
        schema = _night_schema(connection)
        new = f"_load_{uuid.uuid4().hex[:16]}"
        staged = _quote(connection, schema, new)
        night = {"model": model, "day": day}
        connection.exec_driver_sql(_night_table_ddl(connection, staged), night)
        connection.exec_driver_sql(_night_defaults(staged, on=True), night)
        count = _copy(connection, staged, tables)
        connection.exec_driver_sql(_night_defaults(staged, on=False))
        if count:
            connection.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            key = ", ".join(POSTGRES_KEY)
            try:
                connection.exec_driver_sql(
                    f"ALTER TABLE {staged} ADD CONSTRAINT {_quote(connection, _short(new + '_pkey'))} PRIMARY KEY ({key})"
                )
            except sa.exc.IntegrityError as exc:
                raise _duplicate(exc, model, day) from exc
        else:
            connection.exec_driver_sql(f"DROP TABLE {staged}")
        _night_lock(connection, schema, model, day)
        _swap_night(connection, schema, model, day, new if count else None)
    return count


# Elsewhere (SQLite): delete the night and insert, in one transaction


def _load_rows(engine: Engine, model: str, day: dt.date, tables: Iterator[Any]) -> int:
    t = predictions
    count = 0
    try:
        with _transaction(engine, _loading(model, day)) as connection:
            connection.execute(t.delete().where(t.c.model == model, t.c.dt == day))
            for table in tables:
                rows = table.to_pylist()
                for row in rows:
                    row["dt"] = day
                if rows:
                    connection.execute(t.insert(), rows)
                count += len(rows)
    except sa.exc.IntegrityError as exc:
        raise _duplicate(exc, model, day) from exc
    return count


def load_predictions(engine: Engine, model: str, day: dt.date, frames: Iterable[Any]) -> int:
    """Replace one model's predictions for one night (every alias) with the rows of `frames`; return how many.

    Each frame is a pandas DataFrame with exactly the columns PREDICTION_COLUMNS (the night's `dt` is added here).
    Frames are read one at a time (on Postgres by a worker thread, while the server takes the previous ones), so
    memory stays bounded however many rows a night has. All or nothing: readers see
    the previous rows until the new ones are complete, a bad value anywhere (reported as BadPredictions naming the
    frame, row, column and value) leaves them in place, and loading the same frames again gives the same rows.

    On Postgres the night is its own partition of `predictions`: the rows stream through binary COPY into a new table,
    its primary key is built once they are in, and it is swapped for the old partition in a moment under a per-night
    lock (concurrent loads of one night apply one after the other; other nights do not wait on each other).
    """
    tables = _checked_tables(frames, model, day)
    if engine.dialect.name == "postgresql":
        return _load_postgres(engine, model, day, tables)
    return _load_rows(engine, model, day, tables)


def _frames_from_rows(rows: Iterable[dict[str, Any]], day: dt.date) -> Iterator[Any]:
    """Dict rows (with or without `dt`) as frames of COPY_BATCH_ROWS rows for `load_predictions`."""
    import pandas as pd

    def frame(batch: list[dict[str, Any]], first: int) -> Any:
        for number, row in enumerate(batch):
            if "dt" in row and row["dt"] != day:
                raise BadPredictions(f"row {first + number} is for dt {row['dt']}, not the night being loaded ({day})")
        return pd.DataFrame.from_records(batch, columns=list(PREDICTION_COLUMNS))

    batch: list[dict[str, Any]] = []
    first = 0
    for row in rows:
        batch.append(row)
        if len(batch) == COPY_BATCH_ROWS:
            yield frame(batch, first)
            first += len(batch)
            batch = []
    if batch:
        yield frame(batch, first)


def replace_predictions(engine: Engine, model: str, day: dt.date, rows: Iterable[dict[str, Any]]) -> int:
    """`load_predictions` for rows given as dicts (the prediction columns, and optionally `dt`, which must be `day`)."""
    return load_predictions(engine, model, day, _frames_from_rows(rows, day))


def open_engine(url: str) -> Engine:
    """An engine for the database `url` names that leaves its schema as it is (`connect` upgrades it)."""
    return _engine(url)


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


_JSON_TEXT_COLUMNS = frozenset({"drifted_features", "critical_drifted", "reasons"})
_NIGHT_RUN_KEYS = frozenset({"model", "dt", "run_id", "run_type", "model_version", "report_uri", "result_uri"})


def _night_run(
    stage: str,
    row: dict[str, Any],
    address: str | None,
    run_type: str | None,
    model_version: str | None,
) -> dict[str, Any]:
    """The `night_runs` row for a stage's row: its run and version, the rest of it as JSON `details`."""
    if stage not in STAGES:
        raise ValueError(f"night run stage {stage!r}: expected one of {', '.join(STAGES)}")
    details = {
        key: json.loads(value) if key in _JSON_TEXT_COLUMNS and isinstance(value, str) else value
        for key, value in row.items()
        if key not in _NIGHT_RUN_KEYS
    }
    return {
        "model": row["model"],
        "dt": row["dt"],
        "stage": stage,
        "run_id": row["run_id"],
        "run_type": run_type,
        "model_version": None if model_version is None else str(model_version),
        "details": json.dumps(details, sort_keys=True, default=str),
        "address": address,
        "recorded_at": dt.datetime.now(dt.UTC),
    }


def _replace_current(connection: Connection, table: sa.Table, row: dict[str, Any], history: dict[str, Any]) -> None:
    """Append `history` to `night_runs` and replace the night's current row of `table` with `row`."""
    connection.execute(night_runs_table.insert(), [history])
    connection.execute(table.delete().where(table.c.model == row["model"], table.c.dt == row["dt"]))
    connection.execute(table.insert(), [row])


def record_validation(engine: Engine, row: dict[str, Any], *, run_type: str | None = None) -> None:
    """Replace the night's validation row and append it to `night_runs`, in one transaction."""
    history = _night_run("validation", row, row.get("result_uri"), run_type, None)
    with _transaction(engine, f"recording the validation of {row['model']} {row['dt']}") as connection:
        _replace_current(connection, validation_runs, row, history)


def record_drift(
    engine: Engine, night: dict[str, Any], features: list[dict[str, Any]], *, run_type: str | None = None
) -> None:
    """Replace one night's drift summary and per-feature metrics together, and append the summary to `night_runs`."""
    model, day = night["model"], night["dt"]
    history = _night_run("drift", night, night.get("report_uri"), run_type, night.get("model_version"))
    with _transaction(engine, f"recording the drift of {model} {day}") as connection:
        connection.execute(drift_metrics.delete().where(drift_metrics.c.model == model, drift_metrics.c.dt == day))
        _replace_current(connection, drift_nights, night, history)
        if features:
            connection.execute(drift_metrics.insert(), features)


def record_retrain_decision(engine: Engine, row: dict[str, Any], *, model_version: str | None = None) -> None:
    """Replace the night's retrain decision and append it to `night_runs` (with the champion it saw), together."""
    history = _night_run("decision", row, row.get("report_uri"), row.get("run_type"), model_version)
    with _transaction(engine, f"recording the retrain decision of {row['model']} {row['dt']}") as connection:
        _replace_current(connection, retrain_decisions, row, history)


def append_night_run(
    engine: Engine,
    stage: str,
    row: dict[str, Any],
    *,
    address: str | None = None,
    run_type: str | None = None,
    model_version: str | None = None,
) -> None:
    """Append a night's run that left no current row (a night not measured, say why in `row`) to `night_runs`."""
    history = _night_run(stage, row, address, run_type, model_version)
    with _transaction(engine, f"recording the {stage} run of {row['model']} {row['dt']}") as connection:
        connection.execute(night_runs_table.insert(), [history])


def night_runs(engine: Engine, model: str, day: dt.date | None = None) -> list[dict[str, Any]]:
    """The model's `night_runs` rows (of one night, when given), in the order they were recorded; details decoded."""
    t = night_runs_table
    query = sa.select(t).where(t.c.model == model).order_by(t.c.id)
    if day is not None:
        query = query.where(t.c.dt == day)
    with _reading(engine, f"reading the night runs of {model}") as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["details"] = json.loads(row["details"])
        if row["recorded_at"].tzinfo is None:
            row["recorded_at"] = row["recorded_at"].replace(tzinfo=dt.UTC)
    return rows


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


def drift_history(engine: Engine, model: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    t = drift_nights
    query = sa.select(t).where(t.c.model == model, t.c.dt >= start, t.c.dt <= end).order_by(t.c.dt)
    with _reading(engine, f"reading the drift history of {model}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def last_requested(engine: Engine, model: str, before: dt.date) -> dt.date | None:
    t = retrain_decisions
    query = sa.select(sa.func.max(t.c.dt)).where(t.c.model == model, t.c.requested.is_(True), t.c.dt < before)
    with _reading(engine, f"reading the retrain requests of {model}") as connection:
        value = connection.execute(query).scalar()
    return value


def ledger(engine: Engine, model: str) -> list[dict[str, Any]]:
    t = promotion_ledger
    query = sa.select(t).where(t.c.model == model).order_by(t.c.id)
    with _reading(engine, f"reading the promotion ledger of {model}") as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
        row["details"] = json.loads(row["details"])
    return rows


def count_rows(engine: Engine, table: sa.TableClause, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(*(table.c[k] == v for k, v in where.items()))
    with _reading(engine, f"counting the rows of {table.name}") as connection:
        return int(connection.execute(query).scalar() or 0)


def fetch_all(engine: Engine, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
    query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
    with _reading(engine, f"reading the rows of {table.name}") as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


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
