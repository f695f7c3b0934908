"""The benchmark's own logic: figure keys and targets, argument checks, the data cache, the growth maths, the table."""

from __future__ import annotations

import argparse
import json

import pytest

from nightshift_dev import bench

ISSUE_KEYS = {
    "scoring_vs_limit_ratio",
    "scoring_vs_limit_ratio_linear",
    "scoring_vs_limit_ratio_multiclass",
    "scoring_vs_limit_ratio_regression",
    "validation_vs_limit_ratio",
    "validation_vs_pandera_ratio",
    "nightly_e2e_vs_stages_ratio",
    "dag_parse_seconds_max_100_specs",
    "scoring_peak_rss_gib_10m",
    "scoring_peak_rss_gib_1m",
    "drift_seconds_1m",
    "drift_speedup_vs_full",
    "drift_verdict_agreement",
    "validation_seconds_1m",
    "warehouse_rows_per_s",
    "warehouse_speedup_vs_insert",
    "dag_parse_seconds_max",
    "nightly_e2e_seconds_1m",
    "retrain_seconds_1m",
}


def test_size_labels():
    assert [bench.size_label(n) for n in (1_000_000, 10_000_000, 100_000, 20_000, 2_500)] == [
        "1m",
        "10m",
        "100k",
        "20k",
        "2500",
    ]


def test_default_run_carries_the_issue_keys_and_every_target_is_a_figure():
    keys = bench.figure_keys(bench.DEFAULT_ROWS, bench.DEFAULT_SIZES)
    assert set(keys) >= ISSUE_KEYS
    assert "scoring_peak_rss_gib_100k" in keys and "validation_peak_rss_gib_1m" in keys
    goals = bench.targets(bench.DEFAULT_ROWS, bench.DEFAULT_SIZES)
    assert set(goals) <= set(keys)
    assert goals["drift_seconds_1m"] == ("<=", 10.0)
    assert goals["scoring_vs_limit_ratio"] == (">=", 0.9)
    assert goals["scoring_vs_limit_ratio_linear"] == (">=", 0.6)
    assert goals["drift_speedup_vs_full"] == (">=", 10.0)
    assert goals["validation_vs_limit_ratio"] == ("<=", 3.0)
    assert goals["validation_vs_pandera_ratio"] == ("<", 1.0)
    assert goals["nightly_e2e_vs_stages_ratio"] == ("<=", 1.5)
    assert goals["dag_parse_seconds_max_100_specs"] == ("<=", 1.0)
    assert goals["dag_parse_seconds_max"] == ("<=", 0.5)
    assert goals["scoring_peak_rss_gib_10m"] == ("<=", 1.5)
    assert goals["warehouse_rows_per_s"] == (">=", 200_000.0)


def test_a_strict_target_fails_on_its_bound():
    assert bench.meets(0.99, "<", 1.0) and not bench.meets(1.0, "<", 1.0)
    assert bench.meets(1.0, "<=", 1.0) and bench.meets(1.0, ">=", 1.0) and not bench.meets(0.99, ">=", 1.0)


def test_keys_follow_the_row_count():
    keys = bench.figure_keys(20_000, (5_000, 20_000))
    assert "drift_seconds_20k" in keys and "retrain_seconds_20k" in keys
    assert "scoring_peak_rss_gib_5k" in keys and "drift_seconds_1m" not in keys


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_arguments_parse_sizes_and_skips():
    args = parse("--rows", "1_000_000", "--sizes", "10000000,100000,100000", "--skip", "e2e,growth,pandera,kinds")
    assert args.rows == 1_000_000
    assert args.sizes == (100_000, 10_000_000)
    assert args.skip == frozenset({"e2e", "growth", "pandera", "kinds"})
    assert parse().sizes == bench.DEFAULT_SIZES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--skip", "e2e,scoring"], "unknown part(s) ['scoring']"),
        (["--skip", "limit"], "unknown part(s) ['limit']"),
        (["--sizes", "500,100000"], "at least 1000 rows"),
        (["--sizes", "ten"], "expected row counts"),
        (["--rows", "100"], "at least 4000 rows"),
    ],
)
def test_bad_arguments_fail_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse(*argv)
    assert message in capsys.readouterr().err


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path))
    return bench.Bench(bench.Options(rows=20_000, sizes=(5_000, 20_000)), log=lambda _: None)


def fake_generate(runner: bench.Bench, calls: list):
    """Stand in for the generation child: mark each asked night as landed."""

    def child(stage, arguments, store, what):
        calls.append(arguments)
        generated = {}
        for job in arguments["jobs"]:
            folder = bench.Path(job["store_uri"].removeprefix("file://"))
            for day in job["nights"]:
                marker = folder / "landing" / bench.MODEL / f"dt={day}" / "_SUCCESS"
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("{}")
            generated[job["store_uri"]] = dict.fromkeys(job["nights"], 0.1)
        return {"generated": generated}

    runner.child = child  # type: ignore[method-assign]


def test_generated_nights_are_reused_and_regenerated_when_the_parameters_change(workspace):
    calls: list = []
    fake_generate(workspace, calls)
    sets = workspace.datasets()
    assert sorted(sets) == ["bootstrap", "figures", "growth-5000", "training"]
    assert sets["figures"].nights == tuple(bench.night(i) for i in range(1, 6))
    assert sets["training"].rows == 5_000

    workspace.ensure_data(list(sets.values()))
    assert sum(len(job["nights"]) for job in calls[0]["jobs"]) == 4 + 5 + 4 + 1

    calls.clear()
    workspace.ensure_data(list(sets.values()))
    assert calls == []
    assert workspace.generation["20k"]["cached"] == list(sets["figures"].nights)

    changed = bench.DataSet("20k", 20_000, sets["figures"].nights, None, 1)
    workspace.ensure_data([changed])
    assert [job["nights"] for job in calls[0]["jobs"]] == [list(changed.nights)]
    marker = json.loads((workspace.store(changed) / "bench-data.json").read_text())
    assert marker["params"]["shift"] is None


def test_a_missing_night_is_generated_alone(workspace):
    calls: list = []
    fake_generate(workspace, calls)
    figures = workspace.datasets()["figures"]
    workspace.ensure_data([figures])
    (workspace.store(figures) / "landing" / bench.MODEL / f"dt={bench.night(3)}" / "_SUCCESS").unlink()
    calls.clear()
    workspace.ensure_data([figures])
    assert [job["nights"] for job in calls[0]["jobs"]] == [[bench.night(3)]]


def test_growth_is_relative_to_the_smallest_size(workspace):
    workspace.growth_rows = {
        20_000: {stage: {"seconds": 8.0, "peak_rss_gib": 0.6} for stage in ("validation", "scoring", "drift")},
        5_000: {stage: {"seconds": 1.0, "peak_rss_gib": 0.5} for stage in ("validation", "scoring", "drift")},
    }
    table = workspace.growth_table()
    assert [entry["rows"] for entry in table] == [5_000, 20_000]
    assert table[0]["scoring"]["time_per_row_vs_first"] == 1.0
    assert table[1]["scoring"]["time_per_row_vs_first"] == 2.0
    assert table[1]["drift"]["memory_vs_first"] == 1.2


def test_agreement_nights_are_half_stable_half_shifted(workspace):
    assert workspace.agreement_nights() == [bench.night(1), bench.night(3), bench.night(4), bench.night(5)]
    assert all(day < bench.SHIFT_NIGHT.isoformat() for day in workspace.agreement_nights()[:2])


def test_table_shows_targets_and_pass_miss_skip_error(workspace):
    workspace.figures.update(
        {
            "scoring_vs_limit_ratio": 0.91,
            "drift_seconds_20k": 12.5,
            "validation_seconds_20k": 3.0,
            "validation_vs_pandera_ratio": 1.0,
        }
    )
    workspace.options = bench.Options(rows=20_000, sizes=(5_000, 20_000), skip=frozenset({"e2e", "kinds"}))
    result = workspace.finish(bench.machine())
    assert result["targets"]["scoring_vs_limit_ratio"] == {"target": ">= 0.9", "pass": True}
    assert result["targets"]["validation_vs_pandera_ratio"] == {"target": "< 1", "pass": False}
    assert result["targets"]["drift_seconds_20k"]["pass"] is False
    assert result["targets"]["retrain_seconds_20k"]["pass"] is None
    lines = {line.split()[0]: line for line in bench.format_table(result).splitlines() if line.strip()}
    assert "PASS" in lines["scoring_vs_limit_ratio"] and ">= 0.9" in lines["scoring_vs_limit_ratio"]
    assert "MISS" in lines["drift_seconds_20k"] and "MISS" in lines["validation_vs_pandera_ratio"]
    assert "SKIP" in lines["nightly_e2e_seconds_20k"] and "SKIP" in lines["nightly_e2e_vs_stages_ratio"]
    assert "SKIP" in lines["scoring_vs_limit_ratio_multiclass"] and "SKIP" in lines["scoring_vs_limit_ratio_regression"]
    assert "ERROR" in lines["retrain_seconds_20k"] and "ERROR" in lines["validation_vs_limit_ratio"]


def test_unknown_stage_is_refused(capsys):
    assert bench.main(["stage", "nope", "{}"]) == 2
    assert "unknown bench stage 'nope'" in capsys.readouterr().err


def test_hundred_specs_are_renamed_copies_named_as_their_files(workspace):
    from nightshift.config import load_specs

    folder = workspace.write_specs(100)
    specs = load_specs(folder)
    assert len(specs) == 100 and len({spec.name for spec in specs}) == 100
    assert all((folder / f"{spec.name}.yaml").exists() for spec in specs)
    sources = {path.stem for path in (bench.PROJECT_ROOT / "include" / "models").glob("*.yaml")}
    assert {spec.name.rsplit("_", 1)[0] for spec in specs} == sources
    assert len(list(workspace.write_specs(10).glob("*.yaml"))) == 10


def test_the_champion_note_says_which_model_scored(workspace):
    from nightshift_dev.bench_report import champion_origin

    scored = {"model_version": "3", "model_detail": {"estimator": "HistGradientBoostingClassifier", "n_iter": 150}}
    workspace.details["bootstrap"] = {"candidate_version": "1", "action": "promote"}
    workspace.details["retrain"] = {"candidate_version": "2", "action": "promote", "train_rows": 9, "holdout_rows": 1}
    assert (
        "bootstrap's small model: the measured retrain promoted v2"
        in champion_origin(scored, workspace.details)["note"]
    )
    workspace.details["retrain"]["candidate_version"] = "3"
    note = champion_origin(scored, workspace.details)["note"]
    assert note.startswith("champion v3 (HistGradientBoostingClassifier, 150 iterations)")
    assert "promoted by the measured retrain on 10 rows" in note
    workspace.details["retrain"].update(action="refuse", candidate_version="4")
    assert "the measured retrain refused v4" in champion_origin(scored, workspace.details)["note"]
    del workspace.details["retrain"]
    assert "the retrain was skipped" in champion_origin(scored, workspace.details)["note"]


def test_the_nightly_run_is_judged_against_the_sum_of_its_stages(workspace):
    assert workspace.stage_sum()["seconds"] is None
    workspace.figures.update({"validation_seconds_20k": 2.0, "drift_seconds_20k": 1.0, "warehouse_rows_per_s": 10_000})
    workspace.details["scoring"] = {"champion": {"stage": {"seconds": 1.5, "rows": 20_000}}}
    stages = workspace.stage_sum()
    assert stages["parts"] == {"validation": 2.0, "scoring": 1.5, "drift": 1.0, "warehouse_load": 2.0}
    assert stages["seconds"] == 6.5 and stages["missing"] == []
    workspace.figures["warehouse_rows_per_s"] = None
    assert workspace.stage_sum()["seconds"] == 4.5 and workspace.stage_sum()["missing"] == ["warehouse_load"]


def test_the_e2e_breakdown_separates_task_time_from_the_gaps_between_tasks():
    from nightshift_dev.bench_airflow import e2e_breakdown

    def item(task, start, end, queued=None, map_index=-1):
        stamp = "2026-01-05T02:00:{:06.3f}Z".format
        return {
            "task_id": task,
            "map_index": map_index,
            "state": "success",
            "duration": end - start,
            "start_date": stamp(start),
            "end_date": stamp(end),
            "queued_when": stamp(queued if queued is not None else start - 1),
        }

    items = [
        item("wait_for_drop", 2, 4),
        item("ingest_labels", 5, 7),
        item("plan_parts", 6, 8),
        item("validate_part", 10, 20, map_index=0),
        item("commit_validation", 22, 23),
        item("drift", 30, 33, queued=25),
    ]
    run = {"start_date": "2026-01-05T02:00:00Z", "end_date": "2026-01-05T02:00:40Z"}
    tasks, breakdown = e2e_breakdown(items, run, 43.0)
    assert list(tasks)[:2] == ["wait_for_drop", "ingest_labels"] and "validate_part[0]" in tasks
    assert tasks["drift"] == {
        "state": "success",
        "seconds": 3,
        "try_number": None,
        "queued_at": 25.0,
        "started_at": 30.0,
        "ended_at": 33.0,
        "queued_to_start_seconds": 5.0,
    }
    assert breakdown["run_seconds"] == 40.0 and breakdown["trigger_to_run_end_outside_run_seconds"] == 3.0
    assert breakdown["task_seconds_sum"] == 2 + 2 + 2 + 10 + 1 + 3
    assert breakdown["busy_seconds"] == 2 + 3 + 10 + 1 + 3  # ingest_labels and plan_parts overlap
    assert breakdown["idle_seconds"] == 40 - 19
    assert breakdown["before_first_task_seconds"] == 2 and breakdown["after_last_task_seconds"] == 7
    assert breakdown["stages"]["validation"] == {"tasks": 3, "task_seconds": 13, "span_seconds": 17.0}
    assert breakdown["stages"]["scoring"] == {"tasks": 0, "task_seconds": 0, "span_seconds": None}
    assert breakdown["stages"]["not_measured_alone"] == {"tasks": ["ingest_labels", "wait_for_drop"], "task_seconds": 4}


DROP_HEADER = (
    "application_id,application_ts,age,annual_income,loan_amount,loan_term_months,credit_score,debt_to_income,"
    "employment_years,open_accounts,home_ownership,purpose"
)
GOOD_ROW = "{id},2026-01-05T00:00:06Z,{age},55615.5,16476.3,24,{score},0.09,{years},5,{home},car"


def drop_file(tmp_path):
    rows = [GOOD_ROW.format(id=f"a{i}", age=40, score=700, years=3.5, home="OWN") for i in range(20)]
    rows += [
        GOOD_ROW.format(id="b1", age="unknown", score=700, years=1, home="OWN"),  # types
        GOOD_ROW.format(id="b2", age=40, score=9999, years=1, home="OWN"),  # range
        GOOD_ROW.format(id="b3", age=40, score=700, years=1, home="CASTLE"),  # value set
        GOOD_ROW.format(id="b4", age="", score=700, years=1, home="OWN"),  # null
        GOOD_ROW.format(id="a3", age=40, score=700, years=1, home="OWN"),  # repeated id
        GOOD_ROW.format(id="b6", age="unknown", score=9999, years=1, home="CASTLE"),  # three checks, one row
        GOOD_ROW.format(id="b7", age=40, score=700, years="", home="RENT"),  # nullable: accepted
    ]
    path = tmp_path / "part-00000.csv"
    path.write_text("\n".join([DROP_HEADER, *rows]) + "\n")
    return path


def test_the_validation_limit_and_pandera_find_the_same_bad_rows(tmp_path):
    import pyarrow.parquet as pq

    from nightshift.config import get_spec
    from nightshift_dev import bench_limits

    spec = get_spec(bench.MODEL, bench.PROJECT_ROOT / "include" / "models")
    path = drop_file(tmp_path)
    limit = bench_limits.validation_limit([path], spec, tmp_path / "accepted.parquet")
    assert (limit["rows"], limit["bad_rows"], limit["accepted"]) == (27, 6, 21)
    assert limit["failed_rows_per_check"] == {
        "types:age": 2,
        "nulls:age": 1,
        "ranges:credit_score": 2,
        "categories:home_ownership": 2,
        "unique_ids:application_id": 1,
    }
    assert limit["columns_read_as_text"] == ["age"] and limit["passed"] is False  # 6 of 27 is over 5%
    accepted = pq.read_table(tmp_path / "accepted.parquet")
    assert accepted.num_rows == 21 and accepted.schema.field("age").type == "int64"
    assert sorted(accepted["application_id"].to_pylist()) == sorted([f"a{i}" for i in range(20)] + ["b7"])

    peer = bench_limits.pandera_peer([path], spec)
    assert (peer["rows"], peer["bad_rows"]) == (27, 6)
    assert any("field_uniqueness" in check for check in peer["failure_cases_per_check"])

    bench_limits.warm_up(path, spec, tmp_path)
    assert bench_limits.head_file(path, tmp_path, rows=3).read_text().count("\n") == 4


def test_other_kinds_are_the_demo_spec_with_a_derived_target():
    import pandas as pd

    from nightshift_dev import bench_stages

    multiclass = bench_stages.product_kind_spec("multiclass")
    regression = bench_stages.product_kind_spec("regression")
    assert (multiclass.task, multiclass.classes) == ("multiclass", ["0", "1", "2"])
    assert regression.estimator == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert multiclass.features == bench_stages.product_kind_spec("champion").features
    frame = pd.DataFrame({"defaulted": [1, 0, 0], "credit_score": [700, 600, 700], "loan_amount": [5e3, 6e3, 7e3]})
    assert list(bench_stages.derived_target(frame, "multiclass")) == ["2", "1", "0"]
    assert list(bench_stages.derived_target(frame, "regression")) == [5e3, 0.0, 0.0]
