"""Nights scored before the first champion existed are recorded with a reason and a command, then scored once one does."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from nightshift.config import settings
from nightshift.runs import RunInfo
from nightshift.stages import backlog
from nightshift.stages.drift import tasks as drift_tasks
from nightshift.stages.score import tasks as score_tasks
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stores.objects import open_store, partition_files
from nightshift_dev.simulate import SimulationPlan, simulate
from tests.champions import register_champion

MODEL = "credit_risk"
START = dt.date(2026, 10, 1)
NIGHTS = [START + dt.timedelta(days=offset) for offset in range(3)]
COMMAND = "nightshift score-backlog --model credit_risk"


def scheduled(day: dt.date) -> RunInfo:
    return RunInfo(f"scheduled__{day}T02:00:00+00:00", "scheduled")


def run_night(day: dt.date) -> dict:
    """The nightly stages in the DAG's order, in this process: validate, score, drift, score the backlog."""
    run = scheduled(day)
    validate_tasks.validate(MODEL, day.isoformat(), run)
    scored = score_tasks.score(MODEL, day.isoformat(), run, chunk_rows=250)
    measured = drift_tasks.drift(MODEL, day.isoformat(), run)
    caught_up = backlog.score_backlog(MODEL, day.isoformat(), run, chunk_rows=250)
    return {"scored": scored, "measured": measured, "backlog": caught_up}


def predictions(store, day: dt.date) -> pd.DataFrame:
    keys = partition_files(store, f"predictions/{MODEL}/dt={day}", ".parquet")
    frame = pd.concat([pd.read_parquet(store.local_path(key)) for key in keys], ignore_index=True)
    return frame.sort_values(["alias", "entity_id"]).reset_index(drop=True)


def backlog_rows() -> list[dict]:
    from nightshift.stores import warehouse

    return warehouse.backlog(warehouse.connect(settings().warehouse_url), MODEL)


def summary_json(store, day: dt.date) -> dict:
    return json.loads(store.read_bytes(f"reports/drift/{MODEL}/dt={day}/summary.json"))


@pytest.fixture
def season(home, demo_spec):
    store = open_store(settings().store_uri)
    plan = SimulationPlan(start=START, days=len(NIGHTS), rows_per_day=900, bad_row_share=0.01, files_per_day=2)
    simulate(store, demo_spec, plan)
    return store


def test_unscored_nights_say_why_and_how_then_the_first_night_with_a_champion_scores_them(season, demo_spec, capsys):
    from nightshift import cli
    from nightshift.stages.summary import format_summary, season_summary

    store = season
    before = [run_night(day) for day in NIGHTS[:2]]
    for day, night in zip(NIGHTS[:2], before, strict=True):
        assert night["scored"] == {
            "dt": day.isoformat(),
            "skipped": backlog.NO_CHAMPION,
            "rows": {},
            "command": COMMAND,
        }
        assert night["measured"]["command"] == COMMAND and "not scored" in night["measured"]["skipped"]
        assert night["backlog"]["scored"] == [] and "first champion" in night["backlog"]["note"]
        assert not store.exists(f"predictions/{MODEL}/dt={day}/_SUCCESS")
        unscored = summary_json(store, day)["unscored"]
        assert unscored["reason"] == backlog.NO_CHAMPION and unscored["command"] == COMMAND
    assert [(row["dt"], row["status"], row["reason"], row["command"]) for row in backlog_rows()] == [
        (day, "unscored", backlog.NO_CHAMPION, COMMAND) for day in NIGHTS[:2]
    ]
    assert [row["run_id"] for row in backlog_rows()] == [scheduled(day).run_id for day in NIGHTS[:2]]

    index = store.read_bytes(f"reports/drift/{MODEL}/index.html").decode()
    assert "2 night(s) have no predictions and no drift report yet: 2026-10-01, 2026-10-02" in index
    assert f"<code>{COMMAND}</code>" in index and "not scored: no champion yet" in index
    latest = json.loads(store.read_bytes(f"reports/drift/{MODEL}/latest.json"))
    assert [(night["dt"], night["command"]) for night in latest["unscored"]] == [
        ("2026-10-01", COMMAND),
        ("2026-10-02", COMMAND),
    ]
    summary = season_summary(settings(), MODEL)
    assert [night["dt"] for night in summary["nights_unscored"]] == ["2026-10-01", "2026-10-02"]
    assert (
        "  unscored nights:         2 (2026-10-01, 2026-10-02): no champion yet: nothing scored; "
        f"score them with: {COMMAND}"
    ) in format_summary(summary)
    assert cli.main(["score-backlog", "--model", MODEL]) == 1
    assert "2 still unscored (2026-10-01, 2026-10-02)" in capsys.readouterr().out

    version = register_champion(START - dt.timedelta(days=1), rows=1500)
    third = run_night(NIGHTS[2])

    assert third["scored"]["versions"] == {"champion": version}
    assert third["backlog"]["scored"] == ["2026-10-01", "2026-10-02"] and third["backlog"]["waiting"] == []
    assert third["backlog"]["versions"] == {"champion": version}
    assert third["backlog"]["rows"]["champion"] == sum(len(predictions(store, day)) for day in NIGHTS[:2])
    late_run = scheduled(NIGHTS[2]).run_id
    assert [(row["status"], row["scored_version"], row["scored_run_id"]) for row in backlog_rows()] == [
        ("scored", version, late_run)
    ] * 2
    for day in NIGHTS[:2]:
        measured = summary_json(store, day)
        assert measured["model_version"] == version and "unscored" not in measured
        assert measured["scored_late"] == {
            "reason": backlog.NO_CHAMPION,
            "unscored_by": scheduled(day).run_id,
            "scored_by": late_run,
        }
        assert set(predictions(store, day)["run_id"]) == {late_run}
    index = store.read_bytes(f"reports/drift/{MODEL}/index.html").decode()
    assert "have no predictions" not in index and index.count("(scored late)") == 2
    assert json.loads(store.read_bytes(f"reports/drift/{MODEL}/latest.json"))["unscored"] == []
    summary = season_summary(settings(), MODEL)
    assert summary["nights_unscored"] == [] and summary["nights_with_drift_report"] == 3
    assert summary["rows_scored"]["champion"] == sum(len(predictions(store, day)) for day in NIGHTS)
    assert f"scored late:             2 nights (2026-10-01, 2026-10-02) by champion v{version}" in format_summary(
        summary
    )

    again = backlog.score_backlog(MODEL, NIGHTS[2].isoformat(), scheduled(NIGHTS[2]))
    assert again["scored"] == [] and again["note"] == "no unscored nights"
    assert cli.main(["score-backlog", "--model", MODEL]) == 0
    assert "scored 0 night(s); no unscored nights" in capsys.readouterr().out


def test_a_night_scored_from_the_backlog_holds_the_same_predictions_as_a_normal_night(season, demo_spec):
    from nightshift.stores import warehouse

    store = season
    day = NIGHTS[0]
    run_night(day)
    version = register_champion(START - dt.timedelta(days=1), rows=1500)
    outcome = backlog.score_backlog(MODEL, None, backlog.CLI_RUN, chunk_rows=100)
    assert outcome["scored"] == [day.isoformat()] and outcome["versions"] == {"champion": version}
    late = predictions(store, day)
    engine = warehouse.connect(settings().warehouse_url)
    late_rows = warehouse.count_rows(engine, warehouse.predictions, model=MODEL, dt=day)

    score_tasks.score(MODEL, day.isoformat(), scheduled(day))
    normal = predictions(store, day)

    columns = ["prediction_id", "entity_id", "score", "model", "model_version", "alias"]
    pd.testing.assert_frame_equal(late[columns], normal[columns])
    assert set(late["run_id"]) == {backlog.CLI_RUN.run_id} and late_rows == len(normal)
    loaded = pd.DataFrame(warehouse.fetch_all(engine, warehouse.predictions, model=MODEL, dt=day))
    assert sorted(loaded["prediction_id"]) == sorted(normal["prediction_id"])
