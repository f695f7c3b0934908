"""The `on_failure_callback` every nightshift task has (from `nightshift.dag_defaults`): alert a failure after retries.

Airflow calls it only when a task fails for good (a try that will be retried calls `on_retry_callback`, which is not
set), with the task context; this module reads that context through its keys and attributes, without importing
Airflow. Failures of backfill runs are alerted like any other: a replayed night that fails needs someone too.
"""

from __future__ import annotations

import logging
from typing import Any

from nightshift.runs import run_date, run_info

logger = logging.getLogger(__name__)
DAG_SUFFIXES = ("_nightly", "_retrain", "_rollback")


def model_of(dag_id: str) -> str | None:
    """The model a nightshift DAG belongs to (`<model>_nightly`, `_retrain`, `_rollback`), else None."""
    for suffix in DAG_SUFFIXES:
        if dag_id.endswith(suffix):
            return dag_id[: -len(suffix)]
    return None


def failure_facts(context: Any) -> dict[str, Any]:
    """Which task failed, in which try, with which error, and where its log is."""
    ti = context["ti"]
    error = context.get("exception")
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None),
        "error": f"{type(error).__name__}: {error}" if error is not None else "unknown (no exception in the context)",
        "log_url": getattr(ti, "log_url", None),
    }


def connection_getter(context: Any) -> Any:
    """Airflow connection fields by id, through the context's `conn` accessor (None when it does not exist)."""
    accessor = context.get("conn") if hasattr(context, "get") else None
    if accessor is None:
        return None

    def fields(conn_id: str) -> dict[str, Any] | None:
        try:
            connection = accessor.get(conn_id, None)
        except Exception:
            return None
        if connection is None:
            return None
        return {key: getattr(connection, key, None) for key in ("host", "port", "login", "password")}

    return fields


def on_task_failure(context: Any) -> None:
    """Alert the task's final failure through the model's channels; a delivery failure is logged, never hidden."""
    from nightshift.alerting import messages
    from nightshift.alerting.tasks import alert_context, dispatch
    from nightshift.config import get_spec, settings

    facts = failure_facts(context)
    model = model_of(facts["dag_id"])
    if model is None:
        logger.info("task %s failed; dag %s is not a nightshift model's: no alert", facts["task_id"], facts["dag_id"])
        return
    _export_settings(context)
    spec = get_spec(model, settings().models_dir)
    run, day = run_info(context), run_date(context)
    found = alert_context(spec, day, run, facts["dag_id"])
    notes = [messages.failure_note(found, facts)] if found else []
    try:
        dispatch(spec, _date(day), run.run_id, notes, connection_getter(context))
    except Exception:
        logger.exception("%s: the failure alert of task %s was not delivered", model, facts["task_id"])
        raise


def _export_settings(context: Any) -> None:
    """The connections' settings in the environment (as pre_execute does), in case the task failed before it ran."""
    from nightshift.runtime.connections import export_from_context

    try:
        export_from_context(context)
    except Exception as exc:
        logger.warning("could not read nightshift's Airflow connections for the failure alert: %s", exc)


def _date(day: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(day)
