import datetime as dt

from nightshift.policy import decide_retrain

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
    assert not decision.requested and decision.decision == "no_drift"


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
