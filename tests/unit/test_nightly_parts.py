"""Validation fanned out over a night's files: the night is judged whole, whatever the split."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from nightshift.config import settings
from nightshift.runs import RunInfo
from nightshift.stages.drift import tasks as drift_tasks
from nightshift.stages.night import Night
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stores.objects import flat_partition_writer, open_store, partition_files, read_manifest
from nightshift_dev.simulate import SimulationPlan, simulate
from tests.manifests import published_manifest

MODEL = "credit_risk"
DAY = dt.date(2026, 10, 1)
RUN = RunInfo("manual__test", "manual")


def curated(store) -> pd.DataFrame:
    keys = partition_files(store, f"curated/{MODEL}/dt={DAY}", ".parquet")
    return pd.concat([pd.read_parquet(store.local_path(key)) for key in keys], ignore_index=True)


def rejected(store) -> pd.DataFrame:
    return pd.read_csv(store.local_path(f"quarantine/{MODEL}/dt={DAY}/rejected.csv"), dtype=str)


def result(store) -> dict:
    return json.loads(store.read_bytes(f"validation/{MODEL}/dt={DAY}/result.json"))


def check(outcome: dict, name: str) -> dict:
    return next(entry for entry in outcome["checks"] if entry["check"] == name)


def simulated(demo_spec, files: int, rows: int = 3000, bad: float = 0.02):
    store = open_store(settings().store_uri)
    plan = SimulationPlan(start=DAY, days=1, rows_per_day=rows, bad_row_share=bad, chunk_rows=700, files_per_day=files)
    simulate(store, demo_spec, plan)
    return store


def rewrite_drop(store, demo_spec, files: dict[str, pd.DataFrame]) -> None:
    with flat_partition_writer(store, f"landing/{MODEL}/dt={DAY}", {}) as folder:
        for name, frame in files.items():
            frame.to_csv(folder / name, index=False)


def drop_frames(store) -> dict[str, pd.DataFrame]:
    keys = sorted(key for key in store.list(f"landing/{MODEL}/dt={DAY}") if key.endswith(".csv"))
    return {key.rsplit("/", 1)[1]: pd.read_csv(store.local_path(key), dtype=str) for key in keys}


def test_three_files_in_small_chunks_give_the_same_night_as_one_file(home, demo_spec):
    store = simulated(demo_spec, files=1)
    whole = drop_frames(store)["part-00000.csv"]
    single = validate_tasks.validate(MODEL, DAY.isoformat(), RUN)
    single_curated, single_rejected, single_result = curated(store), rejected(store), result(store)

    rewrite_drop(store, demo_spec, {"a.csv": whole[:1000], "b.csv": whole[1000:2200], "c.csv": whole[2200:]})
    parts = validate_tasks.plan_parts(MODEL, DAY.isoformat(), RUN)
    assert [part["key"].rsplit("/", 1)[1] for part in parts] == ["a.csv", "b.csv", "c.csv"]
    staged = [validate_tasks.validate_part(MODEL, DAY.isoformat(), part, RUN, chunk_rows=300) for part in parts]
    split = validate_tasks.commit_validation(MODEL, DAY.isoformat(), staged, RUN)

    assert split["parts"] == 3 and single["parts"] == 1
    assert (split["rows"], split["accepted"], split["quarantined"]) == (
        single["rows"],
        single["accepted"],
        single["quarantined"],
    )
    assert single["quarantined"] > 0
    columns = [column for column in single_curated.columns if column != "_row_number"]
    assert curated(store)[columns].equals(single_curated[columns])
    assert set(rejected(store)["application_id"]) == set(single_rejected["application_id"])
    assert set(rejected(store)["_source_file"].str.rsplit("/", n=1).str[1]) <= {"a.csv", "b.csv", "c.csv"}
    split_result = result(store)
    for name in ("types:age", "ranges:annual_income", "categories:home_ownership"):
        assert check(split_result, name)["unexpected_count"] == check(single_result, name)["unexpected_count"]
    assert check(split_result, "row_count")["observed_value"] == 3000
    assert not store.list(f"staging/{MODEL}")


def test_row_numbers_point_at_the_line_in_the_source_file(home, demo_spec):
    store = simulated(demo_spec, files=3, bad=0.05)
    frames = drop_frames(store)
    validate_tasks.validate(MODEL, DAY.isoformat(), RUN, chunk_rows=250)
    bad = rejected(store)
    assert len(bad) > 10
    for _, row in bad.iterrows():
        source = frames[row["_source_file"].rsplit("/", 1)[1]]
        assert source.iloc[int(row["_row_number"]) - 1]["application_id"] == row["application_id"]
    kept = curated(store)
    assert len(kept) + len(bad) == 3000
    assert not set(kept["application_id"]) & set(bad["application_id"])


def test_an_id_repeated_in_a_later_file_is_quarantined_naming_where_it_first_appeared(home, demo_spec):
    store = simulated(demo_spec, files=2, bad=0.0)
    frames = drop_frames(store)
    first, second = frames["part-00000.csv"], frames["part-00001.csv"].copy()
    repeated = first.iloc[41]["application_id"]
    second.loc[9, "application_id"] = repeated
    rewrite_drop(store, demo_spec, {"part-00000.csv": first, "part-00001.csv": second})

    outcome = validate_tasks.validate(MODEL, DAY.isoformat(), RUN, chunk_rows=400)

    assert outcome["quarantined"] == 1 and outcome["accepted"] == 2999
    [row] = rejected(store).to_dict("records")
    assert row["application_id"] == repeated and row["_row_number"] == "10"
    assert row["_source_file"].endswith("part-00001.csv")
    assert row["_reasons"] == f"application_id: {repeated!r} repeats the id of part-00000.csv row 42"
    kept = curated(store)
    assert (kept["application_id"] == repeated).sum() == 1
    unique = check(result(store), "unique_ids:application_id")
    assert unique["unexpected_count"] == 1 and unique["examples"][0]["file"] == "part-00001.csv"


def test_one_unreadable_file_fails_the_night_naming_the_file_and_curates_nothing(home, demo_spec):
    store = simulated(demo_spec, files=2, bad=0.0)
    frames = drop_frames(store)
    broken = frames["part-00001.csv"].drop(columns=["credit_score"])
    rewrite_drop(store, demo_spec, {"part-00000.csv": frames["part-00000.csv"], "part-00001.csv": broken})

    with pytest.raises(validate_tasks.ValidationFailed) as failure:
        validate_tasks.validate(MODEL, DAY.isoformat(), RUN)

    message = str(failure.value)
    assert "part-00001.csv" in message and "missing columns ['credit_score']" in message
    assert "part-00000.csv" not in message.split("\n")[0]
    assert not store.exists(f"curated/{MODEL}/dt={DAY}/_SUCCESS")
    assert result(store)["passed"] is False


def test_the_bad_row_share_is_judged_over_the_whole_night(home, demo_spec):
    store = simulated(demo_spec, files=2, bad=0.0)
    frames = drop_frames(store)
    mostly_bad = frames["part-00001.csv"].copy()
    mostly_bad.loc[: int(len(mostly_bad) * 0.08), "age"] = "unknown"
    rewrite_drop(store, demo_spec, {"part-00000.csv": frames["part-00000.csv"], "part-00001.csv": mostly_bad})

    outcome = validate_tasks.validate(MODEL, DAY.isoformat(), RUN)

    assert 0.03 < outcome["quarantined"] / outcome["rows"] < 0.05
    assert result(store)["passed"] is True
    good = published_manifest(store, f"curated/{MODEL}/dt={DAY}")
    good_rows = len(curated(store))

    mostly_bad.loc[: int(len(mostly_bad) * 0.2), "age"] = "unknown"
    rewrite_drop(store, demo_spec, {"part-00000.csv": frames["part-00000.csv"], "part-00001.csv": mostly_bad})
    rerun = RunInfo("manual__rerun", "manual")
    with pytest.raises(
        validate_tasks.ValidationFailed, match=r"above the limit of 5.0%.*e\.g\. part-00001\.csv row 1"
    ) as failed:
        validate_tasks.validate(MODEL, DAY.isoformat(), rerun)
    assert f"the night's earlier curated of run {RUN.run_id} stay as they were" in str(failed.value)
    assert read_manifest(store, f"curated/{MODEL}/dt={DAY}") == good, "a failed rerun keeps the last good curated rows"
    assert len(curated(store)) == good_rows
    assert result(store)["passed"] is False and result(store)["kept"]["curated"]["revision"] == good["revision"]


def test_the_drift_sample_is_the_seeded_rows_of_the_whole_night_read_in_batches(home, demo_spec):
    from nightshift.stages.drift.measure import sample_positions

    store = simulated(demo_spec, files=3, bad=0.0)
    validate_tasks.validate(MODEL, DAY.isoformat(), RUN)
    spec = demo_spec.model_copy(update={"drift": demo_spec.drift.model_copy(update={"sample_size": 400})})
    current = Night(spec, DAY, settings(), store)

    sample, total = drift_tasks.night_sample(current, batch_rows=170)

    assert total == 3000 and len(sample) == 400
    whole = curated(store)
    expected = whole.iloc[sample_positions(3000, 400, spec.drift.seed)].reset_index(drop=True)
    assert sample["application_id"].tolist() == expected["application_id"].tolist()
    assert sample["credit_score"].tolist() == expected["credit_score"].tolist()
    again, _ = drift_tasks.night_sample(current, batch_rows=1000)
    assert again.equals(sample)
    everything, total = drift_tasks.night_sample(Night(demo_spec, DAY, settings(), store))
    assert total == 3000 and len(everything) == 3000


def test_an_id_repeated_across_chunks_of_one_file_is_caught_like_one_within_a_chunk(home, demo_spec):
    store = simulated(demo_spec, files=1, bad=0.0)
    whole = drop_frames(store)["part-00000.csv"].copy()
    whole.loc[899, "application_id"] = whole.loc[9, "application_id"]
    whole.loc[19, "application_id"] = whole.loc[14, "application_id"]
    rewrite_drop(store, demo_spec, {"part-00000.csv": whole})

    outcome = validate_tasks.validate(MODEL, DAY.isoformat(), RUN, chunk_rows=400)

    assert outcome["quarantined"] == 2
    reasons = dict(zip(rejected(store)["_row_number"], rejected(store)["_reasons"], strict=True))
    assert (
        reasons["900"] == f"application_id: {whole.loc[9, 'application_id']!r} repeats the id of part-00000.csv row 10"
    )
    assert reasons["20"] == f"application_id: {whole.loc[14, 'application_id']!r} repeats the id of row 15"
    assert curated(store)["application_id"].is_unique


def test_the_drift_sample_takes_champion_scores_by_position_or_by_id_alike(home, demo_spec):
    import numpy as np

    from nightshift.stores.objects import publish_partition

    store = simulated(demo_spec, files=3, bad=0.01)
    validate_tasks.validate(MODEL, DAY.isoformat(), RUN)
    spec = demo_spec.model_copy(update={"drift": demo_spec.drift.model_copy(update={"sample_size": 500})})
    current = Night(spec, DAY, settings(), store)
    keys = partition_files(store, f"curated/{MODEL}/dt={DAY}", ".parquet")
    per_part = {}
    for index, key in enumerate(keys):
        ids = pd.read_parquet(store.local_path(key))["application_id"]
        scores = ids.str[-6:].astype(int) / 1e6
        per_part[f"champion-{index:05d}.parquet"] = pd.DataFrame({"entity_id": ids, "score": scores})

    def publish(files: dict[str, pd.DataFrame]) -> None:
        folder = home / "predictions"
        folder.mkdir(exist_ok=True)
        local = {}
        for name, frame in files.items():
            frame.to_parquet(folder / name, index=False)
            local[name] = folder / name
        publish_partition(store, f"predictions/{MODEL}/dt={DAY}", {}, local=local)

    publish(per_part)  # no alias column: the join by id would fail, so this reads by position
    aligned, total = drift_tasks.night_sample(current)
    every = pd.concat(per_part.values(), ignore_index=True).iloc[::-1].assign(alias="champion")
    publish({"champion-all.parquet": every})
    joined, _ = drift_tasks.night_sample(current)

    assert total == len(curated(store)) and len(aligned) == 500
    expected = aligned["application_id"].str[-6:].astype(int) / 1e6
    np.testing.assert_allclose(aligned["score"], expected)
    assert aligned[["application_id", "score"]].equals(joined[["application_id", "score"]])
