"""`make demo`: a simulated season run by Airflow's real scheduler on the embedded default.

This module drives Airflow through its command line and its REST API; it never imports Airflow.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.config import Settings, get_spec, settings
from nightshift.runtime import embedded_db
from nightshift.runtime.supervisor import (
    Services,
    airflow_env,
    local_stack,
    no_interruptions,
    prepare_airflow,
    prepare_stores,
)
from nightshift_dev.airflow_api import AirflowApi
from nightshift_dev.receivers import smtp_server, webhook_receiver

if TYPE_CHECKING:
    from nightshift.config import ModelSpec
    from nightshift.stores.objects import ObjectStore
    from nightshift_dev.simulate import SimulationPlan

TERMINAL = ("success", "failed")


@dataclass(frozen=True)
class Season:
    model: str = "credit_risk"
    start: dt.date = dt.date(2026, 10, 1)
    nights: int = 21
    shift_after: int = 11
    rows_per_day: int = 4000
    seed: int = 42
    bad_row_share: float = 0.01
    refused_share: float = 0.25
    """The bad-row share of the damaged drop that lands on the last night (over the spec's limit: refused)."""

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.nights - 1)

    @property
    def shift_date(self) -> dt.date:
        return self.start + dt.timedelta(days=self.shift_after)

    @property
    def refused_night(self) -> dt.date:
        """The night whose drop arrives damaged: validation refuses it, the on-call alert goes out, the demo repairs it."""
        return self.end

    def plan(self, start: dt.date | None = None, days: int | None = None, damaged: bool = True) -> SimulationPlan:
        """The simulation of the season (or of `days` nights from `start`), with the damaged drop unless not `damaged`."""
        from nightshift_dev.simulate import SimulationPlan

        return SimulationPlan(
            start=start or self.start,
            days=days or self.nights,
            rows_per_day=self.rows_per_day,
            shift_date=self.shift_date,
            seed=self.seed,
            bad_row_share=self.bad_row_share,
            bad_dates={self.refused_night: self.refused_share} if damaged else {},
        )


def remove_paths(folder: Path, names: Sequence[str]) -> None:
    """Delete each named file or folder under `folder` that exists."""
    for name in names:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def reset(config: Settings, env: dict[str, str] | None = None) -> None:
    """Remove the previous demo's data and Airflow state so a second run starts clean.

    Databases on the embedded PostgreSQL (which must be running) are dropped and created empty; a database
    configured elsewhere is never touched.
    """
    remove_paths(config.home, ("store", "mlartifacts", "cache", "logs"))
    remove_paths(config.home / "airflow", ("logs",))
    names = {"warehouse": config.warehouse_url, "mlflow": config.mlflow_tracking_uri}
    if env is not None:
        names["airflow"] = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    ours = [name for name, address in names.items() if embedded_db.is_embedded(config.home, address)]
    if ours:
        embedded_db.recreate_databases(config.home, ours)


def finished(states: dict[str, int]) -> int:
    return sum(states.get(state, 0) for state in TERMINAL)


def wait_until(
    condition: Callable[[], bool], services: Services, timeout: float, what: str, interval: float = 5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}; logs are in {services.log_dir}")


def wait_for_dags(api: AirflowApi, services: Services, dag_ids: Sequence[str], timeout: float = 300) -> None:
    """Wait until the DAG processor has parsed every DAG; a DAG file that fails to import fails at once, naming it."""

    def parsed() -> bool:
        errors = api.import_errors()
        if errors:
            raise RuntimeError("the DAG processor could not import a DAG file: " + "; ".join(errors))
        return all(api.has_dag(dag_id) for dag_id in dag_ids)

    wait_until(parsed, services, timeout, f"the DAG processor to parse {', '.join(dag_ids)}", interval=2)


def wait_for_season(
    api: AirflowApi, services: Services, season: Season, timeout: float, log: Callable[[str], None]
) -> None:
    """Wait until every night of the season ran and every retrain it requested finished.

    `timeout` bounds the time without progress (no run changing state), not the whole season: a busy machine
    makes every night slower, and that is not a failure.
    """
    nightly_id, retrain_id = f"{season.model}_nightly", f"{season.model}_retrain"
    started = last_change = time.monotonic()
    last_report = ""
    while True:
        services.check_alive()
        nightly, retrain = api.states(nightly_id), api.states(retrain_id)
        report = f"nightly {dict(sorted(nightly.items()))} retrain {dict(sorted(retrain.items()))}"
        if report != last_report:
            log(f"[demo] {time.monotonic() - started:5.0f}s  {report}")
            last_report, last_change = report, time.monotonic()
        if finished(nightly) >= season.nights and retrains_settled(api, retrain_id, retrain):
            return
        if time.monotonic() - last_change > timeout:
            raise TimeoutError(
                f"no nightly or retrain run changed state for {timeout:.0f}s (last: {report}); the scheduler may "
                f"be stuck: see {services.log_dir} and the task logs under AIRFLOW_HOME/logs"
            )
        time.sleep(5)


def retrains_settled(api: AirflowApi, retrain_id: str, states: dict[str, int] | None = None) -> bool:
    """No retrain run is queued or running and no retrain request waits for one."""
    states = api.states(retrain_id) if states is None else states
    busy = sum(count for state, count in states.items() if state not in TERMINAL)
    return busy == 0 and api.queued_asset_events(retrain_id) == 0


def repair_refused_night(
    api: AirflowApi, services: Services, season: Season, store: ObjectStore, spec: ModelSpec, log: Callable[[str], None]
) -> None:
    """What the runbook says for a refused batch: land the repaired drop, clear the night's run, let it run again.

    The run is cleared whole (not only its failed tasks), as the UI's Clear does, so every file is validated again.
    """
    from nightshift_dev.simulate import simulate

    nightly_id, night = f"{season.model}_nightly", season.refused_night.isoformat()
    runs = [run for run in api.runs(nightly_id) if str(run.get("logical_date") or "")[:10] == night]
    if not runs or runs[-1]["state"] != "failed":
        states = [run["state"] for run in runs] or ["no run"]
        raise RuntimeError(f"expected the run of {night} to fail on its damaged drop; found {', '.join(states)}")
    log(
        f"[demo] incident: {night}'s drop had {season.refused_share:.0%} damaged rows and validation refused it "
        "(the on-call alert went out); landing the repaired drop and clearing the run, as docs/runbook.md says"
    )
    simulate(store, spec, season.plan(start=season.refused_night, days=1, damaged=False))
    run_id = str(runs[-1]["dag_run_id"])
    api.clear_run(nightly_id, run_id)

    def repaired() -> bool:
        state = api.run(nightly_id, run_id)["state"]
        if state == "failed":
            raise RuntimeError(f"the cleared run {run_id} failed again; see its task logs")
        return bool(state == "success" and retrains_settled(api, f"{season.model}_retrain"))

    wait_until(repaired, services, 900, f"the cleared run of {night} and the retrain it requests")


def wait_for_backfill(api: AirflowApi, services: Services, backfill: dict[str, Any], timeout: float = 900) -> None:
    """Wait until the scheduler marks the backfill (as returned when it was created) completed."""

    def backfill_done() -> bool:
        return api.backfill_completed(int(backfill["id"]))

    wait_until(backfill_done, services, timeout, "the backfill runs")


class DemoStepFailed(RuntimeError):
    """A demo step failed after its retries; the message says which step, why, and how to go on."""


RESUME = {
    "prepare": "check the message above, then run `make demo` again (it starts clean)",
    "simulate": "run `make demo` again (it starts clean)",
    "season": "run `make demo` again; to look at what ran, `make airflow` serves the same Airflow and data",
    "repair": "`make airflow`, then clear the failed credit_risk_nightly run of the last night (Clear -> whole run) "
    "after landing a good drop (`nightshift simulate`); `make summary`",
    "experiment": "`make airflow`, then trigger credit_risk_retrain with the estimator params by hand; `make summary`",
    "backfill": "`make airflow`, then Trigger -> Backfill on credit_risk_nightly (or the README's CLI backfill); "
    "`make summary`",
    "summary": "`make summary` prints it again",
}


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Run one demo step; a failure names the step, the reason and how to resume (no traceback for the user)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, DemoStepFailed):
        raise
    except Exception as exc:
        raise DemoStepFailed(f"the demo's {name!r} step failed: {exc}\nto resume: {RESUME[name]}") from exc


ALERT_ENV = {
    "smtp_host": "NIGHTSHIFT_SMTP_HOST",
    "smtp_port": "NIGHTSHIFT_SMTP_PORT",
    "webhook": "NIGHTSHIFT_ALERT_WEBHOOK_URL",
}
"""The environment variables the demo model's alert channels read (include/models/credit_risk.yaml)."""


def run_demo(season: Season, timeout: float = 1500, log: Callable[[str], None] = print) -> dict:
    """Simulate a season, let the scheduler run it, repair a refused night, show a refused experiment and a backfill;
    return the summary, with the alerts the local receivers got."""
    with smtp_server() as mailbox, webhook_receiver() as hook:
        alert_env = {
            ALERT_ENV["smtp_host"]: mailbox.host,
            ALERT_ENV["smtp_port"]: str(mailbox.port),
            ALERT_ENV["webhook"]: hook.url,
        }
        log(f"[demo] alerts go to a local SMTP server on {mailbox.host}:{mailbox.port} and a webhook at {hook.url}")
        summary = _run_season(season, timeout, log, alert_env)
    summary["alerts_received"] = {
        "email": [str(message["Subject"]) for message in mailbox.messages],
        "webhook": [str(post.get("text") or "").split("\n", 1)[0] for post in hook.posts],
    }
    return summary


def _run_season(season: Season, timeout: float, log: Callable[[str], None], alert_env: dict[str, str]) -> dict:
    from nightshift.stages.summary import season_summary
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import simulate

    config = settings()
    spec = get_spec(season.model, config.models_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    env = {**airflow_env(config, season, catchup=True), **alert_env}
    api = AirflowApi(f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}")
    services = Services(env, config.home / "logs")
    nightly_id, retrain_id = f"{season.model}_nightly", f"{season.model}_retrain"
    with local_stack(config, env, log):
        with step("prepare"):
            log(f"[demo] resetting demo state under {config.home}")
            reset(config, env)
            log("[demo] migrating Airflow's metadata database, the warehouse and MLflow (PostgreSQL)")
            prepare_airflow(env)
            prepare_stores(config)
        store = open_store(config.store_uri)
        with step("simulate"):
            log(
                f"[demo] simulating {season.nights} nights from {season.start} ({season.rows_per_day} rows/night, "
                f"population and concept shift from {season.shift_date}; {season.refused_night}'s drop arrives "
                f"with {season.refused_share:.0%} damaged rows)"
            )
            simulate(store, spec, season.plan())
        try:
            with step("season"):
                log("[demo] starting Airflow: api-server, scheduler, dag-processor (LocalExecutor)")
                services.start()
                wait_for_dags(api, services, (nightly_id, retrain_id))
                wait_for_season(api, services, season, timeout, log)
            with step("repair"):
                repair_refused_night(api, services, season, store, spec, log)
            with step("experiment"):
                run_experiment(api, services, season)
            with step("backfill"):
                first, last = season.end - dt.timedelta(days=1), season.end
                log(f"[demo] backfill: replaying {first} to {last}; reports are rewritten, no retrain is requested")
                wait_for_backfill(api, services, api.backfill(nightly_id, first, last))
                airflow_runs = {nightly_id: api.states(nightly_id), retrain_id: api.states(retrain_id)}
        finally:
            with no_interruptions():
                log("[demo] stopping Airflow")
                services.stop()
        with step("summary"):
            summary = season_summary(config, season.model)
    summary["airflow_runs"] = airflow_runs
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def run_experiment(api: AirflowApi, services: Services, season: Season) -> None:
    """A manual retrain with a deliberately weak recipe (DummyClassifier), which the gate must refuse."""
    retrain_id = f"{season.model}_retrain"
    print("[demo] experiment: a manual retrain with a deliberately weak recipe (DummyClassifier) must be refused")
    before = finished(api.states(retrain_id))
    api.trigger(
        retrain_id,
        {
            "estimator": "sklearn.dummy.DummyClassifier",
            "estimator_params": {"strategy": "prior"},
            "reason": "demo: a deliberately worse candidate",
            "as_of": season.end.isoformat(),
        },
    )

    def experiment_done() -> bool:
        states = api.states(retrain_id)
        return finished(states) > before and all(state in TERMINAL for state in states)

    wait_until(experiment_done, services, 600, "the manual retrain run")
