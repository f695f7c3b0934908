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
def moto_server(log: Path, **env: str) -> Iterator[str]:
    """Run `moto_server` from this virtualenv on a free port until the block ends; yield its endpoint URL."""
    executable = Path(sys.executable).parent / "moto_server"
    if not executable.exists():
        pytest.fail(f"{executable} not found; install moto[server] into this environment")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    environment = {key: value for key, value in os.environ.items() if key != "INITIAL_NO_AUTH_ACTION_COUNT"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**environment, **env},
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"{endpoint}/moto-api/"):
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with code {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server did not answer on {endpoint} within 30s:\n{log.read_text()}")
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"{url}/health"):
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer on {url} within 120s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
