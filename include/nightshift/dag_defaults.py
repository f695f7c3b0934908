"""The default_args every nightshift DAG shares (light: imported by DAG files at parse time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nightshift.runtime.connections import export_from_context

RETRY_DELAY = dt.timedelta(minutes=1)


def default_args(owner: str, retries: int) -> dict[str, Any]:
    """Owner, retries, a one-minute retry delay, and the hook that sets the settings from the Airflow connections."""
    return {"owner": owner, "retries": retries, "retry_delay": RETRY_DELAY, "pre_execute": export_from_context}
