"""Turn Airflow connection fields into nightshift's environment settings (plain dicts in, no Airflow import).

The DAGs read the connections named in nightshift.config (OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID,
MLFLOW_CONN_ID) and the `nightshift_store_uri` variable, and pass their fields here. A variable already set
in the environment wins, so a deployment can always override a connection explicitly.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

STORE_URI_VARIABLE = "nightshift_store_uri"


def _warehouse_url(fields: dict[str, Any]) -> str:
    login = quote(fields.get("login") or "", safe="")
    password = quote(fields.get("password") or "", safe="")
    auth = f"{login}:{password}@" if password else (f"{login}@" if login else "")
    port = f":{fields['port']}" if fields.get("port") else ""
    database = fields.get("schema") or "postgres"
    return f"postgresql+psycopg2://{auth}{fields.get('host') or 'localhost'}{port}/{database}"


def _mlflow_uri(fields: dict[str, Any]) -> str:
    host = str(fields.get("host") or "")
    if "://" not in host:
        scheme = (fields.get("schema") or "http").removesuffix("://")
        host = f"{scheme}://{host}"
    port = f":{fields['port']}" if fields.get("port") else ""
    return f"{host.rstrip('/')}{port}"


def settings_from_connections(
    object_store: dict[str, Any] | None,
    warehouse: dict[str, Any] | None,
    mlflow: dict[str, Any] | None,
    store_uri: str | None,
) -> dict[str, str]:
    """Environment variables for nightshift from connection fields (host, port, schema, login, password, extra)."""
    found: dict[str, str] = {}
    if object_store:
        extra = object_store.get("extra") or {}
        if object_store.get("login"):
            found["AWS_ACCESS_KEY_ID"] = str(object_store["login"])
        if object_store.get("password"):
            found["AWS_SECRET_ACCESS_KEY"] = str(object_store["password"])
        if extra.get("endpoint_url"):
            found["NIGHTSHIFT_S3_ENDPOINT_URL"] = str(extra["endpoint_url"])
        if extra.get("region_name"):
            found["AWS_DEFAULT_REGION"] = str(extra["region_name"])
        if extra.get("store_uri"):
            found["NIGHTSHIFT_STORE_URI"] = str(extra["store_uri"])
    if store_uri:
        found["NIGHTSHIFT_STORE_URI"] = store_uri
    if warehouse:
        found["NIGHTSHIFT_WAREHOUSE_URL"] = _warehouse_url(warehouse)
    if mlflow and mlflow.get("host"):
        found["MLFLOW_TRACKING_URI"] = _mlflow_uri(mlflow)
    return found


def apply(found: dict[str, str], environ: dict[str, str] | Any) -> dict[str, str]:
    """Set the variables the environment does not already set; return what was applied."""
    applied = {key: value for key, value in found.items() if not environ.get(key)}
    environ.update(applied)
    return applied


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

    from nightshift.config import MLFLOW_CONN_ID, OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID

    connections = context["conn"]
    found = settings_from_connections(
        _fields(connections.get(OBJECT_STORE_CONN_ID, None)),
        _fields(connections.get(WAREHOUSE_CONN_ID, None)),
        _fields(connections.get(MLFLOW_CONN_ID, None)),
        context["var"]["value"].get(STORE_URI_VARIABLE, None),
    )
    return apply(found, os.environ)
