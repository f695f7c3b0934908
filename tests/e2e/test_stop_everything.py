"""Ctrl+C on `nightshift airflow` (what `make airflow` runs) and on `nightshift demo` stops every process they started.

Each command runs in its own session, as in a terminal; SIGINT goes to its process, as Ctrl+C sends it. Every
process a command starts inherits its NIGHTSHIFT_HOME, so the test finds any survivor by that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nightshift.runtime import embedded_db
from tests.processes import processes_of_home, server_home
from tests.servers import free_port

pytestmark = pytest.mark.e2e
NIGHTSHIFT = str(Path(sys.executable).parent / "nightshift")
STOP_WITHIN_SECONDS = 30  # about 11 s on an idle 2-core machine; 18.6 s seen at load 11


def clean_env(home: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "NIGHTSHIFT", "MLFLOW"))}
    env.update({"NIGHTSHIFT_HOME": str(home), "NIGHTSHIFT_AIRFLOW_PORT": str(port)})
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the command exited ({process.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
            )
        if condition():
            return
        time.sleep(1)
    pytest.fail(f"gave up waiting for {what} after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def api_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
            return True
    except OSError:
        return False


def interrupt_and_wait(process: subprocess.Popen[str], home: Path) -> tuple[float, list[str]]:
    """Send Ctrl+C's SIGINT; return how long until the command and every process of its home were gone."""
    before = processes_of_home(home)
    assert len(before) > 5, before
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    while processes_of_home(home) and time.monotonic() - started < 60:
        time.sleep(0.2)
    return time.monotonic() - started, processes_of_home(home)


@pytest.fixture
def home():
    with server_home() as folder:
        yield folder


def interrupted(args: list[str], home: Path, log: Path, ready, what: str) -> str:
    """Run `nightshift ARGS` in its own session until `ready(log text)`, press Ctrl+C, check nothing is left."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [NIGHTSHIFT, *args],
            env=clean_env(home, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        wait_for(lambda: ready(port, log.read_text()), 400, what, process, log)
        assert embedded_db.status(home).running
        seconds, left = interrupt_and_wait(process, home)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = log.read_text()
    assert process.returncode == 130, output[-2000:]
    assert left == [], left
    assert seconds < STOP_WITHIN_SECONDS, f"stopping took {seconds:.1f}s"
    assert "Traceback" not in output, output[-3000:]
    assert not embedded_db.status(home).running
    return output


def test_ctrl_c_on_make_airflow_stops_every_process(home, tmp_path):
    output = interrupted(
        ["airflow"], home, tmp_path / "airflow.out", lambda port, _: api_answers(port), "the Airflow API"
    )
    assert "embedded PostgreSQL stopped" in output


def test_ctrl_c_during_the_demo_stops_every_process(home, tmp_path):
    # interrupted while the scheduler runs the season's first tasks (forkserver and task processes alive)
    output = interrupted(
        ["demo", "--nights", "4", "--rows", "500", "--shift-after", "2"],
        home,
        tmp_path / "demo.out",
        lambda _, text: "nightly {'running'" in text,
        "a running nightly run",
    )
    assert "every process the demo started is stopped" in output
