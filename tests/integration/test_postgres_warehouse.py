"""The warehouse on a real PostgreSQL server: migrations, the COPY load of predictions, the writers, failures."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from nightshift.stores import warehouse
from nightshift.stores.warehouse import partitions, prediction_frames, prediction_loads
from nightshift_dev import warehouse_baselines
from tests.integration import postgres

DAY = dt.date(2026, 10, 5)
HEAD = warehouse.head_version()
TABLES = {"predictions", "validation_runs", "drift_metrics", "drift_nights", "retrain_decisions", "promotion_ledger"}
ALL_TABLES = TABLES | {
    "scoring_backlog",
    "night_runs",
    "performance_nights",
    "performance_metrics",
    "data_quality",
    "alerts_sent",
}
"""Every table of the newest schema; TABLES are those of version 0001, which the row checks read."""


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A throwaway database for this module, dropped at its end."""
    reason = postgres.unavailable()
    if reason:
        pytest.skip(reason)
    with postgres.throwaway_database() as name:
        yield name


@pytest.fixture(scope="module")
def engine(database: str) -> Iterator[sa.Engine]:
    """The module's warehouse, at the newest schema, in the database's public schema."""
    engine = warehouse.connect(postgres.url_for(database))
    yield engine
    engine.dispose()


@pytest.fixture
def empty_url(database: str) -> Iterator[str]:
    """A URL whose tables live in a fresh, empty schema: a brand-new warehouse for migration tests."""
    with postgres.throwaway_schema(database) as schema:
        yield postgres.url_for(database, schema)


@pytest.fixture
def model(request: pytest.FixtureRequest) -> str:
    """A model name no other test writes, so tests share the module's warehouse without seeing each other."""
    return "m_" + hashlib.blake2b(request.node.name.split("[")[0].encode(), digest_size=5).hexdigest()


def predictions(model: str, day: dt.date, ids: Any, version: str = "1", alias: str = "champion") -> list[dict]:
    return [
        {
            "prediction_id": f"{model}|{day}|{alias}|{i}",
            "model": model,
            "dt": day,
            "entity_id": f"e{i}",
            "score": i / 1000,
            "model_version": version,
            "alias": alias,
            "run_id": f"run-{version}",
        }
        for i in ids
    ]


def stored(engine: sa.Engine, model: str | None, day: dt.date | None = None, classes: bool = False) -> list[dict]:
    """The model's rows (every model's for None) in the columns the schema has; unless `classes`, without the
    multiclass columns (migration 0006), which must then be NULL."""
    t = warehouse.predictions
    present = {column["name"] for column in sa.inspect(engine).get_columns("predictions")}
    where = {"model": model} if day is None else {"model": model, "dt": day}
    query = sa.select(*[c for c in t.c if c.name in present]).where(
        *(t.c[key] == value for key, value in where.items() if value is not None)
    )
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    if not classes:
        for row in rows:
            assert (row.pop("predicted_label", None), row.pop("class_probabilities", None)) == (None, None)
    return sorted(rows, key=lambda row: row["prediction_id"])


def index_names(engine: sa.Engine, table: str) -> set[str | None]:
    return {index["name"] for index in sa.inspect(engine).get_indexes(table)}


def primary_key(engine: sa.Engine) -> list[str]:
    return sa.inspect(engine).get_pk_constraint("predictions")["constrained_columns"]


def schema_differences(engine: sa.Engine) -> list:
    """What Alembic's autogenerate would change to make the database match `warehouse.metadata`."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def ours(name, type_, parent):
        return not (type_ == "table" and name == warehouse.VERSION_TABLE)

    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"include_name": ours}), warehouse.metadata)


def ddl_statements(run: Any) -> list[str]:
    """The CREATE/DROP/ALTER statements any engine sends while `run()` runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(" ", 1)[0].upper() in ("CREATE", "DROP", "ALTER"):
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    return seen


def ledger_row(model: str, **overrides: Any) -> dict:
    return {
        "model": model,
        "action": "promote",
        "candidate_version": "2",
        "previous_version": "1",
        "champion_after": "2",
        "reasons": ["better"],
        "details": {"x": 1},
        "actor": "airflow:asset_triggered",
        "run_id": "run-1",
        "decided_at": dt.datetime(2026, 10, 6, tzinfo=dt.UTC),
        **overrides,
    }


def insert_plainly(engine: sa.Engine, rows: list[dict]) -> None:
    """Rows into a predictions table of an older schema (a plain table), as the code of that version stored them."""
    with engine.begin() as connection:
        connection.execute(warehouse.predictions.insert(), rows)


def plain_validation(engine: sa.Engine, row: dict) -> None:
    with engine.begin() as connection:
        connection.execute(warehouse.validation_runs.insert(), [row])


def plain_drift(engine: sa.Engine, night: dict, features: list[dict]) -> None:
    with engine.begin() as connection:
        connection.execute(warehouse.drift_nights.insert(), [night])
        connection.execute(warehouse.drift_metrics.insert(), features)


def plain_decision(engine: sa.Engine, row: dict) -> None:
    with engine.begin() as connection:
        connection.execute(warehouse.retrain_decisions.insert(), [row])


def write_every_table(engine: sa.Engine, model: str, old_schema: bool = False) -> None:
    """A row in every table of version 0001: through today's writers, or, for an older schema, as its code wrote them."""
    rows = predictions(model, DAY, range(50))
    if old_schema:
        insert_plainly(engine, rows)
    else:
        warehouse.replace_predictions(engine, model, DAY, rows)
    record_validation, record_drift, record_retrain_decision = (
        (plain_validation, plain_drift, plain_decision)
        if old_schema
        else (warehouse.record_validation, warehouse.record_drift, warehouse.record_retrain_decision)
    )
    record_validation(
        engine,
        {
            "model": model,
            "dt": DAY,
            "rows": 50,
            "accepted_rows": 49,
            "quarantined_rows": 1,
            "bad_row_share": 0.02,
            "passed": True,
            "message": None,
            "result_uri": "s3://b/result.html",
            "run_id": "r",
        },
    )
    record_drift(
        engine,
        {
            "model": model,
            "dt": DAY,
            "model_version": "1",
            "drift_share": 0.5,
            "dataset_drift": True,
            "drifted_features": '["a"]',
            "critical_drifted": "[]",
            "prediction_drifted": False,
            "report_uri": "s3://b/drift.html",
            "run_id": "r",
        },
        [
            {
                "model": model,
                "dt": DAY,
                "feature": "a",
                "method": "psi",
                "threshold": 0.2,
                "score": 0.3,
                "drifted": True,
                "critical": False,
                "model_version": "1",
            }
        ],
    )
    record_retrain_decision(
        engine,
        {
            "model": model,
            "dt": DAY,
            "requested": True,
            "decision": "retrain",
            "reasons": "[]",
            "report_uri": None,
            "run_id": "r",
            "run_type": "scheduled",
        },
    )
    warehouse.append_ledger(engine, ledger_row(model))


def every_row(engine: sa.Engine) -> dict[str, list[dict]]:
    """The rows of the tables of version 0001, in that version's columns (the decisions' `rules` came in 0007)."""
    found = {"predictions": stored(engine, None)}
    with engine.connect() as connection:
        for name in sorted(TABLES - {"predictions"}):
            table = warehouse.metadata.tables[name]
            kept = [column for column in table.c if column.name != "rules"]
            found[name] = sorted((dict(row._mapping) for row in connection.execute(sa.select(*kept))), key=repr)
    return found


# Migrations


def test_migrations_create_every_table_and_a_second_run_is_a_no_op(empty_url: str) -> None:
    assert warehouse.migrate(empty_url) == HEAD
    engine = sa.create_engine(empty_url)
    try:
        assert ALL_TABLES | {warehouse.VERSION_TABLE} == set(sa.inspect(engine).get_table_names())
        assert "alembic_version" not in sa.inspect(engine).get_table_names()
        assert schema_differences(engine) == []
        write_every_table(engine, "m")
        before = every_row(engine)

        assert ddl_statements(lambda: warehouse.migrate(empty_url)) == []
        assert warehouse.migrate(empty_url) == HEAD
        warehouse.connect(empty_url).dispose()
        assert warehouse.schema_version(engine) == HEAD
        assert warehouse.count_rows(engine, sa.table(warehouse.VERSION_TABLE)) == 1
        assert every_row(engine) == before
    finally:
        engine.dispose()


def test_upgrading_from_version_1_keeps_the_rows_and_adds_the_new_objects(empty_url: str) -> None:
    assert warehouse.migrate(empty_url, "0001") == "0001"
    engine = sa.create_engine(empty_url)
    try:
        assert index_names(engine, "predictions") == {"ix_predictions_model_dt_alias"}
        write_every_table(engine, "m", old_schema=True)
        before = every_row(engine)

        assert warehouse.migrate(empty_url) == HEAD
        assert every_row(engine) == before
        assert index_names(engine, "predictions") == set()
        assert primary_key(engine) == list(warehouse.POSTGRES_KEY)
        assert index_names(engine, "drift_metrics") == {"ix_drift_metrics_feature_trend"}
        assert index_names(engine, "retrain_decisions") == {"ix_retrain_decisions_requested"}
        assert index_names(engine, "night_runs") == {"ix_night_runs_model_dt"}
        assert warehouse.night_runs(engine, "m") == []
        assert schema_differences(engine) == []
        assert warehouse.last_requested(engine, "m", DAY + dt.timedelta(days=1)) == DAY
    finally:
        engine.dispose()


def test_a_warehouse_made_before_migrations_existed_is_adopted_with_its_rows(empty_url: str) -> None:
    warehouse.migrate(empty_url, "0001")
    engine = sa.create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE {warehouse.VERSION_TABLE}")
        write_every_table(engine, "m", old_schema=True)
        before = every_row(engine)

        warehouse.connect(empty_url).dispose()
        assert warehouse.schema_version(engine) == HEAD
        assert every_row(engine) == before
    finally:
        engine.dispose()


def test_a_failing_migration_rolls_back_that_version_whole(empty_url: str) -> None:
    warehouse.migrate(empty_url, "0001")
    engine = sa.create_engine(empty_url)
    try:
        twins = predictions("m", DAY, range(2))
        twins[1]["entity_id"] = twins[0]["entity_id"]
        insert_plainly(engine, twins)

        with pytest.raises(
            warehouse.WarehouseError, match=f"from 0001 to version {HEAD} failed: could not create unique"
        ):
            warehouse.migrate(empty_url)
        assert warehouse.schema_version(engine) == "0001"
        assert index_names(engine, "predictions") == {"ix_predictions_model_dt_alias"}
        assert index_names(engine, "drift_metrics") == set()

        with engine.begin() as connection:
            connection.execute(warehouse.predictions.delete())
        insert_plainly(engine, predictions("m", DAY, range(2)))
        assert warehouse.migrate(empty_url) == HEAD
        assert len(stored(engine, "m")) == 2
    finally:
        engine.dispose()


def test_concurrent_first_connects_migrate_once(empty_url: str) -> None:
    with ThreadPoolExecutor(6) as pool:
        engines = list(pool.map(lambda _: warehouse.connect(empty_url), range(6)))
    try:
        assert {warehouse.schema_version(engine) for engine in engines} == {HEAD}
        assert schema_differences(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


def test_migrate_command_reports_what_it_did(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert warehouse.migrate_command(empty_url) == 0
    first = capsys.readouterr().out
    assert "host 127.0.0.1" in first and f"schema upgraded from nothing to version {HEAD}" in first
    assert warehouse.migrate_command(empty_url) == 0
    assert f"schema already at version {HEAD}" in capsys.readouterr().out


# Loading predictions


def test_replacing_a_night_twice_leaves_only_the_second_set(engine: sa.Engine, model: str) -> None:
    other_night = DAY + dt.timedelta(days=1)
    other_model = f"{model}_o"
    warehouse.replace_predictions(engine, model, other_night, predictions(model, other_night, range(300)))
    warehouse.replace_predictions(engine, other_model, DAY, predictions(other_model, DAY, range(300)))
    untouched = stored(engine, model, other_night) + stored(engine, other_model)

    assert warehouse.replace_predictions(engine, model, DAY, predictions(model, DAY, range(1000))) == 1000
    second = predictions(model, DAY, range(600, 1400), version="2") + predictions(
        model, DAY, range(100), version="2", alias="challenger"
    )
    assert warehouse.replace_predictions(engine, model, DAY, iter(second)) == 900

    assert stored(engine, model, DAY) == sorted(second, key=lambda row: row["prediction_id"])
    assert warehouse.count_rows(engine, warehouse.predictions, model=model, dt=DAY) == 900
    assert stored(engine, model, other_night) + stored(engine, other_model) == untouched


def test_loading_the_same_rows_again_changes_nothing(engine: sa.Engine, model: str) -> None:
    rows = predictions(model, DAY, range(500))
    warehouse.replace_predictions(engine, model, DAY, rows)
    warehouse.replace_predictions(engine, model, DAY, rows)
    assert stored(engine, model) == sorted(rows, key=lambda row: row["prediction_id"])


def test_an_empty_load_clears_the_night(engine: sa.Engine, model: str) -> None:
    warehouse.replace_predictions(engine, model, DAY, predictions(model, DAY, range(10)))
    assert warehouse.replace_predictions(engine, model, DAY, []) == 0
    assert stored(engine, model) == []


def test_awkward_values_survive_copy_exactly(engine: sa.Engine, model: str) -> None:
    entities = ["", " ", "comma,inside", 'quote"inside', "new\nline", "tab\tinside", "ünïcødé ✓", "\\N", "NULL", "\\."]
    scores = [0.0, -0.0, 0.1 + 0.2, 1e-300, 1.7976931348623157e308, -1.5, 1 / 3, 2.0, 123456789.123456789, 0.5]
    rows = predictions(model, DAY, range(len(entities)))
    for row, entity, score in zip(rows, entities, scores, strict=True):
        row.update(entity_id=entity, score=score)
    warehouse.replace_predictions(engine, model, DAY, rows)
    assert [(row["entity_id"], row["score"]) for row in stored(engine, model)] == [
        (row["entity_id"], row["score"]) for row in sorted(rows, key=lambda row: row["prediction_id"])
    ]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"score": "not a number"}, "score 'not a number' is not a number"),
        ({"entity_id": None}, "entity_id is missing"),
        ({"model_version": ...}, "model_version is missing"),
        ({"entity_id": "e0"}, r"two rows have the same entity and alias .*\(e0, champion, m_\w+, 2026-10-05\)"),
    ],
    ids=["score-not-a-number", "null-entity", "missing-column", "duplicate-entity"],
)
def test_a_bad_row_midway_raises_and_leaves_the_previous_rows(
    engine: sa.Engine, model: str, monkeypatch: pytest.MonkeyPatch, broken: dict, message: str
) -> None:
    monkeypatch.setattr(prediction_loads, "COPY_BATCH_ROWS", 100)
    warehouse.replace_predictions(engine, model, DAY, predictions(model, DAY, range(1000)))
    before = stored(engine, model)

    rows = predictions(model, DAY, range(1000), version="2")
    rows[750].update(broken)
    rows[750] = {key: value for key, value in rows[750].items() if value is not ...}
    if "two rows" not in message:
        message = f"frame 7, row 50 \\(index 50; row 750 of the load\\): {message}"
    with pytest.raises(warehouse.BadPredictions, match=message):
        warehouse.replace_predictions(engine, model, DAY, rows)
    assert stored(engine, model) == before


def test_a_dropped_connection_midway_leaves_the_previous_rows(
    engine: sa.Engine, database: str, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_loads, "COPY_BATCH_ROWS", 100)
    warehouse.replace_predictions(engine, model, DAY, predictions(model, DAY, range(1000)))
    before = stored(engine, model)

    def rows_then_drop() -> Iterator[dict]:
        for i, row in enumerate(predictions(model, DAY, range(1000), version="2")):
            if i == 500:
                assert postgres.terminate_backends(database) >= 1
            yield row

    with pytest.raises(warehouse.WarehouseError, match="the connection was lost"):
        warehouse.replace_predictions(engine, model, DAY, rows_then_drop())
    assert stored(engine, model) == before
    assert warehouse.replace_predictions(engine, model, DAY, predictions(model, DAY, range(10), version="3")) == 10


def test_concurrent_loads_of_different_nights_do_not_interfere(
    engine: sa.Engine, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_loads, "COPY_BATCH_ROWS", 200)
    nights = [DAY + dt.timedelta(days=k) for k in range(4)]
    barrier = threading.Barrier(len(nights))

    def load(night: dt.date, rows: list[dict]) -> int:
        def all_open_at_once() -> Iterator[dict]:
            for i, row in enumerate(rows):
                if i == len(rows) // 2:
                    barrier.wait(timeout=30)
                yield row

        return warehouse.replace_predictions(engine, model, night, all_open_at_once())

    first = {night: predictions(model, night, range(2000)) for night in nights}
    second = {night: predictions(model, night, range(k * 300, 1000 + k * 300), "2") for k, night in enumerate(nights)}
    for batch in (first, second):
        barrier.reset()
        with ThreadPoolExecutor(len(nights)) as pool:
            loaded = list(pool.map(load, batch, batch.values()))
        assert loaded == [len(rows) for rows in batch.values()]
    for night, rows in second.items():
        assert stored(engine, model, night) == sorted(rows, key=lambda row: row["prediction_id"])


def test_two_loads_of_the_same_night_never_mix(engine: sa.Engine, model: str) -> None:
    sets = [predictions(model, DAY, range(0, 2000), "a"), predictions(model, DAY, range(1000, 2500), "b")]
    barrier = threading.Barrier(2)

    def staged_together(rows: list[dict]) -> Iterator[dict]:
        yield from rows
        barrier.wait(timeout=30)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda rows: warehouse.replace_predictions(engine, model, DAY, staged_together(rows)), sets))
    assert stored(engine, model) in [sorted(rows, key=lambda row: row["prediction_id"]) for rows in sets]


# Loading frames: the columnar API


def frame(model: str, ids: Any, version: str = "1", alias: str = "champion", day: dt.date = DAY) -> pd.DataFrame:
    rows = predictions(model, day, ids, version, alias)
    return pd.DataFrame(rows, columns=list(warehouse.PREDICTION_COLUMNS))


def as_rows(*frames: pd.DataFrame, day: dt.date = DAY) -> list[dict]:
    rows = pd.concat(frames).assign(dt=day).to_dict("records")
    return sorted(rows, key=lambda row: row["prediction_id"])


def nights(engine: sa.Engine) -> set[str]:
    """The partitions of `predictions`, as schema.table."""
    with engine.connect() as connection:
        return set(
            connection.exec_driver_sql(
                "SELECT c.relnamespace::regnamespace || '.' || c.relname FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'predictions'::regclass"
            ).scalars()
        )


def current_schema(engine: sa.Engine) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql("SELECT current_schema()").scalar())


def test_load_predictions_swaps_in_a_partition_per_night_and_reruns_are_idempotent(empty_url: str) -> None:
    engine = warehouse.connect(empty_url)
    try:
        parts = warehouse.partition_schema(current_schema(engine))
        other = frame("m", range(10), day=DAY + dt.timedelta(days=1))
        warehouse.load_predictions(engine, "m", DAY + dt.timedelta(days=1), [other])
        first = [frame("m", range(0, 300)), frame("m", range(300, 500)), frame("m", range(100), alias="challenger")]
        assert warehouse.load_predictions(engine, "m", DAY, iter(first)) == 600
        assert stored(engine, "m", DAY) == as_rows(*first)
        assert nights(engine) == {f"{parts}.m_20261005", f"{parts}.m_20261006"}

        assert warehouse.load_predictions(engine, "m", DAY, first) == 600
        assert stored(engine, "m", DAY) == as_rows(*first)
        second = [frame("m", range(450, 900), version="2")]
        assert warehouse.load_predictions(engine, "m", DAY, second) == 450
        assert stored(engine, "m", DAY) == as_rows(*second)
        assert stored(engine, "m", DAY + dt.timedelta(days=1)) == as_rows(other, day=DAY + dt.timedelta(days=1))

        assert set(sa.inspect(engine).get_table_names()) == ALL_TABLES | {warehouse.VERSION_TABLE}
        assert schema_differences(engine) == []
        with engine.connect() as connection:
            definition = connection.exec_driver_sql(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %(t)s::regclass",
                {"t": f"{parts}.m_20261005"},
            ).scalar_one()
        assert "UNIQUE INDEX m_20261005_pkey" in definition and "(entity_id, alias, model, dt)" in definition

        assert warehouse.load_predictions(engine, "m", DAY, []) == 0
        assert stored(engine, "m", DAY) == []
        assert nights(engine) == {f"{parts}.m_20261006"}
    finally:
        engine.dispose()


def test_the_longest_values_fit_counted_in_characters(engine: sa.Engine, model: str) -> None:
    wide = frame(model, range(3)).assign(
        prediction_id=["é" * 64, "x" * 64, "✓" * 64], entity_id=["ü" * 128, "e" * 128, "✓" * 128], run_id="ß" * 250
    )
    assert warehouse.load_predictions(engine, model, DAY, [wide]) == 3
    assert stored(engine, model) == as_rows(wide)


def test_a_bad_frame_midway_names_frame_row_and_column_and_keeps_the_night(engine: sa.Engine, model: str) -> None:
    good = frame(model, range(1000))
    warehouse.load_predictions(engine, model, DAY, [good])
    broken = frame(model, range(2000, 2500), version="2")
    broken["score"] = broken["score"].astype(object)
    broken.loc[321, "score"] = "0.5"
    with pytest.raises(
        warehouse.BadPredictions,
        match=r"frame 2, row 321 \(index 321; row 1321 of the load\): score '0\.5' is not a number",
    ):
        warehouse.load_predictions(
            engine, model, DAY, [frame(model, range(1000, 1500), "2"), frame(model, range(1500, 2000), "2"), broken]
        )
    assert stored(engine, model) == as_rows(good)


def test_a_failure_of_the_frames_themselves_keeps_the_night(engine: sa.Engine, model: str) -> None:
    good = frame(model, range(100))
    warehouse.load_predictions(engine, model, DAY, [good])

    def frames() -> Iterator[pd.DataFrame]:
        yield frame(model, range(100, 200), "2")
        raise FileNotFoundError("predictions/m/dt=2026-10-05/challenger.parquet")

    with pytest.raises(FileNotFoundError, match=r"challenger\.parquet"):
        warehouse.load_predictions(engine, model, DAY, frames())
    assert stored(engine, model) == as_rows(good)


def test_frames_are_not_held_once_they_are_encoded(
    engine: sa.Engine, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import weakref

    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 10)
    seen: list[weakref.ref] = []

    def frames() -> Iterator[pd.DataFrame]:
        for k in range(30):
            gc.collect()
            assert sum(ref() is not None for ref in seen) <= 2
            made = frame(model, range(k * 25, k * 25 + 25))
            seen.append(weakref.ref(made))
            yield made

    assert warehouse.load_predictions(engine, model, DAY, frames()) == 750
    assert len(stored(engine, model)) == 750


def test_readers_see_the_old_night_until_the_new_one_is_complete(engine: sa.Engine, model: str) -> None:
    old = frame(model, range(200))
    warehouse.load_predictions(engine, model, DAY, [old])
    new = [frame(model, range(1000, 1300), "2"), frame(model, range(1300, 1600), "2")]
    midway, resume = threading.Event(), threading.Event()

    def frames() -> Iterator[pd.DataFrame]:
        yield new[0]
        midway.set()
        assert resume.wait(timeout=60)
        yield new[1]

    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(warehouse.load_predictions, engine, model, DAY, frames())
        assert midway.wait(timeout=60)
        seen_midway = stored(engine, model)
        resume.set()
        assert loading.result(timeout=120) == 600
    assert seen_midway == as_rows(old)
    assert stored(engine, model) == as_rows(*new)


def test_a_rerun_waits_for_a_long_reader_without_holding_it_up(
    engine: sa.Engine, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "SWAP_LOCK_TIMEOUT_MS", 100)
    warehouse.load_predictions(engine, model, DAY, [frame(model, range(50))])
    reader = engine.connect()
    try:
        reader.execute(sa.select(sa.func.count()).select_from(warehouse.predictions))
        with ThreadPoolExecutor(1) as pool:
            rerun = pool.submit(warehouse.load_predictions, engine, model, DAY, [frame(model, range(60), "2")])
            for _ in range(50):
                if not rerun.done():
                    count = sa.select(sa.func.count()).select_from(warehouse.predictions)
                    with engine.connect() as other_reader:
                        assert other_reader.execute(count.where(warehouse.predictions.c.model == model)).scalar() == 50
            assert not rerun.done()
            reader.rollback()
            assert rerun.result(timeout=120) == 60
    finally:
        reader.close()
    assert [row["model_version"] for row in stored(engine, model)] == ["2"] * 60


def test_a_rerun_blocked_too_long_gives_up_and_keeps_the_night(
    engine: sa.Engine, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "SWAP_LOCK_TIMEOUT_MS", 50)
    monkeypatch.setattr(partitions, "SWAP_WAIT_SECONDS", 0.5)
    warehouse.load_predictions(engine, model, DAY, [frame(model, range(50))])
    before = stored(engine, model)
    with engine.connect() as reader:
        reader.execute(sa.select(sa.func.count()).select_from(warehouse.predictions))
        with pytest.raises(warehouse.WarehouseError, match="other sessions held the predictions table"):
            warehouse.load_predictions(engine, model, DAY, [frame(model, range(60), "2")])
        reader.rollback()
    assert stored(engine, model) == before


def test_the_rowwise_baseline_stores_what_the_loader_stores(engine: sa.Engine, model: str) -> None:
    rows = pd.concat([frame(model, range(300)), frame(model, range(100), alias="challenger")], ignore_index=True)
    warehouse.load_predictions(engine, model, DAY, [frame(model, range(5), "0")])
    assert warehouse_baselines.insert_predictions_rowwise(engine, model, DAY, rows) == 400
    assert stored(engine, model) == as_rows(rows)
    assert warehouse.load_predictions(engine, model, DAY, [rows]) == 400
    assert stored(engine, model) == as_rows(rows)


def test_models_with_awkward_names_get_their_own_nights(engine: sa.Engine) -> None:
    models = ["Credit-Risk v2", "credit_risk_v2", "x" * 64]
    frames = {name: frame(name, range(10)).assign(prediction_id=[f"p{i}" for i in range(10)]) for name in models}
    for name in models:
        warehouse.load_predictions(engine, name, DAY, [frames[name]])
    for name in models:
        assert stored(engine, name) == as_rows(frames[name])


def test_queries_by_model_night_and_entity_use_the_key(engine: sa.Engine, model: str) -> None:
    warehouse.load_predictions(engine, model, DAY, [frame(model, range(2000))])
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            connection.exec_driver_sql(
                "EXPLAIN SELECT score FROM predictions WHERE model = %(m)s AND dt = %(d)s AND entity_id = 'e7'",
                {"m": model, "d": DAY},
            ).scalars()
        )
    assert "Index" in plan and "_pkey" in plan and plan.count("Scan") == 1


def test_upgrading_a_warehouse_with_predictions_moves_them_into_nights(empty_url: str) -> None:
    warehouse.migrate(empty_url, "0002")
    engine = sa.create_engine(empty_url)
    try:
        nights_before = {
            ("m", DAY): predictions("m", DAY, range(40)) + predictions("m", DAY, range(10), alias="challenger"),
            ("m", DAY + dt.timedelta(days=1)): predictions("m", DAY + dt.timedelta(days=1), range(30)),
            ("other model", DAY): predictions("other model", DAY, range(20)),
        }
        for rows in nights_before.values():
            insert_plainly(engine, rows)
        before = stored(engine, "m") + stored(engine, "other model")

        assert warehouse.migrate(empty_url) == HEAD
        assert stored(engine, "m") + stored(engine, "other model") == before
        parts = warehouse.partition_schema(current_schema(engine))
        assert nights(engine) == {f"{parts}.{warehouse.night_partition(m, d)}" for m, d in nights_before}
        assert primary_key(engine) == list(warehouse.POSTGRES_KEY)
        assert schema_differences(engine) == []

        replacement = frame("m", range(5, 25), "2")
        assert warehouse.load_predictions(engine, "m", DAY, [replacement]) == 20
        assert stored(engine, "m", DAY) == as_rows(replacement)
        assert len(stored(engine, "m", DAY + dt.timedelta(days=1))) == 30
        later = frame("m", range(3), day=DAY + dt.timedelta(days=9))
        assert warehouse.load_predictions(engine, "m", DAY + dt.timedelta(days=9), [later]) == 3
        assert len(stored(engine, "other model")) == 20
    finally:
        engine.dispose()


def test_measure_predictions_load_reports_both_rates_and_leaves_nothing_behind(database: str) -> None:
    url = postgres.url_for(database)
    result = warehouse_baselines.measure_predictions_load(url, 3000, seed=1, baseline_rows=500)
    assert result["rows"] == 3000 and result["baseline_rows"] == 500
    assert result["rows_per_s"] == pytest.approx(3000 / result["seconds"])
    assert result["baseline_rows_per_s"] == pytest.approx(500 / result["baseline_seconds"])
    assert result["speedup"] == pytest.approx(result["rows_per_s"] / result["baseline_rows_per_s"])
    assert len(result["runs_seconds"]) == 3 and result["seconds"] == sorted(result["runs_seconds"])[1]
    with sa.create_engine(url).connect() as connection:
        left = connection.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'nightshift\\_bench\\_%%'"
        ).all()
    assert left == []


# The other writers


def test_ledger_rows_are_idempotent_per_run_and_action(engine: sa.Engine, model: str) -> None:
    row = ledger_row(model)
    warehouse.append_ledger(engine, row)
    warehouse.append_ledger(engine, row)
    warehouse.append_ledger(engine, {**row, "run_id": "run-2", "action": "refuse"})
    ledger = warehouse.ledger(engine, model)
    assert [(r["action"], r["run_id"]) for r in ledger] == [("promote", "run-1"), ("refuse", "run-2")]
    assert ledger[0]["reasons"] == ["better"] and ledger[0]["details"] == {"x": 1}
    assert ledger[0]["decided_at"] == dt.datetime(2026, 10, 6, tzinfo=dt.UTC)


def test_night_writers_replace_their_rows_on_postgres(engine: sa.Engine, model: str) -> None:
    write_every_table(engine, model)
    write_every_table(engine, model)
    later = DAY + dt.timedelta(days=3)
    warehouse.record_retrain_decision(
        engine,
        {
            "model": model,
            "dt": later,
            "requested": False,
            "decision": "wait",
            "reasons": "[]",
            "report_uri": None,
            "run_id": "r2",
            "run_type": "backfill",
        },
    )
    for table in (warehouse.validation_runs, warehouse.drift_nights, warehouse.drift_metrics):
        assert warehouse.count_rows(engine, table, model=model) == 1
    assert warehouse.count_rows(engine, warehouse.retrain_decisions, model=model) == 2
    assert warehouse.last_requested(engine, model, later + dt.timedelta(days=1)) == DAY
    assert warehouse.last_requested(engine, model, DAY) is None
    assert [row["dt"] for row in warehouse.drift_history(engine, model, DAY, later)] == [DAY]
    assert len(warehouse.ledger(engine, model)) == 1
    assert [row["stage"] for row in warehouse.night_runs(engine, model, DAY)] == ["validation", "drift", "decision"] * 2
    assert [row["run_id"] for row in warehouse.night_runs(engine, model, later)] == ["r2"]


# Failures to connect


def test_an_unreachable_server_raises_a_warehouse_error_naming_it() -> None:
    with pytest.raises(warehouse.WarehouseError) as caught:
        warehouse.connect("postgresql+psycopg2://nightshift:s3cret@127.0.0.1:1/warehouse")
    message = str(caught.value)
    assert "host 127.0.0.1, port 1, database warehouse" in message
    assert "Connection refused" in message and "check that the server is up" in message
    assert "NIGHTSHIFT_WAREHOUSE_URL" in message and "nightshift_warehouse" in message
    assert "s3cret" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_database_raises_a_warehouse_error_naming_it(database: str) -> None:
    url = postgres.url_for(f"{database}_missing")
    with pytest.raises(warehouse.WarehouseError, match=f'database "{database}_missing" does not exist'):
        warehouse.connect(url)
    assert warehouse.migrate_command(url) == 1


def test_the_scoring_backlog_records_a_night_once_and_resolves_it_once(empty_url: str) -> None:
    from tests.unit.test_warehouse import check_scoring_backlog

    engine = warehouse.connect(empty_url)
    try:
        check_scoring_backlog(engine)
    finally:
        engine.dispose()


def test_night_runs_keep_every_run_of_a_night_beside_the_current_rows(empty_url: str) -> None:
    from tests.unit.test_warehouse import check_night_runs

    engine = warehouse.connect(empty_url)
    try:
        check_night_runs(engine)
    finally:
        engine.dispose()


# Multiclass predictions: predicted_label and class_probabilities (JSONB), sent by COPY only when the frames hold them


def multiclass(model: str, ids: Any, version: str = "1", alias: str = "champion") -> pd.DataFrame:
    """A multiclass model's frame, `class_probabilities` as JSON text (as the scoring stage writes it)."""
    import json

    probabilities = [{"setosa": (i % 4) / 10, "versicolor": 0.3, "virginica": 0.7 - (i % 4) / 10} for i in ids]
    labels = [max(p, key=p.__getitem__) for p in probabilities]
    return frame(model, ids, version, alias).assign(
        score=[p[label] for p, label in zip(probabilities, labels, strict=True)],
        predicted_label=labels,
        class_probabilities=[json.dumps(p) for p in probabilities],
    )


def as_multiclass_rows(*frames: pd.DataFrame) -> list[dict]:
    import json

    return [{**row, "class_probabilities": json.loads(row["class_probabilities"])} for row in as_rows(*frames)]


def test_a_multiclass_night_survives_copy_exactly_as_jsonb(
    engine: sa.Engine, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 40)
    same = multiclass(model, range(0, 80)).assign(predicted_label="virginica", class_probabilities='{"virginica": 1}')
    varied = multiclass(model, range(80, 200), version="2")
    varied.loc[5, "run_id"] = "another run"
    awkward = [
        ' { "a" : 0.30000000000000004 ,\n "b": 1e-300, "c": 1 } ',
        '{"quote\\"d": 0.5, "back\\\\slash": 0.25, "tab\\tnew\\nline": 0.25}',
        '{"ünïcødé ✓": 1.0, "\\u00e9": 0.0, "": -0.0}',
    ]
    varied.loc[:2, "class_probabilities"] = awkward
    varied.loc[:2, "predicted_label"] = ["a", 'quote"d', "ünïcødé ✓" + "x" * 191]
    challenger = multiclass(model, range(50), alias="challenger")
    frames = [same, varied, challenger]
    assert warehouse.load_predictions(engine, model, DAY, frames) == 250
    assert stored(engine, model, classes=True) == as_multiclass_rows(*frames)

    with engine.connect() as connection:
        kinds = connection.exec_driver_sql(
            "SELECT DISTINCT pg_typeof(class_probabilities)::text, pg_typeof(predicted_label)::text FROM predictions"
            " WHERE model = %(m)s",
            {"m": model},
        ).all()
        shares = connection.exec_driver_sql(README_CLASS_SHARES, {"m": model, "since": DAY}).all()
    assert kinds == [("jsonb", "character varying")]
    expected = warehouse.class_shares(engine, model, DAY)
    assert [(day, label) for day, label, _, _ in shares] == [(DAY, label) for label in expected]
    assert [share for *_, share, _ in shares] == pytest.approx(list(expected.values()))
    assert sum(share for *_, share, _ in shares) == pytest.approx(1.0)

    assert warehouse.load_predictions(engine, model, DAY, [frame(model, range(30))]) == 30
    assert stored(engine, model) == as_rows(frame(model, range(30)))
    assert warehouse.class_shares(engine, model, DAY) == {}


README_CLASS_SHARES = """
SELECT dt, predicted_label,
       count(*)::float / sum(count(*)) OVER (PARTITION BY dt) AS share,
       avg((class_probabilities ->> predicted_label)::float) AS mean_probability
FROM predictions
WHERE model = %(m)s AND alias = 'champion' AND dt >= %(since)s
GROUP BY dt, predicted_label
ORDER BY dt, predicted_label
"""
"""The README's example query for a multiclass model (class shares per night), run as the README shows it."""


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("class_probabilities", '{"a": NaN}', "is not JSON text (NaN is not a number JSON allows)"),
        ("class_probabilities", '{"a\\u0000": 1}', "has a class name 'a\\x00' Postgres refuses"),
        ("predicted_label", "é" * 201, "is 201 characters long; the warehouse holds at most 200"),
    ],
    ids=["nan", "nul-class", "long-label"],
)
def test_a_bad_multiclass_value_midway_names_frame_row_and_column_and_keeps_the_night(
    engine: sa.Engine, model: str, column: str, value: str, message: str
) -> None:
    good = multiclass(model, range(100))
    warehouse.load_predictions(engine, model, DAY, [good])
    broken = multiclass(model, range(300, 400), version="2")
    broken.loc[42, column] = value
    with pytest.raises(warehouse.BadPredictions) as caught:
        warehouse.load_predictions(engine, model, DAY, [multiclass(model, range(100, 300), "2"), broken])
    assert f"frame 1, row 42 (index 42; row 242 of the load): {column} " in str(caught.value)
    assert message in str(caught.value)
    assert stored(engine, model, classes=True) == as_multiclass_rows(good)


def test_the_multiclass_migration_goes_down_and_up_with_nights_in_place(empty_url: str) -> None:
    from alembic import command

    engine = warehouse.connect(empty_url)
    try:
        warehouse.load_predictions(engine, "b", DAY, [frame("b", range(20))])
        warehouse.load_predictions(engine, "k", DAY, [multiclass("k", range(10))])
        before = stored(engine, "b")
        kept = [
            {key: value for key, value in row.items() if key not in warehouse.CLASS_COLUMNS}
            for row in stored(engine, "k", classes=True)
        ]
        with engine.connect() as connection:
            command.downgrade(warehouse.alembic_config(connection), "0005")
            connection.commit()
        assert warehouse.schema_version(engine) == "0005"
        with engine.connect() as connection:
            columns = connection.exec_driver_sql(
                "SELECT DISTINCT column_name FROM information_schema.columns WHERE table_name IN (%(b)s, %(k)s)",
                {"b": warehouse.night_partition("b", DAY), "k": warehouse.night_partition("k", DAY)},
            ).scalars()
            assert set(columns) == {*warehouse.PREDICTION_COLUMNS, "dt"}
        assert (stored(engine, "b"), stored(engine, "k")) == (before, kept)

        assert warehouse.migrate(empty_url) == HEAD
        assert schema_differences(engine) == []
        assert (stored(engine, "b"), stored(engine, "k")) == (before, kept)
        assert warehouse.load_predictions(engine, "k", DAY, [multiclass("k", range(5, 15), "2")]) == 10
        assert stored(engine, "k", classes=True) == as_multiclass_rows(multiclass("k", range(5, 15), "2"))
    finally:
        engine.dispose()
