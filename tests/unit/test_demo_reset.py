"""`make demo` starts clean: its own files go, anything else under the home stays."""

from __future__ import annotations

from nightshift.config import settings
from nightshift.runtime import embedded_db
from nightshift.runtime.supervisor import airflow_settings, metadata_url, uses_embedded_db
from nightshift_dev.demo import reset


def test_reset_removes_the_demo_state_and_keeps_the_rest(home):
    (home / "store" / "landing").mkdir(parents=True)
    (home / "store" / "landing" / "part.csv").write_text("a\n")
    (home / "airflow" / "logs").mkdir(parents=True)
    (home / "airflow" / "airflow.cfg").write_text("[core]\n")
    (home / "postgres" / "data").mkdir(parents=True)
    (home / "bench").mkdir()

    reset(settings())  # the home fixture's warehouse and MLflow are SQLite files: no database is touched

    assert not (home / "store").exists() and not (home / "airflow" / "logs").exists()
    assert (home / "airflow" / "airflow.cfg").exists() and (home / "bench").is_dir()
    assert (home / "postgres" / "data").is_dir()


def test_the_embedded_server_is_the_default_for_every_database(home, monkeypatch):
    monkeypatch.delenv("NIGHTSHIFT_WAREHOUSE_URL")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////ignored/airflow.db")
    config = settings()
    assert config.warehouse_url == embedded_db.url(home.resolve(), "warehouse")
    assert config.mlflow_tracking_uri == embedded_db.url(home.resolve(), "mlflow")
    assert config.mlflow_artifact_root == (home.resolve() / "mlartifacts").as_uri()
    assert metadata_url(config) == embedded_db.url(home.resolve(), "airflow")
    assert uses_embedded_db(config)


def test_a_postgres_url_in_the_environment_wins(home, monkeypatch):
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URL", "postgresql+psycopg2://warehouse.example/nightshift")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://meta.example/airflow")
    config = settings()
    assert config.warehouse_url.startswith("postgresql+psycopg2://warehouse.example")
    assert config.mlflow_artifact_root is None
    env = airflow_settings(config)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://meta.example/airflow"
    assert not uses_embedded_db(config, env)


def test_the_local_airflow_does_not_force_a_schedule_window_on_any_model(home):
    env = airflow_settings(settings())
    assert "NIGHTSHIFT_SCHEDULE_START" not in env and "NIGHTSHIFT_SCHEDULE_END" not in env
    assert env["NIGHTSHIFT_CATCHUP"] == "false"
