import datetime as dt
import math
from typing import Any

import pytest
import sqlalchemy as sa

from nightshift.stores import warehouse
from nightshift.stores.warehouse import binary_copy, prediction_frames
from nightshift_dev import warehouse_baselines

DAY = dt.date(2026, 10, 5)


def rows(n, version="1"):
    return [
        {
            "prediction_id": f"p{i}",
            "model": "m",
            "dt": DAY,
            "entity_id": f"e{i}",
            "score": i / n,
            "model_version": version,
            "alias": "champion",
            "run_id": "r",
        }
        for i in range(n)
    ]


def test_replacing_a_night_never_duplicates(tmp_path):
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse.replace_predictions(engine, "m", DAY, rows(100))
    warehouse.replace_predictions(engine, "m", DAY, rows(60, version="2"))
    assert warehouse.count_rows(engine, warehouse.predictions, model="m", dt=DAY) == 60
    assert {row["model_version"] for row in warehouse.fetch_all(engine, warehouse.predictions)} == {"2"}


def test_failed_replace_keeps_the_previous_rows(tmp_path):
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse.replace_predictions(engine, "m", DAY, rows(10))
    broken = [*rows(5), {"prediction_id": "p0", "model": "m", "dt": DAY}]
    with pytest.raises(warehouse.BadPredictions, match=r"row 5 of the load.*entity_id is missing"):
        warehouse.replace_predictions(engine, "m", DAY, broken)
    assert warehouse.count_rows(engine, warehouse.predictions, model="m", dt=DAY) == 10


def test_ledger_rows_are_idempotent_per_run_and_action(tmp_path):
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    row = {
        "model": "m",
        "action": "promote",
        "candidate_version": "2",
        "previous_version": "1",
        "champion_after": "2",
        "reasons": ["better"],
        "details": {"x": 1},
        "actor": "airflow:asset_triggered",
        "run_id": "run-1",
        "decided_at": dt.datetime(2026, 10, 6, tzinfo=dt.UTC),
    }
    warehouse.append_ledger(engine, row)
    warehouse.append_ledger(engine, row)
    warehouse.append_ledger(engine, {**row, "run_id": "run-2", "action": "refuse"})
    ledger = warehouse.ledger(engine, "m")
    assert [(r["action"], r["run_id"]) for r in ledger] == [("promote", "run-1"), ("refuse", "run-2")]
    assert ledger[0]["reasons"] == ["better"] and ledger[0]["details"] == {"x": 1}


HEAD = warehouse.head_version()
TABLES = {"predictions", "validation_runs", "drift_metrics", "drift_nights", "retrain_decisions", "promotion_ledger"}
LATER_TABLES = {
    "scoring_backlog",
    "night_runs",
    "performance_nights",
    "performance_metrics",
    "data_quality",
    "alerts_sent",
}
"""Tables added after version 0001 (0004, 0005, 0007, 0008), which `write_every_table` leaves empty."""


def schema_differences(engine):
    """What Alembic's autogenerate would change to make the database match `warehouse.metadata`."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def ours(name, type_, parent):
        return not (type_ == "table" and name == warehouse.VERSION_TABLE)

    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"include_name": ours}), warehouse.metadata)


def index_names(engine, table):
    return {index["name"] for index in sa.inspect(engine).get_indexes(table)}


def ddl_statements(run):
    """The CREATE/DROP/ALTER statements any engine sends while `run()` runs."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(" ", 1)[0].upper() in ("CREATE", "DROP", "ALTER"):
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    return seen


def other_rows():
    """One row for every other table, through the public writers."""
    return {
        "validation": {
            "model": "m",
            "dt": DAY,
            "rows": 10,
            "accepted_rows": 9,
            "quarantined_rows": 1,
            "bad_row_share": 0.1,
            "passed": True,
            "message": None,
            "result_uri": "file:///r.html",
            "run_id": "r",
        },
        "night": {
            "model": "m",
            "dt": DAY,
            "model_version": "1",
            "drift_share": 0.5,
            "dataset_drift": True,
            "drifted_features": '["a"]',
            "critical_drifted": "[]",
            "prediction_drifted": False,
            "report_uri": "file:///d.html",
            "run_id": "r",
        },
        "features": [
            {
                "model": "m",
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
        "decision": {
            "model": "m",
            "dt": DAY,
            "requested": True,
            "decision": "retrain",
            "reasons": "[]",
            "report_uri": None,
            "run_id": "r",
            "run_type": "scheduled",
        },
    }


def write_every_table(engine, old_schema=False):
    """A row in every table of version 0001: through today's writers, or, for an older schema, as its code wrote them."""
    extra = other_rows()
    warehouse.replace_predictions(engine, "m", DAY, rows(20))
    if old_schema:
        with engine.begin() as connection:
            connection.execute(warehouse.validation_runs.insert(), [extra["validation"]])
            connection.execute(warehouse.drift_nights.insert(), [extra["night"]])
            connection.execute(warehouse.drift_metrics.insert(), extra["features"])
            connection.execute(warehouse.retrain_decisions.insert(), [extra["decision"]])
    else:
        warehouse.record_validation(engine, extra["validation"])
        warehouse.record_drift(engine, extra["night"], extra["features"])
        warehouse.record_retrain_decision(engine, extra["decision"])
    warehouse.append_ledger(
        engine,
        {
            "model": "m",
            "action": "promote",
            "reasons": ["better"],
            "details": {},
            "actor": "a",
            "run_id": "r",
            "decided_at": dt.datetime(2026, 10, 6, tzinfo=dt.UTC),
        },
    )


def version_1_rows(engine):
    """Every row of the tables of version 0001, in the columns that version had (multiclass columns came in 0006,
    the decisions' rules in 0007)."""
    found = {}
    with engine.connect() as connection:
        for name in TABLES:
            table = warehouse.metadata.tables[name]
            kept = [column for column in table.c if column.name not in (*warehouse.CLASS_COLUMNS, "rules")]
            found[name] = sorted((dict(row._mapping) for row in connection.execute(sa.select(*kept))), key=repr)
    return found


def table_counts(engine):
    return {name: warehouse.count_rows(engine, warehouse.metadata.tables[name]) for name in sorted(TABLES)}


def test_connect_migrates_a_new_warehouse_to_the_head_and_a_rerun_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = warehouse.connect(url)
    assert warehouse.schema_version(engine) == HEAD
    assert TABLES | LATER_TABLES | {warehouse.VERSION_TABLE} == set(sa.inspect(engine).get_table_names())
    assert schema_differences(engine) == []
    write_every_table(engine)
    assert [row["stage"] for row in warehouse.night_runs(engine, "m")] == ["validation", "drift", "decision"]
    assert ddl_statements(lambda: warehouse.migrate(url)) == []
    assert ddl_statements(lambda: warehouse.connect(url)) == []
    assert warehouse.migrate(url) == HEAD
    assert table_counts(engine) == {name: 1 for name in TABLES} | {"predictions": 20}
    assert warehouse.count_rows(engine, sa.table(warehouse.VERSION_TABLE)) == 1


def test_upgrading_from_version_1_keeps_the_rows_and_adds_the_new_indexes(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert warehouse.migrate(url, "0001") == "0001"
    engine = sa.create_engine(url)
    assert "ux_predictions_night_entity" not in index_names(engine, "predictions")
    write_every_table(engine, old_schema=True)
    before = version_1_rows(engine)

    assert warehouse.migrate(url) == HEAD
    assert version_1_rows(engine) == before
    assert {(row["predicted_label"], row["class_probabilities"]) for row in stored(engine, classes=True)} == {
        (None, None)
    }
    assert index_names(engine, "predictions") == set()
    assert sa.inspect(engine).get_pk_constraint("predictions")["constrained_columns"] == [
        "model",
        "dt",
        "entity_id",
        "alias",
    ]
    assert "ix_drift_metrics_feature_trend" in index_names(engine, "drift_metrics")
    assert "ix_retrain_decisions_requested" in index_names(engine, "retrain_decisions")
    assert index_names(engine, "night_runs") == {"ix_night_runs_model_dt"}
    assert warehouse.night_runs(engine, "m") == []
    assert schema_differences(engine) == []
    assert warehouse.load_predictions(engine, "m", DAY, [frame(3, version="2")]) == 3
    assert [row["model_version"] for row in warehouse.fetch_all(engine, warehouse.predictions)] == ["2"] * 3


def downgrade(url, revision):
    """Alembic's downgrade (nightshift itself never goes down): the way back an operator has."""
    from alembic import command

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            command.downgrade(warehouse.alembic_config(connection), revision)
            connection.commit()
    finally:
        engine.dispose()


def test_the_multiclass_columns_migration_goes_down_and_up_keeping_the_other_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = warehouse.connect(url)
    warehouse.load_predictions(engine, "m", DAY, [frame(5)])
    warehouse.load_predictions(engine, "k", DAY, [multiclass(4, model="k")])
    before = version_1_rows(engine)

    downgrade(url, "0005")
    assert warehouse.schema_version(engine) == "0005"
    assert not {"predicted_label", "class_probabilities"} & {
        c["name"] for c in sa.inspect(engine).get_columns("predictions")
    }
    assert version_1_rows(engine) == before

    assert warehouse.migrate(url) == HEAD
    assert schema_differences(engine) == []
    assert version_1_rows(engine) == before
    assert {row["predicted_label"] for row in stored(engine, model="k", classes=True)} == {None}
    assert warehouse.load_predictions(engine, "k", DAY, [multiclass(4, model="k")]) == 4
    assert stored(engine, model="k", classes=True) == expected_multiclass(multiclass(4, model="k"))


def test_a_warehouse_made_before_migrations_existed_is_adopted_with_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    warehouse.migrate(url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {warehouse.VERSION_TABLE}")
    write_every_table(engine, old_schema=True)

    assert warehouse.schema_version(engine) is None
    assert warehouse.schema_version(warehouse.connect(url)) == HEAD
    assert table_counts(engine) == {name: 1 for name in TABLES} | {"predictions": 20}


def test_a_failing_migration_rolls_back_that_version_whole(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    warehouse.migrate(url, "0001")
    engine = sa.create_engine(url)
    twins = rows(2)
    twins[1]["entity_id"] = twins[0]["entity_id"]
    warehouse.replace_predictions(engine, "m", DAY, twins)

    with pytest.raises(warehouse.WarehouseError, match=rf"from 0001 to version {HEAD} failed: .*UNIQUE"):
        warehouse.connect(url)
    assert warehouse.schema_version(engine) == "0001"
    assert index_names(engine, "predictions") == {"ix_predictions_model_dt_alias"}
    assert index_names(engine, "drift_metrics") == set()
    assert index_names(engine, "retrain_decisions") == set()

    warehouse.replace_predictions(engine, "m", DAY, rows(2))
    assert warehouse.migrate(url) == HEAD


def test_concurrent_first_connects_migrate_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    url = f"sqlite:///{tmp_path / 'w.db'}"
    with ThreadPoolExecutor(6) as pool:
        engines = list(pool.map(lambda _: warehouse.connect(url), range(6)))
    assert {warehouse.schema_version(engine) for engine in engines} == {HEAD}
    assert schema_differences(engines[0]) == []


def test_a_schema_newer_than_the_code_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = warehouse.connect(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE {warehouse.VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(warehouse.WarehouseError, match="version 9999, which this nightshift does not know"):
        warehouse.connect(url)


def test_foreign_tables_without_a_version_are_not_adopted(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with sa.create_engine(url).begin() as connection:
        connection.exec_driver_sql("CREATE TABLE predictions (id INTEGER)")
    with pytest.raises(warehouse.WarehouseError, match="found tables predictions but not"):
        warehouse.connect(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "is not a database URL"),
        ("postgresql+nosuchdriver://nightshift:s3cret@db.example/warehouse", "cannot load its database driver"),
        ("sqlite:////nonexistent/folder/w.db", "check that the folder exists"),
    ],
)
def test_bad_urls_raise_a_warehouse_error_without_the_password(url, expected):
    with pytest.raises(warehouse.WarehouseError, match=expected) as caught:
        warehouse.connect(url)
    assert "s3cret" not in str(caught.value)
    assert "NIGHTSHIFT_WAREHOUSE_URL" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_migrate_command_reports_the_upgrade_then_that_nothing_was_left(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert warehouse.migrate_command(url) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema upgraded from nothing to version {HEAD}")
    assert warehouse.migrate_command(url) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema already at version {HEAD}")
    assert warehouse.migrate_command("sqlite:////nonexistent/folder/w.db") == 1
    assert capsys.readouterr().err.startswith("error: cannot connect to the warehouse sqlite:////nonexistent")


def test_migrate_command_defaults_to_the_configured_warehouse(home, capsys):
    assert warehouse.migrate_command() == 0
    assert str(home / "warehouse.db") in capsys.readouterr().out


# Loading frames (the SQLite path; Postgres is tested in tests/integration/test_postgres_warehouse.py)


def frame(n, start=0, alias="champion", version="1", model="m"):
    import pandas as pd

    return pd.DataFrame(
        {
            "prediction_id": [f"{alias}-{i}" for i in range(start, start + n)],
            "entity_id": [f"e{i}" for i in range(start, start + n)],
            "score": [i / 1000 for i in range(start, start + n)],
            "model": model,
            "model_version": version,
            "alias": alias,
            "run_id": f"run-{version}",
        }
    )


def stored(engine, model="m", day=DAY, classes=False):
    """The night's rows; unless `classes`, without the multiclass columns, which must then be NULL."""
    found = sorted(
        warehouse.fetch_all(engine, warehouse.predictions, model=model, dt=day),
        key=lambda row: (row["alias"], row["entity_id"]),
    )
    if classes:
        return found
    for row in found:
        assert (row.pop("predicted_label"), row.pop("class_probabilities")) == (None, None)
    return found


def expected(*frames, day=DAY):
    import pandas as pd

    rows = pd.concat(frames).assign(dt=day).to_dict("records")
    return sorted(rows, key=lambda row: (row["alias"], row["entity_id"]))


@pytest.fixture
def engine(tmp_path):
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    yield engine
    engine.dispose()


def test_load_predictions_replaces_the_night_and_a_rerun_is_idempotent(engine):
    other_night = DAY + dt.timedelta(days=1)
    warehouse.load_predictions(engine, "m", other_night, [frame(5)])
    warehouse.load_predictions(engine, "other", DAY, [frame(5, model="other")])

    first = [frame(300), frame(200, start=300), frame(100, alias="challenger")]
    assert warehouse.load_predictions(engine, "m", DAY, iter(first)) == 600
    assert stored(engine) == expected(*first)
    assert warehouse.load_predictions(engine, "m", DAY, first) == 600
    assert stored(engine) == expected(*first)

    second = [frame(50, start=1000, version="2")]
    assert warehouse.load_predictions(engine, "m", DAY, second) == 50
    assert stored(engine) == expected(*second)
    assert len(stored(engine, day=other_night)) == 5 and len(stored(engine, model="other")) == 5

    assert warehouse.load_predictions(engine, "m", DAY, []) == 0
    assert stored(engine) == []


def test_load_predictions_streams_in_slices(engine, monkeypatch):
    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 7)
    frames = [frame(20, start=k * 20) for k in range(5)]
    assert warehouse.load_predictions(engine, "m", DAY, (f for f in frames)) == 100
    assert stored(engine) == expected(*frames)


BAD_VALUES = [
    ({"score": "0.5"}, "score '0.5' is not a number"),
    ({"score": float("nan")}, "score is missing"),
    ({"score": float("inf")}, "score inf is not a finite number"),
    ({"entity_id": None}, "entity_id is missing"),
    ({"entity_id": 42}, "entity_id 42 is not a string"),
    ({"entity_id": "x" * 129}, "entity_id 'xxx.*is 129 characters long; the warehouse holds at most 128"),
    ({"run_id": "a\x00b"}, "run_id contains a NUL character"),
    ({"model": "n"}, "model 'n' is not the model being loaded \\('m'\\)"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD_VALUES, ids=[m.split(" ")[0] + str(i) for i, (_, m) in enumerate(BAD_VALUES)]
)
def test_a_bad_value_names_the_frame_row_and_column_and_keeps_the_night(engine, change, message):
    warehouse.load_predictions(engine, "m", DAY, [frame(10)])
    before = stored(engine)
    broken = frame(10, start=20)
    column, value = next(iter(change.items()))
    broken[column] = broken[column].astype(object)
    broken.loc[7, column] = value
    with pytest.raises(warehouse.BadPredictions, match=f"frame 1, row 7 \\(index 7; row 17 of the load\\): {message}"):
        warehouse.load_predictions(engine, "m", DAY, [frame(10, start=100), broken, frame(10, start=200)])
    assert stored(engine) == before


def test_lengths_are_counted_in_characters_like_postgres(engine):
    wide = frame(2).assign(entity_id=["ü" * 128, "✓" * 128])
    assert warehouse.load_predictions(engine, "m", DAY, [wide]) == 2
    assert {row["entity_id"] for row in stored(engine)} == {"ü" * 128, "✓" * 128}


def test_frames_with_the_wrong_columns_are_refused_by_name(engine):
    with pytest.raises(
        warehouse.BadPredictions, match="frame 0 has the wrong columns \\(missing score; unexpected dt\\)"
    ):
        warehouse.load_predictions(engine, "m", DAY, [frame(3).drop(columns="score").assign(dt=DAY)])
    with pytest.raises(warehouse.BadPredictions, match="frame 1 is a list, not a pandas DataFrame"):
        warehouse.load_predictions(engine, "m", DAY, [frame(3), [{"score": 1.0}]])
    assert stored(engine) == []


def multiclass(n, start=0, alias="champion", version="1", model="m"):
    """A multiclass model's frame: three classes, `class_probabilities` as JSON text, as the scoring stage writes it."""
    import json

    probabilities = [
        {"class_0": (i % 5) / 10, "class_1": 0.1 + (i % 3) / 10, "class_2": 0.9 - (i % 5) / 10 - (i % 3) / 10}
        for i in range(start, start + n)
    ]
    labels = [max(p, key=p.__getitem__) for p in probabilities]
    return frame(n, start, alias, version, model).assign(
        score=[p[label] for p, label in zip(probabilities, labels, strict=True)],
        predicted_label=labels,
        class_probabilities=[json.dumps(p) for p in probabilities],
    )


def expected_multiclass(*frames):
    import json

    return [{**row, "class_probabilities": json.loads(row["class_probabilities"])} for row in expected(*frames)]


def test_a_multiclass_night_loads_and_reads_back_exactly(engine, monkeypatch):
    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 7)
    frames = [multiclass(20), multiclass(10, start=20), multiclass(5, alias="challenger", version="2")]
    frames[1].loc[3, "class_probabilities"] = '{"class_0": 0.30000000000000004, "class_1": 1e-300, "class_2": 1}'
    frames[1].loc[3, "predicted_label"] = "ünïcødé ✓ " + "x" * 190
    assert warehouse.load_predictions(engine, "m", DAY, frames) == 35
    loaded = stored(engine, classes=True)
    assert loaded == expected_multiclass(*frames)
    [awkward] = [row for row in loaded if row["entity_id"] == "e23"]
    assert awkward["class_probabilities"] == {"class_0": 0.30000000000000004, "class_1": 1e-300, "class_2": 1}
    assert awkward["predicted_label"] == "ünïcødé ✓ " + "x" * 190

    champion = warehouse.night_predictions(engine, "m", DAY)
    assert [row["entity_id"] for row in champion] == sorted(f"e{i}" for i in range(30))
    assert all(isinstance(row["class_probabilities"], dict) for row in champion)
    labels = [row["predicted_label"] for row in champion]
    assert warehouse.class_shares(engine, "m", DAY) == {
        label: labels.count(label) / 30 for label in sorted(set(labels))
    }
    assert warehouse.class_shares(engine, "m", DAY, alias="challenger") == {"class_0": 0.2, "class_2": 0.8}

    assert warehouse.load_predictions(engine, "m", DAY, [frame(5)]) == 5
    assert stored(engine) == expected(frame(5))
    assert warehouse.class_shares(engine, "m", DAY) == {}


def test_replace_predictions_takes_multiclass_rows_with_probabilities_as_dicts(engine):
    import json

    texts = multiclass(4).to_dict("records")
    dicts = [{**row, "class_probabilities": json.loads(row["class_probabilities"]), "dt": DAY} for row in texts]
    assert warehouse.replace_predictions(engine, "m", DAY, dicts[:2] + texts[2:]) == 4
    assert stored(engine, classes=True) == expected_multiclass(multiclass(4))
    with pytest.raises(warehouse.BadPredictions, match=r"row 1 .*: predicted_label is missing"):
        warehouse.replace_predictions(engine, "m", DAY, [texts[0], rows(1)[0]])


BAD_CLASS_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"predicted_label": None}, "predicted_label is missing (None or NaN)"),
    ({"predicted_label": 2}, "predicted_label 2 is not a string"),
    ({"predicted_label": "x" * 201}, "is 201 characters long; the warehouse holds at most 200"),
    ({"predicted_label": "a\x00b"}, "predicted_label contains a NUL character"),
    ({"class_probabilities": None}, "class_probabilities is missing (None or NaN)"),
    ({"class_probabilities": {"a": 1.0}}, "class_probabilities {'a': 1.0} is not a string"),
    ({"class_probabilities": "{'a': 1}"}, "class_probabilities \"{'a': 1}\" is not JSON text (Expecting property"),
    ({"class_probabilities": "[0.2, 0.8]"}, "'[0.2, 0.8]' is not a JSON object of class names and probabilities"),
    ({"class_probabilities": "{}"}, "class_probabilities '{}' is not a JSON object"),
    ({"class_probabilities": '{"a": NaN}'}, "is not JSON text (NaN is not a number JSON allows)"),
    ({"class_probabilities": '{"a": 1e999}'}, "has inf for class 'a', not a finite number"),
    ({"class_probabilities": '{"a": "0.5"}'}, "has '0.5' for class 'a', not a number"),
    ({"class_probabilities": '{"a": true}'}, "has True for class 'a', not a number"),
    ({"class_probabilities": '{"a": 0.5, "a": 0.5}'}, "is not JSON text (class 'a' appears twice)"),
    ({"class_probabilities": '{"a\\u0000": 1}'}, "has a class name 'a\\x00' Postgres refuses"),
    ({"class_probabilities": '{"\\ud800": 1}'}, "has a class name '\\ud800' Postgres refuses"),
]


@pytest.mark.parametrize(
    ("change", "message"),
    BAD_CLASS_VALUES,
    ids=[next(iter(change)) + str(i) for i, (change, _) in enumerate(BAD_CLASS_VALUES)],
)
def test_a_bad_multiclass_value_names_the_frame_row_and_column_and_keeps_the_night(engine, change, message):
    warehouse.load_predictions(engine, "m", DAY, [multiclass(10)])
    before = stored(engine, classes=True)
    broken = multiclass(10, start=20)
    column, value = next(iter(change.items()))
    broken[column] = broken[column].astype(object)
    broken.at[7, column] = value
    with pytest.raises(warehouse.BadPredictions) as caught:
        warehouse.load_predictions(engine, "m", DAY, [multiclass(10, start=100), broken])
    assert "frame 1, row 7 (index 7; row 17 of the load): " in str(caught.value)
    assert message in str(caught.value).split("row 17 of the load): ", 1)[1]
    assert stored(engine, classes=True) == before


def test_frames_of_another_kind_or_with_half_the_class_columns_are_refused(engine):
    with pytest.raises(
        warehouse.BadPredictions,
        match=r"frame 0 has the wrong columns \(missing class_probabilities\); expected exactly prediction_id, .*"
        r"run_id, or those and predicted_label, class_probabilities for a multiclass model",
    ):
        warehouse.load_predictions(engine, "m", DAY, [multiclass(3).drop(columns="class_probabilities")])
    with pytest.raises(
        warehouse.BadPredictions,
        match=r"frame 2 holds no predicted_label or class_probabilities \(binary or regression\) but frame 1 "
        r"holds predicted_label and class_probabilities \(multiclass\)",
    ):
        warehouse.load_predictions(engine, "m", DAY, [frame(0), multiclass(3), frame(3, start=3), multiclass(0)])
    assert stored(engine) == []


def test_two_rows_for_one_entity_and_alias_are_refused(engine):
    warehouse.load_predictions(engine, "m", DAY, [frame(10)])
    with pytest.raises(warehouse.BadPredictions, match="two rows have the same entity and alias"):
        warehouse.load_predictions(engine, "m", DAY, [frame(10), frame(5, start=8)])
    assert stored(engine) == expected(frame(10))


def test_replace_predictions_refuses_rows_of_another_night(engine):
    with pytest.raises(warehouse.BadPredictions, match="row 3 is for dt 2026-10-06"):
        warehouse.replace_predictions(engine, "m", DAY, [*rows(3), {**rows(1)[0], "dt": DAY + dt.timedelta(days=1)}])


def test_the_rowwise_baseline_stores_the_same_rows(engine):
    warehouse.load_predictions(engine, "m", DAY, [frame(10, version="0")])
    assert warehouse_baselines.insert_predictions_rowwise(engine, "m", DAY, frame(30)) == 30
    assert stored(engine) == expected(frame(30))


def test_frames_are_not_held_after_they_are_loaded(engine, monkeypatch):
    import gc
    import weakref

    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 10)
    seen: list[weakref.ref[Any]] = []

    def frames():
        for k in range(30):
            gc.collect()
            assert sum(ref() is not None for ref in seen) <= 2
            made = frame(25, start=k * 25)
            seen.append(weakref.ref(made))
            yield made

    assert warehouse.load_predictions(engine, "m", DAY, frames()) == 750


def decode_copy(data: bytes, columns) -> list[tuple]:
    """Rows of Postgres's binary COPY format: the text columns as str, the score as float."""
    import struct

    assert data.startswith(binary_copy._COPY_HEADER) and data.endswith(binary_copy._COPY_TRAILER)
    view, at, out = data[len(binary_copy._COPY_HEADER) : -len(binary_copy._COPY_TRAILER)], 0, []
    while at < len(view):
        (fields,) = struct.unpack_from("!h", view, at)
        assert fields == len(columns)
        at += 2
        row = []
        for name in columns:
            (size,) = struct.unpack_from("!i", view, at)
            at += 4
            cell = view[at : at + size]
            at += size
            if name == "score":
                row.append(struct.unpack("!d", cell)[0])
            elif name == "class_probabilities":
                assert cell[:1] == b"\x01", "JSONB's binary format starts with its version, 1"
                row.append(cell[1:].decode())
            else:
                row.append(cell.decode())
        out.append(tuple(row))
    return out


def copy_segments(data, sent=None):
    """What `_copy` would send for the frame `data`: per COPY, its group and its rows as _COPY_COLUMNS and the class
    columns the frame holds (group columns filled in); `sent` collects each COPY's columns."""
    import functools

    tables = prediction_frames._checked_tables([data], "m", DAY)
    classes = tuple(name for name in binary_copy._CLASS_COLUMNS if name in data.columns)
    segments: list[tuple[Any, list[tuple]]] = []
    with binary_copy._CopyStream(tables) as stream:
        while (group := stream.next_segment()) is not binary_copy._END:
            encoded = b"".join(iter(functools.partial(stream.read, 7), b""))
            rows = decode_copy(encoded, stream.columns)
            if sent is not None:
                sent.append(stream.columns)
            if group is None:
                assert stream.columns == (*binary_copy._COPY_COLUMNS, *classes)
                segments.append((None, rows))
            else:
                assert isinstance(group, tuple) and stream.columns == (*binary_copy._ROW_COLUMNS, *classes)
                width = len(binary_copy._ROW_COLUMNS)
                segments.append((group, [(*row[:width], *group, *row[width:]) for row in rows]))
    assert stream.rows == len(data)
    return segments


def test_the_copy_encoding_round_trips_awkward_values(monkeypatch):
    import pandas as pd

    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 4)
    entities = ["", " ", "comma,inside", 'quote"inside', "new\nline", "tab\tinside", "ünïcødé ✓", "\\N", "NULL", "\\."]
    scores = [0.0, -0.0, 0.1 + 0.2, 1e-300, 1.7976931348623157e308, -1.5, 1 / 3, 2.0, 123456789.123456789, 0.5]
    varied = frame(10).assign(entity_id=entities, score=scores)
    varied.loc[9, "run_id"] = "another run"
    two_groups = pd.concat([frame(5), frame(5, start=5, alias="challenger", version="2")], ignore_index=True)

    def rows_of(data):
        return list(data[list(binary_copy._COPY_COLUMNS)].itertuples(index=False, name=None))

    segments = copy_segments(varied)
    assert [group for group, _ in segments] == [("1", "champion", "run-1"), None]
    assert [row for _, rows in segments for row in rows] == rows_of(varied)
    assert [len(rows) for _, rows in segments] == [8, 2]
    assert [math.copysign(1, row[2]) for _, rows in segments for row in rows][:2] == [1, -1]

    segments = copy_segments(two_groups)
    assert [group for group, _ in segments] == [("1", "champion", "run-1"), None, ("2", "challenger", "run-2")]
    assert [row for _, rows in segments for row in rows] == rows_of(two_groups)


def test_multiclass_columns_are_sent_only_by_multiclass_slices_and_as_jsonb(monkeypatch):
    import pandas as pd

    monkeypatch.setattr(prediction_frames, "LOAD_SLICE_ROWS", 4)
    sent: list[tuple[str, ...]] = []
    copy_segments(frame(10), sent)
    assert set(sent) == {binary_copy._ROW_COLUMNS}

    same = multiclass(8).assign(class_probabilities='{"a": 1.0}', predicted_label="a")
    mixed = pd.concat([same, multiclass(8, start=8, alias="challenger", version="2")], ignore_index=True)
    mixed.loc[15, "run_id"] = "another run"
    columns = [*binary_copy._COPY_COLUMNS, *binary_copy._CLASS_COLUMNS]
    segments = copy_segments(mixed, sent)
    assert [group for group, _ in segments] == [("1", "champion", "run-1"), ("2", "challenger", "run-2"), None]
    assert [len(rows) for _, rows in segments] == [8, 4, 4]
    assert [row for _, rows in segments for row in rows] == list(mixed[columns].itertuples(index=False, name=None))


def test_partition_names_fit_postgres_and_stay_distinct():
    assert warehouse.night_partition("credit_risk", DAY) == "credit_risk_20261005"
    odd = [warehouse.night_partition(model, DAY) for model in ("Credit-Risk", "credit_risk", "credit risk", "x" * 64)]
    assert len(set(odd)) == 4 and all(len(name) <= 63 and name.replace("_", "").isalnum() for name in odd)
    assert warehouse.partition_schema("public") == "public_predictions"
    assert len(warehouse.partition_schema("s" * 63)) <= 63


def test_synthetic_predictions_look_like_a_night_with_a_challenger_in_shadow():
    import hashlib

    import pandas as pd

    frames = list(warehouse_baselines.synthetic_predictions("credit_risk", DAY, 1001, frame_rows=200))
    night = pd.concat(frames, ignore_index=True)
    assert all(list(f.columns) == list(warehouse.PREDICTION_COLUMNS) for f in frames)
    assert len(night) == 1001 and max(len(f) for f in frames) == 200
    champion, challenger = (night[night["alias"] == alias] for alias in ("champion", "challenger"))
    assert len(champion) == 501 and list(challenger["entity_id"]) == list(champion["entity_id"][:500])
    assert (
        list(champion["entity_id"]) == sorted(champion["entity_id"])
        and champion["entity_id"].iloc[0] == "20261005-000000000"
    )
    row = challenger.iloc[3]
    assert (
        row["prediction_id"]
        == hashlib.sha256(f"credit_risk|{DAY}|challenger|{row['entity_id']}".encode()).hexdigest()[:32]
    )
    shuffled = pd.concat(
        warehouse_baselines.synthetic_predictions("credit_risk", DAY, 1001, shuffled=True), ignore_index=True
    )
    assert set(shuffled["entity_id"]) == set(night["entity_id"]) and list(shuffled["entity_id"]) != list(
        night["entity_id"]
    )
    assert warehouse.load_predictions(warehouse.connect("sqlite://"), "credit_risk", DAY, frames) == 1001


def check_scoring_backlog(engine: Any) -> None:
    """A night is recorded unscored once, and resolved once (the PostgreSQL test runs the same checks)."""
    row = {"model": "m", "dt": DAY, "reason": "no champion yet: nothing scored", "command": "c", "run_id": "r1"}
    warehouse.record_unscored(engine, row)
    warehouse.record_unscored(engine, row)
    assert [entry["status"] for entry in warehouse.backlog(engine, "m")] == [warehouse.UNSCORED]
    assert warehouse.backlog(engine, "m", warehouse.UNSCORED, through=DAY - dt.timedelta(days=1)) == []
    assert warehouse.resolve_unscored(engine, "m", DAY, "3", "r2") is True
    assert warehouse.resolve_unscored(engine, "m", DAY, "4", "r3") is False
    [done] = warehouse.backlog(engine, "m", night=DAY)
    assert (done["status"], done["scored_version"], done["scored_run_id"], done["run_id"]) == (
        "scored",
        "3",
        "r2",
        "r1",
    )
    assert warehouse.backlog(engine, "m", warehouse.UNSCORED) == []


def test_the_scoring_backlog_records_a_night_once_and_resolves_it_once(tmp_path) -> None:
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        check_scoring_backlog(engine)
    finally:
        engine.dispose()


def check_night_runs(engine: Any) -> None:
    """Each run's validation, drift and decision of a night is kept in `night_runs` while the current rows are replaced
    (the PostgreSQL test runs the same checks)."""
    extra = other_rows()
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for run_id, version, decision in (("run-1", "1", "retrain"), ("run-2", "2", "wait")):
        warehouse.record_validation(engine, {**extra["validation"], "run_id": run_id}, run_type="scheduled")
        night = {**extra["night"], "run_id": run_id, "model_version": version, "report_uri": f"file:///{run_id}.html"}
        warehouse.record_drift(engine, night, extra["features"], run_type="manual")
        row = {**extra["decision"], "run_id": run_id, "decision": decision, "requested": decision == "retrain"}
        warehouse.record_retrain_decision(engine, {**row, "reasons": '["night drifted"]'}, model_version=version)
    warehouse.append_night_run(
        engine,
        "drift",
        {"model": "m", "dt": DAY + dt.timedelta(days=1), "run_id": "run-3", "skipped": "no champion yet"},
        run_type="scheduled",
    )

    history = warehouse.night_runs(engine, "m", DAY)
    assert [(row["stage"], row["run_id"], row["model_version"]) for row in history] == [
        ("validation", "run-1", None),
        ("drift", "run-1", "1"),
        ("decision", "run-1", "1"),
        ("validation", "run-2", None),
        ("drift", "run-2", "2"),
        ("decision", "run-2", "2"),
    ]
    assert [row["id"] for row in history] == sorted(row["id"] for row in history)
    assert [row["run_type"] for row in history[:3]] == ["scheduled", "manual", "scheduled"]
    assert history[1]["details"] == {
        "drift_share": 0.5,
        "dataset_drift": True,
        "drifted_features": ["a"],
        "critical_drifted": [],
        "prediction_drifted": False,
    }
    assert history[1]["address"] == "file:///run-1.html" and history[0]["address"] == "file:///r.html"
    assert history[0]["details"]["accepted_rows"] == 9 and history[0]["details"]["passed"] is True
    assert [row["details"] for row in history if row["stage"] == "decision"] == [
        {"requested": True, "decision": "retrain", "reasons": ["night drifted"]},
        {"requested": False, "decision": "wait", "reasons": ["night drifted"]},
    ]
    for row in history:
        assert row["recorded_at"].tzinfo is not None and row["recorded_at"] >= before
    [current] = warehouse.fetch_all(engine, warehouse.retrain_decisions, model="m")
    assert (current["run_id"], current["decision"]) == ("run-2", "wait")
    assert [row["model_version"] for row in warehouse.fetch_all(engine, warehouse.drift_nights, model="m")] == ["2"]
    assert warehouse.count_rows(engine, warehouse.validation_runs, model="m") == 1

    [skipped] = warehouse.night_runs(engine, "m", DAY + dt.timedelta(days=1))
    assert (skipped["stage"], skipped["model_version"], skipped["details"]) == (
        "drift",
        None,
        {"skipped": "no champion yet"},
    )
    assert len(warehouse.night_runs(engine, "m")) == 7 and warehouse.night_runs(engine, "other") == []

    with pytest.raises(sa.exc.IntegrityError):
        warehouse.record_retrain_decision(engine, {**extra["decision"], "run_id": "run-4", "decision": None})
    assert len(warehouse.night_runs(engine, "m")) == 7
    assert [row["run_id"] for row in warehouse.fetch_all(engine, warehouse.retrain_decisions, model="m")] == ["run-2"]
    with pytest.raises(ValueError, match="stage 'scoring'"):
        warehouse.append_night_run(engine, "scoring", {"model": "m", "dt": DAY, "run_id": "run-5"})


def test_night_runs_keep_every_run_of_a_night_beside_the_current_rows(tmp_path) -> None:
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        check_night_runs(engine)
    finally:
        engine.dispose()


def test_a_retried_task_appends_another_night_run_with_the_same_run_id(tmp_path) -> None:
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")
    decision = other_rows()["decision"]
    warehouse.record_retrain_decision(engine, decision)
    warehouse.record_retrain_decision(engine, decision)
    assert [(row["stage"], row["run_id"]) for row in warehouse.night_runs(engine, "m", DAY)] == [("decision", "r")] * 2
    assert warehouse.count_rows(engine, warehouse.retrain_decisions) == 1


def test_a_nights_performance_rows_are_replaced_whole_and_read_back_by_window(tmp_path):
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'w.db'}")

    def night(day, alias, realized):
        return {
            "model": "m", "dt": day, "alias": alias, "model_version": "1", "rows": 10, "labelled_rows": 5,
            "coverage": 0.5, "labels_through": day, "metric": "roc_auc", "reference": 0.8, "realized": realized,
            "estimated": 0.79, "estimated_lower": 0.7, "estimated_upper": 0.85, "basis": "estimated",
            "degraded": False, "concept_drift": False, "page_uri": None, "run_id": "r",
        }  # fmt: skip

    def metric(day, kind, slice_=""):
        return {
            "model": "m", "dt": day, "alias": "champion", "kind": kind, "slice": slice_, "metric": "roc_auc",
            "model_version": "1", "value": 0.7, "lower": None, "upper": None, "rows": 10, "labelled_rows": 5,
            "coverage": 0.5, "labels_through": day, "run_id": "r",
        }  # fmt: skip

    first, second = DAY, DAY + dt.timedelta(days=1)
    warehouse.record_performance(
        engine, "m", first, [night(first, "champion", None), night(first, "challenger", None)],
        [metric(first, "estimated"), metric(first, "realized", "x=a")],
    )  # fmt: skip
    warehouse.record_performance(engine, "m", second, [night(second, "champion", 0.6)], [metric(second, "realized")])
    warehouse.record_performance(engine, "m", first, [night(first, "champion", 0.7)], [metric(first, "realized")])
    assert [
        (row["dt"], row["alias"], row["realized"]) for row in warehouse.performance_history(engine, "m", first, second)
    ] == [
        (first, "champion", 0.7),
        (second, "champion", 0.6),
    ]
    assert len(warehouse.performance_history(engine, "m", first, first, alias=None)) == 1
    assert [(row["kind"], row["slice"]) for row in warehouse.night_performance_metrics(engine, "m", first)] == [
        ("realized", "")
    ]
    quality = {
        "model": "m", "dt": first, "feature": "f", "model_version": "1", "rows": 10, "missing_share": 0.2,
        "reference_missing_share": 0.1, "out_of_range_share": 0.0, "unseen_category_share": None, "flagged": True,
        "reasons": "[]",
    }  # fmt: skip
    warehouse.record_data_quality(engine, "m", first, [quality, {**quality, "feature": "g"}])
    warehouse.record_data_quality(engine, "m", first, [quality])
    assert warehouse.count_rows(engine, warehouse.data_quality, model="m") == 1
