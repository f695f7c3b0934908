import datetime as dt
from types import SimpleNamespace

from nightshift.runs import run_date, run_info


def context(run_type: str, logical_date: dt.datetime | None, user: str | None = None) -> dict:
    dag_run = SimpleNamespace(
        run_id=f"{run_type}__x",
        run_type=SimpleNamespace(value=run_type),
        triggering_user_name=user,
        run_after=dt.datetime(2026, 10, 9, 7, tzinfo=dt.UTC),
    )
    return {"dag_run": dag_run, "logical_date": logical_date}


def test_backfill_runs_are_recognised():
    assert run_info(context("backfill", None)).is_backfill
    assert not run_info(context("scheduled", None)).is_backfill


def test_actor_names_the_user_or_the_run_type():
    assert run_info(context("manual", None, user="ada")).actor == "user:ada"
    assert run_info(context("asset_triggered", None)).actor == "airflow:asset_triggered"


def test_run_date_is_the_logical_date_else_run_after():
    assert run_date(context("scheduled", dt.datetime(2026, 10, 5, 2, tzinfo=dt.UTC))) == "2026-10-05"
    assert run_date(context("manual", None)) == "2026-10-09"
