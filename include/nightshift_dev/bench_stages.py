"""The benchmark's product adapter: every call into nightshift's own stages is here, and only here.

The child processes (`bench_children`) and the parent's DAG parse and nightly run call only these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nightshift.config import PROJECT_ROOT, settings
from nightshift.runtime import embedded_db
from nightshift_dev.bench_airflow import bench_api, e2e_breakdown, free_port, wait_finished, wait_parsed
from nightshift_dev.bench_plan import (
    BAD_ROW_SHARE,
    MODEL,
    SEED,
    BenchError,
    train_as_of,
)

# ---------------------------------------------------------------------------------------------------------------
# Product adapter: every call into nightshift's stages and libraries-under-test is in this section.
# The child-side stage functions (bench_children) and the parent's e2e run call only these.
# ---------------------------------------------------------------------------------------------------------------


def _spec() -> Any:
    from nightshift.config import get_spec

    return get_spec(MODEL, settings().models_dir)


KINDS = ("multiclass", "regression")
"""Model kinds scored besides the spec's own (binary), on the same features with a target derived from them."""


def product_kind_spec(kind: str) -> Any:
    """The demo spec as a model of another kind (its task's default estimator and metrics): what scoring reads."""
    from nightshift.config import ModelSpec

    spec = _spec()
    if kind not in KINDS:
        return spec
    found = spec.model_dump(mode="json", exclude_unset=True)
    target = {key: value for key, value in found["target"].items() if key not in ("positive_label", "negative_label")}
    found.update(
        task=kind,
        target={**target, **({"classes": ["0", "1", "2"]} if kind == "multiclass" else {})},
        training={key: value for key, value in found["training"].items() if key != "estimator"},
        promotion={**found["promotion"], "metric": "accuracy" if kind == "multiclass" else "r2"},
        performance={**found["performance"], "metric": "log_loss" if kind == "multiclass" else "rmse"},
    )
    return ModelSpec.model_validate(found)


def derived_target(frame: Any, kind: str) -> Any:
    """A target of the kind, from the simulated label and features: a risk band (0 good, 1 thin score, 2 defaulted)
    for multiclass, the loss (the loan amount when it defaulted, else 0) for regression."""
    import numpy as np

    defaulted = frame["defaulted"].astype(int).to_numpy()
    if kind == "multiclass":
        thin = frame["credit_score"].to_numpy(dtype="float64", na_value=np.nan) < 650
        return np.where(defaulted == 1, 2, np.where(thin, 1, 0)).astype(str)
    return np.where(defaulted == 1, frame["loan_amount"].to_numpy(dtype="float64"), 0.0)


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
    "validate_limit": ("nightshift.stages.ingest",),
    "pandera": ("nightshift.stages.ingest",),
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
    """(version, fitted pipeline): the registered champion; the demo pipeline with LogisticRegression; or a model of
    another kind (its task's default estimator with the spec's params) on a derived target; the last two fitted on
    the bootstrap rows."""
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
    if kind in KINDS:
        derived = dataclasses.replace(
            training, train=training.train.assign(**{spec.target.column: derived_target(training.train, kind)})
        )
        return kind, fit_candidate(product_kind_spec(kind), derived)
    return "linear", fit_candidate(spec, training, "sklearn.linear_model.LogisticRegression", {"max_iter": 1000})


def product_raw_predict(fitted: Any, kind: str) -> Callable[[Any], Any]:
    """The model's own prediction call on its inputs: predict for a regressor, predict_proba otherwise."""
    return fitted.predict if kind == "regression" else fitted.predict_proba


def product_score_partition(day: str, version: str, model: Any, kind: str = "champion") -> dict[str, Any]:
    """Read the curated Parquet, predict, write the predictions partition (no warehouse)."""
    from nightshift.stages.score.predict import Scorer, score_partition
    from nightshift.stores.objects import open_store

    store = open_store(settings().store_uri)
    spec = product_kind_spec(kind)
    return score_partition(store, spec, day, [Scorer("champion", version, model)], f"bench-score-{day}")


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


def product_positive_scores(model: Any, frame: Any, kind: str = "champion") -> Any:
    from nightshift.kinds import outputs

    return outputs(model, frame, product_kind_spec(kind))


def product_drop_paths(day: str, folder: Path) -> list[Path]:
    """Local paths of the night's drop files, in the order validation reads them (a local store's own files)."""
    from nightshift.stages.ingest import drop_files
    from nightshift.stores.objects import open_store

    store = open_store(settings().store_uri)
    return [
        store.get_file(key, folder / f"{index:05d}-{Path(key).name}")
        for index, key in enumerate(drop_files(store, _spec(), day))
    ]


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


def product_nightly_e2e(
    bench_env: dict[str, str], home: Path, day: str, timeout: float, log: Callable[[str], None]
) -> dict[str, Any]:
    """One nightly DAG run for `day` through Airflow's scheduler (LocalExecutor), as `nightshift demo` runs it: Airflow's
    metadata and the warehouse on the embedded PostgreSQL (the warehouse database emptied first)."""
    from nightshift.runtime.supervisor import Services, airflow_env, prepare_airflow
    from nightshift.stores import warehouse

    port = free_port()
    config = dataclasses.replace(settings(), home=home)
    env = {
        **airflow_env(config, None, port),
        **bench_env,
        "NIGHTSHIFT_SCHEDULE_START": day,
        "NIGHTSHIFT_SCHEDULE_END": day,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "NIGHTSHIFT_WAREHOUSE_URL": embedded_db.url(home, "warehouse"),
    }
    dag_id = f"{MODEL}_nightly"
    log("e2e: starting the embedded PostgreSQL (Airflow's metadata and the warehouse) and migrating Airflow on it")
    with embedded_db.running(home):
        embedded_db.recreate_databases(home, ["warehouse"])
        warehouse.connect(env["NIGHTSHIFT_WAREHOUSE_URL"]).dispose()
        prepare_airflow(env)
        services = Services(env, home / "logs" / "airflow")
        api = bench_api(f"http://127.0.0.1:{port}")
        try:
            log("e2e: starting Airflow's api-server, scheduler and dag-processor (LocalExecutor)")
            services.start()
            wait_parsed(api, services, dag_id)
            api.unpause(dag_id)
            log(f"e2e: triggering {dag_id} for {day}")
            started = time.monotonic()
            run_id = api.trigger_at(dag_id, f"{day}T02:00:00Z")["dag_run_id"]
            state = wait_finished(api, services, dag_id, run_id, started + timeout)
            seconds = time.monotonic() - started
            items = api.task_instances(dag_id, run_id)
            run = api.run(dag_id, run_id)
        finally:
            services.stop()
    tasks, breakdown = e2e_breakdown(items, run, seconds)
    if state != "success":
        raise BenchError(f"{dag_id} run {run_id} ended {state}: tasks {tasks}; logs under {env['AIRFLOW_HOME']}/logs")
    return {
        "seconds": seconds,
        "run_id": run_id,
        "tasks": tasks,
        "breakdown": breakdown,
        "warehouse": "embedded PostgreSQL",
        "airflow_start_date": run.get("start_date"),
        "airflow_end_date": run.get("end_date"),
    }


def product_dag_parse(path: Path, repeats: int, models_dir: Path | None = None) -> list[float]:
    """Seconds to import one DAG file in fresh interpreters, `airflow.sdk` already loaded as in the DAG processor,
    with the specs of `models_dir` (by default the project's)."""
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
    env = {**os.environ, "NIGHTSHIFT_MODELS_DIR": str(models_dir or PROJECT_ROOT / "include" / "models")}
    timings = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"parsing {path} failed:\n{done.stderr[-2000:]}")
        timings.append(float(done.stdout.strip().splitlines()[-1]))
    return timings
