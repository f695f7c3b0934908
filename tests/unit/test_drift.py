from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nightshift.config import PROJECT_ROOT, FeatureDrift, ModelSpec, load_spec
from nightshift.stages.drift.measure import DriftResult, compute_drift, latest_pointer, render_index

P_VALUE_METHODS = {"ks", "chisquare"}
ROWS = 4000


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(PROJECT_ROOT / "include" / "models" / "credit_risk.yaml")


def make_frame(
    n: int,
    seed: int,
    *,
    loan_shift: float = 0.0,
    credit_shift: float = 0.0,
    home_p: tuple[float, float, float] = (0.4, 0.2, 0.4),
    score_shift: float = 0.0,
    dti_scale: float = 1.0,
    income_shift: float = 0.0,
    age_shift: int = 0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    employment = rng.exponential(6, n)
    employment[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "application_id": np.arange(n),
            "application_ts": pd.Timestamp("2026-10-01"),
            "age": rng.integers(18, 80, n) + age_shift,
            "annual_income": rng.lognormal(10.8 + income_shift, 0.5, n),
            "loan_amount": rng.lognormal(9.5 + loan_shift, 0.8, n),
            "loan_term_months": rng.choice([12, 24, 36, 60], n),
            "credit_score": rng.normal(680 + credit_shift, 60, n).round().astype(int),
            "debt_to_income": rng.gamma(2, 0.2 * dti_scale, n),
            "employment_years": employment,
            "open_accounts": rng.poisson(6, n),
            "home_ownership": rng.choice(["RENT", "OWN", "MORTGAGE"], n, p=list(home_p)),
            "purpose": rng.choice(["car", "home", "education", "business", "debt_consolidation"], n),
            "score": np.clip(rng.beta(2, 8, n) + score_shift, 0.0, 1.0),
        }
    )


def run(reference: pd.DataFrame, current: pd.DataFrame, spec: ModelSpec, **kwargs: Any) -> DriftResult:
    kwargs.setdefault("model_version", "7")
    return compute_drift(reference, current, spec, model="credit_risk", dt="2026-10-05", **kwargs)


def with_drift(spec: ModelSpec, **changes: Any) -> ModelSpec:
    return spec.model_copy(update={"drift": spec.drift.model_copy(update=changes)})


def rule_says_drift(method: str, score: float, threshold: float) -> bool:
    return score < threshold if method in P_VALUE_METHODS else score >= threshold


def by_name(result: DriftResult) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in result.summary["features"]}


def only_builtin_types(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_builtin_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_builtin_types(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(ROWS, seed=1)


@pytest.fixture(scope="module")
def unshifted(reference: pd.DataFrame, spec: ModelSpec) -> DriftResult:
    return run(reference, make_frame(ROWS, seed=2), spec)


@pytest.fixture(scope="module")
def loan_shifted(reference: pd.DataFrame, spec: ModelSpec) -> DriftResult:
    return run(reference, make_frame(ROWS, seed=3, loan_shift=1.5), spec)


def test_unshifted_pair_has_no_drift(unshifted: DriftResult) -> None:
    summary = unshifted.summary
    assert summary["drifted_features"] == []
    assert summary["critical_drifted"] == []
    assert summary["drift_share"] == 0.0
    assert summary["dataset_drift"] is False
    assert summary["prediction"]["drifted"] is False
    for row in summary["features"]:
        assert row["drifted"] is False
        assert row["score"] is not None and row["score"] < row["threshold"]


def test_big_numeric_shift_marks_exactly_that_feature_under_psi(loan_shifted: DriftResult) -> None:
    summary = loan_shifted.summary
    assert summary["drifted_features"] == ["loan_amount"]
    row = by_name(loan_shifted)["loan_amount"]
    assert row["method"] == "psi"
    assert row["drifted"] is True
    assert row["score"] >= row["threshold"] == 0.1
    assert summary["drift_share"] == pytest.approx(1 / 10)
    assert summary["dataset_drift"] is False
    assert summary["critical_drifted"] == []


def test_categorical_shift_is_detected(reference: pd.DataFrame, spec: ModelSpec) -> None:
    result = run(reference, make_frame(ROWS, seed=4, home_p=(0.05, 0.05, 0.9)), spec)
    assert result.summary["drifted_features"] == ["home_ownership"]
    row = by_name(result)["home_ownership"]
    assert row["score"] >= row["threshold"]


def test_spec_methods_thresholds_and_critical_flags_show_up(unshifted: DriftResult, spec: ModelSpec) -> None:
    rows = by_name(unshifted)
    assert list(rows) == spec.feature_names
    assert rows["credit_score"]["method"] == "wasserstein"
    assert {name: row["method"] for name, row in rows.items() if name != "credit_score"} == dict.fromkeys(
        set(rows) - {"credit_score"}, "psi"
    )
    assert {name for name, row in rows.items() if row["critical"]} == {"credit_score", "debt_to_income"}
    assert unshifted.summary["prediction"]["method"] == "psi"
    assert unshifted.summary["prediction"]["threshold"] == 0.1


def test_critical_feature_drift_is_listed(reference: pd.DataFrame, spec: ModelSpec) -> None:
    result = run(reference, make_frame(ROWS, seed=5, credit_shift=40), spec)
    row = by_name(result)["credit_score"]
    assert row["method"] == "wasserstein" and row["drifted"] is True and row["score"] >= 0.1
    assert result.summary["critical_drifted"] == ["credit_score"]


def test_verdicts_follow_each_methods_rule(reference: pd.DataFrame, spec: ModelSpec) -> None:
    methods = {
        "age": "ks",
        "annual_income": "jensenshannon",
        "loan_amount": "hellinger",
        "loan_term_months": "kl_div",
        "credit_score": "wasserstein",
        "debt_to_income": "psi",
        "home_ownership": "chisquare",
        "purpose": "jensenshannon",
    }
    thresholds = {"age": 0.05, "home_ownership": 0.05}
    custom = with_drift(
        spec,
        features={
            name: FeatureDrift(method=method, threshold=thresholds.get(name)) for name, method in methods.items()
        },
    )
    shifted = make_frame(
        ROWS, seed=6, age_shift=5, income_shift=0.8, loan_shift=1.5, credit_shift=40, home_p=(0.1, 0.1, 0.8)
    )
    seen: set[tuple[str, bool]] = set()
    for current in (make_frame(ROWS, seed=2), shifted):
        result = run(reference, current, custom)
        for row in result.summary["features"]:
            assert row["method"] == methods.get(row["feature"], "psi")
            assert row["drifted"] is rule_says_drift(row["method"], row["score"], row["threshold"]), row
            seen.add((row["method"], row["drifted"]))
    for method in ("ks", "chisquare", "wasserstein", "hellinger", "jensenshannon"):
        assert (method, True) in seen and (method, False) in seen, method


def test_many_drifted_features_mean_dataset_drift(reference: pd.DataFrame, spec: ModelSpec) -> None:
    current = make_frame(ROWS, seed=7, loan_shift=1.5, credit_shift=40, dti_scale=2.0, home_p=(0.05, 0.05, 0.9))
    summary = run(reference, current, spec).summary
    assert set(summary["drifted_features"]) == {"loan_amount", "credit_score", "debt_to_income", "home_ownership"}
    assert summary["drift_share"] == pytest.approx(0.4)
    assert summary["dataset_drift"] is True
    assert summary["critical_drifted"] == ["credit_score", "debt_to_income"]


def test_prediction_drift_is_reported_apart_from_features(reference: pd.DataFrame, spec: ModelSpec) -> None:
    summary = run(reference, make_frame(ROWS, seed=8, score_shift=0.3), spec).summary
    assert summary["prediction"]["drifted"] is True
    assert summary["prediction"]["score"] >= 0.1
    assert summary["drifted_features"] == []
    assert summary["drift_share"] == 0.0


def test_prediction_is_none_without_the_column(reference: pd.DataFrame, spec: ModelSpec) -> None:
    current = make_frame(ROWS, seed=2)
    assert run(reference.drop(columns="score"), current, spec).summary["prediction"] is None
    assert run(reference, current, spec, prediction_column=None).summary["prediction"] is None


def test_same_inputs_give_identical_summary_and_sampling_is_recorded(spec: ModelSpec) -> None:
    small = with_drift(spec, sample_size=1000, seed=3)
    reference, current = make_frame(6000, seed=11), make_frame(5000, seed=12, loan_shift=0.4)
    first = run(reference, current, small).summary
    second = run(reference, current, small).summary
    assert first == second
    assert first["reference_rows"] == 6000 and first["current_rows"] == 5000
    assert first["sample"] == {"size": 1000, "seed": 3, "reference_sampled": 1000, "current_sampled": 1000}
    other_seed = run(reference, current, with_drift(small, seed=4)).summary
    assert [r["score"] for r in other_seed["features"]] != [r["score"] for r in first["features"]]


def test_frames_smaller_than_the_sample_are_used_whole(unshifted: DriftResult) -> None:
    assert unshifted.summary["sample"] == {
        "size": 20000,
        "seed": 7,
        "reference_sampled": ROWS,
        "current_sampled": ROWS,
    }


def test_summary_is_plain_json(loan_shifted: DriftResult) -> None:
    summary = loan_shifted.summary
    assert only_builtin_types(summary)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    assert set(summary) == {
        "model",
        "dt",
        "model_version",
        "reference_rows",
        "current_rows",
        "sample",
        "features",
        "prediction",
        "drifted_features",
        "drift_share",
        "dataset_drift",
        "critical_drifted",
        "evidently_version",
    }
    assert summary["model"] == "credit_risk" and summary["dt"] == "2026-10-05" and summary["model_version"] == "7"
    assert re.fullmatch(r"0\.7\.\d+", summary["evidently_version"])


def test_html_and_report_json(loan_shifted: DriftResult, spec: ModelSpec) -> None:
    assert len(loan_shifted.html) > 100_000
    assert loan_shifted.html.lstrip().lower().startswith("<!doctype html")
    assert "<title>Drift report: credit_risk 2026-10-05</title>" in loan_shifted.html
    assert "drifted features: loan_amount" in loan_shifted.html
    for name in [*spec.feature_names, "score"]:
        assert name in loan_shifted.html
    assert "application_id" not in loan_shifted.html
    report = json.loads(loan_shifted.report_json)
    columns = {m["config"].get("column") for m in report["metrics"]}
    assert columns >= {*spec.feature_names, "score"}


def test_all_null_nullable_feature_counts_as_drifted(reference: pd.DataFrame, spec: ModelSpec) -> None:
    current = make_frame(ROWS, seed=2)
    current["employment_years"] = np.nan
    summary = run(reference, current, spec).summary
    row = next(r for r in summary["features"] if r["feature"] == "employment_years")
    assert row["score"] is None and row["drifted"] is True
    assert summary["drifted_features"] == ["employment_years"]
    json.dumps(summary, allow_nan=False)


def test_category_and_nullable_dtypes_are_accepted(reference: pd.DataFrame, spec: ModelSpec) -> None:
    current = make_frame(ROWS, seed=2)
    current["home_ownership"] = current["home_ownership"].astype("category")
    current["open_accounts"] = current["open_accounts"].astype("Int64")
    assert run(reference, current, spec).summary["drifted_features"] == []


def test_missing_feature_column_is_rejected(reference: pd.DataFrame, spec: ModelSpec) -> None:
    with pytest.raises(ValueError, match="credit_score"):
        run(reference, make_frame(100, seed=2).drop(columns="credit_score"), spec)


def test_numeric_feature_given_as_text_is_rejected(reference: pd.DataFrame, spec: ModelSpec) -> None:
    current = make_frame(100, seed=2)
    current["age"] = current["age"].astype(str)
    with pytest.raises(ValueError, match="age"):
        run(reference, current, spec)


def test_method_that_does_not_fit_the_column_type_is_rejected(reference: pd.DataFrame, spec: ModelSpec) -> None:
    bad = with_drift(spec, features={"purpose": FeatureDrift(method="wasserstein")})
    with pytest.raises(ValueError, match="purpose"):
        run(reference, make_frame(100, seed=2), bad)


def night(dt: str, **overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "model": "credit_risk",
        "dt": dt,
        "model_version": "3",
        "features": [{"feature": f"f{i}"} for i in range(10)],
        "prediction": {"method": "psi", "threshold": 0.1, "score": 0.01, "drifted": False},
        "drifted_features": [],
        "drift_share": 0.0,
        "dataset_drift": False,
        "critical_drifted": [],
        "report_html": f"dt={dt}/report.html",
        "report_json": f"dt={dt}/report.json",
    }
    summary.update(overrides)
    return summary


def test_index_lists_every_night_newest_first(loan_shifted: DriftResult) -> None:
    nights = [
        night("2026-10-02"),
        {**loan_shifted.summary, "report_html": "dt=2026-10-05/report.html", "report_json": "dt=2026-10-05/s.json"},
        night("2026-10-01"),
        night("2026-10-03", dataset_drift=True, drift_share=0.4, drifted_features=["a", "b", "c", "d"]),
    ]
    page = render_index(nights, "credit_risk")
    positions = [page.index(f"<td>{dt}</td>") for dt in ("2026-10-05", "2026-10-03", "2026-10-02", "2026-10-01")]
    assert positions == sorted(positions)
    assert page.count('<tr class="drifted">') == 1
    assert page.count("<tr>") - 1 == 3
    for dt in ("2026-10-05", "2026-10-03", "2026-10-02", "2026-10-01"):
        assert f'href="dt={dt}/report.html"' in page
    assert 'href="dt=2026-10-05/s.json"' in page
    assert "loan_amount" in page
    assert "10%" in page and "40%" in page


def test_index_highlights_critical_and_prediction_drift() -> None:
    page = render_index(
        [
            night("2026-10-01", critical_drifted=["f1"], drifted_features=["f1"], drift_share=0.1),
            night("2026-10-02", prediction={"method": "psi", "threshold": 0.1, "score": 0.4, "drifted": True}),
            night("2026-10-03", prediction=None),
        ],
        "credit_risk",
    )
    assert page.count('<tr class="drifted">') == 2
    assert '<span class="critical" title="critical feature">f1</span>' in page
    assert "yes (psi 0.400)" in page


def test_index_escapes_everything() -> None:
    evil = night(
        "2026-10-01<script>",
        model_version="<script>alert(1)</script>",
        drifted_features=['"><img src=x onerror=alert(1)>'],
        report_html='x" onmouseover="alert(1)',
        report_json="javascript:alert(1)",
    )
    page = render_index([evil], "<b>model</b>")
    assert "<script>" not in page
    assert "<img" not in page
    assert "<b>model</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;model&lt;/b&gt;" in page
    assert 'href="x&quot; onmouseover=&quot;alert(1)"' in page
    assert "javascript:" not in page


def test_index_without_nights() -> None:
    page = render_index([], "credit_risk")
    assert "credit_risk" in page and "No nights" in page


def test_latest_pointer_picks_the_newest_night() -> None:
    nights = [night("2026-10-02"), night("2026-10-10"), night("2026-10-09")]
    pointer = latest_pointer(nights, "credit_risk")
    assert pointer["model"] == "credit_risk"
    assert pointer["dt"] == "2026-10-10"
    assert pointer["summary"] is nights[1]
    assert pointer["report_html"] == "dt=2026-10-10/report.html"
    assert pointer["nights"] == 3
    json.dumps(pointer, allow_nan=False)


def test_latest_pointer_without_nights() -> None:
    assert latest_pointer([], "credit_risk") == {
        "model": "credit_risk",
        "dt": None,
        "summary": None,
        "report_html": None,
        "nights": 0,
        "unscored": [],
        "re_measured": [],
        "data_quality_flagged": None,
    }


def test_unscored_nights_are_named_with_reason_and_command_and_late_ones_marked() -> None:
    reason, command = "no champion yet: <b>nothing</b> scored", "nightshift score-backlog --model credit_risk"
    unscored = {"reason": reason, "command": command, "when": "the first nightly run that finds a champion scores it"}
    nights = [
        {"model": "credit_risk", "dt": "2026-10-01", "skipped": reason, "unscored": unscored},
        night("2026-10-02", scored_late={"reason": reason, "unscored_by": "a", "scored_by": "b"}),
        night("2026-10-03"),
    ]
    page = render_index(nights, "credit_risk")
    assert "1 night(s) have no predictions and no drift report yet: 2026-10-01" in page
    assert f"<code>{command}</code>" in page and "<b>nothing</b>" not in page
    assert "not scored: no champion yet: &lt;b&gt;nothing&lt;/b&gt; scored" in page
    assert page.count("(scored late)") == 1
    pointer = latest_pointer(nights, "credit_risk")
    assert pointer["dt"] == "2026-10-03"
    assert pointer["unscored"] == [{"dt": "2026-10-01", **unscored}]


def measurement(at: str, version: str | None, revision: str | None = None, run_id: str = "r") -> dict[str, Any]:
    return {
        "run_id": run_id,
        "run_type": "manual",
        "measured_at": f"{at}T09:00:00+00:00",
        "model_version": version,
        "revision": revision,
        "scored": version is not None,
    }


def test_re_measured_nights_name_both_versions_and_link_the_first_report() -> None:
    history = [measurement("2026-11-20", "1", "R1"), measurement("2026-11-25", None, "R2")]
    nights = [
        night("2026-10-01", model_version="4", measurements=[*history, measurement("2026-12-01", "4")]),
        night("2026-10-02", model_version="1", measurements=[history[0], measurement("2026-12-01", "1")]),
        night("2026-10-03", measurements=[measurement("2026-10-03", "3")]),
        night("2026-10-04", model_version="2", measurements=[history[1], measurement("2026-12-01", "2")]),
    ]
    page = render_index(nights, "credit_risk")
    assert (
        're-measured 2026-12-01 against v4; <a href="dt=2026-10-01/rev=R1/report.html">first measured against v1</a>'
    ) in page
    assert (
        're-measured 2026-12-01 (v1 again); <a href="dt=2026-10-02/rev=R1/report.html">first measured 2026-11-20</a>'
    ) in page
    assert "measured 2026-12-01 against v2; not scored before" in page
    assert page.count('class="remeasured"') == 3
    assert "2026-11-25T09:00:00+00:00 run r: not scored" in page
    pointer = latest_pointer(nights, "credit_risk")
    assert [(item["dt"], item["runs"], item["first_model_version"]) for item in pointer["re_measured"]] == [
        ("2026-10-01", 3, "1"),
        ("2026-10-02", 2, "1"),
        ("2026-10-04", 2, None),
    ]


def test_a_night_not_scored_names_no_version_even_when_re_run() -> None:
    reason = "no champion yet"
    unscored = {"reason": reason, "command": "c", "when": "later"}
    skipped = {"model": "credit_risk", "dt": "2026-10-01", "skipped": reason, "unscored": unscored}
    twice = [measurement("2026-11-20", None, "R1"), measurement("2026-12-01", None)]
    page = render_index([{**skipped, "model_version": "7", "measurements": twice}], "credit_risk")
    [row] = [line for line in page.splitlines() if line.startswith("<tr><td>2026-10-01")]
    assert '<td><span class="muted">not scored</span></td>' in row
    assert "7" not in row.replace("2026-10-01", "") and "re-run 2026-12-01: not scored; still not scored" in row


def test_the_re_measured_mark_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    history = [measurement("2026-11-20", evil, 'R" onclick="x', run_id=evil), measurement("2026-12-01", "2")]
    page = render_index([night("2026-10-01", model_version="2", measurements=history)], "credit_risk")
    assert "<script>" not in page and 'onclick="x' not in page
    assert "first measured against v&lt;script&gt;" in page


def test_index_shows_the_kind_and_the_champion_holdout_metrics_gate_first() -> None:
    holdout = {"gate_metric": "rmse", "metrics": {"mae": 31.5, "r2": 0.412, "rmse": 40.25}}
    page = render_index([night("2026-10-01", task="regression", champion_holdout=holdout)], "diabetes_progression")
    assert "A regression model" in page
    assert "<strong>rmse 40.250</strong> · mae 31.500 · r2 0.412" in page
