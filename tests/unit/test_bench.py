"""The benchmark's own logic: figure keys and targets, argument checks, the data cache, the growth maths, the table."""

from __future__ import annotations

import argparse
import json

import pytest

from nightshift_dev import bench

ISSUE_KEYS = {
    "scoring_vs_limit_ratio",
    "scoring_vs_limit_ratio_linear",
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
    assert goals["scoring_vs_limit_ratio"] == (">=", 0.8)
    assert goals["scoring_peak_rss_gib_10m"] == ("<=", 1.5)
    assert goals["warehouse_rows_per_s"] == (">=", 200_000.0)


def test_keys_follow_the_row_count():
    keys = bench.figure_keys(20_000, (5_000, 20_000))
    assert "drift_seconds_20k" in keys and "retrain_seconds_20k" in keys
    assert "scoring_peak_rss_gib_5k" in keys and "drift_seconds_1m" not in keys


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_arguments_parse_sizes_and_skips():
    args = parse("--rows", "1_000_000", "--sizes", "10000000,100000,100000", "--skip", "e2e,growth")
    assert args.rows == 1_000_000
    assert args.sizes == (100_000, 10_000_000)
    assert args.skip == frozenset({"e2e", "growth"})
    assert parse().sizes == bench.DEFAULT_SIZES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--skip", "e2e,scoring"], "unknown part(s) ['scoring']"),
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
    workspace.figures.update({"scoring_vs_limit_ratio": 0.91, "drift_seconds_20k": 12.5, "validation_seconds_20k": 3.0})
    workspace.options = bench.Options(rows=20_000, sizes=(5_000, 20_000), skip=frozenset({"e2e"}))
    result = workspace.finish(bench.machine())
    assert result["targets"]["scoring_vs_limit_ratio"] == {"target": ">= 0.8", "pass": True}
    assert result["targets"]["drift_seconds_20k"]["pass"] is False
    assert result["targets"]["retrain_seconds_20k"]["pass"] is None
    lines = {line.split()[0]: line for line in bench.format_table(result).splitlines() if line.strip()}
    assert "PASS" in lines["scoring_vs_limit_ratio"] and ">= 0.8" in lines["scoring_vs_limit_ratio"]
    assert "MISS" in lines["drift_seconds_20k"]
    assert "SKIP" in lines["nightly_e2e_seconds_20k"]
    assert "ERROR" in lines["retrain_seconds_20k"]


def test_unknown_stage_is_refused(capsys):
    assert bench.main(["stage", "nope", "{}"]) == 2
    assert "unknown bench stage 'nope'" in capsys.readouterr().err
