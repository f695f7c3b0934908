"""`make demo`: a simulated season run by Airflow's real scheduler on the embedded default.

This module drives Airflow through its command line and its REST API; it never imports Airflow.
"""

from __future__ import annotations

import contextlib
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
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightshift import embedded_db
from nightshift.config import PROJECT_ROOT, PROMOTION_POOL, Settings, catchup_enabled, get_spec, settings

TERMINAL = ("success", "failed")
WORKER_HOSTNAME_VARIABLE = "NIGHTSHIFT_WORKER_HOSTNAME"
SUPERVISOR_VARIABLE = "NIGHTSHIFT_SUPERVISOR"
"""Set in the environment of every process a `Services` starts, so everything they start can be found and stopped."""
STOP_GRACE_SECONDS = 5.0


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
    config: Settings, season: Season | None = None, port: int | None = None, catchup: bool | None = None
) -> dict[str, str]:
    """The process environment plus the embedded default's Airflow settings."""
    return {**os.environ, **airflow_settings(config, season, port, catchup)}


def airflow_settings(
    config: Settings, season: Season | None = None, port: int | None = None, catchup: bool | None = None
) -> dict[str, str]:
    """Settings for every Airflow process on the embedded default, all state under NIGHTSHIFT_HOME.

    With a season, the nightly schedule is limited to its dates; with `catchup`, the scheduler runs them all
    (without it, NIGHTSHIFT_CATCHUP decides, off by default).
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
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url(config),
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
    if catchup is None:
        catchup = catchup_enabled()
    env["NIGHTSHIFT_CATCHUP"] = "true" if catchup else "false"
    return env


def metadata_url(config: Settings) -> str:
    """Airflow's metadata database: a PostgreSQL URL in AIRFLOW__DATABASE__SQL_ALCHEMY_CONN wins, else the embedded one.

    SQLite is never used: Airflow refuses backfills on it while the scheduler is busy.
    """
    configured = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return configured if configured.startswith("postgresql") else embedded_db.url(config.home, "airflow")


def uses_embedded_db(config: Settings, env: dict[str, str] | None = None) -> bool:
    """Whether the warehouse, MLflow or Airflow's metadata (in `env`) live on this home's embedded PostgreSQL."""
    addresses = [config.warehouse_url, config.mlflow_tracking_uri]
    if env is not None:
        addresses.append(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
    return any(embedded_db.is_embedded(config.home, address) for address in addresses)


def celery_settings(broker_url: str, result_backend: str) -> dict[str, str]:
    """Settings that put every Airflow process on CeleryExecutor: tasks go through `broker_url` to the workers.

    Each worker reserves only the task it runs (prefetch multiplier 1, acknowledged when it ends), so a task
    waiting in the queue goes to whichever worker is free instead of queueing behind a busy one. Workers import
    the heavy libraries once at start (`nightshift.preload`), so every task forked from them starts warm.
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"imports": ["nightshift.preload"]}),
    }


def worker_hostname() -> str:
    """The host name a task instance records (`[core] hostname_callable`): its worker's name, else the machine's.

    Several Celery workers on one machine would otherwise all record the same host name.
    """
    return os.environ.get(WORKER_HOSTNAME_VARIABLE) or socket.getfqdn()


def check_broker(broker_url: str, timeout: float = 5.0) -> None:
    """Fail with the broker's address when nothing listens there (a worker would retry silently forever)."""
    address = urllib.parse.urlsplit(broker_url)
    host, port = address.hostname or "localhost", address.port or 6379
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise RuntimeError(f"no Celery broker answers at {host}:{port} ({broker_url}): {exc}") from None


def _airflow(env: dict[str, str], *args: str) -> str:
    binary = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


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


def prepare_airflow(env: dict[str, str]) -> None:
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", PROMOTION_POOL, "1", "nightshift: one promotion or rollback at a time")


def prepare_stores(config: Settings) -> None:
    """Create or upgrade the warehouse's and MLflow's schemas once, before tasks race to do it."""
    from nightshift import registry, warehouse

    warehouse.connect(config.warehouse_url).dispose()
    registry.prepare_backend(config)


class Services:
    """Airflow's API server, scheduler and DAG processor as child processes, logs under NIGHTSHIFT_HOME/logs.

    With `workers` (Celery host names such as `worker1@nightshift`; the environment must select CeleryExecutor,
    see `celery_settings`), one `airflow celery worker` per name runs `worker_concurrency` tasks at a time, and
    its tasks record that name as their host name.
    """

    def __init__(
        self, env: dict[str, str], log_dir: Path, workers: Sequence[str] = (), worker_concurrency: int = 1
    ) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers = list(workers)
        self.worker_concurrency = worker_concurrency
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.mark = f"{os.getpid()}-{secrets.token_hex(8)}"

    def start(self) -> None:
        port = int(self.env["AIRFLOW__API__PORT"])
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(
                    f"port {port} on 127.0.0.1 is already in use (another Airflow?); stop it or set NIGHTSHIFT_AIRFLOW_PORT"
                )
        if self.workers:
            if self.env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
                raise RuntimeError("Celery workers need AIRFLOW__CORE__EXECUTOR=CeleryExecutor (see celery_settings)")
            check_broker(self.env.get("AIRFLOW__CELERY__BROKER_URL", "redis://localhost:6379/0"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for component in ("api-server", "scheduler", "dag-processor"):
            self._spawn(component, [component], self.env)
        for name in self.workers:
            command = [
                "celery",
                "worker",
                "--celery-hostname",
                name,
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
            env = {
                **self.env,
                WORKER_HOSTNAME_VARIABLE: name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            }
            self._spawn(f"celery worker {name}", command, env, log_name=f"worker-{name}")
        self.wait_for_api()
        self.wait_for_workers()

    def _spawn(self, component: str, args: list[str], env: dict[str, str], log_name: str | None = None) -> None:
        binary = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
        self.logs[component] = self.log_dir / f"{log_name or component}.log"
        with self.logs[component].open("ab") as log:
            self.processes[component] = subprocess.Popen(
                [binary, *args],
                env={**env, SUPERVISOR_VARIABLE: self.mark},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

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

    def wait_for_workers(self, timeout: float = 180) -> None:
        """Wait until every Celery worker says it is ready to take tasks."""
        deadline = time.monotonic() + timeout
        waiting = set(self.workers)
        while waiting:
            self.check_alive()
            for name in list(waiting):
                log = self.logs[f"celery worker {name}"]
                if f"{name} ready." in log.read_text(errors="replace"):
                    waiting.discard(name)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Celery worker(s) {', '.join(sorted(waiting))} not ready after {timeout:.0f}s; see {self.log_dir}"
                )
            time.sleep(1)

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"`airflow {component}` exited with code {process.returncode}; see {self.logs[component]}"
                )

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every process and whatever it started (task processes, forkserver, Celery's pool) within `grace`.

        SIGTERM to each process group first; what still runs after `grace` (or left its group) is SIGKILLed,
        found by the mark every process started here carries in its environment.
        """
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        kill_marked(SUPERVISOR_VARIABLE, self.mark)


def marked_processes(variable: str, value: str) -> list[int]:
    """Pids of live processes whose environment holds `variable=value` (every descendant inherits it)."""
    needle = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and _alive(entry):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _alive(entry: Path) -> bool:
    """A zombie has exited already: only its parent's wait is missing."""
    return ") Z " not in (entry / "stat").read_text()


def kill_marked(variable: str, value: str, grace: float = 5.0) -> None:
    """SIGKILL every process marked `variable=value` until none is left (or `grace` runs out)."""
    deadline = time.monotonic() + grace
    while (pids := marked_processes(variable, value)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


class AirflowApiError(RuntimeError):
    """Airflow's REST API refused a call or stayed unreachable; the message names the call and the answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


class AirflowApi:
    """The few calls of Airflow's public REST API (v2) the demo and the tests need: runs, triggers, backfills.

    A busy machine makes the API server slow or briefly unreachable: each call retries connection errors,
    time-outs and transient answers (429, 5xx) with a bounded exponential backoff, then fails naming the call.
    """

    def __init__(self, base_url: str, attempts: int = 6, backoff: float = 1.0, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 30))
            request = urllib.request.Request(
                f"{self.base_url}/api/v2{path}", data=data, method=method, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:1000]
                last = f"answered {exc.code}: {detail}"
                if exc.code not in TRANSIENT_STATUSES:
                    raise AirflowApiError(f"Airflow API {method} {path} {last}", exc.code) from None
            except (OSError, TimeoutError) as exc:
                last = f"unreachable ({getattr(exc, 'reason', exc)})"
        raise AirflowApiError(f"Airflow API {method} {path} {last} (gave up after {self.attempts} attempts)")

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
        except AirflowApiError as exc:
            if exc.status == 404:
                return 0
            raise

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: dt.datetime | None = None) -> dict[str, Any]:
        """Start a run now; with `logical_date`, the run is keyed on that moment (a nightly on that night).

        The run id is chosen here and sent with every attempt, so an attempt whose answer was lost (the server
        created the run, then the client timed out) is found by that id instead of failing as a duplicate.
        """
        when = logical_date.isoformat() if logical_date is not None else None
        run_id = f"manual__{when}" if when else f"manual__{dt.datetime.now(dt.UTC).isoformat()}_{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": when, "conf": conf}
        try:
            return dict(self._call("POST", f"/dags/{dag_id}/dagRuns", body))
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            try:
                return self.run(dag_id, run_id)
            except AirflowApiError:
                raise exc from None

    def has_dag(self, dag_id: str) -> bool:
        """Whether the DAG processor has parsed the DAG yet (it cannot be triggered before)."""
        try:
            self._call("GET", f"/dags/{dag_id}")
        except AirflowApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"))

    def import_errors(self) -> list[str]:
        """`file: message` for every DAG file the DAG processor could not import."""
        found = self._call("GET", "/importErrors?limit=100")["import_errors"]
        traces = {item["filename"]: str(item.get("stack_trace") or item.get("stacktrace") or "?") for item in found}
        return [f"{name}: {(trace.strip().splitlines() or ['?'])[-1]}" for name, trace in traces.items()]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones one per map index (task id, state, hostname, map_index...)."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"{path}?limit=100&offset={len(found)}")
            found.extend(page["task_instances"])
            if len(found) >= page["total_entries"] or not page["task_instances"]:
                return found

    def backfill(self, dag_id: str, first: dt.date, last: dt.date) -> dict[str, Any]:
        """Create a backfill as the UI does: every night from `first` to `last`, reprocessing completed runs.

        If an earlier attempt of this call reached the server although its answer was lost, the backfill it
        created is the one returned (Airflow allows one running backfill per DAG).
        """
        body = {
            "dag_id": dag_id,
            "from_date": f"{first.isoformat()}T00:00:00Z",
            "to_date": f"{last.isoformat()}T23:59:59Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        }
        try:
            return dict(self._call("POST", "/backfills", body))
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            for running in self._call("GET", f"/backfills?dag_id={dag_id}&limit=100")["backfills"]:
                if running.get("completed_at") is None and running["from_date"][:10] == first.isoformat():
                    return dict(running)
            raise

    def backfill_completed(self, backfill_id: int) -> bool:
        return self._call("GET", f"/backfills/{backfill_id}").get("completed_at") is not None


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


@contextlib.contextmanager
def no_interruptions() -> Iterator[None]:
    """Ignore Ctrl+C and SIGTERM while processes are being stopped, so a second signal cannot leave any behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def local_stack(config: Settings, env: dict[str, str], log: Callable[[str], None]) -> Iterator[bool]:
    """The embedded PostgreSQL for the block when any store uses it; stopped afterwards if the block started it."""
    needed = uses_embedded_db(config, env)
    started = False
    try:
        if needed:
            started = embedded_db.start(config.home)
            state = "started" if started else "already running"
            log(f"[nightshift] embedded PostgreSQL {state} ({embedded_db.data_dir(config.home)})")
        yield started
    finally:
        if started:
            with no_interruptions():
                embedded_db.stop(config.home)
                log("[nightshift] embedded PostgreSQL stopped")


def run_demo(season: Season, timeout: float = 1500, log: Callable[[str], None] = print) -> dict:
    """Simulate a season, let the scheduler run it, show a refused experiment and a backfill; return the summary."""
    from nightshift.simulate import SimulationPlan, simulate
    from nightshift.storage import open_store
    from nightshift.summary import season_summary

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


def run_airflow(port: int | None = None, log: Callable[[str], None] = print) -> int:
    """`make airflow`: the embedded PostgreSQL and Airflow's api-server, scheduler and DAG processor, until Ctrl+C.

    Every process it starts is stopped when it is interrupted (SIGINT or SIGTERM) or when one of them dies.
    """
    config = settings()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = airflow_env(config, port=port)
    services = Services(env, config.home / "logs")
    url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    with local_stack(config, env, log):
        log("[nightshift] migrating Airflow's metadata database, the warehouse and MLflow")
        prepare_airflow(env)
        prepare_stores(config)
        try:
            log("[nightshift] starting Airflow: api-server, scheduler, dag-processor (LocalExecutor)")
            services.start()
            log(f"[nightshift] Airflow UI: {url} (no login on this local setup); logs in {services.log_dir}")
            log("[nightshift] Ctrl+C stops everything")
            while True:
                services.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            log("\n[nightshift] interrupted")
            return 130
        except RuntimeError as exc:
            log(f"[nightshift] error: {exc}")
            return 1
        finally:
            with no_interruptions():
                log("[nightshift] stopping Airflow")
                services.stop()
