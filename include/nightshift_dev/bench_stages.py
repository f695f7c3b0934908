"""The benchmark's child side: `python -m nightshift_dev.bench stage <name> <json>` runs one stage, prints its result.

Every call into nightshift's own stages is in the "product adapter" section, and only there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nightshift.config import PROJECT_ROOT, settings
from nightshift.runtime import embedded_db
from nightshift_dev.bench_plan import (
    BAD_ROW_SHARE,
    MODEL,
    RESULT_MARK,
    SEED,
    BenchError,
    peak_rss_gib,
    rss_now_gib,
    train_as_of,
)

# ---------------------------------------------------------------------------------------------------------------
# Product adapter: every call into nightshift's stages and libraries-under-test is in this section.
# The child-side stage functions below and the parent's e2e run call only these.
# ---------------------------------------------------------------------------------------------------------------


def _spec() -> Any:
    from nightshift.config import get_spec

    return get_spec(MODEL, settings().models_dir)


def _run(stage: str, day: str) -> Any:
    from nightshift.runs import RunInfo

    return RunInfo(run_id=f"bench-{stage}-{day}", run_type="manual", actor="bench")


WARM_MODULES = {
    "validate": ("nightshift.stages.ingest", "nightshift.stages.validate.checks"),
    "score": (
        "mlflow.sklearn",
        "nightshift.stores.registry",
        "nightshift.stages.score.predict",
        "nightshift.lifecycle.train",
    ),
    "predict": ("mlflow.sklearn", "nightshift.stores.registry", "nightshift.lifecycle.train"),
    "drift": (
        "mlflow.sklearn",
        "nightshift.stores.registry",
        "nightshift.stages.score.predict",
        "nightshift.lifecycle.train",
        "nightshift.stages.drift.measure",
    ),
    "full_drift": ("nightshift.stages.score.predict", "nightshift.lifecycle.train", "nightshift.stages.drift.measure"),
    "retrain": (
        "mlflow.sklearn",
        "nightshift.stores.registry",
        "nightshift.lifecycle.evaluate",
        "nightshift.lifecycle.tasks",
    ),
}


def product_warm(stage: str) -> None:
    """Import what the stage imports (and warm Evidently for both drift runs), as `nightshift.runtime.preload` does in
    Airflow's forkserver; open the warehouse once."""
    import importlib

    from nightshift.stores import warehouse

    for module in WARM_MODULES[stage]:
        importlib.import_module(module)
    if stage in ("drift", "full_drift"):
        from nightshift.stages.drift.measure import warm_up

        warm_up()
    warehouse.connect(settings().warehouse_url).dispose()


def product_simulate(store_uri: str, day: str, rows: int, shift: str | None, files: int) -> dict[str, int]:
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate

    plan = SimulationPlan(
        start=dt.date.fromisoformat(day),
        days=1,
        rows_per_day=rows,
        shift_date=dt.date.fromisoformat(shift) if shift else None,
        seed=SEED,
        bad_row_share=BAD_ROW_SHARE,
        files_per_day=files,
    )
    return simulate(open_store(store_uri), _spec(), plan)


def product_validate(day: str) -> dict[str, Any]:
    from nightshift.stages.validate import tasks as validate

    return validate.validate(MODEL, day, _run("validate", day))


def product_ingest_labels(day: str) -> dict[str, Any]:
    from nightshift.stages.labels import tasks as labels

    return labels.ingest_labels(MODEL, day, _run("labels", day))


def product_retrain(as_of: str, run_name: str) -> dict[str, Any]:
    """Resolve the request, train, evaluate against the champion, promote or refuse; seconds per step."""
    from nightshift.lifecycle import tasks as lifecycle
    from nightshift.runs import RunInfo

    run = RunInfo(run_id=run_name, run_type="manual", actor="bench")
    steps: dict[str, float] = {}
    started = time.perf_counter()
    request = lifecycle.resolve_request(MODEL, [], {"as_of": as_of, "reason": "nightshift bench"}, run)
    steps["resolve_request"] = time.perf_counter() - started
    mark = time.perf_counter()
    candidate = lifecycle.train_candidate(MODEL, request, {}, run)
    steps["train_candidate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    evaluation = lifecycle.evaluate_candidate(MODEL, candidate)
    steps["evaluate_candidate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    decision = lifecycle.promote_or_refuse(MODEL, evaluation, request, run, dt.datetime.now(dt.UTC))
    steps["promote_or_refuse"] = time.perf_counter() - mark
    return {
        "seconds": time.perf_counter() - started,
        "steps": {name: round(value, 3) for name, value in steps.items()},
        "train_rows": candidate["training"]["train_rows"],
        "holdout_rows": candidate["training"]["holdout_rows"],
        "candidate_version": candidate["version"],
        "action": decision["action"],
        "champion": decision["champion"],
    }


def product_model(kind: str, bootstrap_store_uri: str) -> tuple[str, Any]:
    """(version, fitted pipeline): the registered champion, or the demo pipeline with LogisticRegression."""
    if kind == "champion":
        from nightshift.stores import registry

        config = settings()
        champion = registry.alias_version(config, MODEL, registry.CHAMPION)
        if champion is None:
            raise BenchError(f"no champion registered in the bench MLflow at {config.mlflow_tracking_uri}")
        return champion.version, registry.load_model(config, champion)
    from nightshift.lifecycle.train import build_training_set, fit_candidate
    from nightshift.stores.objects import open_store

    spec = _spec()
    training = build_training_set(open_store(bootstrap_store_uri), spec, train_as_of())
    return "linear", fit_candidate(spec, training, "sklearn.linear_model.LogisticRegression", {"max_iter": 1000})


def product_score_partition(day: str, version: str, model: Any) -> dict[str, Any]:
    """Read the curated Parquet, predict, write the predictions partition (no warehouse)."""
    from nightshift.stages.score.predict import Scorer, score_partition
    from nightshift.stores.objects import open_store

    store = open_store(settings().store_uri)
    return score_partition(store, _spec(), day, [Scorer("champion", version, model)], f"bench-score-{day}")


def product_model_inputs(day: str) -> tuple[Any, Any]:
    """The night's curated rows in memory, and the frame the pipeline's predict_proba takes."""
    from nightshift.kinds import model_inputs
    from nightshift.lifecycle.train import curated_features
    from nightshift.stores.objects import open_store

    spec = _spec()
    frame = curated_features(open_store(settings().store_uri), spec, dt.date.fromisoformat(day))
    if frame is None:
        raise BenchError(f"night {day}: no curated partition in {settings().store_uri}")
    return frame, model_inputs(frame, spec)


def product_first_inputs(day: str, rows: int = 1000) -> Any:
    """The first rows of the night's curated partition as model inputs: a warm-up predict, not a measurement."""
    import pyarrow.parquet as pq

    from nightshift.kinds import model_inputs
    from nightshift.stages.score.predict import curated_keys
    from nightshift.stores.objects import open_store

    store, spec = open_store(settings().store_uri), _spec()
    with tempfile.TemporaryDirectory() as tmp:
        path = store.get_file(curated_keys(store, spec, day)[0], Path(tmp) / "first.parquet")
        batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows))
    return model_inputs(batch.to_pandas(), spec)


def product_positive_scores(model: Any, frame: Any) -> Any:
    from nightshift.kinds import outputs

    return outputs(model, frame, _spec())


def product_warm_reference() -> None:
    """Cache the champion's reference sample locally, as it is after the champion's first night."""
    from nightshift.stores import registry

    config = settings()
    champion = registry.alias_version(config, MODEL, registry.CHAMPION)
    if champion is not None:
        registry.load_reference(config, champion)


def product_drift(day: str) -> dict[str, Any]:
    """The drift stage, and its per-feature verdicts read back from the summary it wrote."""
    from nightshift.stages.drift import tasks as drift
    from nightshift.stores.objects import open_store, read_json

    result = drift.drift(MODEL, day, _run("drift", day))
    summary = read_json(open_store(settings().store_uri), result["summary_key"])
    return {"result": result, "summary": summary}


def product_night_with_scores(day: str) -> Any:
    """A night's curated rows with the champion's scores, as the drift stage joins them."""
    from nightshift.lifecycle.train import curated_features
    from nightshift.stages.score.predict import champion_scores
    from nightshift.stores.objects import open_store

    spec, store = _spec(), open_store(settings().store_uri)
    features = curated_features(store, spec, dt.date.fromisoformat(day))
    if features is None:
        raise BenchError(f"night {day}: no curated partition in {settings().store_uri}")
    scores = champion_scores(store, spec, day).rename(columns={"entity_id": spec.entity_id})
    return features.merge(scores, on=spec.entity_id, how="left") if len(scores) else features


def product_full_drift(reference: Any, current: Any, day: str) -> dict[str, Any]:
    """Evidently's DataDriftPreset with the spec's per-column methods on every row of both sides (no sampling)."""
    from nightshift.stages.drift.measure import compute_drift

    spec = _spec()
    unsampled = spec.model_copy(update={"drift": spec.drift.model_copy(update={"sample_size": 10**12})})
    return compute_drift(reference, current, unsampled, model=MODEL, dt=day, model_version="full-data").summary


def product_warehouse_load(url: str, rows: int, seed: int) -> dict[str, Any]:
    """Predictions bulk-loaded into Postgres against row-wise executemany INSERT of the same rows."""
    from nightshift_dev import warehouse_baselines

    return dict(warehouse_baselines.measure_predictions_load(url, rows, seed))


def _bench_api(base_url: str) -> Any:
    """The demo's REST client with the few calls the bench's nightly run needs."""
    from nightshift_dev.airflow_api import AirflowApi

    class Api(AirflowApi):
        def dag_known(self, dag_id: str) -> bool:
            try:
                self._call("GET", f"/dags/{dag_id}")
            except RuntimeError:
                return False
            return True

        def unpause(self, dag_id: str) -> None:
            self._call("PATCH", f"/dags/{dag_id}", {"is_paused": False})

        def trigger_at(self, dag_id: str, logical_date: str) -> dict[str, Any]:
            return dict(self._call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": {}}))

        def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
            return dict(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

        def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
            return list(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    return Api(base_url)


def _wait_parsed(api: Any, services: Any, dag_id: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not api.dag_known(dag_id):
        services.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{dag_id} was not parsed within {seconds:.0f} s; see {services.log_dir}")
        time.sleep(2)


def _wait_finished(api: Any, services: Any, dag_id: str, run_id: str, deadline: float) -> str:
    """Poll the run until it succeeds or fails; its final state."""
    state = "queued"
    while state not in ("success", "failed"):
        services.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{dag_id} run {run_id} still {state} at its timeout; see {services.log_dir}")
        time.sleep(1)
        state = api.run(dag_id, run_id)["state"]
    return state


def product_nightly_e2e(
    bench_env: dict[str, str], home: Path, day: str, timeout: float, log: Callable[[str], None]
) -> dict[str, Any]:
    """One nightly DAG run for `day` through Airflow's scheduler (LocalExecutor), as `nightshift demo` runs it."""
    from nightshift.runtime.supervisor import Services, airflow_env, prepare_airflow

    port = _free_port()
    config = dataclasses.replace(settings(), home=home)
    env = {
        **airflow_env(config, None, port),
        **bench_env,
        "NIGHTSHIFT_SCHEDULE_START": day,
        "NIGHTSHIFT_SCHEDULE_END": day,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }
    dag_id = f"{MODEL}_nightly"
    log("e2e: starting the embedded PostgreSQL and migrating Airflow's metadata database on it")
    with embedded_db.running(home):
        prepare_airflow(env)
        services = Services(env, home / "logs" / "airflow")
        api = _bench_api(f"http://127.0.0.1:{port}")
        try:
            log("e2e: starting Airflow's api-server, scheduler and dag-processor (LocalExecutor)")
            services.start()
            _wait_parsed(api, services, dag_id)
            api.unpause(dag_id)
            log(f"e2e: triggering {dag_id} for {day}")
            started = time.monotonic()
            run_id = api.trigger_at(dag_id, f"{day}T02:00:00Z")["dag_run_id"]
            state = _wait_finished(api, services, dag_id, run_id, started + timeout)
            seconds = time.monotonic() - started
            tasks = {
                item["task_id"] + (f"[{item['map_index']}]" if item.get("map_index", -1) >= 0 else ""): {
                    "state": item["state"],
                    "seconds": item.get("duration"),
                }
                for item in api.task_instances(dag_id, run_id)
            }
            run = api.run(dag_id, run_id)
        finally:
            services.stop()
    if state != "success":
        raise BenchError(f"{dag_id} run {run_id} ended {state}: tasks {tasks}; logs under {env['AIRFLOW_HOME']}/logs")
    return {
        "seconds": seconds,
        "run_id": run_id,
        "tasks": tasks,
        "airflow_start_date": run.get("start_date"),
        "airflow_end_date": run.get("end_date"),
    }


def product_dag_parse(path: Path, repeats: int) -> list[float]:
    """Seconds to import one DAG file in fresh interpreters, `airflow.sdk` already loaded as in the DAG processor."""
    probe = (
        "import json, sys, time\n"
        "import airflow.sdk\n"
        "import importlib.util\n"
        "start = time.perf_counter()\n"
        "spec = importlib.util.spec_from_file_location('probe', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(time.perf_counter() - start))\n"
    )
    env = {**os.environ, "NIGHTSHIFT_MODELS_DIR": str(PROJECT_ROOT / "include" / "models")}
    timings = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"parsing {path} failed:\n{done.stderr[-2000:]}")
        timings.append(float(done.stdout.strip().splitlines()[-1]))
    return timings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    fitted.predict_proba(product_first_inputs(day))
    setup_rss = rss_now_gib()
    started = time.perf_counter()
    written = product_score_partition(day, version, fitted)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "rows": int(sum(written["rows"].values())),
        "model_version": version,
        "model_detail": _model_detail(fitted),
        "setup_rss_gib": setup_rss,
    }
    if with_limit:
        result["limit"] = _limit(day, fitted)
    return result


def stage_predict(day: str, model: str, bootstrap_store_uri: str) -> dict[str, Any]:
    """The limit alone: predict_proba on the night's rows already in memory."""
    product_warm("predict")
    _, fitted = product_model(model, bootstrap_store_uri)
    return _limit(day, fitted)


def _limit(day: str, fitted: Any, repeats: int = 2) -> dict[str, Any]:
    """predict_proba on rows already in memory, in the model's input types: the best of `repeats` after a warm-up."""
    frame, inputs = product_model_inputs(day)
    fitted.predict_proba(inputs[:1000])
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fitted.predict_proba(inputs)
        runs.append(time.perf_counter() - started)
    seconds = min(runs)
    started = time.perf_counter()
    product_positive_scores(fitted, frame)
    with_conversion = time.perf_counter() - started
    return {"seconds": seconds, "runs": runs, "positive_scores_seconds": with_conversion, "rows": len(frame)}


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
