import numpy as np
import pandas as pd
import pytest

from nightshift.lifecycle.evaluate import decide, evaluate_scores, metric_value


def result(value, slices=None, rows=1000):
    return {"metric": "roc_auc", "value": value, "rows": rows, "slices": slices or {}}


def test_first_champion_needs_only_the_floor(demo_spec):
    assert decide(demo_spec, result(0.70), None).promote
    refused = decide(demo_spec, result(0.60), None)
    assert not refused.promote and "misses the floor 0.6500" in refused.reasons[0]


def test_candidate_must_beat_champion_by_the_margin(demo_spec):
    assert decide(demo_spec, result(0.80), result(0.79)).promote
    refused = decide(demo_spec, result(0.792), result(0.79))
    assert not refused.promote
    assert "below the required +0.0050" in refused.reasons[1]


def test_slice_regression_blocks_promotion(demo_spec):
    champion = result(0.78, {"home_ownership=RENT": {"value": 0.80, "rows": 400}})
    candidate = result(0.82, {"home_ownership=RENT": {"value": 0.70, "rows": 400}})
    decision = decide(demo_spec, candidate, champion)
    assert not decision.promote
    assert any("slice home_ownership=RENT" in reason for reason in decision.reasons)


def test_small_slices_are_not_judged(demo_spec):
    champion = result(0.78, {"home_ownership=OWN": {"value": 0.80, "rows": 20}})
    candidate = result(0.82, {"home_ownership=OWN": {"value": 0.50, "rows": 20}})
    assert decide(demo_spec, candidate, champion).promote


def test_undefined_metric_refuses(demo_spec):
    assert not decide(demo_spec, result(None, rows=3), result(0.7)).promote


def test_evaluate_scores_per_slice(demo_spec):
    holdout = pd.DataFrame({"defaulted": [0, 1, 0, 1, 0, 1], "home_ownership": ["RENT"] * 3 + ["OWN"] * 3})
    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.8, 0.6])
    evaluated = evaluate_scores(demo_spec, holdout, scores)
    assert evaluated["value"] == pytest.approx(metric_value("roc_auc", holdout["defaulted"].to_numpy(), scores))
    assert evaluated["slices"]["home_ownership=RENT"] == {"value": 1.0, "rows": 3}
    assert evaluated["slices"]["home_ownership=OWN"]["value"] == 0.0


def test_log_loss_is_lower_is_better(demo_spec):
    spec = demo_spec.model_copy(
        update={"promotion": demo_spec.promotion.model_copy(update={"metric": "log_loss", "floor": 0.7})}
    )
    better = {"metric": "log_loss", "value": 0.40, "rows": 100, "slices": {}}
    worse = {"metric": "log_loss", "value": 0.45, "rows": 100, "slices": {}}
    assert decide(spec, better, worse).promote
    assert not decide(spec, worse, better).promote
