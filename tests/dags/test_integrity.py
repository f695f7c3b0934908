"""DAG integrity: the files import cleanly, parse fast, stay thin, and carry docs, tags and retries."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((PROJECT / "dags").glob("*.py"))
HEAVY = {
    "pandas",
    "numpy",
    "sklearn",
    "great_expectations",
    "evidently",
    "mlflow",
    "boto3",
    "pyarrow",
    "scipy",
    "sqlalchemy",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"credit_risk_nightly", "credit_risk_retrain", "credit_risk_rollback"} <= set(dagbag.dag_ids)


def test_every_dag_has_docs_tags_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert "nightshift" in dag.tags, dag_id
        for task in dag.tasks:
            assert task.owner != "airflow", (dag_id, task.task_id)
            if not dag_id.endswith("_rollback"):
                assert task.retries >= 1, (dag_id, task.task_id)


def test_every_task_takes_its_settings_from_the_airflow_connections(dagbag):
    from nightshift.runtime.connections import export_from_context

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            hook = getattr(task, "partial_kwargs", {}).get("pre_execute") or getattr(task, "_pre_execute_hook", None)
            assert hook is export_from_context, (dag_id, task.task_id)


def test_nightly_is_one_run_at_a_time_and_emits_the_retrain_asset(dagbag):
    dag = dagbag.dags["credit_risk_nightly"]
    assert dag.max_active_runs == 1
    outlets = dag.get_task("request_retrain").outlets
    assert [asset.name for asset in outlets] == ["credit_risk_retrain_request"]
    retrain = dagbag.dags["credit_risk_retrain"]
    assert retrain.max_active_runs == 1
    assert dag.get_task("validate_part").upstream_task_ids == {"plan_parts"}
    assert dag.get_task("commit_validation").upstream_task_ids == {"validate_part"}
    assert dag.get_task("scoring_plan").upstream_task_ids == {"commit_validation"}
    assert dag.get_task("score_part").upstream_task_ids == {"scoring_plan"}
    assert dag.get_task("drift").upstream_task_ids == {"commit_scores"}


def test_nightly_fans_validation_and_scoring_out_over_the_drop_files(dagbag):
    """The per-file tasks are mapped, so one night's files spread over the executor's workers."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = dagbag.dags["credit_risk_nightly"]
    mapped = {task.task_id for task in dag.tasks if isinstance(task, MappedOperator)}
    assert mapped == {"validate_part", "score_part"}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_module_level_imports_are_light(path):
    """Module level: the standard library, airflow.sdk and nightshift's light modules (config, defaults, runs) only."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            root = module.split(".")[0]
            allowed = (
                root in sys.stdlib_module_names
                or module == "airflow.sdk"
                or module.startswith("airflow.sdk.")
                or module in ("nightshift.config", "nightshift.dag_defaults", "nightshift.runs", "nightshift.schedule")
            )
            assert allowed, f"{path.name}:{node.lineno} imports {module} at module level"
            assert root not in HEAVY


PARSE_PROBE = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
import airflow.sdk  # already loaded in Airflow's DAG processor
before = set(sys.modules)
start = time.process_time()
import importlib.util
spec = importlib.util.spec_from_file_location("probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.process_time() - start  # CPU seconds: another process's load on the cores does not count
heavy = sorted(name for name in set(sys.modules) - before if name.split(".")[0] in {heavy!r})
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_each_dag_file_parses_in_under_a_second_in_a_fresh_interpreter(path):
    probe = PARSE_PROBE.format(heavy=sorted(HEAVY - {"boto3", "sqlalchemy"}))
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path), str(PROJECT / "dags")], capture_output=True, text=True, check=True
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["heavy"] == [], f"{path.name} pulls in {measured['heavy'][:5]}"
    assert measured["seconds"] < 1.0, f"{path.name} took {measured['seconds']:.2f} CPU seconds to parse"


def test_ruff_bans_heavy_module_level_imports_in_dags():
    config = (PROJECT / "pyproject.toml").read_text()
    assert 'banned-module-level-imports = ["pandas"' in config
    # The probe goes through stdin under a DAG file's name: ruff applies dags/'s settings, nothing is written.
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ruff"),
            "check",
            "--select",
            "TID253",
            "--no-cache",
            "--stdin-filename",
            "dags/_ruff_probe_heavy.py",
            "-",
        ],
        input="import pandas\n",
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "TID253" in done.stdout


def dagbag_with_models(models: Path, parsing_dag_id: str | None = None) -> dict:
    """Parse the DAG folder in a fresh interpreter with NIGHTSHIFT_MODELS_DIR pointing at `models`."""
    probe = (
        "from airflow.dag_processing.dagbag import DagBag; import json, sys;"
        "bag = DagBag(dag_folder=sys.argv[1]);"
        "print(json.dumps({'ids': sorted(bag.dag_ids), 'errors': list(bag.import_errors.values())}))"
    )
    env = {**os.environ, "NIGHTSHIFT_MODELS_DIR": str(models)}
    if parsing_dag_id:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = parsing_dag_id
    done = subprocess.run(
        [sys.executable, "-c", probe, str(PROJECT / "dags")], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def demo_spec_into(models: Path, **changes) -> dict:
    models.mkdir(exist_ok=True)
    raw = yaml.safe_load((PROJECT / "include" / "models" / "credit_risk.yaml").read_text())
    raw.update(changes)
    (models / f"{raw['name']}.yaml").write_text(yaml.safe_dump(raw))
    return raw


def test_a_second_spec_adds_its_dags_without_code_changes(tmp_path):
    demo_spec_into(tmp_path / "models")
    demo_spec_into(tmp_path / "models", name="churn_risk", description="second model")
    found = dagbag_with_models(tmp_path / "models")
    assert found["errors"] == []
    for model in ("credit_risk", "churn_risk"):
        for kind in ("nightly", "retrain", "rollback"):
            assert f"{model}_{kind}" in found["ids"]


def test_a_broken_spec_fails_the_dag_import_naming_file_and_field(tmp_path):
    raw = demo_spec_into(tmp_path / "models")
    demo_spec_into(tmp_path / "models", validation={**raw["validation"], "max_bad_row_share": 3})
    errors = dagbag_with_models(tmp_path / "models")["errors"]
    assert errors and all("credit_risk.yaml" in error and "validation.max_bad_row_share" in error for error in errors)


def test_a_task_process_builds_only_its_own_dag(tmp_path):
    """Airflow's parsing context (set when a task runs) names the DAG: the files build that model's DAG alone."""
    demo_spec_into(tmp_path / "models")
    demo_spec_into(tmp_path / "models", name="churn_risk", description="second model")
    found = dagbag_with_models(tmp_path / "models", parsing_dag_id="churn_risk_retrain")
    assert found["errors"] == []
    assert found["ids"] == ["churn_risk_nightly", "churn_risk_retrain", "churn_risk_rollback"]
    unknown = dagbag_with_models(tmp_path / "models", parsing_dag_id="not_a_model_retrain")
    assert len(unknown["ids"]) == 6
