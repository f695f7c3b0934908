"""Live performance math: realized metrics per slice with label coverage, the kinds' stored outputs and calibrations,
and CBPE estimates with their bands, against figures worked out by hand or by another route."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from nightshift.config import TASKS, ModelSpec, load_spec
from nightshift.kinds import BINARY, KINDS, MULTICLASS, REGRESSION
from nightshift.stages.performance.estimate import (
    calibration_arrays,
    calibration_frame,
    estimate_metrics,
)
from nightshift.stages.performance.realized import realized_metrics
from nightshift.task_rules import LOWER_IS_BETTER
from tests.unit.test_config import write_spec

CLASSES = ["class_0", "class_1", "class_2"]


def _binary(raw: dict[str, Any]) -> None:
    raw["performance"] = {"threshold": 0.4}
    raw["promotion"]["slices"].append({"column": "purpose"})


def _multiclass(raw: dict[str, Any]) -> None:
    raw.update(task="multiclass")
    raw["target"].pop("positive_label")
    raw["target"]["classes"] = CLASSES
    raw["promotion"] = {"metric": "macro_f1", "floor": 0.3}


def _regression(raw: dict[str, Any]) -> None:
    raw.update(task="regression")
    raw["target"].pop("positive_label")
    raw["training"]["estimator"] = "sklearn.linear_model.Ridge"
    raw["training"]["params"] = {}
    raw["promotion"] = {"metric": "rmse", "floor": 10.0}
    raw.pop("performance", None)


@pytest.fixture
def binary_spec(tmp_path: Path) -> ModelSpec:
    return load_spec(write_spec(tmp_path, "loan_default", _binary))


@pytest.fixture
def multiclass_spec(tmp_path: Path) -> ModelSpec:
    return load_spec(write_spec(tmp_path, "loan_grade", _multiclass))


@pytest.fixture
def regression_spec(tmp_path: Path) -> ModelSpec:
    return load_spec(write_spec(tmp_path, "loan_loss", _regression))


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["slice"], row["metric"]): row for row in rows}


# e9 and e10 (MORTGAGE) have no label; e99's label has no prediction; e5's first label is overwritten by its last.
NIGHT = pd.DataFrame(
    [
        ("e1", 0.95, "RENT", "home", 1),
        ("e2", 0.91, "RENT", "home", 1),
        ("e3", 0.72, "RENT", "car", 0),
        ("e4", 0.61, "OWN", "home", 1),
        ("e5", 0.44, "OWN", "car", 0),
        ("e6", 0.38, "RENT", "home", 1),
        ("e7", 0.32, "OWN", "home", 0),
        ("e8", 0.05, "RENT", "home", 0),
        ("e9", 0.65, "MORTGAGE", "home", None),
        ("e10", 0.35, "MORTGAGE", "home", None),
    ],
    columns=["entity_id", "score", "home_ownership", "purpose", "label"],
)


def _night_labels() -> pd.DataFrame:
    arrived = NIGHT.dropna(subset=["label"])[["entity_id", "label"]].astype({"label": int})
    early = pd.DataFrame({"entity_id": ["e5", "e99"], "label": [1, 1]})
    return pd.concat([early, arrived], ignore_index=True)


def _pairwise_auc(positives: list[float], negatives: list[float]) -> float:
    """The share of (positive, negative) pairs the score orders correctly."""
    return sum(p > n for p in positives for n in negatives) / (len(positives) * len(negatives))


def test_binary_realized_metrics_overall_match_the_hand_worked_figures(binary_spec):
    rows = realized_metrics(
        binary_spec,
        NIGHT[["entity_id", "score"]],
        _night_labels(),
        NIGHT[["entity_id", "home_ownership", "purpose"]],
    )
    overall = {key[1]: row for key, row in _by_key(rows).items() if key[0] == ""}
    assert list(overall) == list(TASKS["binary"].live_metrics)
    assert {(row["rows"], row["labelled_rows"], row["coverage"]) for row in overall.values()} == {(10, 8, 0.8)}
    value = {name: row["value"] for name, row in overall.items()}
    # threshold 0.4: e1 e2 e3 e4 e5 positive -> TP 3 (e1 e2 e4), FP 2 (e3 e5), FN 1 (e6), TN 2 (e7 e8)
    assert value["precision"] == pytest.approx(3 / 5)
    assert value["recall"] == pytest.approx(3 / 4)
    assert value["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert value["accuracy"] == pytest.approx(5 / 8)
    assert value["roc_auc"] == pytest.approx(13 / 16)
    assert value["roc_auc"] == pytest.approx(_pairwise_auc([0.95, 0.91, 0.61, 0.38], [0.72, 0.44, 0.32, 0.05]))
    # ranked: 1 1 0 1 0 1 0 0 -> precision where each positive is met: 1/1, 2/2, 3/4, 4/6
    assert value["average_precision"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)
    chances = [0.95, 0.91, 1 - 0.72, 0.61, 1 - 0.44, 0.38, 1 - 0.32, 1 - 0.05]
    assert value["log_loss"] == pytest.approx(-sum(math.log(p) for p in chances) / 8)
    # bins [0.9,1): 0.95 0.91 both 1 -> |1 - 0.93| x2; 0.72 (0); 0.61 (1); 0.44 (0); [0.3,0.4): 0.38 (1) 0.32 (0)
    # -> |0.5 - 0.35| x2; 0.05 (0)
    gaps = 2 * 0.07 + 0.72 + 0.39 + 0.44 + 2 * 0.15 + 0.05
    assert value["calibration_error"] == pytest.approx(gaps / 8)


def test_binary_realized_metrics_per_slice_with_coverage_and_unlabelled_levels(binary_spec):
    rows = realized_metrics(
        binary_spec,
        NIGHT[["entity_id", "score"]],
        _night_labels(),
        NIGHT[["entity_id", "home_ownership", "purpose"]],
    )
    by_key = _by_key(rows)
    slices = list(dict.fromkeys(row["slice"] for row in rows))
    assert slices == [
        "",
        "home_ownership=MORTGAGE",
        "home_ownership=OWN",
        "home_ownership=RENT",
        "purpose=car",
        "purpose=home",
    ]
    assert len(rows) == len(slices) * len(TASKS["binary"].live_metrics)

    rent = {metric: by_key["home_ownership=RENT", metric] for metric in ("precision", "recall", "accuracy", "roc_auc")}
    # RENT: 0.95 (1) 0.91 (1) 0.72 (0) 0.38 (1) 0.05 (0): TP 2, FP 1, FN 1, TN 1
    assert [rent[name]["value"] for name in rent] == pytest.approx([2 / 3, 2 / 3, 3 / 5, 5 / 6])
    assert (rent["accuracy"]["rows"], rent["accuracy"]["labelled_rows"]) == (5, 5)

    own = by_key["home_ownership=OWN", "recall"]
    assert (own["value"], own["rows"], own["coverage"]) == (1.0, 3, 1.0)
    assert by_key["home_ownership=OWN", "precision"]["value"] == pytest.approx(1 / 2)

    mortgage = [row for row in rows if row["slice"] == "home_ownership=MORTGAGE"]
    assert {(row["value"], row["rows"], row["labelled_rows"], row["coverage"]) for row in mortgage} == {
        (None, 2, 0, 0.0)
    }

    car = {row["metric"]: row["value"] for row in rows if row["slice"] == "purpose=car"}
    assert car["roc_auc"] is None and car["average_precision"] is None and car["recall"] is None
    assert car["precision"] == 0.0 and car["accuracy"] == 0.0
    home = by_key["purpose=home", "accuracy"]
    # home labelled: e1 e2 e4 right, e6 missed, e7 e8 right -> 5 of 6; e9 e10 unlabelled
    assert (home["value"], home["rows"], home["labelled_rows"], home["coverage"]) == pytest.approx((5 / 6, 8, 6, 6 / 8))


def test_realized_metrics_without_slices_or_rows(binary_spec):
    rows = realized_metrics(binary_spec, NIGHT[["entity_id", "score"]], _night_labels())
    assert {row["slice"] for row in rows} == {""}
    partial = NIGHT[NIGHT["entity_id"] != "e10"][["entity_id", "home_ownership", "purpose"]]
    by_key = _by_key(realized_metrics(binary_spec, NIGHT[["entity_id", "score"]], _night_labels(), partial))
    assert (by_key["", "accuracy"]["rows"], by_key["home_ownership=MORTGAGE", "accuracy"]["rows"]) == (10, 1)
    empty = realized_metrics(binary_spec, NIGHT.iloc[:0][["entity_id", "score"]], _night_labels(), NIGHT.iloc[:0])
    assert {(row["slice"], row["value"], row["rows"], row["labelled_rows"], row["coverage"]) for row in empty} == {
        ("", None, 0, 0, 0.0)
    }


def test_regression_realized_metrics_match_the_hand_worked_figures(regression_spec):
    predictions = pd.DataFrame({"entity_id": ["a", "b", "c", "d", "e"], "score": [2.5, 5.0, 4.0, 8.0, 1.0]})
    labels = pd.DataFrame({"entity_id": ["a", "b", "c", "d"], "label": [3.0, 5.0, 2.0, 7.0]})
    value = {row["metric"]: row for row in realized_metrics(regression_spec, predictions, labels)}
    # errors 0.5, 0, -2, -1; labels' mean 4.25
    assert value["rmse"]["value"] == pytest.approx(math.sqrt((0.25 + 0 + 4 + 1) / 4))
    assert value["mae"]["value"] == pytest.approx((0.5 + 0 + 2 + 1) / 4)
    total = 1.25**2 + 0.75**2 + 2.25**2 + 2.75**2
    assert value["r2"]["value"] == pytest.approx(1 - 5.25 / total)
    assert value["r2"]["coverage"] == pytest.approx(4 / 5)


def _probabilities_text(values: list[float]) -> str:
    return json.dumps(dict(zip(CLASSES, values, strict=True)))


def test_multiclass_realized_metrics_match_the_hand_worked_figures(multiclass_spec):
    proba = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]]
    truth = ["class_0", "class_1", "class_1", "class_2", "class_2", "class_1"]
    predictions = pd.DataFrame(
        {
            "entity_id": [f"m{i}" for i in range(7)],
            "score": [max(row) for row in proba] + [0.5],
            "predicted_label": [CLASSES[int(np.argmax(row))] for row in proba] + ["class_0"],
            "class_probabilities": [_probabilities_text(row) for row in proba] + [_probabilities_text([0.5, 0.3, 0.2])],
        }
    )
    labels = pd.DataFrame({"entity_id": [f"m{i}" for i in range(6)], "label": truth})
    value = {row["metric"]: row for row in realized_metrics(multiclass_spec, predictions, labels)}
    assert list(value) == list(TASKS["multiclass"].live_metrics)
    # predicted 0 1 2 0 2 1 against 0 1 1 2 2 1: four right
    assert value["accuracy"]["value"] == pytest.approx(4 / 6)
    # F1 per class: 2TP / (actual + predicted): class_0 2/3, class_1 4/5, class_2 2/4
    assert value["macro_f1"]["value"] == pytest.approx((2 / 3 + 4 / 5 + 2 / 4) / 3)
    assert value["log_loss"]["value"] == pytest.approx(-sum(map(math.log, [0.7, 0.8, 0.3, 0.1, 0.8, 0.6])) / 6)
    assert (value["accuracy"]["rows"], value["accuracy"]["labelled_rows"]) == (7, 6)


def test_multiclass_stored_outputs_from_json_text(multiclass_spec):
    outputs = np.array([[0.2, 0.5, 0.3], [0.9, 0.0, 0.1]])
    columns = MULTICLASS.prediction_columns(outputs, multiclass_spec)
    frame = pd.DataFrame({"class_probabilities": columns["class_probabilities"].to_pylist()})
    assert np.array_equal(MULTICLASS.stored_outputs(frame, multiclass_spec), outputs)
    shuffled = pd.DataFrame({"class_probabilities": ['{"class_2": 0.25, "class_0": 0.75}']})
    assert MULTICLASS.stored_outputs(shuffled, multiclass_spec).tolist() == [[0.75, 0.0, 0.25]]
    assert MULTICLASS.stored_outputs(frame.iloc[:0], multiclass_spec).shape == (0, 3)
    with pytest.raises(ValueError, match="class_probabilities is missing"):
        MULTICLASS.stored_outputs(pd.DataFrame({"class_probabilities": [None]}), multiclass_spec)


def test_binary_and_regression_stored_outputs_are_the_scores_as_floats(binary_spec, regression_spec):
    scores = pd.DataFrame({"score": np.array([0.25, 0.5], dtype="float32")})
    for kind, spec in ((BINARY, binary_spec), (REGRESSION, regression_spec)):
        outputs = kind.stored_outputs(scores, spec)
        assert outputs.dtype == np.float64 and outputs.tolist() == [0.25, 0.5]


def test_every_kind_reports_its_task_live_metrics_with_their_directions(binary_spec, multiclass_spec, regression_spec):
    for spec in (binary_spec, multiclass_spec, regression_spec):
        kind = KINDS[spec.task]
        live = kind.live_metrics(spec)
        assert tuple(live) == TASKS[spec.task].live_metrics
        assert {name for name, metric in live.items() if not metric.higher_is_better} == set(live) & LOWER_IS_BETTER
        assert kind.estimable == TASKS[spec.task].estimable


def test_regression_is_not_estimable(regression_spec):
    assert REGRESSION.estimable is False
    with pytest.raises(ValueError, match="not estimable"):
        REGRESSION.calibrate(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="not estimable"):
        estimate_metrics(
            regression_spec,
            calibration_frame(np.array([0.2, 0.8]), np.array([0, 1])),
            np.ones(3),
            simulations=20,
            seed=0,
            sample_size=100,
        )


def test_vectorised_metrics_agree_with_scikit_learn_draw_by_draw(binary_spec, multiclass_spec):
    rng = np.random.default_rng(5)
    scores = np.round(rng.random(300), 2)
    draws = (rng.random((6, 300)) < scores).astype(np.int8)
    live = BINARY.live_metrics(binary_spec)
    expected = {
        "roc_auc": skm.roc_auc_score,
        "average_precision": skm.average_precision_score,
        "precision": lambda y, s: skm.precision_score(y, s >= 0.4),
        "recall": lambda y, s: skm.recall_score(y, s >= 0.4),
        "f1": lambda y, s: skm.f1_score(y, s >= 0.4),
        "accuracy": lambda y, s: skm.accuracy_score(y, s >= 0.4),
        "log_loss": skm.log_loss,
    }
    for name, reference in expected.items():
        assert live[name].of_draws(draws, scores) == pytest.approx([reference(y, scores) for y in draws]), name
    proba = rng.dirichlet([1.0, 1.0, 1.0], 300)
    classes = np.stack([(rng.random((300, 1)) > np.cumsum(proba, axis=1)[:, :2]).sum(axis=1) for _ in range(4)])
    multiclass = MULTICLASS.live_metrics(multiclass_spec)
    expected = {
        "accuracy": lambda y, p: skm.accuracy_score(y, p.argmax(axis=1)),
        "macro_f1": lambda y, p: skm.f1_score(y, p.argmax(axis=1), average="macro"),
        "log_loss": lambda y, p: skm.log_loss(y, p, labels=[0, 1, 2]),
        "roc_auc_ovr": lambda y, p: skm.roc_auc_score(y, p, multi_class="ovr"),
    }
    for name, reference in expected.items():
        assert multiclass[name].of_draws(classes, proba) == pytest.approx([reference(y, proba) for y in classes]), name


def test_calibrations_map_outputs_to_label_frequencies_and_draw_from_them():
    rng = np.random.default_rng(3)
    scores = rng.random(20_000)
    labels = (rng.random(20_000) < scores**2).astype(int)
    calibration = BINARY.calibrate(scores, labels)
    grid = np.linspace(0.05, 0.95, 19)
    calibrated = calibration.probabilities(grid)
    assert np.all(np.diff(calibrated) >= 0)
    assert np.mean(np.abs(calibrated - grid**2)) < 0.025
    outside = calibration.probabilities(np.array([-1.0, 2.0]))
    assert outside.tolist() == calibration.probabilities(np.array([0.0, 1.0])).tolist()
    assert 0.0 < outside[0] < calibrated[0] and calibrated[-1] < outside[1] < 1.0
    ones = calibration.draw_labels(np.array([0.1, 0.7]), 20_000, rng).mean(axis=0)
    assert ones == pytest.approx([0.1, 0.7], abs=0.015)

    proba = rng.dirichlet([1.0, 1.0, 1.0], 20_000)
    truth = (rng.random((20_000, 1)) > np.cumsum(proba, axis=1)[:, :2]).sum(axis=1)
    one_vs_rest = MULTICLASS.calibrate(proba, truth)
    fitted = one_vs_rest.probabilities(proba[:5])
    assert fitted.sum(axis=1) == pytest.approx(np.ones(5))
    assert fitted == pytest.approx(proba[:5], abs=0.06)
    drawn = one_vs_rest.draw_labels(np.array([[0.2, 0.5, 0.3]]), 30_000, rng)[:, 0]
    assert np.bincount(drawn, minlength=3) / 30_000 == pytest.approx([0.2, 0.5, 0.3], abs=0.015)


def test_calibration_frames_round_trip():
    outputs, labels = np.array([0.1, 0.9]), np.array([0, 1])
    frame = calibration_frame(outputs, labels)
    assert list(frame.columns) == ["output", "label"]
    back = calibration_arrays(frame)
    assert np.array_equal(back[0], outputs) and np.array_equal(back[1], labels)
    proba = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]])
    frame = calibration_frame(proba, np.array([1, 0]))
    assert list(frame.columns) == ["output_0", "output_1", "output_2", "label"]
    back = calibration_arrays(frame)
    assert np.array_equal(back[0], proba) and back[1].tolist() == [1, 0]
    with pytest.raises(ValueError, match="one label per output row"):
        calibration_frame(outputs, np.array([1]))


def _calibrated_night(rng: np.random.Generator, rows: int, squeeze: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores uniform on [0, 1] (squeezed toward 0.5 by `squeeze`) with labels following them: label ~ Bernoulli(score)."""
    scores = 0.5 + squeeze * (rng.random(rows) - 0.5)
    return scores, (rng.random(rows) < scores).astype(int)


def _known(value: float | None) -> float:
    assert value is not None
    return value


def _realized(spec: ModelSpec, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {name: _known(metric.compute(labels, scores)) for name, metric in BINARY.live_metrics(spec).items()}


def _bands(estimated: dict[str, dict[str, float | None]]) -> dict[str, tuple[float, float, float]]:
    """Each metric's (lower, value, upper)."""
    return {name: (_known(b["lower"]), _known(b["value"]), _known(b["upper"])) for name, b in estimated.items()}


def _estimate(spec: ModelSpec, reference: pd.DataFrame, outputs: np.ndarray, seed: int = 1) -> dict[str, Any]:
    return estimate_metrics(spec, reference, outputs, simulations=200, seed=seed, sample_size=50_000)


def test_binary_estimates_of_a_calibrated_model_hold_the_realized_metrics(binary_spec):
    rng = np.random.default_rng(11)
    reference = calibration_frame(*_calibrated_night(rng, 20_000))
    scores, labels = _calibrated_night(rng, 4000)
    estimated = _estimate(binary_spec, reference, scores)
    realized = _realized(binary_spec, scores, labels)
    assert list(estimated) == list(TASKS["binary"].live_metrics)
    bands = _bands(estimated)
    for name, (lower, value, upper) in bands.items():
        assert lower <= realized[name] <= upper, (name, bands[name], realized[name])
        assert lower < value < upper
    lower, value, upper = bands["accuracy"]
    # uniform calibrated scores: accuracy at 0.4 is E[s; s >= 0.4] + E[1 - s; s < 0.4] = 0.42 + 0.32
    assert value == pytest.approx(0.74, abs=0.02)
    # a row is right with q = s above the threshold, 1 - s below: the band spans about 2 x 1.96 sd of their mean
    right = np.where(scores >= 0.4, scores, 1 - scores)
    assert upper - lower == pytest.approx(2 * 1.96 * math.sqrt(float(np.sum(right * (1 - right)))) / 4000, rel=0.2)
    assert _estimate(binary_spec, reference, scores) == estimated


def test_binary_bands_hold_the_realized_metrics_on_most_calibrated_nights(binary_spec):
    """A 95% band misses now and then (more often as the reference's own noise adds to the night's): over 30 nights,
    each with its own reference, every metric's band must hold the realized figure on at least 23."""
    rng = np.random.default_rng(23)
    held = dict.fromkeys(TASKS["binary"].live_metrics, 0)
    for night in range(30):
        reference = calibration_frame(*_calibrated_night(rng, 10_000))
        scores, labels = _calibrated_night(rng, 2000)
        realized = _realized(binary_spec, scores, labels)
        for name, (lower, _, upper) in _bands(_estimate(binary_spec, reference, scores, seed=night)).items():
            held[name] += lower <= realized[name] <= upper
    assert min(held.values()) >= 23, held


def test_multiclass_estimates_of_a_calibrated_model_hold_the_realized_metrics(multiclass_spec):
    rng = np.random.default_rng(13)

    def night(rows: int) -> tuple[np.ndarray, np.ndarray]:
        proba = rng.dirichlet([1.0, 1.0, 1.0], rows)
        return proba, (rng.random((rows, 1)) > np.cumsum(proba, axis=1)[:, :2]).sum(axis=1)

    reference = calibration_frame(*night(20_000))
    proba, truth = night(4000)
    bands = _bands(_estimate(multiclass_spec, reference, proba, seed=2))
    live = MULTICLASS.live_metrics(multiclass_spec)
    for name in ("accuracy", "macro_f1", "log_loss"):
        realized = _known(live[name].compute(truth, proba))
        assert bands[name][0] <= realized <= bands[name][2], (name, bands[name], realized)


def test_covariate_shift_moves_the_estimate_and_concept_shift_only_the_realized_metric(binary_spec):
    rng = np.random.default_rng(17)
    reference_scores, reference_labels = _calibrated_night(rng, 20_000)
    reference = calibration_frame(reference_scores, reference_labels)
    baseline = _realized(binary_spec, reference_scores, reference_labels)["accuracy"]
    unshifted = _bands(_estimate(binary_spec, reference, _calibrated_night(rng, 4000)[0]))["accuracy"]

    squeezed, squeezed_labels = _calibrated_night(rng, 4000, squeeze=0.3)
    lower, value, upper = _bands(_estimate(binary_spec, reference, squeezed))["accuracy"]
    # scores uniform on [0.35, 0.65]: accuracy at 0.4 is E[s; s >= 0.4] + E[1 - s; s < 0.4], about 0.54, not 0.74
    assert value == pytest.approx(0.54, abs=0.03)
    assert upper < unshifted[0]
    assert lower <= _realized(binary_spec, squeezed, squeezed_labels)["accuracy"] <= upper

    scores = _calibrated_night(rng, 4000)[0]
    unrelated = (rng.random(4000) < 0.5).astype(int)
    lower, value, upper = _bands(_estimate(binary_spec, reference, scores))["accuracy"]
    assert value == pytest.approx(baseline, abs=0.03)
    assert _realized(binary_spec, scores, unrelated)["accuracy"] < lower


def test_estimates_sample_at_most_sample_size_rows_deterministically(binary_spec):
    rng = np.random.default_rng(19)
    calibration = calibration_frame(*_calibrated_night(rng, 3000))
    scores = _calibrated_night(rng, 5000)[0]

    def estimate(seed: int, sample_size: int) -> dict[str, dict[str, float | None]]:
        return estimate_metrics(binary_spec, calibration, scores, simulations=50, seed=seed, sample_size=sample_size)

    assert estimate(4, 500) == estimate(4, 500)
    assert estimate(4, 500) != estimate(5, 500)
    small, full = _bands(estimate(4, 500))["accuracy"], _bands(estimate(4, 5000))["accuracy"]
    assert small[2] - small[0] > 2 * (full[2] - full[0])
    empty = estimate_metrics(binary_spec, calibration, np.empty(0), simulations=20, seed=0, sample_size=100)
    assert list(empty) == list(TASKS["binary"].live_metrics)
    assert list(empty.values()) == [{"value": None, "lower": None, "upper": None}] * len(empty)
