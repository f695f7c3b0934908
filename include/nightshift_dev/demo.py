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
from typing import Any

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

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.nights - 1)

    @property
    def shift_date(self) -> dt.date:
        return self.start + dt.timedelta(days=self.shift_after)


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
        busy = sum(count for state, count in retrain.items() if state not in TERMINAL)
        if finished(nightly) >= season.nights and busy == 0 and api.queued_asset_events(retrain_id) == 0:
            return
        if time.monotonic() - last_change > timeout:
            raise TimeoutError(
                f"no nightly or retrain run changed state for {timeout:.0f}s (last: {report}); the scheduler may "
                f"be stuck: see {services.log_dir} and the task logs under AIRFLOW_HOME/logs"
            )
        time.sleep(5)


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


def run_demo(season: Season, timeout: float = 1500, log: Callable[[str], None] = print) -> dict:
    """Simulate a season, let the scheduler run it, show a refused experiment and a backfill; return the summary."""
    from nightshift.stages.summary import season_summary
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate

    config = settings()
    spec = get_spec(season.model, config.models_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    env = airflow_env(config, season, catchup=True)
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
        with step("simulate"):
            log(
                f"[demo] simulating {season.nights} nights from {season.start} ({season.rows_per_day} rows/night, "
                f"population and concept shift from {season.shift_date})"
            )
            simulate(
                open_store(config.store_uri),
                spec,
                SimulationPlan(
                    start=season.start,
                    days=season.nights,
                    rows_per_day=season.rows_per_day,
                    shift_date=season.shift_date,
                    seed=season.seed,
                    bad_row_share=season.bad_row_share,
                ),
            )
        try:
            with step("season"):
                log("[demo] starting Airflow: api-server, scheduler, dag-processor (LocalExecutor)")
                services.start()
                wait_for_dags(api, services, (nightly_id, retrain_id))
                wait_for_season(api, services, season, timeout, log)
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
