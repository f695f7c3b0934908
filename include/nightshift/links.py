"""Addresses people click: nightshift's pages inside the Airflow UI (served by the plugin) and the runbook.

The plugin (`plugins/nightshift_plugin.py`) mounts its app at `PLUGIN_PREFIX` on Airflow's API server; every link
an alert, a log line or a page carries to a store object goes through it, behind Airflow's own login, so nobody
needs S3 credentials or a `file://` path. Standard library only: DAG files and alerts import it.
"""

from __future__ import annotations

import os
from urllib.parse import quote

PLUGIN_PREFIX = "/nightshift"
UI_URL_ENV = "NIGHTSHIFT_UI_URL"
RUNBOOK_URL_ENV = "NIGHTSHIFT_RUNBOOK_URL"
DEFAULT_UI_URL = "http://localhost:8080"
RUNBOOK = "docs/runbook.md"


def ui_base_url() -> str:
    """The Airflow UI's address as people reach it: NIGHTSHIFT_UI_URL, else Airflow's `[api] base_url`, else
    localhost:8080 (what `make airflow` serves)."""
    for name in (UI_URL_ENV, "AIRFLOW__API__BASE_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value.rstrip("/")
    return DEFAULT_UI_URL


def plugin_home_url(base: str | None = None) -> str:
    """The plugin's landing page: every model with its drift index."""
    return f"{base or ui_base_url()}{PLUGIN_PREFIX}/"


def model_index_url(model: str, base: str | None = None) -> str:
    """A model's drift index, served by the plugin."""
    return f"{base or ui_base_url()}{PLUGIN_PREFIX}/models/{quote(model)}/"


def store_page_url(key: str, base: str | None = None) -> str:
    """One object of the store's report areas (`reports/`, `validation/`, `quarantine/`), served by the plugin.

    Keys keep their folders, so a page's relative links (the index's `dt=…/report.html`) resolve to siblings."""
    return f"{base or ui_base_url()}{PLUGIN_PREFIX}/store/{quote(key.lstrip('/'))}"


def run_page_url(dag_id: str, run_id: str, base: str | None = None) -> str:
    """The pages one DAG run wrote (a night's reports, a retrain's or rollback's ledger entry)."""
    return f"{base or ui_base_url()}{PLUGIN_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def runbook_url(section: str) -> str:
    """A runbook section: `docs/runbook.md#<section>` in the repository, or under NIGHTSHIFT_RUNBOOK_URL when set
    (for example the file's address in your Git host)."""
    base = os.environ.get(RUNBOOK_URL_ENV, "").strip() or RUNBOOK
    return f"{base}#{section}"
