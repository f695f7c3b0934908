"""The benchmark's baselines for the warehouse: a row-wise INSERT load, made-up predictions, the timed comparison."""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nightshift.stores import warehouse


def insert_predictions_rowwise(engine: Engine, model: str, day: dt.date, frame: Any) -> int:
    """The benchmark's baseline: remove the night, then one INSERT per row (DB-API `executemany`) into the same table."""
    columns = tuple(column.name for column in warehouse.predictions.columns if column.name in {"dt", *frame.columns})
    names = [name for name in columns if name != "dt"]
    values = [frame[name].tolist() for name in names]
    params = [(*row[:2], day, *row[2:]) for row in zip(*values, strict=True)]
    with engine.connect() as connection, connection.begin():
        driver: Any = connection.connection.driver_connection
        marks = ", ".join(["%s" if connection.dialect.paramstyle in ("format", "pyformat") else "?"] * len(columns))
        insert = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({marks})"
        warehouse.empty_night(connection, model, day)
        cursor = driver.cursor()
        try:
            cursor.executemany(insert, params)
        finally:
            cursor.close()
    return len(params)


def synthetic_predictions(
    model: str,
    day: dt.date,
    rows: int,
    seed: int = 0,
    shuffled: bool = False,
    frame_rows: int = 200_000,
    run_id: str = "scheduled__bench",
) -> Iterator[Any]:
    """Frames of `rows` made-up predictions shaped like a night's scoring output, as `score.iter_predictions` reads it.

    A night with a challenger in shadow: half the rows are the champion's, half the challenger's scores of the same
    entities, one scorer after the other (its own Parquet file each); entity ids as the simulator makes them, in the
    drop's order (ascending) or, with `shuffled`, in a random order; prediction ids derived as `score.prediction_ids`
    derives them; object columns, as pandas reads Parquet strings.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    numbers = rng.permutation(rows - rows // 2) if shuffled else np.arange(rows - rows // 2)
    for alias, count, version in (("champion", rows - rows // 2, "7"), ("challenger", rows // 2, "8")):
        prefix = f"{model}|{day}|{alias}|"
        for start in range(0, count, frame_rows):
            entities = [f"{day:%Y%m%d}-{number:09d}" for number in numbers[start : min(count, start + frame_rows)]]
            size = len(entities)
            yield pd.DataFrame(
                {
                    "prediction_id": [hashlib.sha256((prefix + e).encode()).hexdigest()[:32] for e in entities],
                    "entity_id": entities,
                    "score": rng.random(size),
                    "model": np.full(size, model, dtype=object),
                    "model_version": np.full(size, version, dtype=object),
                    "alias": np.full(size, alias, dtype=object),
                    "run_id": np.full(size, run_id, dtype=object),
                }
            )


def measure_predictions_load(
    url: str, rows: int, seed: int = 0, baseline_rows: int = 100_000, repeats: int = 3, shuffled: bool = False
) -> dict[str, Any]:
    """Time `load_predictions` of `rows` rows and the row-wise baseline of min(rows, baseline_rows) on Postgres.

    Both run in a throwaway schema of the database `url` names (dropped at the end), each on a night of its own; the
    frames (see `synthetic_predictions`) are made before the clock starts. The load runs `repeats` times (a new night, then reruns replacing it) and
    `seconds` is the median, so one stall of a shared machine does not decide the figure; `runs_seconds` lists them.
    Returns rows, seconds, rows_per_s, the same for the baseline, and the speedup (the ratio of the rates).
    """
    import pandas as pd

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise warehouse.WarehouseError(
            f"measure_predictions_load measures the Postgres path; {parsed.render_as_string(hide_password=True)} is not Postgres"
        )
    schema = f"nightshift_bench_{uuid.uuid4().hex[:12]}"
    options = " ".join(filter(None, [str(parsed.query.get("options") or ""), f"-csearch_path={schema}"]))
    admin = warehouse.open_engine(url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine = warehouse.connect(parsed.update_query_dict({"options": options}).render_as_string(hide_password=False))
        try:
            model, day = "bench", dt.date(2026, 10, 5)
            frames = list(synthetic_predictions(model, day, rows, seed, shuffled))
            runs = []
            for _ in range(max(1, repeats)):
                started = time.perf_counter()
                loaded = warehouse.load_predictions(engine, model, day, frames)
                runs.append(time.perf_counter() - started)
            seconds = statistics.median(runs)
            del frames
            later = day + dt.timedelta(days=1)
            baseline_frames = synthetic_predictions(model, later, min(rows, baseline_rows), seed + 1, shuffled)
            baseline = pd.concat(list(baseline_frames), ignore_index=True)
            started = time.perf_counter()
            inserted = insert_predictions_rowwise(engine, model, later, baseline)
            baseline_seconds = time.perf_counter() - started
        finally:
            engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{warehouse.partition_schema(schema)}" CASCADE')
        admin.dispose()
    rate, baseline_rate = loaded / seconds, inserted / baseline_seconds
    return {
        "rows": loaded,
        "seconds": seconds,
        "rows_per_s": rate,
        "baseline_rows": inserted,
        "baseline_seconds": baseline_seconds,
        "baseline_rows_per_s": baseline_rate,
        "speedup": rate / baseline_rate,
        "runs_seconds": runs,
    }
