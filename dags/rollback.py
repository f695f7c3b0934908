"""Rollback DAG per model: move `champion` back to the version it replaced, and record it."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_parsing_context, task

from nightshift.config import PROMOTION_POOL, ModelSpec
from nightshift.dag_defaults import default_args, specs_to_build
from nightshift.runs import run_date, run_info

DOC = """
### {name}: rollback

Manual only. Moves the `champion` alias back to the version the current champion replaced (read from the
promotion ledger), or to `target_version` when given, in one call, and appends a `rollback` row to the
ledger with the reason. The nightly run that follows scores with the restored champion and measures
drift against its own reference sample. `alert` then tells the spec's `alerts` channels (a page by default).
"""


def _alert_task(model: str):
    """Tell the spec's alert channels that `champion` moved back."""

    @task
    def alert(outcome: dict, **context) -> dict:
        from nightshift.alerting.callback import connection_getter
        from nightshift.alerting.tasks import rollback_alert

        reason = context["params"]["reason"]
        day = run_date(context)
        return rollback_alert(model, outcome, reason, run_info(context), day, connection_getter(context))

    return alert


def build_rollback(spec: ModelSpec):
    model = spec.name

    @dag(
        is_paused_upon_creation=spec.schedule.paused_at_creation,
        dag_id=f"{model}_rollback",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec.owner, retries=0),
        tags=["nightshift", model, "rollback"],
        params={
            "target_version": Param(
                None, type=["null", "string"], description="Version to restore (default: previous)"
            ),
            "reason": Param("manual rollback", type="string", description="Why, for the ledger"),
        },
        doc_md=DOC.format(name=model),
    )
    def rollback() -> None:
        @task(pool=PROMOTION_POOL)
        def move_champion_back(**context) -> dict:
            from nightshift.lifecycle import tasks as lifecycle

            params = context["params"]
            return lifecycle.rollback(
                model, params.get("target_version"), params["reason"], run_info(context), context["dag_run"].run_after
            )

        _alert_task(model)(move_champion_back())

    return rollback()


for _spec in specs_to_build(get_parsing_context().dag_id):
    globals()[f"{_spec.name}_rollback"] = build_rollback(_spec)
