"""Turn Airflow connection fields into nightshift's environment settings (plain dicts in, no Airflow import).

The rule: a setting an Airflow connection (or the `nightshift_store_uri` variable) defines wins. Every task's
pre-execute hook reads the connections named in nightshift.config (OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID,
MLFLOW_CONN_ID) and the variable, and sets the variables they define in the task's environment, replacing
any value already there. A setting no connection defines comes from the environment (or its default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from nightshift.config import MLFLOW_CONN_ID, OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID

STORE_URI_VARIABLE = "nightshift_store_uri"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    """One environment setting and where it came from (e.g. `connection nightshift_warehouse`)."""

    value: str
    source: str


def warehouse_url(fields: Mapping[str, Any]) -> str:
    """The SQLAlchemy URL of a `postgres` connection, login and password quoted."""
    from sqlalchemy import URL

    login = fields.get("login") or None
    password = fields.get("password") or None
    url = URL.create(
        "postgresql+psycopg2",
        username=login if login or not password else "",
        password=password,
        host=fields.get("host") or "localhost",
        port=int(fields["port"]) if fields.get("port") else None,
        database=fields.get("schema") or "postgres",
    )
    return url.render_as_string(hide_password=False)


def mlflow_uri(fields: Mapping[str, Any]) -> str:
    """The tracking URI of an `http` connection: schema (http/https), host and port."""
    host = str(fields.get("host") or "")
    if "://" not in host:
        scheme = (fields.get("schema") or "http").removesuffix("://")
        host = f"{scheme}://{host}"
    port = f":{fields['port']}" if fields.get("port") else ""
    return f"{host.rstrip('/')}{port}"


def resolve(
    object_store: Mapping[str, Any] | None,
    warehouse: Mapping[str, Any] | None,
    mlflow: Mapping[str, Any] | None,
    store_uri: str | None,
) -> dict[str, Found]:
    """The environment settings the connections and the store variable define, each with its source."""
    found: dict[str, Found] = {}
    if object_store:
        source = f"connection {OBJECT_STORE_CONN_ID}"
        extra = object_store.get("extra") or {}
        for key, value in (
            ("AWS_ACCESS_KEY_ID", object_store.get("login")),
            ("AWS_SECRET_ACCESS_KEY", object_store.get("password")),
            ("NIGHTSHIFT_S3_ENDPOINT_URL", extra.get("endpoint_url")),
            ("AWS_DEFAULT_REGION", extra.get("region_name")),
            ("NIGHTSHIFT_STORE_URI", extra.get("store_uri")),
        ):
            if value:
                found[key] = Found(str(value), source)
    if store_uri:
        found["NIGHTSHIFT_STORE_URI"] = Found(store_uri, f"variable {STORE_URI_VARIABLE}")
    if warehouse:
        found["NIGHTSHIFT_WAREHOUSE_URL"] = Found(warehouse_url(warehouse), f"connection {WAREHOUSE_CONN_ID}")
    if mlflow and mlflow.get("host"):
        found["MLFLOW_TRACKING_URI"] = Found(mlflow_uri(mlflow), f"connection {MLFLOW_CONN_ID}")
    return found


def settings_from_connections(
    object_store: Mapping[str, Any] | None,
    warehouse: Mapping[str, Any] | None,
    mlflow: Mapping[str, Any] | None,
    store_uri: str | None,
) -> dict[str, str]:
    """Environment variables for nightshift from connection fields (host, port, schema, login, password, extra)."""
    return {key: found.value for key, found in resolve(object_store, warehouse, mlflow, store_uri).items()}


def apply(found: Mapping[str, str], environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set every variable the connections define, replacing the environment's value; return what was set."""
    environ.update(found)
    return dict(found)


def describe(found: Mapping[str, Found], environ: Mapping[str, str]) -> str:
    """Which source set which setting, and which replaced another value in the environment; never a value."""
    if not found:
        return "nightshift settings: no nightshift connection or variable in Airflow; the environment's values apply"
    parts = []
    for key, item in sorted(found.items()):
        previous = environ.get(key)
        note = " (replacing the environment's value)" if previous and previous != item.value else ""
        parts.append(f"{key} from {item.source}{note}")
    return "nightshift settings from Airflow: " + "; ".join(parts)


def _fields(connection: Any) -> dict[str, Any] | None:
    if connection is None:
        return None
    return {
        "host": connection.host,
        "port": connection.port,
        "schema": connection.schema,
        "login": connection.login,
        "password": connection.password,
        "extra": connection.extra_dejson,
    }


def export_from_context(context: Any) -> dict[str, str]:
    """Task pre-execute hook: read the connections and variable through the task context, set the environment.

    Uses the context's `conn` and `var` accessors, so this module needs no Airflow import.
    """
    import os

    connections = context["conn"]
    found = resolve(
        _fields(connections.get(OBJECT_STORE_CONN_ID, None)),
        _fields(connections.get(WAREHOUSE_CONN_ID, None)),
        _fields(connections.get(MLFLOW_CONN_ID, None)),
        context["var"]["value"].get(STORE_URI_VARIABLE, None),
    )
    log = getattr(context.get("task"), "log", None) or logger
    log.info(describe(found, os.environ))
    return apply({key: item.value for key, item in found.items()}, os.environ)
