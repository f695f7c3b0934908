"""The seams where the product grows: model kinds and notifiers, each one module behind an interface."""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd
import pytest

from nightshift.config import TASKS, Task
from nightshift.kinds import BINARY, KINDS, MULTICLASS, REGRESSION, Metric, kind_of
from nightshift.lifecycle.evaluate import metric_value
from nightshift.notifiers import Event, Notification, NotifyFailed, Severity, notify


def test_the_spec_table_names_exactly_the_metrics_each_kind_computes():
    assert set(KINDS) == set(TASKS) == set(typing.get_args(Task))
    for name, kind in KINDS.items():
        assert TASKS[name].metrics == tuple(kind.metrics), name
        assert TASKS[name].default_metric in kind.metrics


def test_a_spec_is_binary_unless_it_names_its_task(demo_spec):
    assert kind_of(demo_spec) is BINARY
    assert kind_of(demo_spec.model_copy(update={"task": "regression"})) is REGRESSION
    assert kind_of(demo_spec.model_copy(update={"task": "multiclass"})) is MULTICLASS


def test_a_metric_knows_its_direction():
    assert Metric(lambda labels, scores: 0.0).improvement(0.8, 0.7) == pytest.approx(0.1)
    assert BINARY.metrics["log_loss"].improvement(0.3, 0.4) == pytest.approx(0.1)
    assert BINARY.metrics["log_loss"].improvement(0.5, 0.4) == pytest.approx(-0.1)


class MeanError:
    """A kind written only for this test: what a regression module would provide."""

    name = "mean_error"
    metrics: typing.ClassVar[dict[str, Metric]] = {
        "mae": Metric(lambda labels, scores: float(np.mean(np.abs(labels - scores))), higher_is_better=False)
    }


def test_another_kind_brings_its_own_metrics_to_the_gate():
    labels, scores = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    assert metric_value("mae", labels, scores, MeanError()) == pytest.approx(0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown metric 'mae' for binary models; use one of \['accuracy'"):
        metric_value("mae", labels, scores)


def test_binary_scores_are_the_positive_class_probability_whatever_the_class_order(demo_spec):
    class Model:
        classes_ = np.array([1, 0])

        def predict_proba(self, inputs):
            return np.array([[0.9, 0.1], [0.2, 0.8]])

    assert BINARY.outputs(Model(), pd.DataFrame({"x": [1, 2]}), demo_spec).tolist() == [0.9, 0.2]
    from sklearn.linear_model import Ridge
    from sklearn.svm import LinearSVC

    assert (
        BINARY.estimator_problem(LinearSVC(), "sklearn.svm.LinearSVC")
        == "sklearn.svm.LinearSVC has no predict_proba; nightshift needs a probabilistic classifier"
    )
    assert (
        BINARY.estimator_problem(Ridge(), "R")
        == "R is not a classifier; a classification task needs a scikit-learn classifier"
    )
    assert REGRESSION.estimator_problem(Ridge(), "R") is None


def _note(model: str = "credit_risk") -> Notification:
    return Notification(Event.TASK_FAILED, Severity.PAGE, model, "night failed", "validation blocked", "2026-10-05")


class Recorder:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if self.fail:
            raise ConnectionError("smtp.example.org:25 refused the connection")
        self.sent.append(notification)


def test_a_failing_channel_does_not_stop_the_others_and_is_named():
    good, bad = Recorder("log"), Recorder("email", fail=True)
    with pytest.raises(NotifyFailed) as failed:
        notify([_note(), _note("churn")], [bad, good])
    assert [note.model for note in good.sent] == ["credit_risk", "churn"]
    assert "2 notification(s) not delivered" in str(failed.value)
    assert "email: task_failed for churn: smtp.example.org:25 refused the connection" in str(failed.value)


def test_every_delivery_is_counted():
    channels = [Recorder("a"), Recorder("b")]
    assert notify([_note(), _note()], channels) == 4
