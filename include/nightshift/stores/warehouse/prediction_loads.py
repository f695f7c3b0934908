"""Loading a night's predictions whole: on Postgres by binary COPY into a new table swapped in as the night's
partition, elsewhere (SQLite) by delete and insert; one transaction either way, so readers see old or new rows."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores.warehouse.binary_copy import _GROUP_COLUMNS, _copy
from nightshift.stores.warehouse.database import _reason, _transaction
from nightshift.stores.warehouse.partitions import (
    _night_lock,
    _night_schema,
    _night_table_ddl,
    _quote,
    _require_psycopg2,
    _short,
    _swap_night,
)
from nightshift.stores.warehouse.prediction_frames import (
    CLASS_COLUMNS,
    PREDICTION_COLUMNS,
    BadPredictions,
    _checked_tables,
)
from nightshift.stores.warehouse.tables import POSTGRES_KEY, predictions

COPY_BATCH_ROWS = 50_000
"""Rows per frame when `replace_predictions` turns dict rows into frames."""
INDEX_BUILD_MEMORY = "256MB"
"""`maintenance_work_mem` while a loaded night's primary key is built (the server's default, 64MB, spills 1M rows)."""


def _night_defaults(table: str, on: bool) -> str:
    """Make the night's model and dt the defaults of `table` (while COPY leaves them out), or drop every default."""
    if on:
        return f"ALTER TABLE {table} ALTER model SET DEFAULT %(model)s, ALTER dt SET DEFAULT %(day)s"
    return f"ALTER TABLE {table} " + ", ".join(
        f"ALTER {name} DROP DEFAULT" for name in ("model", "dt", *_GROUP_COLUMNS)
    )


def _duplicate(exc: sa.exc.IntegrityError, model: str, day: dt.date) -> BadPredictions:
    orig: Any = exc.orig
    detail = getattr(getattr(orig, "diag", None), "message_detail", None) or _reason(exc)
    return BadPredictions(
        f"predictions of model {model!r} for {day}: two rows have the same entity and alias "
        f"(the key is model, dt, entity_id, alias): {detail}"
    )


def _loading(model: str, day: dt.date) -> str:
    return f"loading the predictions of {model} {day}"


# Postgres: binary COPY into a new night table, its key built after the load, swapped in as a partition


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
                parse = "class_probabilities" in table.column_names
                for row in rows:
                    row["dt"] = day
                    if parse:
                        row["class_probabilities"] = json.loads(row["class_probabilities"])
                if rows:
                    connection.execute(t.insert(), rows)
                count += len(rows)
    except sa.exc.IntegrityError as exc:
        raise _duplicate(exc, model, day) from exc
    return count


def load_predictions(engine: Engine, model: str, day: dt.date, frames: Iterable[Any]) -> int:
    """Replace one model's predictions for one night (every alias) with the rows of `frames`; return how many.

    Each frame is a pandas DataFrame with exactly the columns PREDICTION_COLUMNS (the night's `dt` is added here), or,
    for a multiclass model, those and CLASS_COLUMNS: `predicted_label` (a string of at most 200 characters) and
    `class_probabilities` (JSON text of an object mapping each class name to a finite number), neither missing. Every
    frame with rows holds the same columns; binary and regression rows leave both NULL in the warehouse.
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
        classes = False
        for number, row in enumerate(batch):
            if "dt" in row and row["dt"] != day:
                raise BadPredictions(f"row {first + number} is for dt {row['dt']}, not the night being loaded ({day})")
            if "predicted_label" in row or "class_probabilities" in row:
                classes = True
                if isinstance(row.get("class_probabilities"), Mapping):
                    batch[number] = {**row, "class_probabilities": json.dumps(dict(row["class_probabilities"]))}
        columns = [*PREDICTION_COLUMNS, *(CLASS_COLUMNS if classes else ())]
        return pd.DataFrame.from_records(batch, columns=columns)

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
    """`load_predictions` for rows given as dicts (the prediction columns, and optionally `dt`, which must be `day`).

    Rows of a multiclass model also carry CLASS_COLUMNS (`class_probabilities` as JSON text or as a dict).
    """
    return load_predictions(engine, model, day, _frames_from_rows(rows, day))
