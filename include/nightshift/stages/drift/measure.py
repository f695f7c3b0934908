"""Nightly drift check with Evidently: per-feature methods and thresholds from the model spec.

Plain Python (no Airflow). `compute_drift` samples both sides deterministically, runs one Evidently
report and turns its snapshot into a small JSON-serialisable summary; `render_index` and
`latest_pointer` build the pages analysts open across nights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import evidently
import numpy as np
import pandas as pd
from evidently import ColumnType, DataDefinition, Dataset, Report
from evidently.legacy.calculations.stattests.registry import get_registered_stattest
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from nightshift.config import ModelSpec
from nightshift.kinds import kind_of
from nightshift.pages.index import Href, index_page
from nightshift.pages.report import empty_report, with_header
from nightshift.stores.objects import REVISION_DIR

NUMERIC_TYPES = frozenset({"int", "float"})
_DRIFTED = "FAIL"
_NOT_DRIFTED = "SUCCESS"


@dataclass
class DriftResult:
    summary: dict[str, Any]
    html: str
    report_json: str


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: ModelSpec,
    *,
    model: str,
    dt: str,
    model_version: str | None,
    prediction_column: str | None = "score",
    current_rows: int | None = None,
    data_quality: dict[str, Any] | None = None,
) -> DriftResult:
    """Compare `current` with `reference` on the spec's features, plus the prediction column when both sides have it
    (numeric unless it is the kind's categorical prediction column, e.g. the multiclass `predicted_label`).

    `current_rows` says `current` is already a seeded sample (see `sample_positions`) of a night of that many rows.
    `data_quality` (see `quality.data_quality`) goes into the summary and the report's banner when given.
    """
    drift = spec.drift
    _check_frames(reference, current, spec, prediction_column)
    plan = _plan_columns(reference, current, spec, prediction_column)

    rng = np.random.default_rng(drift.seed)
    ref = _prepare(_sample(reference, plan.columns, drift.sample_size, rng), plan.numeric)
    cur = _prepare(_sample(current, plan.columns, drift.sample_size, rng), plan.numeric)

    empty = {c: bool(ref[c].isna().all() or cur[c].isna().all()) for c in plan.columns}
    verdicts, page, report_json = _run_report(plan, ref, cur, empty, drift.dataset_drift_share)
    summary = {
        "model": model,
        "dt": dt,
        "model_version": model_version,
        "reference_rows": len(reference),
        "current_rows": current_rows if current_rows is not None else len(current),
        "sample": {
            "size": drift.sample_size,
            "seed": drift.seed,
            "reference_sampled": len(ref),
            "current_sampled": len(cur),
        },
        **_verdict_summary(plan, verdicts, ref, cur, empty, spec),
        "evidently_version": evidently.__version__,
    }
    if data_quality is not None:
        summary["data_quality"] = data_quality
    return DriftResult(
        summary=summary,
        html=with_header(page, summary) if page is not None else empty_report(summary),
        report_json=report_json,
    )


@dataclass(frozen=True)
class _ColumnPlan:
    """The columns one drift check compares, with the method and threshold of each."""

    features: list[str]
    pred: str | None
    numeric: list[str]
    methods: dict[str, str]
    thresholds: dict[str, float]
    pred_method: str
    pred_threshold: float

    @property
    def columns(self) -> list[str]:
        return [*self.features, self.pred] if self.pred else list(self.features)


def _plan_columns(
    reference: pd.DataFrame, current: pd.DataFrame, spec: ModelSpec, prediction_column: str | None
) -> _ColumnPlan:
    """The features and (when both sides have it) the prediction column, with methods checked against their kind."""
    drift = spec.drift
    features = spec.feature_names
    both = prediction_column is not None and prediction_column in reference and prediction_column in current
    pred = prediction_column if both else None
    numeric = [f for f in features if spec.features[f].type in NUMERIC_TYPES]
    pred_numeric = _numeric_prediction(spec, prediction_column)
    if pred and pred_numeric:
        numeric.append(pred)

    methods = {f: drift.method_for(f) for f in features}
    thresholds = {f: float(drift.threshold_for(f)) for f in features}
    for name in features:
        _check_method(name, methods[name], numerical=name in numeric)
    pred_method = drift.prediction.method or drift.method
    pred_threshold = float(drift.prediction.threshold or drift.threshold)
    if pred:
        _check_method(pred, pred_method, numerical=pred_numeric)
    return _ColumnPlan(features, pred, numeric, methods, thresholds, pred_method, pred_threshold)


def _run_report(
    plan: _ColumnPlan, ref: pd.DataFrame, cur: pd.DataFrame, empty: dict[str, bool], dataset_drift_share: float
) -> tuple[dict[str, tuple[float | None, bool]], str | None, str]:
    """Evidently's verdicts, HTML page and JSON over the columns that are not all null (no page when none is left)."""
    compared = [f for f in plan.features if not empty[f]]
    metrics: list[Any] = []
    if compared:
        metrics.append(
            DataDriftPreset(
                columns=compared,
                per_column_method={f: plan.methods[f] for f in compared},
                per_column_threshold={f: plan.thresholds[f] for f in compared},
                drift_share=dataset_drift_share,
            )
        )
    if plan.pred and not empty[plan.pred]:
        metrics.append(ValueDrift(column=plan.pred, method=plan.pred_method, threshold=plan.pred_threshold))
    if not metrics:
        return {}, None, '{"metrics": [], "tests": []}'

    usable = [c for c in plan.columns if not empty[c]]
    definition = DataDefinition(
        numerical_columns=[c for c in usable if c in plan.numeric],
        categorical_columns=[c for c in usable if c not in plan.numeric],
    )
    snapshot = Report(metrics, include_tests=True).run(
        Dataset.from_pandas(cur[usable], data_definition=definition),
        Dataset.from_pandas(ref[usable], data_definition=definition),
    )
    return _column_verdicts(snapshot.dict()), snapshot.get_html_str(as_iframe=False), snapshot.json()


def _verdict_summary(
    plan: _ColumnPlan,
    verdicts: dict[str, tuple[float | None, bool]],
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    empty: dict[str, bool],
    spec: ModelSpec,
) -> dict[str, Any]:
    """The summary's per-feature rows, prediction verdict and the night's drift share and flags."""
    drift = spec.drift
    critical = set(drift.critical_features())
    rows = []
    for name in plan.features:
        score, drifted = _verdict(name, verdicts, ref, cur, empty[name])
        rows.append(
            {
                "feature": name,
                "method": plan.methods[name],
                "threshold": plan.thresholds[name],
                "score": score,
                "drifted": drifted,
                "critical": name in critical,
            }
        )
    prediction = None
    if plan.pred:
        score, drifted = _verdict(plan.pred, verdicts, ref, cur, empty[plan.pred])
        prediction = {"method": plan.pred_method, "threshold": plan.pred_threshold, "score": score, "drifted": drifted}

    drifted_names = [r["feature"] for r in rows if r["drifted"]]
    share = len(drifted_names) / len(plan.features)
    return {
        "features": rows,
        "prediction": prediction,
        "drifted_features": drifted_names,
        "drift_share": share,
        "dataset_drift": share >= drift.dataset_drift_share,
        "critical_drifted": [n for n in drifted_names if n in critical],
    }


def _numeric_prediction(spec: ModelSpec, prediction_column: str | None) -> bool:
    """Whether the prediction column holds numbers: all but the kind's categorical prediction column do."""
    kind = kind_of(spec).prediction_drift
    return kind.numeric or prediction_column != kind.column


def _check_frames(
    reference: pd.DataFrame, current: pd.DataFrame, spec: ModelSpec, prediction_column: str | None
) -> None:
    if prediction_column is not None and prediction_column in spec.features:
        raise ValueError(f"prediction column {prediction_column!r} is also a feature of model {spec.name!r}")
    for side, frame in (("reference", reference), ("current", current)):
        missing = [f for f in spec.feature_names if f not in frame.columns]
        if missing:
            raise ValueError(f"{side} data lacks feature columns {missing}; it has {list(frame.columns)}")
        if frame.empty:
            raise ValueError(f"{side} data has no rows; drift needs rows on both sides")
        wrong = [
            f
            for f, feature in spec.features.items()
            if feature.type in NUMERIC_TYPES
            and (not pd.api.types.is_numeric_dtype(frame[f]) or pd.api.types.is_bool_dtype(frame[f]))
        ]
        if (
            prediction_column is not None
            and _numeric_prediction(spec, prediction_column)
            and prediction_column in frame
            and not pd.api.types.is_numeric_dtype(frame[prediction_column])
        ):
            wrong.append(prediction_column)
        if wrong:
            dtypes = {c: str(frame[c].dtype) for c in wrong}
            raise ValueError(f"{side} data: columns {dtypes} must have a numeric dtype")


def _check_method(column: str, method: str, *, numerical: bool) -> None:
    kind = ColumnType.Numerical if numerical else ColumnType.Categorical
    try:
        get_registered_stattest(method, kind)
    except ValueError as exc:
        raise ValueError(f"drift method {method!r} cannot be used for {kind.value} column {column!r}: {exc}") from None


def warm_up() -> None:
    """Run one tiny report, so Evidently's and Plotly's first-use costs are paid once, not by every drift task.

    Called from `nightshift.runtime.preload`, which Airflow's forkserver (and each Celery worker) imports before forking
    tasks. In memory only: no files, threads or connections.
    """
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"number": rng.normal(size=300), "code": rng.choice(["a", "b", "c"], 300)})
    definition = DataDefinition(numerical_columns=["number"], categorical_columns=["code"])
    metrics = [
        DataDriftPreset(
            columns=["number", "code"],
            per_column_method={"number": "wasserstein", "code": "psi"},
            per_column_threshold={"number": 0.1, "code": 0.1},
        ),
        ValueDrift(column="number", method="psi", threshold=0.1),
    ]
    snapshot = Report(metrics, include_tests=True).run(
        Dataset.from_pandas(frame, data_definition=definition), Dataset.from_pandas(frame, data_definition=definition)
    )
    snapshot.get_html_str(as_iframe=False)
    snapshot.json()


def sample_positions(total: int, size: int, seed: int) -> np.ndarray:
    """Sorted row positions of a seeded sample of `size` out of `total` rows (all rows when there are not more)."""
    if total <= size:
        return np.arange(total, dtype=np.int64)
    rng = np.random.default_rng([seed, total])
    return np.sort(rng.choice(total, size=size, replace=False)).astype(np.int64)


def _sample(frame: pd.DataFrame, columns: list[str], size: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most `size` rows of `columns`, in their original order; copies only the sampled rows."""
    positions = [frame.columns.get_loc(c) for c in columns]
    if len(frame) <= size:
        return frame.iloc[:, positions].reset_index(drop=True)
    rows = np.sort(rng.choice(len(frame), size=size, replace=False))
    return frame.iloc[rows, positions].reset_index(drop=True)


def _prepare(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Plain numpy dtypes for Evidently: nullable numbers to float64, category/bool/string columns to object."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if column in numeric:
            if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
                out[column] = series.astype("float64")
        elif not pd.api.types.is_object_dtype(series):
            out[column] = pd.Series([None if pd.isna(v) else str(v) for v in series], dtype=object)
    return out


def _column_verdicts(snapshot: dict[str, Any]) -> dict[str, tuple[float | None, bool]]:
    """Score and Evidently's own drift verdict per column, from the ValueDrift metrics and their tests."""
    columns: dict[str, str] = {}
    scores: dict[str, float | None] = {}
    for metric in snapshot["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            columns[metric["id"]] = config["column"]
            scores[config["column"]] = _number(metric["value"])
    verdicts: dict[str, tuple[float | None, bool]] = {}
    for test in snapshot["tests"]:
        column = columns.get(test.get("metric_config", {}).get("metric_id"))
        if column is None:
            continue
        if test["status"] not in (_DRIFTED, _NOT_DRIFTED):
            raise RuntimeError(f"Evidently drift test for column {column!r} ended {test['status']}: {test}")
        verdicts[column] = (scores[column], test["status"] == _DRIFTED)
    missing = set(scores) - set(verdicts)
    if missing:
        raise RuntimeError(f"Evidently gave no drift verdict for columns {sorted(missing)}")
    return verdicts


def _verdict(
    column: str, verdicts: dict[str, tuple[float | None, bool]], ref: pd.DataFrame, cur: pd.DataFrame, empty: bool
) -> tuple[float | None, bool]:
    """An all-null side has no distribution: no score, and drifted unless both sides are all null."""
    if empty:
        return None, bool(ref[column].notna().any() or cur[column].notna().any())
    return verdicts[column]


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def latest_pointer(summaries: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """Content of latest.json: the newest night (the last given wins a tie) and how many nights exist.

    `data_quality_flagged` lists the newest night's flagged features with their reasons ([] when none is flagged); it
    is None when that night has no data-quality measure (not scored, or measured before nightshift measured it).
    """
    newest = _newest(summaries)
    return {
        "model": model,
        "dt": newest["dt"] if newest else None,
        "summary": newest,
        "report_html": newest.get("report_html") if newest else None,
        "nights": len(summaries),
        "unscored": _unscored(summaries),
        "re_measured": _re_measured(summaries),
        "data_quality_flagged": _quality_flagged(newest),
    }


def _quality_flagged(summary: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    quality = (summary or {}).get("data_quality")
    if not quality:
        return None
    return [
        {"feature": item["feature"], "reasons": list(item.get("reasons") or [])}
        for item in quality.get("features") or []
        if item.get("flagged")
    ]


def _unscored(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nights with no predictions, oldest first: date, reason and the command that scores them."""
    nights = sorted((s for s in summaries if s.get("unscored")), key=lambda s: str(s["dt"]))
    return [{"dt": s["dt"], **s["unscored"]} for s in nights]


def _re_measured(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nights measured more than once, oldest first: how many runs, the last one's version and date, the first's."""
    nights = []
    for summary in sorted(summaries, key=lambda s: str(s["dt"])):
        measurements = summary.get("measurements") or []
        if len(measurements) < 2:
            continue
        first, last = _first_scored(measurements), measurements[-1]
        nights.append(
            {
                "dt": summary["dt"],
                "runs": len(measurements),
                "measured_at": last.get("measured_at"),
                "model_version": last.get("model_version"),
                "first_model_version": first.get("model_version") if first else None,
                "first_report_html": _first_report(summary, first),
            }
        )
    return nights


def _first_scored(measurements: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first measurement before the last one that was scored; None when none was."""
    return next((entry for entry in measurements[:-1] if entry.get("scored")), None)


def _first_report(summary: dict[str, Any], first: dict[str, Any] | None) -> str | None:
    """The first measurement's report, relative to the model's report folder (`dt=X/rev=R/report.html`)."""
    if not first or not first.get("revision"):
        return None
    return f"dt={summary['dt']}/{REVISION_DIR}{first['revision']}/report.html"


def _newest(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    newest: dict[str, Any] | None = None
    for summary in summaries:
        if newest is None or str(summary["dt"]) >= str(newest["dt"]):
            newest = summary
    return newest


def render_index(
    summaries: list[dict[str, Any]], model: str, href: Href | None = None, notice: str | None = None
) -> str:
    """One self-contained page listing every night given, newest first; drifted nights highlighted.

    `href` maps each linked store key to its address (default: relative to the index); `notice` heads the page."""
    nights = sorted(summaries, key=lambda s: str(s["dt"]), reverse=True)
    return index_page(model, [_index_entry(s) for s in nights], _unscored(nights), href, notice)


def _index_entry(summary: dict[str, Any]) -> dict[str, Any]:
    """A night as the index shows it: its summary, whether it is flagged, its first scored measurement and report."""
    first = _first_scored(summary.get("measurements") or [])
    return {
        "summary": summary,
        "flagged": _night_drifted(summary),
        "first": first,
        "first_report": _first_report(summary, first),
    }


def _night_drifted(summary: dict[str, Any]) -> bool:
    prediction = summary.get("prediction") or {}
    return bool(summary.get("dataset_drift") or summary.get("critical_drifted") or prediction.get("drifted"))
