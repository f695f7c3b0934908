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
