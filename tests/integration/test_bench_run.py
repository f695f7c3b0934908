"""`nightshift bench` end to end at a tiny size (Airflow's e2e part left out): every figure lands in JSON and table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nightshift.config import get_spec
from nightshift_dev import bench
from tests.integration import postgres

pytestmark = pytest.mark.e2e  # a whole bench run: a few minutes on a busy 2-core machine

ROWS, SIZES = 20_000, (5_000, 20_000)
E2E_KEYS = {"nightly_e2e_seconds_20k", "nightly_e2e_vs_stages_ratio"}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    reason = postgres.unavailable()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("bench")
    out = home / "result.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "NIGHTSHIFT", "MLFLOW"))}
    env.update({"NIGHTSHIFT_HOME": str(home), "NIGHTSHIFT_BENCH_POSTGRES_URL": postgres.SERVER_URL})
    command = [
        str(Path(sys.executable).parent / "nightshift"),
        "bench",
        "--rows",
        str(ROWS),
        "--sizes",
        ",".join(map(str, SIZES)),
        "--skip",
        "e2e",
        "--json-out",
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    return {"result": json.loads(out.read_text()), "stdout": done.stdout, "home": home}


def test_every_figure_is_in_the_json_with_a_sane_value(bench_run):
    result = bench_run["result"]
    keys = bench.figure_keys(ROWS, SIZES)
    assert set(keys) <= set(result)
    assert all(result[key] is None for key in E2E_KEYS) and result["skipped"] == ["e2e"]
    assert result["errors"] == {}
    measured = {key: result[key] for key in keys if key not in E2E_KEYS}
    assert all(isinstance(value, int | float) and value > 0 for value in measured.values()), measured
    assert 0 <= result["drift_verdict_agreement"] <= 1
    for key in ("scoring_peak_rss_gib_5k", "scoring_peak_rss_gib_20k", "validation_peak_rss_gib_20k"):
        assert 0 < result[key] < 24
    assert result["retrain_seconds_20k"] > 0 and result["dag_parse_seconds_max"] < 30
    assert result["dag_parse_seconds_max_100_specs"] < 120


def test_targets_are_judged_for_every_measured_figure(bench_run):
    targets = bench_run["result"]["targets"]
    assert set(targets) == set(bench.targets(ROWS, SIZES))
    assert all(targets[key]["pass"] is None for key in E2E_KEYS)
    assert all(isinstance(item["pass"], bool) for key, item in targets.items() if key not in E2E_KEYS)


def test_growth_covers_each_size_and_stage_relative_to_the_smallest(bench_run):
    growth = bench_run["result"]["growth"]
    assert [entry["rows"] for entry in growth] == list(SIZES)
    for stage in ("validation", "scoring", "drift"):
        assert growth[0][stage]["time_per_row_vs_first"] == 1.0
        assert growth[0][stage]["memory_vs_first"] == 1.0
        assert all(entry[stage]["seconds"] > 0 and entry[stage]["peak_rss_gib"] > 0 for entry in growth)


def test_drift_agreement_compares_stable_and_shifted_nights_feature_by_feature(bench_run):
    drift = bench_run["result"]["details"]["drift"]
    nights = drift["nights"]
    assert sorted(item["shifted"] for item in nights.values()) == [False, False, True, True]
    features = set(get_spec(bench.MODEL, bench.PROJECT_ROOT / "include" / "models").feature_names)
    for item in nights.values():
        assert set(item["ours"]["verdicts"]) == set(item["full_data"]["verdicts"]) == features
        assert item["full_data"]["rows"] > 0.9 * ROWS and item["full_data"]["reference_rows"] > 0.9 * ROWS
    shifted = [item for item in nights.values() if item["shifted"]]
    assert all(any(item["full_data"]["verdicts"].values()) for item in shifted)


def test_baselines_were_measured_in_the_same_run(bench_run):
    details = bench_run["result"]["details"]
    assert details["scoring"]["champion"]["limit"]["rows"] == details["scoring"]["champion"]["stage"]["rows"]
    assert details["scoring"]["linear"]["stage"]["model_version"] == "linear"
    for kind in ("multiclass", "regression"):
        assert details["scoring"][kind]["stage"]["model_version"] == kind
        assert details["scoring"][kind]["limit"]["rows"] == details["scoring"][kind]["stage"]["rows"]
    champion = details["scoring"]["champion"]
    assert champion["model"]["version"] == champion["stage"]["model_version"]
    assert f"champion v{champion['model']['version']}" in champion["model"]["note"]
    assert details["warehouse"]["baseline_rows_per_s"] > 0
    assert details["retrain"]["action"] in ("promote", "refuse")
    assert details["retrain"]["train_rows"] + details["retrain"]["holdout_rows"] > ROWS * 0.9


def test_validation_is_measured_against_its_limit_and_pandera_on_the_same_rows(bench_run):
    validation = bench_run["result"]["details"]["validation"]
    bad = validation["bad_rows"]
    assert bad["stage_quarantined"] == validation["quarantined"] > 0
    assert bad["limit"] == bad["pandera"] == bad["stage_quarantined"]
    limit = validation["limit"]
    assert limit["rows"] == validation["rows"] and limit["accepted"] == validation["accepted"]
    assert limit["read_seconds"] + limit["check_seconds"] + limit["write_seconds"] <= limit["seconds"] + 0.01
    assert validation["pandera"]["rows"] == validation["rows"]


def test_dag_files_are_parsed_with_a_hundred_specs(bench_run):
    parse = bench_run["result"]["details"]["dag_parse_100_specs"]
    assert parse["specs"] == 100 and len(list(Path(parse["models_dir"]).glob("*.yaml"))) == 100
    assert set(parse["median_seconds"]) == {path.name for path in (bench.PROJECT_ROOT / "dags").glob("*.py")}


def test_table_prints_each_figure_with_target_and_verdict(bench_run):
    stdout = bench_run["stdout"]
    lines = {line.split()[0]: line for line in stdout.splitlines() if line.strip()}
    for key in bench.figure_keys(ROWS, SIZES):
        assert key in lines, key
    assert "SKIP" in lines["nightly_e2e_seconds_20k"] and "SKIP" in lines["nightly_e2e_vs_stages_ratio"]
    assert "<= 3" in lines["validation_vs_limit_ratio"] and "< 1" in lines["validation_vs_pandera_ratio"]
    assert "champion v" in lines["scoring_vs_limit_ratio"]
    assert (
        any(word in lines["drift_seconds_20k"] for word in ("PASS", "MISS")) and "<= 10" in lines["drift_seconds_20k"]
    )
    assert "growth" in stdout and "[bench]" in stdout


def test_latest_json_is_written_beside_the_chosen_path(bench_run):
    latest = json.loads((bench_run["home"] / "bench" / "latest.json").read_text())
    assert latest == bench_run["result"]
    assert (bench_run["home"] / "bench" / "stores" / "20k" / "bench-data.json").exists()
