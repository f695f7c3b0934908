"""The local PostgreSQL server for integration tests: throwaway databases and schemas, and a way to drop connections.

The server defaults to postgresql://postgres@127.0.0.1:5432 (trust auth); set NIGHTSHIFT_TEST_POSTGRES_URL to use
another one. Tests that need it skip with the reason when it does not answer.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import psycopg2
import sqlalchemy as sa

SERVER_URL = os.environ.get("NIGHTSHIFT_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _admin(database: str | None = None) -> Any:
    """An autocommit psycopg2 connection to the server, independent of the code under test."""
    url = sa.make_url(SERVER_URL)
    connection = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=database or url.database or "postgres",
        connect_timeout=5,
    )
    connection.autocommit = True
    return connection


def unavailable() -> str | None:
    """Why the server cannot be used, or None when it answers."""
    try:
        with closing(_admin()) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except psycopg2.Error as exc:
        return f"no PostgreSQL at {sa.make_url(SERVER_URL).render_as_string(hide_password=True)}: {exc}".strip()
    return None


def url_for(database: str, schema: str | None = None) -> str:
    """A SQLAlchemy URL for `database` on the server; with `schema`, tables are created and found in it."""
    url = sa.make_url(SERVER_URL).set(database=database)
    if schema:
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def throwaway_database(prefix: str = "nightshift_test") -> Iterator[str]:
    """Create a database with a random name, yield its name, drop it (closing its connections) at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with closing(_admin()) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with closing(_admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def throwaway_schema(database: str) -> Iterator[str]:
    """Create an empty schema with a random name in `database`, yield its name, drop it with its tables at the end.

    The schema the warehouse keeps that schema's prediction partitions in goes too.
    """
    from nightshift.stores.warehouse import partition_schema

    name = f"s_{uuid.uuid4().hex[:12]}"
    with closing(_admin(database)) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with closing(_admin(database)) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            cursor.execute(f'DROP SCHEMA IF EXISTS "{partition_schema(name)}" CASCADE')


def terminate_backends(database: str, application_name: str = "nightshift") -> int:
    """Kill the server sessions `application_name` has open on `database`, as a dropped network link would."""
    with closing(_admin()) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
            (database, application_name),
        )
        return int(cursor.fetchone()[0])
