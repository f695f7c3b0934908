"""Real servers for integration and end-to-end tests: moto's S3, PostgreSQL databases, an MLflow tracking server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "NIGHTSHIFT_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@contextmanager
def serving(
    name: str, command: list[str], health_url: str, log: Path, env: dict[str, str], wait: float
) -> Iterator[None]:
    """Run a server process until the block ends, once its health URL answers; fail with its log if it does not."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + wait
        while not _answers(health_url):
            if process.poll() is not None:
                pytest.fail(f"{name} exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer on {health_url} within {wait:.0f}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(log: Path, **env: str) -> Iterator[str]:
    """Run `moto_server` from this virtualenv on a free port until the block ends; yield its endpoint URL."""
    executable = Path(sys.executable).parent / "moto_server"
    if not executable.exists():
        pytest.fail(f"{executable} not found; install moto[server] into this environment")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    environment = {key: value for key, value in os.environ.items() if key != "INITIAL_NO_AUTH_ACTION_COUNT"}
    command = [str(executable), "-H", "127.0.0.1", "-p", str(port)]
    with serving("moto_server", command, f"{endpoint}/moto-api/", log, {**environment, **env}, wait=120):
        yield endpoint


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A throwaway database on the test PostgreSQL server; yield its SQLAlchemy URL, drop it afterwards."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def mlflow_server(log: Path, backend_store_uri: str, artifacts_destination: str, **env: str) -> Iterator[str]:
    """Run `mlflow server` (Postgres backend store, proxied artifacts) on a free port; yield its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with serving("mlflow server", command, f"{url}/health", log, {**os.environ, **env}, wait=600):
        yield url
