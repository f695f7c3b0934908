import os
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import make_url

from nightshift.config import MLFLOW_CONN_ID, OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID, settings
from nightshift.runtime.connections import (
    STORE_URI_VARIABLE,
    apply,
    export_from_context,
    settings_from_connections,
    warehouse_url,
)

WAREHOUSE_PASSWORD = "p@ss:w/rd%#?"


def test_connection_fields_become_nightshift_settings():
    found = settings_from_connections(
        {
            "login": "key",
            "password": "secret",
            "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
        },
        {"host": "db", "port": 5432, "schema": "warehouse", "login": "ns", "password": "p@ss/word"},
        {"host": "mlflow", "port": 5000, "schema": None},
        "s3://bucket/nightshift",
    )
    assert found == {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "NIGHTSHIFT_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "NIGHTSHIFT_STORE_URI": "s3://bucket/nightshift",
        "NIGHTSHIFT_WAREHOUSE_URL": "postgresql+psycopg2://ns:p%40ss%2Fword@db:5432/warehouse",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }


def test_missing_connections_set_nothing():
    assert settings_from_connections(None, None, None, None) == {}


def test_warehouse_url_quotes_login_and_password():
    url = warehouse_url(
        {"host": "db", "port": "5433", "schema": "wh", "login": "ns@team:1", "password": WAREHOUSE_PASSWORD}
    )
    assert "p@ss" not in url and "w/rd" not in url
    parsed = make_url(url)
    assert (parsed.drivername, parsed.host, parsed.port, parsed.database) == ("postgresql+psycopg2", "db", 5433, "wh")
    assert (parsed.username, parsed.password) == ("ns@team:1", WAREHOUSE_PASSWORD)


def test_warehouse_url_defaults_and_login_without_password():
    assert warehouse_url({"login": "ns"}) == "postgresql+psycopg2://ns@localhost/postgres"
    assert warehouse_url({"host": "db", "schema": "wh"}) == "postgresql+psycopg2://db/wh"


def test_connection_wins_over_the_environment():
    environ = {"NIGHTSHIFT_WAREHOUSE_URL": "sqlite:///explicit.db", "NIGHTSHIFT_HOME": "/home"}
    applied = apply({"NIGHTSHIFT_WAREHOUSE_URL": "postgresql://x", "MLFLOW_TRACKING_URI": "http://m:5000"}, environ)
    assert applied == {"NIGHTSHIFT_WAREHOUSE_URL": "postgresql://x", "MLFLOW_TRACKING_URI": "http://m:5000"}
    assert environ == {
        "NIGHTSHIFT_WAREHOUSE_URL": "postgresql://x",
        "MLFLOW_TRACKING_URI": "http://m:5000",
        "NIGHTSHIFT_HOME": "/home",
    }


class Accessor:
    """The task context's `conn` accessor: `.get(conn_id, default)`."""

    def __init__(self, connections: dict):
        self.connections = connections

    def get(self, conn_id, default=None):
        return self.connections.get(conn_id, default)


def connection(**fields) -> SimpleNamespace:
    values: dict[str, Any] = {
        "host": None,
        "port": None,
        "schema": None,
        "login": None,
        "password": None,
        "extra_dejson": {},
    }
    return SimpleNamespace(**{**values, **fields})


def task_context(connections: dict, variables: dict, lines: list[str]) -> dict:
    log = SimpleNamespace(info=lambda message, *args: lines.append(message % args if args else message))
    return {
        "conn": Accessor(connections),
        "var": {"value": Accessor(variables)},
        "task": SimpleNamespace(log=log),
    }


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """The environment a compose-like deployment sets, besides the connections."""
    values = {
        "NIGHTSHIFT_HOME": str(tmp_path),
        "NIGHTSHIFT_WAREHOUSE_URL": "sqlite:///from-the-environment.db",
        "NIGHTSHIFT_STORE_URI": "file:///from/the/environment",
        "MLFLOW_TRACKING_URI": "http://environment-mlflow:5000",
        "AWS_ACCESS_KEY_ID": "environment-key",
        "AWS_SECRET_ACCESS_KEY": "environment-secret",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("NIGHTSHIFT_S3_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    return values


def test_the_hook_lets_every_airflow_connection_win_and_logs_its_sources_without_secrets(environment):
    lines: list[str] = []
    context = task_context(
        {
            OBJECT_STORE_CONN_ID: connection(
                login="conn-key", password="conn-secret", extra_dejson={"endpoint_url": "http://minio:9000"}
            ),
            WAREHOUSE_CONN_ID: connection(
                host="postgres", port=5432, schema="warehouse", login="warehouse", password=WAREHOUSE_PASSWORD
            ),
            MLFLOW_CONN_ID: connection(host="mlflow", port=5000, schema="http"),
        },
        {STORE_URI_VARIABLE: "s3://nightshift/store"},
        lines,
    )
    export_from_context(context)

    config = settings()
    assert make_url(config.warehouse_url).password == WAREHOUSE_PASSWORD
    assert make_url(config.warehouse_url).host == "postgres"
    assert config.store_uri == "s3://nightshift/store"
    assert config.mlflow_tracking_uri == "http://mlflow:5000"
    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]) == ("conn-key", "conn-secret")
    assert os.environ["NIGHTSHIFT_S3_ENDPOINT_URL"] == "http://minio:9000"

    (line,) = lines
    assert f"NIGHTSHIFT_WAREHOUSE_URL from connection {WAREHOUSE_CONN_ID} (replacing the environment's value)" in line
    assert f"NIGHTSHIFT_STORE_URI from variable {STORE_URI_VARIABLE}" in line
    assert f"MLFLOW_TRACKING_URI from connection {MLFLOW_CONN_ID}" in line
    assert f"AWS_SECRET_ACCESS_KEY from connection {OBJECT_STORE_CONN_ID}" in line
    for secret in ("conn-secret", "conn-key", WAREHOUSE_PASSWORD, "p%40ss", "environment-secret"):
        assert secret not in line


def test_the_hook_leaves_the_environment_alone_without_connections(environment):
    lines: list[str] = []
    assert export_from_context(task_context({}, {}, lines)) == {}
    config = settings()
    assert config.warehouse_url == environment["NIGHTSHIFT_WAREHOUSE_URL"]
    assert config.store_uri == environment["NIGHTSHIFT_STORE_URI"]
    assert config.mlflow_tracking_uri == environment["MLFLOW_TRACKING_URI"]
    assert lines == [
        "nightshift settings: no nightshift connection or variable in Airflow; the environment's values apply"
    ]


def test_a_setting_no_connection_defines_comes_from_the_environment(environment):
    lines: list[str] = []
    context = task_context({MLFLOW_CONN_ID: connection(host="mlflow", port=5000)}, {}, lines)
    assert export_from_context(context) == {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    config = settings()
    assert config.mlflow_tracking_uri == "http://mlflow:5000"
    assert config.warehouse_url == environment["NIGHTSHIFT_WAREHOUSE_URL"]
    assert config.store_uri == environment["NIGHTSHIFT_STORE_URI"]
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "environment-secret"
