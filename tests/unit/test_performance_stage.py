"""Live performance through the nightly stages: realized once labels arrive (late ones too), estimated before, and a
concept shift that the performance rule catches while drift does not."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from nightshift.config import settings
from nightshift.runs import RunInfo
from nightshift.stages import decision
from nightshift.stages.drift import tasks as drift_tasks
from nightshift.stages.labels import tasks as label_tasks
from nightshift.stages.performance import tasks as performance_tasks
from nightshift.stages.score import tasks as score_tasks
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stores import warehouse
from nightshift.stores.objects import open_store, partition_files
from nightshift_dev.simulate import SimulationPlan, simulate
from tests.champions import register_champion

MODEL = "credit_risk"
START = dt.date(2026, 10, 1)
NIGHTS = [START + dt.timedelta(days=offset) for offset in range(5)]
SHIFT = NIGHTS[2]


def run_night(day: dt.date, run_type: str = "scheduled") -> dict:
    """The nightly stages in the DAG's order, in this process."""
    run = RunInfo(f"{run_type}__{day}T02:00:00+00:00", run_type)
    validate_tasks.validate(MODEL, day.isoformat(), run)
    score_tasks.score(MODEL, day.isoformat(), run, chunk_rows=500)
    label_tasks.ingest_labels(MODEL, day.isoformat(), run)
    measured = drift_tasks.drift(MODEL, day.isoformat(), run)
    performed = performance_tasks.performance(MODEL, day.isoformat(), run)
    decided = decision.decide(MODEL, day.isoformat(), run, measured)
    return {"drift": measured, "performance": performed, "decision": decided}


def engine():
    return warehouse.connect(settings().warehouse_url)


def night_rows(day: dt.date) -> dict[str, dict]:
    return {row["alias"]: row for row in warehouse.performance_history(engine(), MODEL, day, day, alias=None)}


def metric_rows(day: dt.date, kind: str, slice_: str = "") -> dict[str, dict]:
    return {
        row["metric"]: row
        for row in warehouse.night_performance_metrics(engine(), MODEL, day)
        if row["kind"] == kind and row["slice"] == slice_ and row["alias"] == "champion"
    }


def landed_labels(store, day: dt.date) -> pd.DataFrame:
    """The raw label drop that landed on `day`, read with pandas (not through nightshift)."""
    keys = partition_files(store, f"landing/{MODEL}/labels/dt={day}", ".csv")
    return pd.concat([pd.read_csv(store.local_path(key), dtype={"application_id": str}) for key in keys])


def champion_predictions(store, day: dt.date) -> pd.DataFrame:
    keys = [key for key in partition_files(store, f"predictions/{MODEL}/dt={day}", ".parquet") if "/champion-" in key]
    return pd.concat([pd.read_parquet(store.local_path(key)) for key in keys], ignore_index=True)


@pytest.fixture
def concept_season(home, demo_spec):
    """Five nights of 2,000 rows; from the third on, defaults follow the features differently (the population does not
    move); the champion was trained and calibrated on the unshifted population."""
    register_champion(START - dt.timedelta(days=1), rows=4000, holdout_rows=4000)
    store = open_store(settings().store_uri)
    plan = SimulationPlan(start=START, days=len(NIGHTS), rows_per_day=2000, shift_date=SHIFT, concept_only=True)
    simulate(store, demo_spec, plan)
    return store


def test_realized_performance_matches_an_independent_join_of_predictions_and_the_labels_that_landed(concept_season):
    store = concept_season
    run_night(NIGHTS[0])
    before = night_rows(NIGHTS[0])["champion"]
    assert before["realized"] is None and before["coverage"] == 0.0 and before["basis"] == "estimated"
    run_night(NIGHTS[1])
    joined = champion_predictions(store, NIGHTS[0]).merge(
        landed_labels(store, NIGHTS[1]), left_on="entity_id", right_on="application_id"
    )
    realized = metric_rows(NIGHTS[0], "realized")
    assert realized["roc_auc"]["value"] == pytest.approx(roc_auc_score(joined["defaulted"], joined["score"]))
    assert realized["log_loss"]["value"] == pytest.approx(log_loss(joined["defaulted"], joined["score"]))
    predicted = len(champion_predictions(store, NIGHTS[0]))
    assert realized["roc_auc"]["labelled_rows"] == len(joined) == predicted
    assert realized["roc_auc"]["coverage"] == 1.0
    after = night_rows(NIGHTS[0])["champion"]
    assert after["basis"] == "realized" and after["labels_through"] == NIGHTS[1]
    slices = {
        row["slice"]: row
        for row in warehouse.night_performance_metrics(engine(), MODEL, NIGHTS[0])
        if row["kind"] == "realized" and row["metric"] == "roc_auc" and row["slice"]
    }
    assert set(slices) == {f"home_ownership={level}" for level in ("MORTGAGE", "OWN", "RENT")}
    assert sum(row["rows"] for row in slices.values()) == predicted
    rent = joined.merge(
        pd.read_csv(
            store.local_path(partition_files(store, f"landing/{MODEL}/dt={NIGHTS[0]}", ".csv")[0]),
            dtype={"application_id": str},
        )[["application_id", "home_ownership"]],
        on="application_id",
    ).query("home_ownership == 'RENT'")
    assert slices["home_ownership=RENT"]["value"] == pytest.approx(roc_auc_score(rent["defaulted"], rent["score"]))


def test_on_unshifted_nights_the_estimate_is_near_the_realized_figure_and_neither_judges_them_degraded(concept_season):
    """The band's coverage is measured on many nights in tests/unit/test_performance_math.py; here, on the stages'
    own path, the estimate of two unshifted nights stays within the rule's tolerance of what their labels showed."""
    for day in NIGHTS[:3]:
        run_night(day)
    for day in NIGHTS[:2]:
        estimated, realized = metric_rows(day, "estimated"), metric_rows(day, "realized")
        for name in ("log_loss", "roc_auc", "accuracy"):
            assert estimated[name]["lower"] < estimated[name]["value"] < estimated[name]["upper"]
            assert abs(estimated[name]["value"] - realized[name]["value"]) < 0.05, (day, name)
        row = night_rows(day)["champion"]
        assert row["basis"] == "realized" and not row["degraded"] and not row["concept_drift"]


def test_a_concept_shift_is_caught_by_the_performance_rule_while_drift_stays_quiet(concept_season):
    nights = {day: run_night(day) for day in NIGHTS}
    for day in NIGHTS[2:4]:
        row = night_rows(day)["champion"]
        assert row["basis"] == "realized" and row["degraded"] and row["concept_drift"], row
        assert not nights[day]["drift"]["dataset_drift"]
        estimated = metric_rows(day, "estimated")["log_loss"]
        assert estimated["value"] - row["reference"] < 0.05, "the estimate cannot see a concept shift"
    for day in NIGHTS[:2]:
        assert not night_rows(day)["champion"]["degraded"]
    last = nights[NIGHTS[-1]]["decision"]
    assert last["requested"] and last["fired"] == ["performance"]
    rule = last["rules"]["performance"]
    assert rule["metric"] == "log_loss" and rule["degraded_nights"] == [str(NIGHTS[2]), str(NIGHTS[3])]
    assert rule["concept_drift_nights"] == [str(NIGHTS[2]), str(NIGHTS[3])]
    assert not last["rules"]["drift"]["fired"]
    stored = warehouse.fetch_all(engine(), warehouse.retrain_decisions)
    assert json.loads(next(row for row in stored if row["dt"] == NIGHTS[-1])["rules"])["performance"]["fired"]


def test_late_labels_recompute_a_night_and_a_rerun_of_an_older_date_keeps_the_newer_figures(concept_season):
    store = concept_season
    first_drop = partition_files(store, f"landing/{MODEL}/labels/dt={NIGHTS[1]}", ".csv")[0]
    labels = pd.read_csv(store.local_path(first_drop), dtype=str)
    on_time, late = labels.iloc[: len(labels) // 2], labels.iloc[len(labels) // 2 :]
    on_time.to_csv(store.local_path(first_drop), index=False)
    second_drop = partition_files(store, f"landing/{MODEL}/labels/dt={NIGHTS[2]}", ".csv")[0]
    both = pd.concat([pd.read_csv(store.local_path(second_drop), dtype=str), late])
    both.to_csv(store.local_path(second_drop), index=False)
    run_night(NIGHTS[0])
    run_night(NIGHTS[1])
    half = night_rows(NIGHTS[0])["champion"]
    predicted = len(champion_predictions(store, NIGHTS[0]))
    scored_on_time = champion_predictions(store, NIGHTS[0])["entity_id"].isin(on_time["application_id"]).sum()
    assert half["labelled_rows"] == scored_on_time and half["coverage"] == pytest.approx(scored_on_time / predicted)
    run_night(NIGHTS[2])
    full = night_rows(NIGHTS[0])["champion"]
    assert full["labelled_rows"] == predicted and full["labels_through"] == NIGHTS[2]
    run_night(NIGHTS[1], run_type="manual")
    assert night_rows(NIGHTS[0])["champion"]["labels_through"] == NIGHTS[2]


def test_each_measured_night_has_a_page_and_the_index_shows_estimated_and_realized(concept_season):
    store = concept_season
    run_night(NIGHTS[0])
    run_night(NIGHTS[1])
    page_key = next(key for key in store.list(f"reports/performance/{MODEL}/dt={NIGHTS[0]}") if key.endswith(".html"))
    page = store.read_bytes(page_key).decode()
    realized = metric_rows(NIGHTS[0], "realized")["log_loss"]["value"]
    assert f"{realized:.3f}" in page and "Realized" in page and "home_ownership=RENT" in page
    index = store.read_bytes(f"reports/drift/{MODEL}/index.html").decode()
    assert f"{realized:.3f}" in index
    assert np.isfinite(realized)


def test_a_night_rescored_by_another_champion_is_measured_again(concept_season):
    from nightshift.stores import registry

    run_night(NIGHTS[0])
    run_night(NIGHTS[1])
    assert night_rows(NIGHTS[0])["champion"]["model_version"] == "1"
    register_champion(START - dt.timedelta(days=1), rows=3000, holdout_rows=3000, replacing="1")
    champion = registry.alias_version(settings(), MODEL, registry.CHAMPION)
    assert champion is not None and champion.version == "2"
    run_night(NIGHTS[0], run_type="backfill")
    rescored = night_rows(NIGHTS[0])["champion"]
    assert rescored["model_version"] == "2" and rescored["labels_through"] == NIGHTS[0]
    run_night(NIGHTS[1], run_type="backfill")
    relabelled = night_rows(NIGHTS[0])["champion"]
    assert relabelled["model_version"] == "2" and relabelled["labels_through"] == NIGHTS[1]
    assert relabelled["coverage"] == 1.0


def test_nights_the_backlog_scores_are_measured_by_the_same_run_however_old(home, demo_spec, monkeypatch, tmp_path):
    """With no late-label window, only the backlog's list brings the first night, scored late on the third, in."""
    import yaml

    from nightshift.config import PROJECT_ROOT
    from nightshift.stages import backlog

    raw = yaml.safe_load((PROJECT_ROOT / "include" / "models" / "credit_risk.yaml").read_text())
    raw["performance"]["late_label_days"] = 0
    models = tmp_path / "models"
    models.mkdir()
    (models / "credit_risk.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("NIGHTSHIFT_MODELS_DIR", str(models))
    store = open_store(settings().store_uri)
    simulate(store, demo_spec, SimulationPlan(start=START, days=3, rows_per_day=1500))
    for day in NIGHTS[:2]:
        run = RunInfo(f"scheduled__{day}", "scheduled")
        validate_tasks.validate(MODEL, day.isoformat(), run)
        score_tasks.score(MODEL, day.isoformat(), run, chunk_rows=500)
        label_tasks.ingest_labels(MODEL, day.isoformat(), run)
        drift_tasks.drift(MODEL, day.isoformat(), run)
        assert performance_tasks.performance(MODEL, day.isoformat(), run)["measured"] == []
    register_champion(START - dt.timedelta(days=1), rows=3000, holdout_rows=3000)
    third = NIGHTS[2]
    run = RunInfo(f"scheduled__{third}", "scheduled")
    validate_tasks.validate(MODEL, third.isoformat(), run)
    score_tasks.score(MODEL, third.isoformat(), run, chunk_rows=500)
    label_tasks.ingest_labels(MODEL, third.isoformat(), run)
    drift_tasks.drift(MODEL, third.isoformat(), run)
    caught_up = backlog.score_backlog(MODEL, third.isoformat(), run, chunk_rows=500)
    assert caught_up["scored"] == [NIGHTS[0].isoformat(), NIGHTS[1].isoformat()]
    without = performance_tasks.nights_to_measure(
        demo_spec.model_copy(update={"performance": demo_spec.performance.model_copy(update={"late_label_days": 0})}),
        third,
    )
    assert NIGHTS[0] not in without
    measured = performance_tasks.performance(MODEL, third.isoformat(), run, scored_late=caught_up["scored"])
    assert [night["dt"] for night in measured["measured"]] == [day.isoformat() for day in NIGHTS[:3]]
    first = night_rows(NIGHTS[0])["champion"]
    assert first["basis"] == "realized" and first["coverage"] == 1.0 and first["labels_through"] == third
