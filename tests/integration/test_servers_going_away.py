"""Servers that go away in the middle of a step: the warehouse's PostgreSQL and an S3 store (moto's server).

Each failure is a nightshift error naming the server (its URL without the password), the step and what happened,
with no driver traceback chained to it, and it comes within a bounded time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nightshift.stores import warehouse
from nightshift.stores.objects import (
    S3_MAX_ATTEMPTS,
    S3Store,
    StorageError,
    ensure_bucket,
    open_store,
    publish_partition,
)
from nightshift.stores.warehouse import prediction_loads
from nightshift.stores.warehouse import rows as warehouse_rows
from nightshift_dev import warehouse_baselines
from tests.integration import postgres
from tests.servers import free_port

DAY = dt.date(2026, 10, 5)
MODEL = "credit_risk"
PASSWORD = "hunter2-not-shown"


def assert_readable(error: BaseException) -> None:
    """No SQL, no library links, no traceback of the driver chained to the error."""
    text = str(error)
    assert "\n" not in text
    for leak in ("COPY ", "INSERT INTO", "DELETE FROM", "SELECT ", "Background on this error", "sqlalche.me"):
        assert leak not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


# PostgreSQL


@pytest.fixture
def database() -> Iterator[str]:
    reason = postgres.unavailable()
    if reason:
        pytest.skip(reason)
    with postgres.throwaway_database("nightshift_gone") as name:
        yield name


@pytest.fixture
def url(database: str) -> str:
    """The database's URL with a password in it (trust auth ignores it), to show that messages mask it."""
    return sa.make_url(postgres.url_for(database)).set(password=PASSWORD).render_as_string(hide_password=False)


def _copying(database: str) -> bool:
    with closing(postgres._admin()) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'nightshift'"
            " AND query LIKE 'COPY %%' AND state = 'active'",
            (database,),
        )
        return bool(cursor.fetchone()[0])


def _terminate_when_copying(database: str, done: threading.Event, killed: list[int]) -> None:
    deadline = time.monotonic() + 120
    while not done.is_set() and time.monotonic() < deadline:
        if _copying(database):
            killed.append(postgres.terminate_backends(database))
            return
        time.sleep(0.02)


def test_postgres_ending_the_session_mid_copy_names_the_warehouse_and_step_and_keeps_the_earlier_rows(
    database: str, url: str
) -> None:
    engine = warehouse.connect(url)
    try:
        earlier = warehouse.load_predictions(
            engine, MODEL, DAY, warehouse_baselines.synthetic_predictions(MODEL, DAY, 1_000)
        )
        frames = list(warehouse_baselines.synthetic_predictions(MODEL, DAY, 600_000, seed=1, frame_rows=20_000))
        done = threading.Event()
        killed: list[int] = []
        killer = threading.Thread(target=_terminate_when_copying, args=(database, done, killed))
        killer.start()
        started = time.monotonic()
        try:
            with pytest.raises(warehouse.WarehouseError) as caught:
                warehouse.load_predictions(engine, MODEL, DAY, frames)
        finally:
            done.set()
            killer.join()
        seconds = time.monotonic() - started
        print(f"the load failed {seconds:.2f}s after it started")
        assert killed and killed[0] >= 1
        message = str(caught.value)
        shown = sa.make_url(url).render_as_string(hide_password=True)
        assert PASSWORD not in message
        assert message.startswith(f"warehouse {shown} (host 127.0.0.1, port 5432, database {database}): ")
        assert f"loading the predictions of {MODEL} {DAY} failed: the connection was lost (" in message
        assert "nothing of the step was committed" in message
        assert_readable(caught.value)
        assert warehouse.count_rows(engine, warehouse.predictions, model=MODEL, dt=DAY) == earlier
        versions = {row["model_version"] for row in warehouse.fetch_all(engine, warehouse.predictions, model=MODEL)}
        assert versions == {"7", "8"}
        assert len(warehouse.fetch_all(engine, warehouse.predictions, model=MODEL)) == earlier == 1_000
    finally:
        engine.dispose()


def _end_sessions_during(database: str, rows: Iterator[dict[str, Any]], at: int) -> Iterator[dict[str, Any]]:
    for number, row in enumerate(rows):
        if number == at:
            assert postgres.terminate_backends(database) >= 1
        yield row


@pytest.mark.parametrize(
    ("write", "step"),
    [
        (
            lambda engine, rows: warehouse_rows._replace(
                engine, warehouse.validation_runs, [warehouse.validation_runs.c.model == MODEL], rows, "a test step"
            ),
            "a test step",
        ),
        (
            lambda engine, rows: warehouse.replace_predictions(engine, MODEL, DAY, rows),
            f"loading the predictions of {MODEL} {DAY}",
        ),
    ],
    ids=["rows", "predictions"],
)
def test_a_write_cut_off_midway_is_rolled_back_whole(
    database: str, url: str, monkeypatch: pytest.MonkeyPatch, write: Callable[..., Any], step: str
) -> None:
    monkeypatch.setattr(prediction_loads, "COPY_BATCH_ROWS", 100)
    engine = warehouse.connect(url)
    try:
        if "predictions" in step:
            first = [_prediction(number, "1") for number in range(300)]
            second = [_prediction(number, "2") for number in range(300)]
            table = warehouse.predictions
        else:
            first = [_validation(DAY + dt.timedelta(days=k)) for k in range(30)]
            second = [_validation(DAY + dt.timedelta(days=k), rows=2) for k in range(30_000)]
            table = warehouse.validation_runs
        write(engine, iter(first))
        before = warehouse.fetch_all(engine, table, model=MODEL)
        with pytest.raises(warehouse.WarehouseError) as caught:
            write(engine, _end_sessions_during(database, iter(second), at=len(second) // 2 + 1))
        assert f"{step} failed: the connection was lost (" in str(caught.value)
        assert "nothing of the step was committed" in str(caught.value)
        assert PASSWORD not in str(caught.value)
        assert_readable(caught.value)
        assert sorted(map(str, warehouse.fetch_all(engine, table, model=MODEL))) == sorted(map(str, before))
    finally:
        engine.dispose()


def _prediction(number: int, version: str) -> dict[str, Any]:
    return {
        "prediction_id": f"p{number}",
        "entity_id": f"e{number}",
        "score": 0.5,
        "model": MODEL,
        "model_version": version,
        "alias": "champion",
        "run_id": "r",
    }


def _validation(day: dt.date, rows: int = 1) -> dict[str, Any]:
    return {
        "model": MODEL,
        "dt": day,
        "rows": rows,
        "accepted_rows": rows,
        "quarantined_rows": 0,
        "bad_row_share": 0.0,
        "passed": True,
        "message": None,
        "result_uri": "file:///x",
        "run_id": "r",
    }


def test_a_read_of_a_warehouse_whose_sessions_end_names_it(database: str, url: str) -> None:
    engine = warehouse.connect(url)
    try:
        with engine.connect() as connection:
            assert postgres.terminate_backends(database) >= 1
            with pytest.raises(sa.exc.OperationalError):
                connection.exec_driver_sql("SELECT 1")
        engine.pool.dispose()
        with closing(postgres._admin()) as admin, admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        try:
            with pytest.raises(warehouse.WarehouseError) as caught:
                warehouse.ledger(engine, MODEL)
        finally:
            with closing(postgres._admin()) as admin, admin.cursor() as cursor:
                cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        message = str(caught.value)
        assert message.startswith(f"reading the promotion ledger of {MODEL}: cannot connect to the warehouse ")
        assert PASSWORD not in message
        assert_readable(caught.value)
    finally:
        engine.dispose()


# S3 (moto's standalone server, started here so the test can kill it)


class Moto:
    def __init__(self, log: Path) -> None:
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        port = self.endpoint.rsplit(":", 1)[1]
        executable = Path(sys.executable).parent / "moto_server"
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [str(executable), "-H", "127.0.0.1", "-p", port], stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 120
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def moto(tmp_path: Path, aws_env: pytest.MonkeyPatch) -> Iterator[Moto]:
    server = Moto(tmp_path / "moto_server.log")
    aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_env.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", server.endpoint)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def bucket(moto: Moto) -> str:
    name = f"nightshift-{uuid.uuid4().hex[:12]}"
    ensure_bucket(f"s3://{name}")
    return name


class KillAfterFirstUpload:
    """The store, with the server killed once the first file of a partition is uploaded."""

    def __init__(self, inner: S3Store, moto: Moto) -> None:
        self.inner, self.moto, self.uploads = inner, moto, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_file(self, key: str, local_path: Path) -> None:
        self.inner.put_file(key, local_path)
        self.uploads += 1
        self.moto.kill()


def _timed(call: Callable[[], Any]) -> tuple[StorageError, float]:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        call()
    return caught.value, time.monotonic() - started


def _assert_names(error: StorageError, moto: Moto, action: str, url: str) -> None:
    message = str(error)
    assert message.startswith(f"cannot {action} {url}: S3 endpoint {moto.endpoint}")
    assert "is unreachable" in message
    assert f"tried {S3_MAX_ATTEMPTS} times" in message
    assert "NIGHTSHIFT_S3_ENDPOINT_URL" in message
    assert "Traceback" not in message
    assert_readable(error)


def test_s3_killed_while_a_partition_is_written_names_the_endpoint_key_and_fails_fast(
    moto: Moto, bucket: str, tmp_path: Path
) -> None:
    store = open_store(f"s3://{bucket}/nightshift")
    assert isinstance(store, S3Store)
    files = {}
    for name in ("part-00000.parquet", "part-00001.parquet"):
        files[name] = tmp_path / name
        files[name].write_bytes(b"x" * 1000)
    prefix = f"predictions/{MODEL}/dt={DAY}"
    watched = KillAfterFirstUpload(store, moto)
    error, seconds = _timed(lambda: publish_partition(watched, prefix, {"rows": 2}, local=files))
    print(f"the partition write failed {seconds:.2f}s after the server was killed (with the first upload)")
    assert watched.uploads == 1
    uploaded = re.match(
        rf"cannot upload (s3://{bucket}/nightshift/{prefix}/rev=[^/]+/part-00001\.parquet): ", str(error)
    )
    assert uploaded, str(error)
    _assert_names(error, moto, "upload", uploaded.group(1))
    assert seconds < 15


def test_s3_killed_before_a_drop_is_read_or_listed_names_the_endpoint_and_object(moto: Moto, bucket: str) -> None:
    store = open_store(f"s3://{bucket}/nightshift")
    drop = f"drops/{MODEL}/dt={DAY}"
    store.write_bytes(f"{drop}/part-00000.csv", b"id,x\n1,2\n")
    store.write_bytes(f"{drop}/_SUCCESS", json.dumps({"rows": 1}).encode())
    assert store.list(drop) == [f"{drop}/_SUCCESS", f"{drop}/part-00000.csv"]
    moto.kill()
    figures = {}
    for action, url, call in (
        ("read", f"s3://{bucket}/nightshift/{drop}/part-00000.csv", lambda: store.read_bytes(f"{drop}/part-00000.csv")),
        ("list", f"s3://{bucket}/nightshift/{drop}", lambda: store.list(drop)),
        ("look up", f"s3://{bucket}/nightshift/{drop}/_SUCCESS", lambda: store.exists(f"{drop}/_SUCCESS")),
        ("delete", f"s3://{bucket}/nightshift/{drop}", lambda: store.delete_prefix(drop)),
    ):
        error, figures[action] = _timed(call)
        _assert_names(error, moto, action, url)
    print("seconds to fail once the server is gone: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    assert max(figures.values()) < 15


def test_an_s3_server_that_stops_answering_fails_after_the_bounded_attempts(
    aws_env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from nightshift.stores.objects import s3 as storage

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_say_nothing() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        aws_env.setenv(name, value)
    aws_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_env.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setattr(storage, "S3_READ_TIMEOUT_SECONDS", 1)
    silent = threading.Thread(target=accept_and_say_nothing)
    silent.start()
    try:
        store = open_store("s3://quiet/nightshift")
        error, seconds = _timed(lambda: store.read_bytes("drops/x.csv"))
    finally:
        stop.set()
        silent.join()
        for connection in held:
            connection.close()
        listener.close()
    print(f"a silent server failed the read after {seconds:.2f}s and {len(held)} connection(s)")
    assert str(error).startswith(f"cannot read s3://quiet/nightshift/drops/x.csv: S3 endpoint {endpoint}")
    assert "did not answer in time" in str(error)
    assert_readable(error)
    assert len(held) == S3_MAX_ATTEMPTS
    assert S3_MAX_ATTEMPTS * 1 <= seconds < S3_MAX_ATTEMPTS * 1 + 10
