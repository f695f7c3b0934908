"""Run identity: who and what started a run, and the date it is keyed on (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_type: str
    actor: str = "scheduler"

    @property
    def is_backfill(self) -> bool:
        return self.run_type == "backfill"


def run_info(context: Any) -> RunInfo:
    """Who and what started this run, read from an Airflow task context (no Airflow import needed)."""
    dag_run = context["dag_run"]
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    user = getattr(dag_run, "triggering_user_name", None)
    actor = f"user:{user}" if user else f"airflow:{run_type}"
    return RunInfo(run_id=str(dag_run.run_id), run_type=str(run_type), actor=actor)


def run_date(context: Any) -> str:
    """The date a nightly run is keyed on: its logical date, or for a run without one, its run_after date."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return str(moment.date().isoformat())
