"""One night on CeleryExecutor: Airflow's scheduler, DAG processor and API server on a PostgreSQL metadata database,
Redis (on the machine) as the broker, the metadata database as Celery's result backend, and two workers with one
task slot each. The night's drop comes in several files, and both workers must run part of the night."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.broker import redis_broker
from tests.champions import register_champion
from tests.servers import free_port, postgres_database

pytestmark = pytest.mark.e2e

MODEL = "credit_risk"
NIGHTLY = f"{MODEL}_nightly"
NIGHT = dt.date(2026, 10, 1)
ROWS, FILES = 20_000, 4
WORKERS = ("worker1@nightshift", "worker2@nightshift")
PER_FILE_TASKS = ("validate_part", "score_part")
TERMINAL = ("success", "failed")
SETTINGS_VARIABLES = ("NIGHTSHIFT_", "MLFLOW_", "AWS_", "AIRFLOW")


def worker_env(home: Path, port: int, metadata_db: str, broker: str) -> dict[str, str]:
    """Airflow on CeleryExecutor over the metadata database; the nightly's schedule holds only NIGHT, never caught up."""
    from nightshift.config import settings
    from nightshift.runtime.supervisor import airflow_settings, celery_settings
    from nightshift_dev.demo import Season

    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_VARIABLES)}
    env.update(airflow_settings(settings(), Season(start=NIGHT, nights=1), port, catchup=False))
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db
    env.update(celery_settings(broker, f"db+{metadata_db}"))
    env["NIGHTSHIFT_HOME"] = str(home)
    env.update(local_stores(home))
    return env


def local_stores(home: Path) -> dict[str, str]:
    """The warehouse and MLflow in SQLite files under the home: this test is about the executor, not the stores."""
    return {
        "NIGHTSHIFT_WAREHOUSE_URL": f"sqlite:///{home / 'warehouse.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
    }


@pytest.fixture(scope="module")
def celery_night(tmp_path_factory):
    from nightshift.config import get_spec
    from nightshift.runtime.supervisor import Services, prepare_airflow
    from nightshift.stores.objects import open_store
    from nightshift_dev.airflow_api import AirflowApi
    from nightshift_dev.demo import wait_until
    from nightshift_dev.simulate import SimulationPlan, simulate

    home = tmp_path_factory.mktemp("celery")
    started = time.monotonic()
    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(1) as background:
        patch.setenv("NIGHTSHIFT_HOME", str(home))
        for key, value in local_stores(home).items():
            patch.setenv(key, value)
        broker = stack.enter_context(redis_broker())
        metadata_db = stack.enter_context(postgres_database("ns_celery"))
        port = free_port()
        env = worker_env(home, port, metadata_db, broker)
        store = open_store((home / "store").as_uri())
        plan = SimulationPlan(start=NIGHT, days=1, rows_per_day=ROWS, files_per_day=FILES, bad_row_share=0.01)
        simulate(store, get_spec(MODEL), plan)
        services = Services(env, home / "logs", workers=WORKERS, worker_concurrency=1)
        api = AirflowApi(f"http://127.0.0.1:{port}")

        def boot() -> None:
            prepare_airflow(env)
            services.start()

        booted = background.submit(boot)
        record: dict = {"store": store}
        try:
            record["champion"] = register_champion(NIGHT - dt.timedelta(days=1))
            booted.result()
            wait_until(lambda: api.has_dag(NIGHTLY), services, 300, f"the DAG processor to parse {NIGHTLY}")
            ready = time.monotonic()
            night_at = dt.datetime.combine(NIGHT, dt.time(2), dt.UTC)
            run_id = api.trigger(NIGHTLY, {}, logical_date=night_at)["dag_run_id"]

            def night_done() -> bool:
                return api.run(NIGHTLY, run_id)["state"] in TERMINAL

            wait_until(night_done, services, 900, f"the {NIGHTLY} run for {NIGHT}")
            finished = time.monotonic()
            record["run"] = api.run(NIGHTLY, run_id)
            record["task_instances"] = api.task_instances(NIGHTLY, run_id)
            record["runs"] = api.runs(NIGHTLY)
        finally:
            wait([booted])
            services.stop()
            record["logs"] = "".join(
                f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                for path in sorted(services.logs.values())
            )
            record["pids"] = [process.pid for process in services.processes.values()]
        print(
            f"\n[celery] services ready {ready - started:.0f}s, night ran {finished - ready:.0f}s, "
            f"total {time.monotonic() - started:.0f}s"
        )
        yield record


def test_the_night_succeeds_on_celery_workers(celery_night):
    run = celery_night["run"]
    assert run["state"] == "success", celery_night["logs"]
    assert [other["dag_run_id"] for other in celery_night["runs"]] == [run["dag_run_id"]]
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in celery_night["task_instances"]}
    assert set(states.values()) <= {"success", "skipped"}, states
    manifest = json.loads(celery_night["store"].read_bytes(f"predictions/{MODEL}/dt={NIGHT}/_SUCCESS"))
    assert manifest["versions"] == {"champion": celery_night["champion"]}
    assert 0.95 * ROWS <= manifest["rows"]["champion"] < ROWS, "about 1% of the drop's rows are damaged"


def where(task_instances: list[dict]) -> list[tuple[str, int, str, str]]:
    return [(ti["task_id"], ti["map_index"], ti["state"], ti["hostname"]) for ti in task_instances]


def test_both_workers_ran_tasks_of_the_night(celery_night):
    ran = [ti for ti in celery_night["task_instances"] if ti["state"] == "success"]
    assert {ti["hostname"] for ti in ran} == set(WORKERS), where(ran)


@pytest.mark.parametrize("task_id", PER_FILE_TASKS)
def test_the_per_file_tasks_are_spread_over_both_workers(celery_night, task_id):
    """One mapped task instance per file of the drop; with one slot per worker, both take some of them."""
    parts = [ti for ti in celery_night["task_instances"] if ti["task_id"] == task_id]
    assert sorted(ti["map_index"] for ti in parts) == list(range(FILES)), where(parts)
    assert {ti["state"] for ti in parts} == {"success"}, where(parts)
    assert {ti["hostname"] for ti in parts} == set(WORKERS), where(parts)


def process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_no_airflow_process_outlives_the_test(celery_night):
    """Every service ran in its own process group; none of those groups has a process left (no orphan workers)."""
    import psutil

    groups = set(celery_night["pids"])
    left = [proc.info for proc in psutil.process_iter(["pid", "cmdline"]) if process_group(proc.info["pid"]) in groups]
    assert left == []
