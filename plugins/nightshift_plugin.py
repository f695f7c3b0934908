"""The nightshift plugin: its pages (nightshift.site) mounted on Airflow's API server behind Airflow's login.

A "nightshift" entry in the navigation opens the home page (every model's drift index); every DAG run has a
"nightshift pages" tab with the pages it wrote. Settings come as in a task: the nightshift connections and the
`nightshift_store_uri` variable win over the API server's environment (nightshift.runtime.connections).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from nightshift.config import MLFLOW_CONN_ID, OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID, Settings, settings
from nightshift.links import PLUGIN_PREFIX
from nightshift.runtime.connections import STORE_URI_VARIABLE, apply, describe, resolve
from nightshift.site.app import create_app
from nightshift.site.runs import RunFacts

log = logging.getLogger(__name__)
SETTINGS_SECONDS = 60.0
RUN_TAB = "nightshift pages"
"""The run tab's name, apart from the navigation entry's (`nightshift`)."""
_cache: dict[str, Any] = {"at": None}
_lock = threading.Lock()


def _connection(conn_id: str) -> dict[str, Any] | None:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        found = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    fields = ("host", "port", "schema", "login", "password")
    return {**{name: getattr(found, name) for name in fields}, "extra": found.extra_dejson}


def _store_variable() -> str | None:
    from airflow.models.variable import Variable

    value = Variable.get(STORE_URI_VARIABLE, default_var=None)
    return str(value) if value else None


def current_settings() -> Settings:
    """nightshift's settings in the API server: connections and the variable applied over the environment, once a
    minute (a failing lookup keeps the environment's values and says so in the log)."""
    with _lock:
        now = time.monotonic()
        if _cache["at"] is None or now - _cache["at"] > SETTINGS_SECONDS:
            try:
                found = resolve(
                    _connection(OBJECT_STORE_CONN_ID),
                    _connection(WAREHOUSE_CONN_ID),
                    _connection(MLFLOW_CONN_ID),
                    _store_variable(),
                )
                log.info(describe(found, os.environ))
                apply({key: item.value for key, item in found.items()}, os.environ)
            except Exception as exc:  # the metadata database away: serve with the environment's settings
                log.warning(
                    "nightshift plugin: could not read its Airflow connections (%s); using the environment", exc
                )
            _cache["at"] = now
        return settings()


def can_read(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return bool(get_auth_manager().is_authorized_dag(method="GET", details=details, user=user))


def run_facts(dag_id: str, run_id: str) -> RunFacts | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
        if run is None:
            return None
        moment = run.logical_date or run.run_after
        return RunFacts(
            dag_id=dag_id,
            run_id=run_id,
            day=moment.date() if moment else None,
            state=str(getattr(run.state, "value", run.state)) if run.state else None,
            run_type=str(getattr(run.run_type, "value", run.run_type)) if run.run_type else None,
        )


def _app() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return create_app(get_user, can_read, current_settings, run_facts)


class NightshiftPlugin(AirflowPlugin):
    name = "nightshift"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin declares these as plain attributes)
        {"app": _app(), "url_prefix": PLUGIN_PREFIX, "name": "nightshift pages"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "nightshift",
            "href": f"{PLUGIN_PREFIX}/",
            "destination": "nav",
            "url_route": "nightshift",
            "nav_top_level": True,
        },
        {
            "name": RUN_TAB,
            "href": f"{PLUGIN_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "nightshift-run",
        },
    ]
