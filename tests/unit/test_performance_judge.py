"""Judging a night's performance: realized when labels cover it, else estimated; direction-aware; concept drift."""

from __future__ import annotations

from nightshift.config import Performance
from nightshift.stages.performance.judge import is_concept_drift, judge_night, worse_by

POLICY = Performance(tolerance=0.05, min_label_coverage=0.5, min_labelled_rows=100)


def test_realized_is_used_once_coverage_and_rows_suffice_else_the_estimate():
    enough = judge_night(POLICY, "roc_auc", 0.80, realized=0.70, coverage=0.6, labelled_rows=600, estimated=0.79)
    assert (enough.basis, enough.value, enough.degraded) == ("realized", 0.70, True)
    thin = judge_night(POLICY, "roc_auc", 0.80, realized=0.70, coverage=0.4, labelled_rows=600, estimated=0.79)
    assert (thin.basis, thin.value, thin.degraded) == ("estimated", 0.79, False)
    few = judge_night(POLICY, "roc_auc", 0.80, realized=0.70, coverage=1.0, labelled_rows=99, estimated=None)
    assert few.basis is None and not few.degraded and "not judged" in few.reason


def test_the_tolerance_is_strict_and_follows_the_metric_direction():
    assert worse_by("log_loss", 0.50, 0.40) == 0.50 - 0.40
    assert worse_by("roc_auc", 0.70, 0.80) == 0.80 - 0.70
    at_edge = judge_night(POLICY, "roc_auc", 0.80, realized=0.75, coverage=1, labelled_rows=500, estimated=None)
    assert not at_edge.degraded
    loss = judge_night(POLICY, "log_loss", 0.40, realized=0.46, coverage=1, labelled_rows=500, estimated=None)
    better_loss = judge_night(POLICY, "log_loss", 0.40, realized=0.30, coverage=1, labelled_rows=500, estimated=None)
    assert loss.degraded and not better_loss.degraded
    assert "+0.0600 worse" in loss.reason


def test_estimates_are_ignored_when_the_policy_says_so():
    policy = Performance(estimated=False)
    judged = judge_night(policy, "roc_auc", 0.80, realized=None, coverage=0.0, labelled_rows=0, estimated=0.60)
    assert judged.basis is None and not judged.degraded


def test_concept_drift_needs_a_realized_degradation_on_a_night_whose_features_did_not_drift():
    degraded = judge_night(POLICY, "roc_auc", 0.80, realized=0.70, coverage=1, labelled_rows=500, estimated=0.80)
    estimated = judge_night(POLICY, "roc_auc", 0.80, realized=None, coverage=0, labelled_rows=0, estimated=0.70)
    night = {"dataset_drift": False, "critical_drifted": []}
    assert is_concept_drift(degraded, night, drifted=False)
    assert not is_concept_drift(degraded, night, drifted=True)
    assert not is_concept_drift(estimated, night, drifted=False)
    assert not is_concept_drift(degraded, None, drifted=False)
