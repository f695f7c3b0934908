"""The benchmark's child side: `python -m nightshift_dev.bench stage <name> <json>` runs one stage, prints its result.

Each stage calls the product only through the adapter in `bench_stages`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nightshift_dev.bench_plan import RESULT_MARK, peak_rss_gib, rss_now_gib
from nightshift_dev.bench_stages import (
    product_drift,
    product_drop_paths,
    product_first_inputs,
    product_full_drift,
    product_ingest_labels,
    product_kind_spec,
    product_model,
    product_model_inputs,
    product_night_with_scores,
    product_positive_scores,
    product_raw_predict,
    product_retrain,
    product_score_partition,
    product_simulate,
    product_validate,
    product_warehouse_load,
    product_warm,
    product_warm_reference,
)


def _verdicts(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdicts": {item["feature"]: bool(item["drifted"]) for item in summary["features"]},
        "prediction_drifted": (summary.get("prediction") or {}).get("drifted"),
        "rows": summary["current_rows"],
        "reference_rows": summary["reference_rows"],
    }


def stage_generate(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Simulate each job's missing nights; seconds per night."""
    generated: dict[str, dict[str, float]] = {}
    for job in jobs:
        seconds = generated.setdefault(job["store_uri"], {})
        for day in job["nights"]:
            started = time.perf_counter()
            product_simulate(job["store_uri"], day, job["rows"], job["shift"], job["files"])
            seconds[day] = round(time.perf_counter() - started, 2)
    return {"generated": generated}


def stage_prepare(nights: list[str], label_days: list[str], score: bool = False) -> dict[str, Any]:
    """Validate nights, curate label drops and optionally score with the champion: setup, timed only as details."""
    product_warm("validate")
    done: dict[str, dict[str, float]] = {}
    for day in nights:
        started = time.perf_counter()
        out = product_validate(day)
        done[day] = {"validation_seconds": round(time.perf_counter() - started, 3), "rows": out["rows"]}
    for day in label_days:
        product_ingest_labels(day)
    if score and nights:
        product_warm("score")
        version, fitted = product_model("champion", "")
        for day in nights:
            started = time.perf_counter()
            product_score_partition(day, version, fitted)
            done[day]["scoring_seconds"] = round(time.perf_counter() - started, 3)
    return {"nights": done}


def stage_retrain(as_of: str, run_name: str, nights: list[str], label_days: list[str]) -> dict[str, Any]:
    """Curate the training nights and their labels (untimed), then the timed retrain."""
    curation = stage_prepare(nights, label_days)["nights"] if nights else {}
    product_warm("retrain")
    return {**product_retrain(as_of, run_name), "curation": curation}


def stage_validate(day: str) -> dict[str, Any]:
    product_warm("validate")
    setup_rss = rss_now_gib()
    started = time.perf_counter()
    out = product_validate(day)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": out["rows"],
        "accepted": out["accepted"],
        "quarantined": out["quarantined"],
        "setup_rss_gib": setup_rss,
    }


def stage_score(day: str, model: str, bootstrap_store_uri: str, with_limit: bool = False) -> dict[str, Any]:
    """The scoring stage on one night (after a warm-up predict on a few rows); with `with_limit`, the limit too."""
    product_warm("score")
    version, fitted = product_model(model, bootstrap_store_uri)
    product_raw_predict(fitted, model)(product_first_inputs(day))
    setup_rss = rss_now_gib()
    started = time.perf_counter()
    written = product_score_partition(day, version, fitted, model)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "rows": int(sum(written["rows"].values())),
        "model_version": version,
        "model_detail": _model_detail(fitted),
        "setup_rss_gib": setup_rss,
    }
    if with_limit:
        result["limit"] = _limit(day, fitted, model)
    return result


def stage_predict(day: str, model: str, bootstrap_store_uri: str) -> dict[str, Any]:
    """The limit alone: predict_proba on the night's rows already in memory."""
    product_warm("predict")
    _, fitted = product_model(model, bootstrap_store_uri)
    return _limit(day, fitted, model)


def _limit(day: str, fitted: Any, kind: str, repeats: int = 2) -> dict[str, Any]:
    """The model's own predict_proba (predict for a regressor) on rows already in memory, in its input types: the
    best of `repeats` after a warm-up."""
    frame, inputs = product_model_inputs(day)
    predict = product_raw_predict(fitted, kind)
    predict(inputs[:1000])
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(inputs)
        runs.append(time.perf_counter() - started)
    seconds = min(runs)
    started = time.perf_counter()
    product_positive_scores(fitted, frame, kind)
    with_conversion = time.perf_counter() - started
    return {"seconds": seconds, "runs": runs, "positive_scores_seconds": with_conversion, "rows": len(frame)}


def stage_validate_limit(day: str) -> dict[str, Any]:
    """The validation limit on the night's drop: read typed with pyarrow, check vectorised, write the accepted rows
    (`nightshift_dev.bench_limits`), after a warm-up on the first 1,000 rows."""
    from nightshift_dev import bench_limits

    product_warm("validate_limit")
    spec = product_kind_spec("champion")
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-") as tmp:
        folder = Path(tmp)
        paths = product_drop_paths(day, folder)
        bench_limits.warm_up(paths[0], spec, folder)
        setup_rss = rss_now_gib()
        result = bench_limits.validation_limit(paths, spec, folder / "accepted.parquet")
    return {**result, "files": len(paths), "setup_rss_gib": setup_rss}


def stage_pandera(day: str) -> dict[str, Any]:
    """The pandera peer on the night's drop: pandas reads it, a schema built from the spec validates it lazily."""
    from nightshift_dev import bench_limits

    product_warm("pandera")
    spec = product_kind_spec("champion")
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-") as tmp:
        folder = Path(tmp)
        paths = product_drop_paths(day, folder)
        bench_limits.warm_up_pandera(paths[0], spec, folder)
        setup_rss = rss_now_gib()
        result = bench_limits.pandera_peer(paths, spec)
    return {**result, "files": len(paths), "setup_rss_gib": setup_rss}


def stage_drift(day: str) -> dict[str, Any]:
    """Our drift stage on one night, the champion's reference already cached as after its first night."""
    product_warm("drift")
    product_warm_reference()
    setup_rss = rss_now_gib()
    started = time.perf_counter()
    out = product_drift(day)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        **_verdicts(out["summary"]),
        "sample": out["summary"]["sample"],
        "setup_rss_gib": setup_rss,
    }


def stage_full_drift(nights: list[str], reference_night: str, ours: bool = False) -> dict[str, Any]:
    """Evidently on every row of each night against every row of the reference night; with `ours`, our stage too."""
    product_warm("full_drift")
    reference = product_night_with_scores(reference_night)
    measured: dict[str, Any] = {}
    for day in nights:
        current = product_night_with_scores(day)
        started = time.perf_counter()
        summary = product_full_drift(reference, current, day)
        measured[day] = {"seconds": time.perf_counter() - started, **_verdicts(summary)}
        del current
    result: dict[str, Any] = {"seconds": measured[nights[0]]["seconds"], "nights": measured}
    if ours:
        del reference
        product_warm("drift")
        product_warm_reference()
        result["ours"] = {}
        for day in nights:
            started = time.perf_counter()
            summary = product_drift(day)["summary"]
            result["ours"][day] = {"seconds": time.perf_counter() - started, **_verdicts(summary)}
    return result


def stage_warehouse(url: str, rows: int, seed: int) -> dict[str, Any]:
    return product_warehouse_load(url, rows, seed)


def _model_detail(fitted: Any) -> dict[str, Any]:
    estimator = getattr(fitted, "steps", [[None, fitted]])[-1][1]
    detail: dict[str, Any] = {"estimator": type(estimator).__name__}
    n_iter = getattr(estimator, "n_iter_", None)
    if isinstance(n_iter, int):
        detail["n_iter"] = n_iter
    return detail


STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "generate": stage_generate,
    "prepare": stage_prepare,
    "retrain": stage_retrain,
    "validate": stage_validate,
    "score": stage_score,
    "predict": stage_predict,
    "validate_limit": stage_validate_limit,
    "pandera": stage_pandera,
    "drift": stage_drift,
    "full_drift": stage_full_drift,
    "warehouse": stage_warehouse,
}


def run_stage(name: str, arguments: dict[str, Any]) -> int:
    """Entry point of a stage's child process: run it, print its result and this process's peak RSS."""
    if name not in STAGES:
        print(f"error: unknown bench stage {name!r}; valid: {sorted(STAGES)}", file=sys.stderr)
        return 2
    result = STAGES[name](**arguments)
    result["peak_rss_gib"] = peak_rss_gib()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0
