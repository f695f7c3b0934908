"""What the nightshift DAG files share: the specs a file builds, the default_args (light: imported at parse time)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from nightshift.config import ModelSpec, load_spec, load_specs, settings
from nightshift.runtime.connections import export_from_context


def alert_failure(context: Any) -> None:
    """on_failure_callback: alert a task's final failure (Airflow calls it after the last retry only)."""
    from nightshift.alerting.callback import on_task_failure

    on_task_failure(context)


RETRY_DELAY = dt.timedelta(minutes=1)


def default_args(owner: str, retries: int) -> dict[str, Any]:
    """Owner, retries, a one-minute retry delay, the hook that sets the settings from the Airflow connections, and the
    callback that alerts a task's final failure."""
    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": RETRY_DELAY,
        "pre_execute": export_from_context,
        "on_failure_callback": alert_failure,
    }


DAG_KINDS = ("nightly", "retrain", "rollback")
"""The DAG files' kinds: a model's DAG ids are `<model>_<kind>`."""


def specs_to_build(parsing_dag_id: str | None, models_dir: Path | str | None = None) -> list[ModelSpec]:
    """The specs a DAG file builds DAGs for.

    A task's process parses its DAG's file only to find that DAG (Airflow's parsing context names it): then only
    that model's spec is loaded and built, so a task starts as fast with a hundred models as with one. The DAG
    processor (no parsing context), or a DAG id that names no model, gets every spec.
    """
    folder = Path(models_dir) if models_dir else settings().models_dir
    for kind in DAG_KINDS:
        if parsing_dag_id and parsing_dag_id.endswith(f"_{kind}"):
            path = folder / f"{parsing_dag_id.removesuffix(f'_{kind}')}.yaml"
            if path.is_file():
                return [load_spec(path)]
    return load_specs(folder)
