"""`make airflow`: Airflow's api-server, scheduler and DAG processor on the embedded default, and their settings.

The supervisor starts Airflow through its command line and stops everything it started; it never imports Airflow.
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
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from nightshift.config import PROJECT_ROOT, PROMOTION_POOL, Settings, catchup_enabled, settings
from nightshift.links import UI_URL_ENV
from nightshift.runtime import embedded_db

WORKER_HOSTNAME_VARIABLE = "NIGHTSHIFT_WORKER_HOSTNAME"
SUPERVISOR_VARIABLE = "NIGHTSHIFT_SUPERVISOR"
"""Set in the environment of every process a `Services` starts, so everything they start can be found and stopped."""
STOP_GRACE_SECONDS = 5.0


class ScheduleWindow(Protocol):
    """The first and last night a nightly schedule is limited to (the demo's season is one)."""

    @property
    def start(self) -> dt.date: ...

    @property
    def end(self) -> dt.date: ...


def airflow_env(
    config: Settings, season: ScheduleWindow | None = None, port: int | None = None, catchup: bool | None = None
) -> dict[str, str]:
    """The process environment plus the embedded default's Airflow settings."""
    return {**os.environ, **airflow_settings(config, season, port, catchup)}


def airflow_settings(
    config: Settings, season: ScheduleWindow | None = None, port: int | None = None, catchup: bool | None = None
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
        "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": "airflow,airflow.executors.local_executor,nightshift.runtime.preload",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        UI_URL_ENV: os.environ.get(UI_URL_ENV) or f"http://127.0.0.1:{port}",
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
    the heavy libraries once at start (`nightshift.runtime.preload`), so every task forked from them starts warm.
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"imports": ["nightshift.runtime.preload"]}),
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


def prepare_airflow(env: dict[str, str]) -> None:
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", PROMOTION_POOL, "1", "nightshift: one promotion or rollback at a time")


def prepare_stores(config: Settings) -> None:
    """Create or upgrade the warehouse's and MLflow's schemas once, before tasks race to do it."""
    from nightshift.stores import registry, warehouse

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
