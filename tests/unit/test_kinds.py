"""The three model kinds: their spec rules, label parsers, outputs, prediction columns and gate metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

from nightshift.config import SpecError, load_spec
from nightshift.kinds import MULTICLASS, REGRESSION, kind_of, outputs
from nightshift.lifecycle.evaluate import decide, evaluate_scores, metric_value
from nightshift.lifecycle.train import TrainingDataError, TrainingSet, fit_candidate, reference_sample
from tests.unit.test_config import write_spec

WINE_CLASSES = ["class_0", "class_1", "class_2"]


def _regression(raw: dict[str, Any]) -> dict[str, Any]:
    raw.update(task="regression")
    raw["target"].pop("positive_label")
    raw["training"]["estimator"] = "sklearn.linear_model.Ridge"
    raw["training"]["params"] = {}
    raw["promotion"] = {"metric": "rmse", "floor": 0.6, "min_improvement": 0.01, "slices": raw["promotion"]["slices"]}
    raw.pop("performance", None)
    return raw


def _multiclass(raw: dict[str, Any]) -> dict[str, Any]:
    raw.update(task="multiclass")
    raw["target"].pop("positive_label")
    raw["target"]["classes"] = WINE_CLASSES
    raw["promotion"] = {"metric": "macro_f1", "floor": 0.3}
    return raw


@pytest.fixture
def regression_spec(tmp_path):
    return load_spec(write_spec(tmp_path, "loan_loss", _regression))


@pytest.fixture
def multiclass_spec(tmp_path):
    return load_spec(write_spec(tmp_path, "loan_grade", _multiclass))


def test_a_metric_of_another_kind_is_refused_at_load_naming_the_field(tmp_path):
    path = write_spec(tmp_path, "wrong_metric", lambda raw: _regression(raw)["promotion"].update(metric="roc_auc"))
    with pytest.raises(
        SpecError, match=r"- promotion\.metric: 'roc_auc' is not a regression metric; valid: rmse, mae, r2"
    ):
        load_spec(path)


def test_a_regressor_for_a_classifier_is_refused_at_load_naming_the_field(tmp_path):
    path = write_spec(
        tmp_path,
        "wrong_estimator",
        lambda raw: raw["training"].update(estimator="sklearn.ensemble.HistGradientBoostingRegressor"),
    )
    with pytest.raises(SpecError, match=r"- training\.estimator: HistGradientBoostingRegressor is a regressor; this"):
        load_spec(path)


def test_kind_fields_belong_to_their_kind(tmp_path):
    no_classes = write_spec(tmp_path, "no_classes", lambda raw: _multiclass(raw)["target"].pop("classes"))
    with pytest.raises(SpecError, match=r"- target\.classes: a multiclass model lists every class"):
        load_spec(no_classes)
    positive = write_spec(tmp_path, "positive", lambda raw: _regression(raw)["target"].update(positive_label=1))
    with pytest.raises(SpecError, match=r"- target\.positive_label: only binary models have one, not regression"):
        load_spec(positive)
    repeated = write_spec(tmp_path, "repeated", lambda raw: _multiclass(raw)["target"].update(classes=["a", "a"]))
    with pytest.raises(SpecError, match=r"target\.classes: .*at least two distinct"):
        load_spec(repeated)


def test_numbers_are_accepted_as_category_and_class_names(tmp_path):
    def numeric(raw: dict[str, Any]) -> None:
        _multiclass(raw)
        raw["target"]["classes"] = [1, 2, 3]
        raw["features"]["purpose"]["categories"] = [11, 12, 13.5]

    path = write_spec(tmp_path, "codes", numeric)
    assert yaml.safe_load(path.read_text())["target"]["classes"] == [1, 2, 3]
    spec = load_spec(path)
    assert spec.classes == ["1", "2", "3"] and spec.features["purpose"].categories == ["11", "12", "13.5"]


def test_defaults_follow_the_task(regression_spec, multiclass_spec, demo_spec):
    plain = regression_spec.model_copy(
        update={"training": regression_spec.training.model_copy(update={"estimator": None})}
    )
    assert plain.estimator == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert (
        demo_spec.estimator == "sklearn.ensemble.HistGradientBoostingClassifier" and demo_spec.gate_metric == "roc_auc"
    )
    unnamed = multiclass_spec.model_copy(
        update={"promotion": multiclass_spec.promotion.model_copy(update={"metric": None})}
    )
    assert unnamed.gate_metric == "accuracy"


def test_check_specs_builds_each_estimator_and_refuses_one_of_the_wrong_kind(tmp_path):
    def svm(raw: dict[str, Any]) -> None:
        raw["training"].update(estimator="sklearn.svm.LinearSVC", params={})

    write_spec(tmp_path, "margin_only", svm)
    write_spec(tmp_path, "loan_loss", _regression)
    cli = Path(sys.executable).parent / "nightshift"
    done = subprocess.run([str(cli), "check-specs", "--models-dir", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL margin_only: training.estimator: sklearn.svm.LinearSVC has no predict_proba" in done.stdout
    assert "ok  loan_loss: regression, 10 features, gate rmse <= 0.6" in done.stdout


def test_multiclass_labels_are_the_spec_classes_and_numeric_spellings(multiclass_spec, tmp_path):
    raw = pd.Series([" class_1 ", "class_2", "CLASS_0", None, "4"], dtype=object)
    parsed = MULTICLASS.parse_labels(raw, multiclass_spec)
    assert parsed.failed.tolist() == [False, False, True, True, True]
    assert parsed.values[:2].tolist() == ["class_1", "class_2"]
    expected = "expected one of target.classes: class_0, class_1, class_2"
    assert parsed.reasons.tolist() == [
        f"defaulted: 'CLASS_0' is not a label; {expected}",
        f"defaulted: the label is missing; {expected}",
        f"defaulted: '4' is not a label; {expected}",
    ]
    numeric = multiclass_spec.model_copy(
        update={"target": multiclass_spec.target.model_copy(update={"classes": ["1", "2", "3"]})}
    )
    codes = MULTICLASS.parse_labels(pd.Series(["2", "2.0", "3", "2.5"], dtype=object), numeric)
    assert codes.values[:3].tolist() == ["2", "2", "3"] and codes.failed.tolist() == [False, False, False, True]


def test_regression_labels_are_finite_numbers(regression_spec):
    raw = pd.Series(["12", " -0.5 ", "1.2e3", "abc", "", "inf", "nan"], dtype=object)
    parsed = REGRESSION.parse_labels(raw, regression_spec)
    assert parsed.failed.tolist() == [False, False, False, True, True, True, True]
    assert parsed.values[:3].tolist() == [12.0, -0.5, 1200.0]
    assert parsed.reasons[0] == "defaulted: 'abc' is not a label; expected a finite number, such as 12, -0.5 or 1.2e3"
    assert parsed.reasons[1] == "defaulted: the label is missing; expected a finite number, such as 12, -0.5 or 1.2e3"


class _Shuffled:
    """A fitted classifier whose classes come in another order than the spec's, one of them never seen."""

    classes_ = np.array(["class_2", "class_0"])

    def predict_proba(self, inputs: pd.DataFrame) -> np.ndarray:
        return np.array([[0.7, 0.3], [0.1, 0.9]])


def test_multiclass_outputs_follow_the_spec_class_order_and_predictions_carry_each_class(multiclass_spec):
    proba = MULTICLASS.outputs(_Shuffled(), pd.DataFrame({"x": [1, 2]}), multiclass_spec)
    assert proba.tolist() == [[0.3, 0.0, 0.7], [0.9, 0.0, 0.1]]
    columns = MULTICLASS.prediction_columns(proba, multiclass_spec)
    assert columns["score"].tolist() == [0.7, 0.9]
    assert columns["predicted_label"].to_pylist() == ["class_2", "class_0"]
    assert [json.loads(text) for text in columns["class_probabilities"].to_pylist()] == [
        {"class_0": 0.3, "class_1": 0.0, "class_2": 0.7},
        {"class_0": 0.9, "class_1": 0.0, "class_2": 0.1},
    ]


def test_multiclass_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 400)
    proba = rng.dirichlet([1, 1, 1], 400)
    proba[np.arange(400), labels] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    values = {name: metric_value(name, labels, proba, MULTICLASS) for name in MULTICLASS.metrics}
    assert values["log_loss"] == pytest.approx(skm.log_loss(labels, proba))
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(labels, proba.argmax(axis=1)))
    assert values["macro_f1"] == pytest.approx(skm.f1_score(labels, proba.argmax(axis=1), average="macro"))
    assert values["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(labels, proba, multi_class="ovr"))
    assert metric_value("roc_auc_ovr", np.zeros(5, dtype=int), proba[:5], MULTICLASS) is None


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(4)
    labels = rng.normal(100, 20, 300)
    predicted = labels + rng.normal(0, 5, 300)
    assert metric_value("rmse", labels, predicted, REGRESSION) == pytest.approx(
        np.sqrt(skm.mean_squared_error(labels, predicted))
    )
    assert metric_value("mae", labels, predicted, REGRESSION) == pytest.approx(
        skm.mean_absolute_error(labels, predicted)
    )
    assert metric_value("r2", labels, predicted, REGRESSION) == pytest.approx(skm.r2_score(labels, predicted))
    assert metric_value("r2", np.ones(4), np.ones(4), REGRESSION) is None


def _evaluation(value: float, slice_value: float) -> dict[str, Any]:
    return {"value": value, "rows": 500, "slices": {"home_ownership=RENT": {"value": slice_value, "rows": 200}}}


def test_a_lower_is_better_gate_reads_the_floor_as_a_ceiling_and_gains_as_decreases(regression_spec):
    assert decide(regression_spec, _evaluation(0.7, 0.7), None).promote is False
    first = decide(regression_spec, _evaluation(0.5, 0.5), None)
    assert (
        first.promote and first.reasons[0] == "rmse 0.5000 meets the ceiling (lower is better) 0.6000 (promotion.floor)"
    )
    better = decide(regression_spec, _evaluation(0.45, 0.45), _evaluation(0.5, 0.46))
    assert better.promote, better.reasons
    assert "change +0.0500" in better.reasons[1]
    too_little = decide(regression_spec, _evaluation(0.495, 0.49), _evaluation(0.5, 0.49))
    assert not too_little.promote and "below the required +0.0100" in too_little.reasons[1]
    slice_worse = decide(regression_spec, _evaluation(0.45, 0.55), _evaluation(0.5, 0.50))
    assert not slice_worse.promote
    assert "slice home_ownership=RENT: rmse 0.5500 vs champion 0.5000 regresses by 0.0500" in slice_worse.reasons[2]


def _wine_frame(spec: Any) -> pd.DataFrame:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = pd.DataFrame(
        {name: data.frame[column] for name, column in zip(spec.feature_names, data.frame.columns, strict=False)}
    )
    for name, feature in spec.features.items():
        if feature.type == "category":
            frame[name] = np.asarray(feature.categories)[np.arange(len(frame)) % len(feature.categories)]
    frame[spec.target.column] = np.asarray(WINE_CLASSES, dtype=object)[data.target]
    return frame


def _training(frame: pd.DataFrame) -> TrainingSet:
    import datetime as dt

    day = dt.date(2026, 10, 1)
    holdout = frame.sample(frac=0.3, random_state=1)
    return TrainingSet(frame.drop(holdout.index), holdout, day, day, [day], [day])


def test_a_multiclass_pipeline_trains_evaluates_and_samples_its_reference(multiclass_spec):
    frame = _wine_frame(multiclass_spec)
    training = _training(frame)
    model = fit_candidate(multiclass_spec, training, "sklearn.linear_model.LogisticRegression", {"max_iter": 500})
    proba = outputs(model, training.holdout, multiclass_spec)
    assert proba.shape == (len(training.holdout), 3) and np.allclose(proba.sum(axis=1), 1.0)
    evaluation = evaluate_scores(multiclass_spec, training.holdout, proba)
    assert evaluation["metric"] == "macro_f1" and evaluation["value"] > 0.8
    assert set(evaluation["metrics"]) == {"log_loss", "accuracy", "macro_f1", "roc_auc_ovr"}
    sample = reference_sample(training.train, multiclass_spec, outputs(model, training.train, multiclass_spec), seed=1)
    assert set(sample["predicted_label"]) <= set(WINE_CLASSES) and sample["score"].between(1 / 3, 1).all()
    assert kind_of(multiclass_spec).prediction_drift.column == "predicted_label"


def test_a_multiclass_recipe_refuses_labels_outside_its_classes_and_regressors(multiclass_spec):
    frame = _wine_frame(multiclass_spec)
    frame.loc[frame.index[:3], "defaulted"] = "class_9"
    with pytest.raises(
        TrainingDataError, match=r"the training labels hold \['class_9'\], which target.classes does not"
    ):
        fit_candidate(multiclass_spec, _training(frame))
    with pytest.raises(TrainingDataError, match=r"sklearn.linear_model.Ridge is not a classifier"):
        fit_candidate(multiclass_spec, _training(_wine_frame(multiclass_spec)), "sklearn.linear_model.Ridge", {})


def test_a_regressor_trains_and_its_predictions_are_the_values(regression_spec):
    frame = _wine_frame(regression_spec).drop(columns="defaulted")
    frame["defaulted"] = frame["age"] * 2.0 + frame["annual_income"] * 0.5
    training = _training(frame)
    model = fit_candidate(regression_spec, training)
    predicted = outputs(model, training.holdout, regression_spec)
    assert predicted.shape == (len(training.holdout),)
    assert evaluate_scores(regression_spec, training.holdout, predicted)["metrics"]["r2"] > 0.95
    assert REGRESSION.prediction_columns(predicted, regression_spec)["score"].tolist() == predicted.tolist()
    with pytest.raises(TrainingDataError, match=r"LogisticRegression is not a regressor"):
        fit_candidate(regression_spec, training, "sklearn.linear_model.LogisticRegression")


def test_binary_text_labels_name_both_classes(demo_spec):
    target = demo_spec.target.model_copy(update={"positive_label": "malignant", "negative_label": "benign"})
    spec = demo_spec.model_copy(update={"target": target})
    parsed = kind_of(spec).parse_labels(pd.Series(["Malignant", " benign", "1", "unknown"], dtype=object), spec)
    assert parsed.values[:3].tolist() == [1, 0, 1] and parsed.failed.tolist() == [False, False, False, True]
    assert parsed.reasons[0].endswith("or the positive label 'malignant', or the negative label 'benign')")
