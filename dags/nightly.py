"""Nightly DAG per model: wait for the drop → validate and score each drop file (mapped) → labels → drift →
performance → decide → alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import (
    Asset,
    CronTriggerTimetable,
    PokeReturnValue,
    dag,
    get_current_context,
    get_parsing_context,
    task,
)
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.config import (
    ModelSpec,
    Settings,
    catchup_enabled,
    retrain_asset_name,
    retrain_asset_uri,
    schedule_window,
    settings,
)
from nightshift.dag_defaults import default_args, specs_to_build
from nightshift.runs import run_date, run_info
from nightshift.schedule import night_offset, window_nights

DOC = """
### {name}: nightly batch

Runs once a day for the date of its **logical date** (a backfill replays the same steps for past dates).

1. `wait_for_drop` waits for `landing/{name}/dt=<date>/_SUCCESS`, logging the marker's address and when it gives up
   on every check. A run (other than a backfill) dated outside the schedule window ({window}) fails here at once,
   without retries, naming the date and the window: pick a logical date inside it (the Trigger dialog defaults to now).
2. `plan_parts` lists the drop's files; `validate_part` (one mapped task per file, spread over the workers)
   checks each file with Great Expectations in chunks; `commit_validation` judges the night as a whole (row
   count, ids repeated across files, bad-row share). Bad rows go to `quarantine/{name}/dt=<date>/rejected.csv`
   with a reason each, the result to `validation/{name}/dt=<date>/`. Over the bad-row limit the run fails and
   nothing is curated or scored.
3. `scoring_plan` fixes the `champion` (and shadow `challenger`) versions for the night; `score_part` (mapped per
   curated file) scores in chunks; `commit_scores` publishes `predictions/{name}/dt=<date>/` and loads the
   warehouse.
   With no champion yet, nothing is scored: the night is recorded in the warehouse's `scoring_backlog` with the
   reason and the command that scores it (`nightshift score-backlog --model {name}`).
4. `ingest_labels` curates the label drop that landed on the date.
5. `drift` writes `reports/drift/{name}/dt=<date>/` (measured against the champion that scored the night; an unscored
   night's summary says why and how to score it) and refreshes `index.html`.
6. `score_backlog`: once a champion exists, scores every unscored night up to the date with it (same code as a
   normal night), re-measures their drift and marks them scored; a no-op otherwise.
7. `performance`: realized performance of each earlier night whose labels arrived (recomputed while late labels come,
   `performance.late_label_days`; nights the backlog just scored included), the estimate (CBPE) of tonight's, per
   alias, slice and metric, into the warehouse and `reports/performance/{name}/dt=<date>/performance.html`.
8. `decide` applies the drift rule and the performance rule; `request_retrain` emits the `{asset}` asset event naming
   which rule fired with which figures (skipped otherwise, and always skipped for backfill runs).
9. `alert` sends the night's alerts (drift, data quality, performance degraded, retrain requested) to the channels of
   the spec's `alerts` section, once per run (a retry resends only what was not delivered; see `docs/runbook.md`).
   A task that fails after its retries alerts through its failure callback.

Owner: {owner}. Spec: `include/models/{name}.yaml`.
"""


def nightly_schedule(spec: ModelSpec, start: dt.date, end: dt.date | None) -> tuple[Any, dt.datetime | None]:
    """The timetable and the DAG's start_date: the spec's cron from `start`, or with an `end`, its nights in the window.

    A night's logical date is its midnight (`nightshift.schedule`): the cron's time of day is its data interval,
    so date-only backfill bounds take the last night too.

    A bounded window is a list of events and the DAG gets no end_date: every task inherits the DAG's dates
    (DAG.add_task, and again when the scheduler loads the DAG), and DagRun.verify_integrity creates no task instance
    for a non-backfill run dated outside a task's dates, so a manual run after the end was green and empty instead of
    refused by wait_for_drop. Both keep the start_date (Airflow requires one to catch up).

    The events timetable is Airflow's core class: `airflow.sdk.EventsTimetable` cannot be serialized in Airflow 3.3.2
    (KeyError '_summary', apache/airflow#69401); switch to it once that is fixed (tests/dags/test_manual_trigger.py).
    """
    cron = spec.schedule.cron
    first = dt.datetime.combine(start, dt.time(), dt.UTC)
    if end is None:
        return CronTriggerTimetable(cron, timezone="UTC", interval=night_offset(cron)), first
    from airflow.timetables.events import EventsTimetable

    timetable = EventsTimetable(
        window_nights(cron, start, end),  # type: ignore[arg-type]  # aware datetimes work as pendulum's do
        presorted=True,
        description=f"{cron} UTC, {start} to {end}",
    )
    return timetable, first


def _wait_task(model: str, start: dt.date, end: dt.date | None):
    """The sensor on the drop's marker, refusing a non-backfill run dated outside the window."""

    @task.sensor(poke_interval=60, timeout=12 * 3600, mode="reschedule")
    def wait_for_drop(**context) -> PokeReturnValue:
        from nightshift.stages import waiting

        day = run_date(context)
        if not run_info(context).is_backfill:
            refusal = waiting.window_refusal(model, dt.date.fromisoformat(day), start, end)
            if refusal:
                raise AirflowFailException(refusal)
        ti, sensor = context["ti"], context["task"]
        found = waiting.drop_ready(model, day)
        started = ti.get_first_reschedule_date(context) or ti.start_date
        marker = waiting.marker_url(model, day)
        sensor.log.info(waiting.poke_message(marker, found, started, sensor.timeout, sensor.poke_interval))
        return PokeReturnValue(is_done=found)

    return wait_for_drop


def _name_map_index(name: str) -> None:
    """Give this mapped task instance the name its map_index_template shows."""
    get_current_context()["part_name"] = name  # type: ignore[typeddict-unknown-key]  # map_index_template reads it


def _validation_tasks(model: str):
    """List the drop's files, validate each (mapped), judge the night."""

    @task
    def plan_parts(**context) -> list[dict]:
        from nightshift.stages.validate import tasks as validate

        try:
            return validate.plan_parts(model, run_date(context), run_info(context))
        except validate.ValidationFailed as exc:
            raise AirflowFailException(str(exc)) from None

    @task(map_index_template="{{ part_name }}")
    def validate_part(part: dict, **context) -> dict:
        from nightshift.stages.validate import tasks as validate

        _name_map_index(part["key"].rsplit("/", 1)[-1])
        try:
            return validate.validate_part(model, part["dt"], part, run_info(context))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None

    @task
    def commit_validation(parts: list[dict], **context) -> dict:
        from nightshift.stages.validate import tasks as validate

        try:
            return validate.commit_validation(model, run_date(context), list(parts), run_info(context))
        except validate.ValidationFailed as exc:
            raise AirflowFailException(str(exc)) from None

    return plan_parts, validate_part, commit_validation


def _scoring_tasks(model: str):
    """Fix the night's versions, score each curated file (mapped), publish and load."""

    @task
    def scoring_plan(validated: dict, **context) -> list[dict]:
        from nightshift.stages.score import tasks as score

        return score.scoring_plan(model, validated["dt"], run_info(context))

    @task(map_index_template="{{ part_name }}")
    def score_part(part: dict, **context) -> dict:
        from nightshift.stages.score import tasks as score

        _name_map_index((part["key"] or "skipped").rsplit("/", 1)[-1])
        return score.score_part(model, part["dt"], part, run_info(context))

    @task
    def commit_scores(parts: list[dict], **context) -> dict:
        from nightshift.stages.score import tasks as score

        return score.commit_scores(model, run_date(context), list(parts), run_info(context))

    return scoring_plan, score_part, commit_scores


def _measuring_tasks(model: str):
    """Labels, drift, live performance, the backlog and the retrain decision."""

    @task
    def ingest_labels(**context) -> dict:
        from nightshift.stages.labels import tasks as labels

        return labels.ingest_labels(model, run_date(context), run_info(context))

    @task
    def drift(scored: dict, **context) -> dict:
        from nightshift.stages.drift import tasks as drift_stage

        return drift_stage.drift(model, scored["dt"], run_info(context))

    @task
    def performance(backlog_result: dict, labels: dict, **context) -> dict:
        from nightshift.stages.performance import tasks as performance_stage

        late = list(backlog_result.get("scored") or [])
        return performance_stage.performance(model, run_date(context), run_info(context), scored_late=late)

    @task
    def score_backlog(drift_result: dict, **context) -> dict:
        from nightshift.stages import backlog

        outcome = backlog.score_backlog(model, run_date(context), run_info(context))
        get_current_context()["task"].log.info(backlog.describe(outcome))
        return outcome

    @task
    def decide(drift_result: dict, performance_result: dict, **context) -> dict:
        from nightshift.stages import decision

        return decision.decide(model, drift_result["dt"], run_info(context), drift_result)

    return ingest_labels, drift, performance, score_backlog, decide


def _request_task(retrain_request: Asset):
    """Emit the retrain request asset event, or skip saying why."""

    @task(outlets=[retrain_request])
    def request_retrain(decision: dict, *, outlet_events=None) -> dict:
        if not decision["requested"]:
            raise AirflowSkipException(f"no retrain requested ({decision['decision']}): {decision['reasons']}")
        outlet_events[retrain_request].extra = decision
        return decision

    return request_retrain


def _alert_task(model: str):
    """Send the night's alerts (drift, data quality, performance, retrain request) once the night is decided."""

    @task(trigger_rule="none_failed")
    def alert(validated: dict, measured: dict, performance_result: dict, decision: dict, **context) -> dict:
        from nightshift.alerting.callback import connection_getter
        from nightshift.alerting.tasks import night_alerts

        results = {"validated": validated, "drift": measured, "performance": performance_result, "decision": decision}
        return night_alerts(model, run_date(context), run_info(context), results, connection_getter(context))

    return alert


def build_nightly(spec: ModelSpec, config: Settings):
    start, end = schedule_window(spec, config)
    timetable, start_date = nightly_schedule(spec, start, end)
    retrain_request = Asset(name=retrain_asset_name(spec.name), uri=retrain_asset_uri(spec.name))
    model = spec.name

    @dag(
        is_paused_upon_creation=spec.schedule.paused_at_creation,
        dag_id=f"{model}_nightly",
        schedule=timetable,
        start_date=start_date,
        catchup=catchup_enabled(),
        max_active_runs=1,
        default_args=default_args(spec.owner, retries=2),
        tags=["nightshift", model, "nightly"],
        doc_md=DOC.format(
            name=model, owner=spec.owner, asset=retrain_asset_name(model), window=f"{start} to {end or 'open'}"
        ),
    )
    def nightly() -> None:
        wait_for_drop = _wait_task(model, start, end)
        plan_parts, validate_part, commit_validation = _validation_tasks(model)
        scoring_plan, score_part, commit_scores = _scoring_tasks(model)
        ingest_labels, drift, performance, score_backlog, decide = _measuring_tasks(model)
        request_retrain = _request_task(retrain_request)
        alert = _alert_task(model)

        waited = wait_for_drop()
        labels = ingest_labels()
        parts = plan_parts()
        waited >> [parts, labels]
        validated = commit_validation(validate_part.expand(part=parts))
        scored = commit_scores(score_part.expand(part=scoring_plan(validated)))
        measured = drift(scored)
        caught_up = score_backlog(measured)
        measured_performance = performance(caught_up, labels)
        decided = decide(measured, measured_performance)
        request_retrain(decided) >> alert(validated, measured, measured_performance, decided)

    return nightly()


_settings = settings()
for _spec in specs_to_build(get_parsing_context().dag_id, _settings.models_dir):
    globals()[f"{_spec.name}_nightly"] = build_nightly(_spec, _settings)
