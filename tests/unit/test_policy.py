import datetime as dt

import numpy as np
import pandas as pd
import pytest

from nightshift.config import settings
from nightshift.lifecycle.policy import decide_retrain
from nightshift.lifecycle.train import TrainingDataError, build_training_set
from nightshift.runs import RunInfo
from nightshift.stages.decision import labelled_day_count
from nightshift.stages.labels.parse import LabelDropRejected
from nightshift.stages.labels.tasks import ingest_labels
from nightshift.stores.objects import flat_partition_writer, is_complete, open_store, partition_writer
from nightshift_dev.simulate import generate_chunk

DAY = dt.date(2026, 10, 14)


def night(day: dt.date, drifted: bool, critical: list[str] | None = None) -> dict:
    return {
        "dt": day,
        "dataset_drift": drifted,
        "critical_drifted": critical or [],
        "drift_share": 0.5 if drifted else 0,
    }


def tonight(features: dict[str, float]) -> dict:
    return {
        "drift_share": 0.4,
        "critical_drifted": ["credit_score"],
        "features": [{"feature": name, "score": score, "drifted": True} for name, score in features.items()]
        + [{"feature": "age", "score": 0.01, "drifted": False}],
    }


def decide(spec, history, **kwargs):
    defaults = dict(has_champion=True, labelled_days=8, tonight=None, last_request=None, is_backfill=False)
    return decide_retrain(spec, DAY, history=history, **{**defaults, **kwargs})


def test_quiet_nights_do_not_request(demo_spec):
    history = [night(DAY - dt.timedelta(days=i), False) for i in range(3)]
    decision = decide(demo_spec, history)
    assert not decision.requested and decision.decision == "no_trigger"


def test_two_of_three_drifted_nights_request_with_feature_scores(demo_spec):
    history = [night(DAY, True), night(DAY - dt.timedelta(days=1), True), night(DAY - dt.timedelta(days=2), False)]
    decision = decide(demo_spec, history, tonight=tonight({"credit_score": 0.31, "purpose": 0.22}))
    assert decision.requested and decision.decision == "requested"
    assert decision.drifted_features == {"credit_score": 0.31, "purpose": 0.22}
    assert "2 of the last 3 nights drifted" in decision.reasons[0]


def test_a_critical_feature_alone_counts_as_a_drifted_night(demo_spec):
    history = [night(DAY, False, ["credit_score"]), night(DAY - dt.timedelta(days=1), False, ["debt_to_income"])]
    assert decide(demo_spec, history).requested


def test_nights_outside_the_window_do_not_count(demo_spec):
    history = [night(DAY, True), night(DAY - dt.timedelta(days=3), True)]
    assert not decide(demo_spec, history).requested


def test_cooldown_suppresses_and_says_why(demo_spec):
    history = [night(DAY, True), night(DAY - dt.timedelta(days=1), True)]
    decision = decide(demo_spec, history, last_request=DAY - dt.timedelta(days=demo_spec.drift.cooldown_days))
    assert not decision.requested and decision.decision == "cooldown"
    assert "cooldown" in decision.reasons[-1]
    after = decide(demo_spec, history, last_request=DAY - dt.timedelta(days=demo_spec.drift.cooldown_days + 1))
    assert after.requested


def test_backfill_never_requests(demo_spec):
    history = [night(DAY, True), night(DAY - dt.timedelta(days=1), True)]
    decision = decide(demo_spec, history, is_backfill=True)
    assert not decision.requested and decision.decision == "backfill"


def test_without_champion_waits_for_labels_then_bootstraps(demo_spec):
    waiting = decide(demo_spec, [], has_champion=False, labelled_days=2)
    assert not waiting.requested and waiting.decision == "waiting_for_labels"
    ready = decide(demo_spec, [], has_champion=False, labelled_days=4)
    assert ready.requested and "no champion" in ready.reasons[0]


# --- labelled days: what the policy counts is what training can use ---------------------------------------------

START = dt.date(2026, 10, 1)
RUN = RunInfo("manual__labels", "manual")


def curate_features(store, spec, day: dt.date, rows: int = 200) -> pd.DataFrame:
    frame = generate_chunk(day, 0, rows, False, np.random.default_rng(day.toordinal()))
    with partition_writer(store, f"curated/{spec.name}/dt={day}", {"rows": rows}) as folder:
        frame[spec.raw_columns].to_parquet(folder / "part-00000.parquet")
    return frame


def land_labels(store, spec, day: dt.date, labels: pd.DataFrame) -> dict:
    with flat_partition_writer(store, f"landing/{spec.name}/labels/dt={day}", {}) as folder:
        labels.to_csv(folder / "labels.csv", index=False)
    return ingest_labels(spec.name, day.isoformat(), RUN)


def test_an_empty_label_partition_is_not_a_labelled_day_so_no_retrain_training_would_refuse(home, demo_spec):
    store = open_store(settings().store_uri)
    columns = [demo_spec.entity_id, demo_spec.target.column]
    delay = dt.timedelta(days=demo_spec.target.label_delay_days)
    features = [curate_features(store, demo_spec, START + dt.timedelta(days=offset)) for offset in range(4)]
    for offset, frame in enumerate(features[:3]):
        assert (
            land_labels(store, demo_spec, START + dt.timedelta(days=offset) + delay, frame[columns])["accepted"] == 200
        )
    as_of = START + dt.timedelta(days=3) + delay
    empty = land_labels(store, demo_spec, as_of, features[3][columns].iloc[0:0])
    assert (empty["received"], empty["accepted"]) == (0, 0)
    assert is_complete(store, f"curated/{demo_spec.name}/labels/dt={as_of}")

    labelled = labelled_day_count(store, demo_spec, as_of)
    decision = decide(demo_spec, [], has_champion=False, labelled_days=labelled)
    assert labelled == 3
    assert not decision.requested and decision.decision == "waiting_for_labels"
    assert "3 labelled day(s) of the 4" in decision.reasons[0]
    with pytest.raises(TrainingDataError, match=r"only 3 labelled day\(s\)"):
        build_training_set(store, demo_spec, as_of)

    assert land_labels(store, demo_spec, as_of, features[3][columns])["accepted"] == 200
    labelled = labelled_day_count(store, demo_spec, as_of)
    assert labelled == 4 and decide(demo_spec, [], has_champion=False, labelled_days=labelled).requested
    assert len(build_training_set(store, demo_spec, as_of).labelled_dates) == 4


def test_a_rejected_label_drop_is_not_a_labelled_day(home, demo_spec):
    store = open_store(settings().store_uri)
    frame = curate_features(store, demo_spec, START)
    label_day = START + dt.timedelta(days=demo_spec.target.label_delay_days)
    with pytest.raises(LabelDropRejected):
        land_labels(store, demo_spec, label_day, frame[[demo_spec.entity_id]].assign(defaulted="unknown"))
    assert labelled_day_count(store, demo_spec, label_day) == 0
    with pytest.raises(TrainingDataError, match=r"only 0 labelled day\(s\)"):
        build_training_set(store, demo_spec, label_day)


def judged(day: dt.date, value: float, basis: str = "realized", reference: float = 0.40, degraded: bool | None = None):
    """A performance_nights row of the champion, judged on log loss (the demo spec's rule metric, lower is better)."""
    worse = value - reference > 0.05 if degraded is None else degraded
    return {
        "dt": day,
        "basis": basis,
        "realized": value if basis == "realized" else None,
        "estimated": value if basis == "estimated" else None,
        "reference": reference,
        "coverage": 1.0 if basis == "realized" else 0.0,
        "degraded": worse,
        "concept_drift": worse and basis == "realized",
    }


def test_the_performance_rule_fires_on_two_degraded_nights_of_three_and_names_its_figures(demo_spec):
    quiet = [night(DAY - dt.timedelta(days=i), False) for i in range(3)]
    performance = [
        judged(DAY - dt.timedelta(days=2), 0.41),
        judged(DAY - dt.timedelta(days=1), 0.52),
        judged(DAY, 0.50, basis="estimated"),
    ]
    decision = decide(demo_spec, quiet, performance=performance)
    assert decision.requested and decision.fired == ["performance"]
    rule = decision.as_dict()["rules"]["performance"]
    assert rule["degraded_nights"] == [str(DAY - dt.timedelta(days=1)), str(DAY)]
    assert [item["basis"] for item in rule["nights"]] == ["realized", "realized", "estimated"]
    assert rule["nights"][1]["value"] == 0.52 and rule["nights"][1]["reference"] == 0.40
    assert rule["concept_drift_nights"] == [str(DAY - dt.timedelta(days=1))]
    assert any("2 of the last 3 night(s) degraded on log_loss" in reason for reason in decision.reasons)


def test_one_degraded_night_or_nights_outside_the_window_do_not_fire(demo_spec):
    quiet = [night(DAY - dt.timedelta(days=i), False) for i in range(3)]
    old = [judged(DAY - dt.timedelta(days=5), 0.9), judged(DAY - dt.timedelta(days=4), 0.9)]
    decision = decide(demo_spec, quiet, performance=[*old, judged(DAY, 0.6), judged(DAY - dt.timedelta(days=1), 0.41)])
    assert not decision.requested and decision.decision == "no_trigger"
    assert decision.rules["performance"]["degraded_nights"] == [str(DAY)]


def test_unjudged_nights_do_not_count_and_both_rules_can_fire_together_under_one_cooldown(demo_spec):
    unjudged = {**judged(DAY - dt.timedelta(days=2), 0.9), "basis": None}
    performance = [unjudged, judged(DAY - dt.timedelta(days=1), 0.7), judged(DAY, 0.7)]
    drifted = [night(DAY, True), night(DAY - dt.timedelta(days=1), True)]
    both = decide(demo_spec, drifted, performance=performance)
    assert both.requested and both.fired == ["drift", "performance"]
    assert len(both.rules["performance"]["nights"]) == 2
    held = decide(demo_spec, drifted, performance=performance, last_request=DAY - dt.timedelta(days=2))
    assert not held.requested and held.decision == "cooldown" and held.fired == ["drift", "performance"]


def test_a_backfill_never_requests_even_when_performance_degraded(demo_spec):
    performance = [judged(DAY - dt.timedelta(days=1), 0.7), judged(DAY, 0.7)]
    decision = decide(demo_spec, [], performance=performance, is_backfill=True)
    assert not decision.requested and decision.decision == "backfill"
