"""Helpers for tests that run the real DAGs with dag.test() against a throwaway Airflow metadata database."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_MIGRATED: set[str] = set()


def migrate_airflow_db() -> None:
    """`airflow db migrate` once per database, in a subprocess so this process's Airflow stays unconfigured."""
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if url in _MIGRATED:
        return
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    _MIGRATED.add(url)


def use_local_stores(patch: Any, home: Path) -> None:
    """dag.test() runs every task in this process: the stores under `home`, the warehouse and MLflow in SQLite files."""
    patch.setenv("NIGHTSHIFT_HOME", str(home))
    patch.setenv("NIGHTSHIFT_WAREHOUSE_URL", f"sqlite:///{home / 'warehouse.db'}")
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")


def load_dag(dag_id: str, models_dir: Path | None = None) -> Any:
    """Import the DAG files fresh (they read the model specs at import) and return one DAG."""
    from airflow.dag_processing.dagbag import DagBag

    project = Path(__file__).resolve().parents[1]
    bag = DagBag(dag_folder=str(project / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def night_at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(2), dt.UTC)


def task_states(dag_run: Any) -> dict[str, str | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TaskInstance.task_id, TaskInstance.state)
            .filter(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
            .all()
        )
    return {task_id: (str(getattr(state, "value", state)) if state else None) for task_id, state in rows}


def asset_events(asset_name: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == asset_name)
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(event.extra or {}) for event in rows]
