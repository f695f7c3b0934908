"""Fixtures for the browser tests: Airflow started the way `make airflow` starts it, and headless Chromium.

`nightshift airflow` runs as a subprocess on its own NIGHTSHIFT_HOME (the embedded PostgreSQL, the store, the logs)
and a free port, with the nightly schedule limited to a short simulated season that the scheduler catches up.
The browser is Debian's `chromium` driven by Playwright (its own browser download is not used). Screenshots go to
`artifacts/browser/` at the repository root, which CI keeps.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "artifacts" / "browser"
BIN = Path(sys.executable).parent
MODEL = "credit_risk"
NIGHTLY = f"{MODEL}_nightly"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# what the pytest process carries for its own Airflow and stores; `nightshift airflow` must choose its own
INHERITED = ("AIRFLOW", "NIGHTSHIFT_")
INHERITED_KEYS = ("MLFLOW_TRACKING_URI",)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Screenshots:
    """Numbered screenshots of each UI step, kept in `artifacts/browser/`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def take(self, page: Any, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    """`artifacts/browser/<test module>/`, emptied when the module starts (another module's folder stays): its
    screenshots, and Airflow's logs once it stops."""
    folder = ARTIFACTS / Path(str(request.module.__file__)).stem
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def screenshots(artifacts: Path) -> Screenshots:
    return Screenshots(artifacts)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    """One Chromium tab (a fresh, empty profile), generous timeouts for a busy 2-core machine."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no `chromium` on PATH: install Debian's chromium (apt-get install chromium); .ci/run does")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # Playwright's 5 s default is too short for the UI on a busy machine
    with tempfile.TemporaryDirectory(prefix="nightshift-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=binary,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
            timeout=120_000,
        )
        context.set_default_timeout(60_000)
        context.set_default_navigation_timeout(120_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def get_json(url: str, timeout: float = 30) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


class LocalAirflow:
    """`nightshift airflow` on its own home and port, and what the tests ask of it."""

    def __init__(self, home: Path, port: int, env: dict[str, str]) -> None:
        self.home = home
        self.port = port
        self.env = env
        self.base_url = f"http://127.0.0.1:{port}"
        self.output = home / "nightshift-airflow.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.scheduler_pid: int | None = None
        self.champion: str | None = None

    @property
    def logs(self) -> str:
        """Where to look when something fails (copied to artifacts/browser/logs/ when Airflow stops)."""
        return (
            f"`nightshift airflow` output: {self.output}; Airflow's api-server, scheduler and dag-processor logs: "
            f"{self.home / 'logs'}; task logs: {self.home / 'airflow' / 'logs'} (all copied to {ARTIFACTS / 'logs'})"
        )

    def tail(self, chars: int = 3000) -> str:
        parts = [self.output, *sorted((self.home / "logs").glob("*.log"))]
        return "".join(
            f"\n--- {path.name}\n{path.read_text(errors='replace')[-chars:]}" for path in parts if path.exists()
        )

    def api(self, path: str) -> Any:
        return get_json(f"{self.base_url}/api/v2{path}")

    def start(self) -> None:
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "nightshift"), "airflow", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self, step: str) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            pytest.fail(f"{step}: `nightshift airflow` is not running (exit code {code}); {self.logs}{self.tail()}")

    def wait_until(self, condition: Callable[[], Any], step: str, timeout: float, every: float = 3) -> Any:
        """Poll `condition` until it returns something truthy; fail naming the step and the logs after `timeout`."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            self.check_alive(step)
            try:
                result = condition()
                if result:
                    return result
            except (OSError, ValueError) as exc:  # the API server restarting or busy: try again
                last_error = f" (last error: {exc})"
            if time.monotonic() > deadline:
                pytest.fail(f"{step}: still not done after {timeout:.0f}s{last_error}; {self.logs}{self.tail()}")
            time.sleep(every)

    def wait_ready(self, timeout: float = 900) -> None:
        def ready() -> bool:
            health = self.api("/monitor/health")
            if health["scheduler"]["status"] != "healthy":
                return False
            try:
                self.api(f"/dags/{NIGHTLY}")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return False
                raise
            return True

        self.wait_until(ready, f"waiting for `nightshift airflow` to serve {NIGHTLY}", timeout)
        if not self.api(f"/dags/{NIGHTLY}/details")["catchup"]:
            pytest.fail(
                f"{NIGHTLY} was parsed with catchup off: NIGHTSHIFT_CATCHUP=true did not reach the DAG processor"
            )

    def airflow_env(self) -> dict[str, str]:
        """This shell's environment after `eval "$(nightshift airflow-env)"`, as the README tells a user."""
        printed = subprocess.run(
            [str(BIN / "nightshift"), "airflow-env"], env=self.env, capture_output=True, text=True, check=True
        ).stdout
        env = dict(self.env)
        for line in printed.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export":
                key, _, value = words[1].partition("=")
                env[key] = value
        return env

    def airflow_cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = self.airflow_env()
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def scheduler_processes(self) -> list[Any]:
        """The live `airflow scheduler` processes started by this `nightshift airflow`."""
        import psutil

        if self.process is None:
            return []
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            try:
                words = child.cmdline()
                if (
                    child.status() != psutil.STATUS_ZOMBIE
                    and "scheduler" in words
                    and any("airflow" in w for w in words)
                ):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self, grace: float = 120) -> None:
        """SIGTERM, which `nightshift airflow` handles as Ctrl+C (SIGINT may be ignored in a background CI shell);
        whatever is left after `grace` is killed."""
        started = time.monotonic()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        print(f"[browser] `nightshift airflow` stopped {time.monotonic() - started:.0f}s after SIGTERM")
        subprocess.run(
            [str(BIN / "nightshift"), "db", "stop"], env=self.env, capture_output=True, timeout=120, check=False
        )
        self._kill_leftovers()
        self.keep_logs(ARTIFACTS / "logs")

    def keep_logs(self, folder: Path) -> None:
        """Copy every log into `folder`: pytest's temporary folders do not outlive a few later sessions."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.output.exists():
            shutil.copy2(self.output, folder / self.output.name)
        for source, name in ((self.home / "logs", "services"), (self.home / "airflow" / "logs", "tasks")):
            if source.exists():
                shutil.copytree(source, folder / name, dirs_exist_ok=True)
        server_log = self.home / "postgres" / "server.log"
        if server_log.exists():
            shutil.copy2(server_log, folder / "postgres-server.log")

    def _kill_leftovers(self) -> None:
        """Processes this test started (they carry its NIGHTSHIFT_HOME) that outlived the stop: killed by pid."""
        import psutil

        marker = f"NIGHTSHIFT_HOME={self.home}"
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid != os.getpid() and marker in "\n".join(f"{k}={v}" for k, v in proc.environ().items()):
                    proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue


def airflow_environment(home: Path, port: int, start: dt.date, end: dt.date) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(INHERITED) and key not in INHERITED_KEYS
    }
    env.update(
        {
            "NIGHTSHIFT_HOME": str(home),
            "NIGHTSHIFT_AIRFLOW_PORT": str(port),
            "NIGHTSHIFT_CATCHUP": "true",
            "NIGHTSHIFT_SCHEDULE_START": start.isoformat(),
            "NIGHTSHIFT_SCHEDULE_END": end.isoformat(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def simulate_season(start: dt.date, nights: int, rows: int) -> None:
    from nightshift.config import get_spec, settings
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate

    config = settings()
    plan = SimulationPlan(start=start, days=nights, rows_per_day=rows, bad_row_share=0.01)
    simulate(open_store(config.store_uri), get_spec(MODEL, config.models_dir), plan)


def first_champion(airflow: LocalAirflow, start: dt.date) -> str:
    """Start the embedded PostgreSQL and register a champion, so every night of the season is scored."""
    from nightshift.config import settings
    from nightshift.stores import registry
    from tests.champions import register_champion

    done = subprocess.run(
        [str(BIN / "nightshift"), "db", "start"], env=airflow.env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"`nightshift db start` failed:\n{done.stdout}\n{done.stderr}"
    registry.prepare_backend(settings())
    return register_champion(start - dt.timedelta(days=1))


@pytest.fixture(scope="module")
def local_airflow(request, artifacts: Path) -> Iterator[LocalAirflow]:
    """`nightshift airflow` catching up a season (the test module's SEASON_START, NIGHTS, ROWS) with a champion.

    Its NIGHTSHIFT_HOME is a folder of its own under the system's temp folder, not under pytest's: every pytest
    session started as root meanwhile (another checkout, another terminal) makes /tmp/pytest-of-root private
    again (mode 0700), and the embedded PostgreSQL, which runs as its own system user, then loses its data folder
    (PANIC: could not open file ".../global/pg_control": Permission denied). The logs are kept in
    artifacts/browser/logs/ and the folder is removed at the end.
    """
    start: dt.date = request.module.SEASON_START
    nights: int = request.module.NIGHTS
    rows: int = request.module.ROWS
    home = Path(tempfile.mkdtemp(prefix="nightshift-browser-")) / "home"
    home.mkdir()
    port = free_port()
    env = airflow_environment(home, port, start, start + dt.timedelta(days=nights - 1))
    airflow = LocalAirflow(home, port, env)
    with pytest.MonkeyPatch.context() as patch:
        for key in [key for key in os.environ if key.startswith("NIGHTSHIFT_") or key in INHERITED_KEYS]:
            patch.delenv(key)
        patch.setenv("NIGHTSHIFT_HOME", str(home))
        try:
            simulate_season(start, nights, rows)
            airflow.champion = first_champion(airflow, start)
            airflow.start()
            airflow.wait_ready()
            schedulers = airflow.scheduler_processes()
            assert len(schedulers) == 1, f"expected one `airflow scheduler` process, found {schedulers}; {airflow.logs}"
            airflow.scheduler_pid = schedulers[0].pid
            yield airflow
        finally:
            airflow.stop()
            shutil.rmtree(home.parent, ignore_errors=True)
