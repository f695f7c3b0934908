"""Shared fixtures. Airflow reads its configuration at import, so its environment is set here first."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="nightshift-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
)
for _key in ("MLFLOW_TRACKING_URI", "NIGHTSHIFT_STORE_URI", "NIGHTSHIFT_WAREHOUSE_URL", "NIGHTSHIFT_MODELS_DIR"):
    os.environ.pop(_key, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh NIGHTSHIFT_HOME: empty store under tmp_path, warehouse and MLflow in SQLite files beside it.

    The stages run in this one process with no server; tests of the embedded PostgreSQL, the Postgres warehouse
    and the whole loop start real servers (tests/integration, tests/e2e).
    """
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(folder))
    for key in ("NIGHTSHIFT_STORE_URI", "NIGHTSHIFT_MODELS_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URL", f"sqlite:///{folder / 'warehouse.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    return folder


@pytest.fixture
def demo_spec():
    from nightshift.config import load_spec

    return load_spec(PROJECT / "include" / "models" / "credit_risk.yaml")


@pytest.fixture
def python() -> str:
    return sys.executable
