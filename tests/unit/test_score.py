"""Chunked scoring: the same predictions as scoring everything at once, in order, with stable ids."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from nightshift.kinds import outputs
from nightshift.lifecycle.train import build_pipeline
from nightshift.stages.score.predict import Scorer, prediction_ids, score_batches
from nightshift_dev.simulate import generate_chunk

DAY = "2026-10-01"


@pytest.fixture(scope="module")
def night() -> pd.DataFrame:
    return generate_chunk(dt.date(2026, 10, 1), 0, 5000, False, np.random.default_rng(3))


@pytest.fixture(scope="module")
def models(night, demo_spec_module):
    first = build_pipeline(demo_spec_module, LogisticRegression(max_iter=200)).fit(night, night["defaulted"])
    second = build_pipeline(demo_spec_module, LogisticRegression(C=0.01, max_iter=200)).fit(night, night["defaulted"])
    return first, second


@pytest.fixture(scope="module")
def demo_spec_module():
    from nightshift.config import PROJECT_ROOT, load_spec

    return load_spec(PROJECT_ROOT / "include" / "models" / "credit_risk.yaml")


def batches(frame: pd.DataFrame, size: int):
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def test_chunked_scores_match_scoring_all_rows_at_once_for_every_scorer(tmp_path, night, models, demo_spec_module):
    spec = demo_spec_module
    scorers = [Scorer("champion", "3", models[0]), Scorer("challenger", "4", models[1])]
    paths = {"champion": tmp_path / "champion.parquet", "challenger": tmp_path / "challenger.parquet"}

    counts = score_batches(batches(night, 700), spec, DAY, scorers, "run-1", paths)

    assert counts == {"champion": 5000, "challenger": 5000}
    for scorer in scorers:
        written = pq.read_table(paths[scorer.alias]).to_pandas()
        assert written["entity_id"].tolist() == night["application_id"].tolist()
        np.testing.assert_allclose(written["score"], outputs(scorer.model, night, spec))
        assert set(written["model_version"]) == {scorer.version} and set(written["alias"]) == {scorer.alias}
        assert set(written["run_id"]) == {"run-1"} and set(written["model"]) == {"credit_risk"}
        expected_ids = prediction_ids("credit_risk", DAY, scorer.alias, night["application_id"]).to_pylist()
        assert written["prediction_id"].tolist() == expected_ids
        assert written["prediction_id"].is_unique and written["prediction_id"].str.fullmatch(r"[0-9a-f]{32}").all()


def test_prediction_ids_are_stable_and_differ_by_alias_night_and_entity():
    ids = pd.Series(["a", "b", "c"])
    first = prediction_ids("m", DAY, "champion", ids).to_pylist()
    assert first == prediction_ids("m", DAY, "champion", ids).to_pylist()
    assert len(set(first)) == 3
    assert not set(first) & set(prediction_ids("m", DAY, "challenger", ids).to_pylist())
    assert not set(first) & set(prediction_ids("m", "2026-10-02", "champion", ids).to_pylist())
    assert prediction_ids("m", DAY, "champion", ids[1:]).to_pylist() == first[1:]


def test_a_failing_batch_stops_scoring_with_its_error(tmp_path, night, models, demo_spec_module):
    def broken():
        yield night.iloc[:1000]
        raise OSError("curated part-00001.parquet: connection reset")

    with pytest.raises(OSError, match="connection reset"):
        score_batches(
            broken(),
            demo_spec_module,
            DAY,
            [Scorer("champion", "3", models[0])],
            "run-1",
            {"champion": tmp_path / "champion.parquet"},
        )


def test_a_part_names_its_models_run_and_a_rerun_loads_it_from_the_local_cache(home, demo_spec, monkeypatch):
    from nightshift.config import settings
    from nightshift.runs import RunInfo
    from nightshift.stages.score import tasks as score_tasks
    from nightshift.stages.validate import tasks as validate_tasks
    from nightshift.stores import registry
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate
    from tests.champions import register_champion

    store = open_store(settings().store_uri)
    simulate(store, demo_spec, SimulationPlan(start=dt.date(2026, 10, 1), days=1, rows_per_day=300))
    run = RunInfo("night-1", "scheduled")
    validate_tasks.validate("credit_risk", DAY, run)
    version = register_champion(dt.date(2026, 9, 30), rows=600)
    [part] = score_tasks.scoring_plan("credit_risk", DAY, run)
    champion = registry.get_version(settings(), "credit_risk", version)
    assert part["versions"] == {"champion": version} and part["runs"] == {"champion": champion.run_id}
    first = score_tasks.score_part("credit_risk", DAY, part, run)

    def unreachable(*args, **kwargs):
        raise AssertionError("MLflow was asked")

    monkeypatch.setattr(registry, "client", unreachable)
    again = score_tasks.score_part("credit_risk", DAY, part, run)
    assert again["rows"] == first["rows"] == {"champion": 300}
    with pytest.raises(AssertionError, match="MLflow was asked"):
        score_tasks.score_part("credit_risk", DAY, {key: value for key, value in part.items() if key != "runs"}, run)
