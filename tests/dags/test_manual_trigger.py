"""A manual run dated outside the nightly schedule window gets task instances and fails at once with a reason.

The Trigger dialog's default logical date is now. When that was after the schedule's end_date, Airflow created the
run with no task instance (every task had inherited the DAG's end_date) and marked it green.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.airflow_helpers import load_dag, migrate_airflow_db, task_states

END = dt.date(2026, 10, 21)


@pytest.fixture
def nightly_dag(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("NIGHTSHIFT_SCHEDULE_START", "2026-10-01")
    monkeypatch.setenv("NIGHTSHIFT_SCHEDULE_END", END.isoformat())
    migrate_airflow_db()
    return load_dag("credit_risk_nightly")


def test_a_bounded_window_is_its_cron_ticks_and_no_task_inherits_a_date(nightly_dag):
    from airflow.serialization.serialized_objects import DagSerialization

    assert nightly_dag.start_date == dt.datetime(2026, 10, 1, tzinfo=dt.UTC) and nightly_dag.end_date is None
    events = nightly_dag.timetable.event_dates
    assert len(events) == 21
    assert (events[0], events[-1]) == (
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 21, tzinfo=dt.UTC),
    ), "a night's logical date is its midnight"
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(nightly_dag))
    assert [task.task_id for task in scheduler_dag.tasks if task.end_date] == []
    last = scheduler_dag.timetable.next_dagrun_info(
        last_automated_data_interval=scheduler_dag.timetable.infer_manual_data_interval(run_after=events[-1]),
        restriction=scheduler_dag._time_restriction,
    )
    assert last is None, "the schedule must stop after the window's last night"


def test_the_sdk_events_timetable_still_cannot_be_serialized():
    """Airflow 3.3.2 bug (apache/airflow#69401): when this fails, use airflow.sdk.EventsTimetable in dags/nightly.py."""
    import pendulum
    from airflow.exceptions import SerializationError
    from airflow.sdk import DAG, EventsTimetable
    from airflow.serialization.serialized_objects import DagSerialization

    probe = DAG("probe", schedule=EventsTimetable([pendulum.datetime(2026, 10, 1, 2, tz="UTC")]))
    with pytest.raises(SerializationError, match="_summary"):
        DagSerialization.serialize_dag(probe)


def test_an_open_window_keeps_the_cron_and_its_start(monkeypatch, nightly_dag):
    monkeypatch.delenv("NIGHTSHIFT_SCHEDULE_END")
    dag = load_dag("credit_risk_nightly")
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.start_date == dt.datetime(2026, 10, 1, tzinfo=dt.UTC) and dag.end_date is None
    from airflow.serialization.serialized_objects import DagSerialization

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    next_night = scheduler_dag.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=scheduler_dag._time_restriction
    )
    assert next_night is not None, "an open window has a next night"
    assert next_night.run_after.time() == dt.time(2), "runs at the cron's 02:00"
    assert next_night.logical_date == next_night.run_after - dt.timedelta(hours=2), "at its midnight"


def test_a_manual_run_after_the_window_fails_in_wait_for_drop_without_retries(nightly_dag, capfd):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    now = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
    run = nightly_dag.test(logical_date=now, run_after=now)

    states = task_states(run)
    assert str(run.state) == "failed"
    assert states.pop("wait_for_drop") == "failed"
    assert states and set(states.values()) == {"upstream_failed"}, states
    with create_session() as session:
        [tries] = (
            session.query(TaskInstance.try_number)
            .filter(TaskInstance.run_id == run.run_id, TaskInstance.task_id == "wait_for_drop")
            .one()
        )
    assert tries == 1
    logged = "".join(capfd.readouterr())
    assert "AirflowFailException: logical date 2026-12-03 is after its last night" in logged
    assert "schedule window is 2026-10-01 to 2026-10-21" in logged


def test_wait_for_drop_logs_the_marker_it_found(nightly_dag, tmp_path, capfd):
    from nightshift.stores.objects import flat_partition_writer, open_store

    store = open_store((tmp_path / "home" / "store").as_uri())
    with flat_partition_writer(store, "landing/credit_risk/dt=2026-10-05", {}) as folder:
        (folder / "part-00000.csv").write_text("application_id\n")
    night = dt.datetime(2026, 10, 5, 2, tzinfo=dt.UTC)
    run = nightly_dag.test(logical_date=night, run_after=night, mark_success_pattern=r"^(?!wait_for_drop$)")

    assert task_states(run)["wait_for_drop"] == "success"
    marker = store.url_for("landing/credit_risk/dt=2026-10-05/_SUCCESS")
    assert f"found {marker}: the drop is complete" in "".join(capfd.readouterr())


def test_the_demo_s_bounded_window_catches_up(monkeypatch, nightly_dag):
    monkeypatch.setenv("NIGHTSHIFT_CATCHUP", "true")
    dag = load_dag("credit_risk_nightly")
    assert dag.catchup is True and type(dag.timetable).__name__ == "EventsTimetable"
