"""The default_args every nightshift DAG shares (light: imported by DAG files at parse time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
