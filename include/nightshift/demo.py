"""`make demo`: a simulated season run by Airflow's real scheduler on the embedded default.

This module drives Airflow through its command line and its REST API; it never imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightshift.config import PROJECT_ROOT, PROMOTION_POOL, Settings, get_spec, settings

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


def airflow_env(
    config: Settings, season: Season | None = None, port: int | None = None, catchup: bool = False
) -> dict[str, str]:
    """The process environment plus the embedded default's Airflow settings."""
    return {**os.environ, **airflow_settings(config, season, port, catchup)}


def airflow_settings(
    config: Settings, season: Season | None = None, port: int | None = None, catchup: bool = False
) -> dict[str, str]:
    """Settings for every Airflow process on the embedded default, all state under NIGHTSHIFT_HOME.

    With a season, the nightly schedule is limited to its dates; with `catchup`, the scheduler runs them all.
    """
    home = config.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    port = port or int(os.environ.get("NIGHTSHIFT_AIRFLOW_PORT", "8080"))
    env = {
        "NIGHTSHIFT_HOME": str(config.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "3",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": "airflow,airflow.executors.local_executor,nightshift.preload",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    if season is not None:
        env["NIGHTSHIFT_SCHEDULE_START"] = season.start.isoformat()
        env["NIGHTSHIFT_SCHEDULE_END"] = season.end.isoformat()
    env["NIGHTSHIFT_CATCHUP"] = "true" if catchup else "false"
    return env


def _airflow(env: dict[str, str], *args: str) -> str:
    binary = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def reset(config: Settings) -> None:
    """Remove the previous demo's data and Airflow state so a second run starts clean."""
    for name in ("store", "warehouse.db", "mlflow.db", "mlartifacts", "cache", "logs"):
        target = config.home / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    airflow_home = config.home / "airflow"
    for name in ("airflow.db", "logs"):
        target = airflow_home / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def prepare_airflow(env: dict[str, str]) -> None:
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", PROMOTION_POOL, "1", "nightshift: one promotion or rollback at a time")


class Services:
    """Airflow's API server, scheduler and DAG processor as child processes, logs under NIGHTSHIFT_HOME/logs."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        port = int(self.env["AIRFLOW__API__PORT"])
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(
                    f"port {port} on 127.0.0.1 is already in use (another Airflow?); stop it or set NIGHTSHIFT_AIRFLOW_PORT"
                )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
        for component in ("api-server", "scheduler", "dag-processor"):
            log = (self.log_dir / f"{component}.log").open("ab")
            self.processes[component] = subprocess.Popen(
                [binary, component], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_for_api()

    def wait_for_api(self, timeout: float = 180) -> None:
        url = f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(2)
        raise RuntimeError(f"the Airflow API server did not answer on {url}; see {self.log_dir}/api-server.log")

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"`airflow {component}` exited with code {process.returncode}; see {self.log_dir}/{component}.log"
                )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


class AirflowApi:
    """The few calls of Airflow's public REST API (v2) the demo and the tests need: runs, triggers, backfills."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/api/v2{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:1000]
            raise RuntimeError(f"Airflow API {method} {path} answered {exc.code}: {detail}") from None

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"/dags/{dag_id}/dagRuns?limit=100&offset={len(found)}&order_by=id")
            found.extend(page["dag_runs"])
            if len(found) >= page["total_entries"] or not page["dag_runs"]:
                return found

    def states(self, dag_id: str, run_type: str | None = None) -> dict[str, int]:
        """How many runs of a DAG are in each state (optionally only runs of one type)."""
        counts: dict[str, int] = {}
        for run in self.runs(dag_id):
            if run_type is None or run["run_type"] == run_type:
                counts[run["state"]] = counts.get(run["state"], 0) + 1
        return counts

    def queued_asset_events(self, dag_id: str) -> int:
        try:
            return int(self._call("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"])
        except RuntimeError as exc:
            if "answered 404" in str(exc):
                return 0
            raise

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf}))

    def backfill(self, dag_id: str, first: dt.date, last: dt.date) -> dict[str, Any]:
        """Create a backfill as the UI does: every night from `first` to `last`, reprocessing completed runs."""
        body = {
            "dag_id": dag_id,
            "from_date": f"{first.isoformat()}T00:00:00Z",
            "to_date": f"{last.isoformat()}T23:00:00Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        }
        return dict(self._call("POST", "/backfills", body))

    def backfill_completed(self, backfill_id: int) -> bool:
        return self._call("GET", f"/backfills/{backfill_id}").get("completed_at") is not None


def finished(states: dict[str, int]) -> int:
    return sum(states.get(state, 0) for state in TERMINAL)


def wait_until(condition: Callable[[], bool], services: Services, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        if condition():
            return
        time.sleep(5)
    raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}; logs are in {services.log_dir}")


def wait_for_season(
    api: AirflowApi, services: Services, season: Season, timeout: float, log: Callable[[str], None]
) -> None:
    """Wait until every night of the season ran and every retrain it requested finished."""
    nightly_id, retrain_id = f"{season.model}_nightly", f"{season.model}_retrain"
    started = time.monotonic()
    last_report = ""

    def season_done() -> bool:
        nonlocal last_report
        nightly, retrain = api.states(nightly_id), api.states(retrain_id)
        report = f"nightly {dict(sorted(nightly.items()))} retrain {dict(sorted(retrain.items()))}"
        if report != last_report:
            log(f"[demo] {time.monotonic() - started:5.0f}s  {report}")
            last_report = report
        busy = sum(count for state, count in retrain.items() if state not in TERMINAL)
        return finished(nightly) >= season.nights and busy == 0 and api.queued_asset_events(retrain_id) == 0

    wait_until(season_done, services, timeout, "the season's nightly runs and the retrains they requested")


def wait_for_backfill(api: AirflowApi, services: Services, backfill: dict[str, Any], timeout: float = 900) -> None:
    """Wait until the scheduler marks the backfill (as returned when it was created) completed."""

    def backfill_done() -> bool:
        return api.backfill_completed(int(backfill["id"]))

    wait_until(backfill_done, services, timeout, "the backfill runs")


def run_demo(season: Season, timeout: float = 1500, log: Callable[[str], None] = print) -> dict:
    """Simulate a season, let the scheduler run it, show a refused experiment, and return the summary."""
    from nightshift.simulate import SimulationPlan, simulate
    from nightshift.storage import open_store
    from nightshift.summary import season_summary

    config = settings()
    spec = get_spec(season.model, config.models_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    log(f"[demo] resetting demo state under {config.home}")
    reset(config)
    env = airflow_env(config, season, catchup=True)
    api = AirflowApi(f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}")
    log("[demo] migrating Airflow's metadata database (SQLite)")
    prepare_airflow(env)
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
    services = Services(env, config.home / "logs")
    nightly_id, retrain_id = f"{season.model}_nightly", f"{season.model}_retrain"
    try:
        log("[demo] starting Airflow: api-server, scheduler, dag-processor (LocalExecutor)")
        services.start()
        wait_for_season(api, services, season, timeout, log)
        log("[demo] experiment: a manual retrain with a deliberately weak recipe (DummyClassifier) must be refused")
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

        first, last = season.end - dt.timedelta(days=1), season.end
        log(f"[demo] backfill: replaying {first} to {last}; reports are rewritten, no retrain is requested")
        wait_for_backfill(api, services, api.backfill(nightly_id, first, last))
        airflow_runs = {nightly_id: api.states(nightly_id), retrain_id: api.states(retrain_id)}
    finally:
        services.stop()
    summary = season_summary(config, season.model)
    summary["airflow_runs"] = airflow_runs
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary
