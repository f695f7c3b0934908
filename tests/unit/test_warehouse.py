import datetime as dt

import pytest
import sqlalchemy as sa

from nightshift import warehouse

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
    with pytest.raises(sa.exc.StatementError):
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


def write_every_table(engine):
    extra = other_rows()
    warehouse.replace_predictions(engine, "m", DAY, rows(20))
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


def table_counts(engine):
    return {name: warehouse.count_rows(engine, warehouse.metadata.tables[name]) for name in sorted(TABLES)}


def test_connect_migrates_a_new_warehouse_to_the_head_and_a_rerun_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = warehouse.connect(url)
    assert warehouse.schema_version(engine) == HEAD
    assert TABLES | {warehouse.VERSION_TABLE} <= set(sa.inspect(engine).get_table_names())
    assert schema_differences(engine) == []
    write_every_table(engine)
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
    write_every_table(engine)
    before = {name: warehouse.fetch_all(engine, warehouse.metadata.tables[name]) for name in TABLES}

    assert warehouse.migrate(url) == HEAD
    assert {name: warehouse.fetch_all(engine, warehouse.metadata.tables[name]) for name in TABLES} == before
    assert index_names(engine, "predictions") == {"ux_predictions_night_entity"}
    assert "ix_drift_metrics_feature_trend" in index_names(engine, "drift_metrics")
    assert "ix_retrain_decisions_requested" in index_names(engine, "retrain_decisions")
    assert schema_differences(engine) == []


def test_a_warehouse_made_before_migrations_existed_is_adopted_with_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    warehouse.migrate(url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {warehouse.VERSION_TABLE}")
    write_every_table(engine)

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

    with pytest.raises(warehouse.WarehouseError, match=r"from 0001 to version 0002 failed: .*UNIQUE"):
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
