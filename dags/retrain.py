"""Retrain DAG per model: train a candidate → evaluate it against the champion → promote or refuse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_parsing_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.config import PROMOTION_POOL, ModelSpec, retrain_asset_name, retrain_asset_uri
from nightshift.dag_defaults import default_args, specs_to_build
from nightshift.runs import run_info

DOC = """
### {name}: retrain → evaluate → promote

Starts when a nightly run emits the `{asset}` asset event (its `extra` carries the date, the drifted
features and the report), on the fallback schedule `{fallback}`, or by hand.

* `resolve_request` picks the as-of date: the asset event's date, else the `as_of` param, else the latest
  curated night.
* `train_candidate` trains on `training.window_days` days of curated features joined with arrived labels,
  holding out the latest `training.holdout_days` labelled day(s); logs the model, its reference sample and
  statistics to MLflow and points `challenger` at it.
* `evaluate` scores candidate and champion on the same holdout.
* `promote_or_refuse` applies the gate (`promotion` in the spec) under the model's promotion lock in the
  warehouse (a PostgreSQL advisory lock, so it holds outside Airflow's pool too): it re-reads `champion`, moves
  it in one call only if the gate passes and the champion is the one the candidate was compared with, and
  records the decision (promote or refuse, with reasons) in the promotion ledger.
* `alert` tells the spec's `alerts` channels about the promotion (info) or the refusal (ticket), once per run.

Manual runs may override the recipe (`estimator`, `estimator_params`) to try an experiment: the gate still
decides. One run at a time.
"""


@contextmanager
def not_enough_data(run_type: str) -> Iterator[None]:
    """Too little data or a bad request: skip a fallback (cron) run quietly, fail any other run without retrying."""
    try:
        yield
    except ValueError as exc:
        if run_type == "scheduled":
            raise AirflowSkipException(f"fallback run with too little data: {exc}") from None
        raise AirflowFailException(str(exc)) from None


def _retrain_schedule(spec: ModelSpec, request_asset: Asset):
    """The request asset, or the asset or the fallback cron when the spec has one."""
    fallback = spec.training.fallback_cron
    if fallback:
        return AssetOrTimeSchedule(timetable=CronTriggerTimetable(fallback, timezone="UTC"), assets=request_asset)
    return [request_asset]


def _run_params() -> dict[str, Param]:
    """What a manual run may pass: the as-of date, a recipe override and why."""
    return {
        "as_of": Param(None, type=["null", "string"], format="date", description="Train on data up to this date"),
        "estimator": Param(None, type=["null", "string"], description="Override: dotted sklearn classifier"),
        "estimator_params": Param(None, type=["null", "object"], description="Override: estimator parameters"),
        "reason": Param(None, type=["null", "string"], description="Why this run was started"),
    }


def _training_tasks(model: str):
    """Pick the as-of date and reasons, then train and log the candidate."""

    @task
    def resolve_request(**context) -> dict:
        from nightshift.lifecycle import tasks as lifecycle

        events = [
            dict(event.extra or {})
            for asset_events in (context.get("triggering_asset_events") or {}).values()
            for event in asset_events
        ]
        run = run_info(context)
        with not_enough_data(run.run_type):
            return lifecycle.resolve_request(model, events, dict(context["params"]), run)

    @task
    def train_candidate(request: dict, **context) -> dict:
        from nightshift.lifecycle import tasks as lifecycle

        run = run_info(context)
        with not_enough_data(run.run_type):
            return lifecycle.train_candidate(model, request, dict(context["params"]), run)

    return resolve_request, train_candidate


def _promotion_tasks(model: str):
    """Compare candidate and champion, then promote or refuse under the promotion pool."""

    @task
    def evaluate(candidate: dict) -> dict:
        from nightshift.lifecycle import tasks as lifecycle

        return lifecycle.evaluate_candidate(model, candidate)

    @task(pool=PROMOTION_POOL)
    def promote_or_refuse(evaluation: dict, request: dict, **context) -> dict:
        from nightshift.lifecycle import tasks as lifecycle

        when = context["dag_run"].run_after
        return lifecycle.promote_or_refuse(model, evaluation, request, run_info(context), when)

    @task
    def alert(outcome: dict, evaluation: dict, **context) -> dict:
        from nightshift.alerting.callback import connection_getter
        from nightshift.alerting.tasks import decision_alert

        return decision_alert(model, outcome, evaluation, run_info(context), connection_getter(context))

    return evaluate, promote_or_refuse, alert


def build_retrain(spec: ModelSpec):
    model = spec.name
    request_asset = Asset(name=retrain_asset_name(model), uri=retrain_asset_uri(model))

    @dag(
        is_paused_upon_creation=spec.schedule.paused_at_creation,
        dag_id=f"{model}_retrain",
        schedule=_retrain_schedule(spec, request_asset),
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec.owner, retries=1),
        tags=["nightshift", model, "retrain"],
        params=_run_params(),
        doc_md=DOC.format(name=model, asset=retrain_asset_name(model), fallback=spec.training.fallback_cron or "none"),
    )
    def retrain() -> None:
        resolve_request, train_candidate = _training_tasks(model)
        evaluate, promote_or_refuse, alert = _promotion_tasks(model)

        request = resolve_request()
        evaluation = evaluate(train_candidate(request))
        alert(promote_or_refuse(evaluation, request), evaluation)

    return retrain()


for _spec in specs_to_build(get_parsing_context().dag_id):
    globals()[f"{_spec.name}_retrain"] = build_retrain(_spec)
