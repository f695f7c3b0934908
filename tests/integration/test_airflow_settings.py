"""airflow_settings.yaml: valid, loaded into a real (throwaway) Airflow metadata database, and what the DAGs use.

Every Airflow command runs in a subprocess with its own environment (a temporary AIRFLOW_HOME and SQLite
database), so this test process's Airflow configuration (tests/conftest.py) is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nightshift.config import MLFLOW_CONN_ID, OBJECT_STORE_CONN_ID, PROMOTION_POOL, WAREHOUSE_CONN_ID
from nightshift.runtime.airflow_settings import AirflowSettingsError, apply_settings, load_settings, parse_settings
from tests.servers import postgres_database

PROJECT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = PROJECT / "airflow_settings.yaml"
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")


def clean_env(airflow_home: Path) -> dict[str, str]:
    """This process's environment without any Airflow or nightshift settings, pointed at a throwaway Airflow."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "NIGHTSHIFT_", "MLFLOW_", "AWS_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
            "NIGHTSHIFT_HOME": str(airflow_home / "nightshift"),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"`{' '.join(args)}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def airflow_json(env: dict[str, str], *args: str) -> list[dict]:
    out = run([AIRFLOW, *args, "--output", "json"], env)
    return json.loads(out[out.index("[") :])


def load_cli(path: Path, env: dict[str, str]) -> str:
    return run([sys.executable, "-m", "nightshift.cli", "airflow-settings-load", "--file", str(path)], env)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A plain Airflow on a throwaway PostgreSQL metadata database."""
    with postgres_database("ns_settings_airflow") as url:
        env = clean_env(tmp_path_factory.mktemp("airflow-settings-home"))
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
        run([AIRFLOW, "db", "migrate"], env)
        yield env


@pytest.fixture(scope="module")
def settings_file():
    return load_settings(SETTINGS_FILE)


# -- the file itself ---------------------------------------------------------------------------------------------


def test_the_file_is_in_the_astro_cli_format():
    raw = yaml.safe_load(SETTINGS_FILE.read_text())
    assert set(raw) == {"airflow"} and set(raw["airflow"]) == {"connections", "pools", "variables"}
    for conn in raw["airflow"]["connections"]:
        assert set(conn) <= {
            "conn_id",
            "conn_type",
            "conn_host",
            "conn_schema",
            "conn_login",
            "conn_password",
            "conn_port",
            "conn_extra",
        }
    for pool in raw["airflow"]["pools"]:
        assert set(pool) == {"pool_name", "pool_slot", "pool_description"}
    for variable in raw["airflow"]["variables"]:
        assert set(variable) == {"variable_name", "variable_value"}
    assert "LOCAL DEVELOPMENT" in SETTINGS_FILE.read_text()


def test_the_file_defines_what_nightshift_expects(settings_file):
    store = settings_file.connection(OBJECT_STORE_CONN_ID)
    assert store and store.conn_type == "aws" and store.extra
    assert store.extra["endpoint_url"].startswith("http") and store.extra["region_name"]
    warehouse = settings_file.connection(WAREHOUSE_CONN_ID)
    assert warehouse and warehouse.conn_type == "postgres" and warehouse.schema == "warehouse"
    mlflow = settings_file.connection(MLFLOW_CONN_ID)
    assert mlflow and mlflow.conn_type == "http" and mlflow.host
    pool = settings_file.pool(PROMOTION_POOL)
    assert pool and pool.slots == 1
    store_uri = settings_file.variable("nightshift_store_uri")
    assert store_uri and store_uri.value.startswith("s3://")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("connections: []", "top-level 'airflow:' mapping"),
        ("airflow:\n  connections: {a: 1}", "airflow.connections: must be a list"),
        ("airflow:\n  conections: []", "unknown section 'conections'"),
        (
            "airflow:\n  connections:\n    - conn_type: http",
            "airflow.connections[0]: conn_id: required field is missing",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: web, conn_type: http, conn_port: eighty}",
            "airflow.connections[0] (web): conn_port: must be an integer between 1 and 65535 (got 'eighty')",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: web, conn_host: example.com}",
            "airflow.connections[0] (web): conn_type: required field is missing",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: web, conn_type: http, conn_extra: '{not json'}",
            "airflow.connections[0] (web): conn_extra: not valid JSON",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: web, conn_type: http, conn_hots: x}",
            "airflow.connections[0] (web): unknown field 'conn_hots'",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: 'a b', conn_type: http}",
            "conn_id: 'a b' is not a valid Airflow id",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: web, conn_type: http, conn_password: 1234}",
            "airflow.connections[0] (web): conn_password: must be a string; put it in quotes",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: web, conn_type: http}\n    - {conn_id: web, conn_type: http}",
            "airflow.connections[1] (web): conn_id 'web' is defined twice (first at airflow.connections[0])",
        ),
        (
            "airflow:\n  pools:\n    - {pool_name: p, pool_slot: -1}",
            "airflow.pools[0] (p): pool_slot: must be a whole number of slots, 0 or more (got -1)",
        ),
        ("airflow:\n  pools:\n    - {pool_name: p}", "airflow.pools[0] (p): pool_slot: required field is missing"),
        (
            "airflow:\n  variables:\n    - {variable_name: v, variable_value: [1, 2]}",
            "airflow.variables[0] (v): variable_value: must be a string",
        ),
        ("airflow:\n  variables:\n    - {variable_name: v}", "airflow.variables[0] (v): variable_value: required"),
    ],
)
def test_a_malformed_file_fails_naming_the_file_and_entry(tmp_path, text, expected):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(text)
    with pytest.raises(AirflowSettingsError) as error:
        load_settings(path)
    assert str(error.value).startswith(str(path)), error.value
    assert expected in str(error.value), error.value


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("airflow:\n  connections:\n    - {conn_id: a}\n  pools:\n    - {pool_name: p, pool_slot: x}\n")
    with pytest.raises(AirflowSettingsError) as error:
        load_settings(path)
    assert "airflow.connections[0] (a)" in str(error.value) and "airflow.pools[0] (p)" in str(error.value)


def test_astro_variants_are_accepted(tmp_path):
    loaded = parse_settings(
        {
            "airflow": {
                "connections": [
                    {"conn_id": "by_uri", "conn_uri": "postgresql://u:p@db:5432/x"},
                    {"conn_id": "json_extra", "conn_type": "http", "conn_extra": '{"a": 1}', "conn_port": "8080"},
                ],
                "pools": None,
                "variables": [{"variable_name": "n", "variable_value": 3}],
            }
        },
        tmp_path / "s.yaml",
    )
    assert loaded.connections[0].import_value() == "postgresql://u:p@db:5432/x"
    assert loaded.connections[1].extra == {"a": 1} and loaded.connections[1].port == 8080
    assert loaded.pools == () and loaded.variables[0].value == "3"


def test_entries_the_environment_defines_are_skipped(settings_file):
    calls: list[list[str]] = []

    def fake_run(args, env):
        calls.append(list(args))
        if args[1:3] == ["connections", "import"]:
            payload = json.loads(Path(args[-1]).read_text())
            out = "".join(f"Imported connection {conn_id}\n" for conn_id in payload)
            return subprocess.CompletedProcess(args, 0, out, "")
        if args[1:3] == ["variables", "import"]:
            count = len(json.loads(Path(args[-1]).read_text()))
            return subprocess.CompletedProcess(args, 0, f"{count} of {count} variables successfully updated.\n", "")
        return subprocess.CompletedProcess(args, 0, "", "")

    env = {
        "AIRFLOW_CONN_NIGHTSHIFT_WAREHOUSE": '{"conn_type": "postgres"}',
        "AIRFLOW_VAR_NIGHTSHIFT_STORE_URI": "s3://x",
    }
    report = apply_settings(settings_file, env=env, airflow="airflow", run=fake_run)
    assert WAREHOUSE_CONN_ID not in [conn.conn_id for conn in report.connections]
    assert {OBJECT_STORE_CONN_ID, MLFLOW_CONN_ID} == {conn.conn_id for conn in report.connections}
    assert report.variables == []
    assert [call[1:3] for call in calls] == [["connections", "import"], ["pools", "set"]]
    text = "\n".join(report.lines())
    assert "AIRFLOW_CONN_NIGHTSHIFT_WAREHOUSE is set in the environment" in text
    assert "AIRFLOW_VAR_NIGHTSHIFT_STORE_URI is set in the environment" in text
    for conn in settings_file.connections:
        assert not conn.password or conn.password not in text, "the report never prints passwords"


# -- loading into a real Airflow ---------------------------------------------------------------------------------


def test_loading_twice_and_changing_a_value_updates_airflow(airflow_env, settings_file, tmp_path):
    # An older version of the file is loaded first: the committed file must replace its values.
    older = yaml.safe_load(SETTINGS_FILE.read_text())
    older["airflow"]["connections"][1]["conn_host"] = "warehouse.internal"
    older["airflow"]["connections"][1]["conn_password"] = "an-old-password"
    older["airflow"]["pools"][0]["pool_slot"] = 2
    older["airflow"]["variables"][0]["variable_value"] = "s3://elsewhere/store"
    older_file = tmp_path / "airflow_settings.yaml"
    older_file.write_text(yaml.safe_dump(older))
    load_cli(older_file, airflow_env)

    # Then the committed file, twice: the same result both times.
    first = load_cli(SETTINGS_FILE, airflow_env)
    second = load_cli(SETTINGS_FILE, airflow_env)
    assert second.splitlines()[1:] == first.splitlines()[1:]
    assert f"connection {WAREHOUSE_CONN_ID} (postgres, host postgres:5432, schema warehouse)" in first
    assert f"pool       {PROMOTION_POOL}: 1 slot" in first
    for conn in settings_file.connections:
        assert not conn.password or conn.password not in first, "the loader never prints passwords"

    (warehouse,) = airflow_json(airflow_env, "connections", "get", WAREHOUSE_CONN_ID)
    expected = settings_file.connection(WAREHOUSE_CONN_ID)
    assert expected is not None
    assert warehouse["conn_type"] == "postgres"
    assert (warehouse["host"], warehouse["schema"], warehouse["login"], str(warehouse["port"])) == (
        expected.host,
        expected.schema,
        expected.login,
        str(expected.port),
    )
    assert warehouse["password"] == expected.password

    (pool,) = airflow_json(airflow_env, "pools", "get", PROMOTION_POOL)
    assert (pool["pool"], str(pool["slots"]), pool["description"]) == (
        PROMOTION_POOL,
        "1",
        settings_file.pools[0].description,
    )

    value = run([AIRFLOW, "variables", "get", "nightshift_store_uri"], airflow_env).strip().splitlines()[-1]
    store_uri = settings_file.variable("nightshift_store_uri")
    assert store_uri is not None and value == store_uri.value

    # Every connection once, with the file's fields.
    out = run([AIRFLOW, "connections", "export", "-", "--file-format", "json"], airflow_env)
    exported = json.loads(out[out.index("{") :])
    assert sorted(exported) == sorted(conn.conn_id for conn in settings_file.connections)
    for conn in settings_file.connections:
        stored = exported[conn.conn_id]
        assert (stored["conn_type"], stored["host"], stored["schema"], stored["port"]) == (
            conn.conn_type,
            conn.host,
            conn.schema,
            conn.port,
        ), conn.conn_id
        assert (stored["login"], stored["password"]) == (conn.login, conn.password), conn.conn_id
        assert (json.loads(stored["extra"]) if stored["extra"] else None) == conn.extra, conn.conn_id


def test_a_broken_airflow_fails_the_load_readably(tmp_path):
    env = clean_env(tmp_path)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "nightshift.cli", "airflow-settings-load", "--file", str(SETTINGS_FILE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert "airflow connections import` failed" in done.stderr and "airflow db migrate" in done.stderr


def test_a_malformed_file_fails_the_cli_before_touching_airflow(tmp_path):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text("airflow:\n  pools:\n    - {pool_name: p}\n")
    done = subprocess.run(
        [sys.executable, "-m", "nightshift.cli", "airflow-settings-load", "--file", str(path)],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert f"error: {path}: invalid Airflow settings" in done.stderr and "pool_slot" in done.stderr


# -- the DAGs use what the file defines ----------------------------------------------------------------------------


def test_the_dags_pools_are_defined_in_the_file(settings_file, tmp_path):
    script = textwrap.dedent(
        """
        import json
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=__import__("os").environ["AIRFLOW__CORE__DAGS_FOLDER"])
        print(json.dumps({
            "errors": {str(key): str(value) for key, value in bag.import_errors.items()},
            "pools": {dag_id: {task.task_id: task.pool for task in dag.tasks} for dag_id, dag in bag.dags.items()},
        }))
        """
    )
    out = run([sys.executable, "-c", script], clean_env(tmp_path))
    found = json.loads(out.strip().splitlines()[-1])
    assert found["errors"] == {}
    lifecycle = {
        dag_id: tasks for dag_id, tasks in found["pools"].items() if dag_id.endswith(("_retrain", "_rollback"))
    }
    assert lifecycle, "no retrain or rollback DAG was parsed"
    used = {pool for tasks in lifecycle.values() for pool in tasks.values() if pool != "default_pool"}
    defined = {pool.name for pool in settings_file.pools}
    assert used, "the promotion and rollback tasks should run in a pool"
    assert used <= defined, f"pools used by the DAGs but missing from airflow_settings.yaml: {sorted(used - defined)}"
    assert PROMOTION_POOL in used


def test_the_connection_ids_nightshift_reads_are_defined_in_the_file(settings_file):
    defined = {conn.conn_id for conn in settings_file.connections}
    expected = {OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID, MLFLOW_CONN_ID}
    assert expected <= defined, f"missing from airflow_settings.yaml: {sorted(expected - defined)}"
