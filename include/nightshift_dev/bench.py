"""`make bench`: the nightly run's stages measured against their limits, each stage in a fresh process.

The parent process (`nightshift bench`) generates data with the simulator into a workspace of its own under
`$NIGHTSHIFT_HOME/bench/` (generated nights are cached per size, so a rerun skips generation), then runs every
measured stage as `python -m nightshift_dev.bench stage <name> <json args>`: a fresh interpreter whose peak resident
memory (`ru_maxrss`) belongs to that stage alone. Baselines (raw `predict_proba`, Evidently on the full data,
row-wise INSERT) are measured in the same run. Results go to a JSON file (one key per figure) and a table.

Every call into nightshift's own stages is in the "product adapter" section below, and only there.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nightshift import embedded_db
from nightshift.config import PROJECT_ROOT, settings

MODEL = "credit_risk"
RESULT_MARK = "@@nightshift-bench-result "
DEFAULT_ROWS = 1_000_000
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
SKIPPABLE = ("e2e", "retrain", "warehouse", "growth", "dag-parse", "agreement", "linear")
TRAIN_START = dt.date(2026, 1, 1)
"""Training nights (features) start here; their labels land one day later, so a retrain is as of day 5."""
TRAIN_NIGHTS = 4
FIRST_NIGHT = dt.date(2026, 1, 5)
"""The measured nights: N1 (figures and growth), N2 (the full-data reference), N3 stable, N4 and N5 shifted."""
SHIFT_NIGHT = FIRST_NIGHT + dt.timedelta(days=3)
BOOTSTRAP_ROWS = 5_000
BAD_ROW_SHARE = 0.01
SEED = 42
POSTGRES_ADMIN_URL = os.environ.get(
    "NIGHTSHIFT_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


class BenchError(RuntimeError):
    """A benchmark stage failed; the message names the stage and where its log is."""


def night(index: int) -> str:
    """The date of measured night N<index> (1-based)."""
    return (FIRST_NIGHT + dt.timedelta(days=index - 1)).isoformat()


def size_label(rows: int) -> str:
    """1000000 -> '1m', 100000 -> '100k', 2500 -> '2500'."""
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def _gib(kib: float) -> float:
    return kib / 2**20


def _peak_rss_gib() -> float:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return round(_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), 3)


def _rss_now_gib() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**30, 3)


# ---------------------------------------------------------------------------------------------------------------
# Product adapter: every call into nightshift's stages and libraries-under-test is in this section.
# The child-side stage functions below and the parent's e2e run call only these.
# ---------------------------------------------------------------------------------------------------------------


def _spec() -> Any:
    from nightshift.config import get_spec

    return get_spec(MODEL, settings().models_dir)


def _run(stage: str, day: str) -> Any:
    from nightshift.nightly import RunInfo

    return RunInfo(run_id=f"bench-{stage}-{day}", run_type="manual", actor="bench")


WARM_MODULES = {
    "validate": ("nightshift.ingest", "nightshift.validate"),
    "score": ("mlflow.sklearn", "nightshift.registry", "nightshift.score", "nightshift.train"),
    "predict": ("mlflow.sklearn", "nightshift.registry", "nightshift.train"),
    "drift": ("mlflow.sklearn", "nightshift.registry", "nightshift.score", "nightshift.train", "nightshift.drift"),
    "full_drift": ("nightshift.score", "nightshift.train", "nightshift.drift"),
    "retrain": ("mlflow.sklearn", "nightshift.registry", "nightshift.evaluate", "nightshift.lifecycle"),
}


def product_warm(stage: str) -> None:
    """Import what the stage imports (and warm Evidently for both drift runs), as `nightshift.preload` does in
    Airflow's forkserver; open the warehouse once."""
    import importlib

    from nightshift import warehouse

    for module in WARM_MODULES[stage]:
        importlib.import_module(module)
    if stage in ("drift", "full_drift"):
        from nightshift.drift import warm_up

        warm_up()
    warehouse.connect(settings().warehouse_url).dispose()


def product_simulate(store_uri: str, day: str, rows: int, shift: str | None, files: int) -> dict[str, int]:
    from nightshift.storage import open_store
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
    from nightshift import nightly

    return nightly.validate(MODEL, day, _run("validate", day))


def product_ingest_labels(day: str) -> dict[str, Any]:
    from nightshift import nightly

    return nightly.ingest_labels(MODEL, day, _run("labels", day))


def product_retrain(as_of: str, run_name: str) -> dict[str, Any]:
    """Resolve the request, train, evaluate against the champion, promote or refuse; seconds per step."""
    from nightshift import lifecycle
    from nightshift.nightly import RunInfo

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
        from nightshift import registry

        config = settings()
        champion = registry.alias_version(config, MODEL, registry.CHAMPION)
        if champion is None:
            raise BenchError(f"no champion registered in the bench MLflow at {config.mlflow_tracking_uri}")
        return champion.version, registry.load_model(config, champion)
    from nightshift.storage import open_store
    from nightshift.train import build_training_set, fit_candidate

    spec = _spec()
    training = build_training_set(open_store(bootstrap_store_uri), spec, _train_as_of())
    return "linear", fit_candidate(spec, training, "sklearn.linear_model.LogisticRegression", {"max_iter": 1000})


def product_score_partition(day: str, version: str, model: Any) -> dict[str, Any]:
    """Read the curated Parquet, predict, write the predictions partition (no warehouse)."""
    from nightshift.score import Scorer, score_partition
    from nightshift.storage import open_store

    store = open_store(settings().store_uri)
    return score_partition(store, _spec(), day, [Scorer("champion", version, model)], f"bench-score-{day}")


def product_model_inputs(day: str) -> tuple[Any, Any]:
    """The night's curated rows in memory, and the frame the pipeline's predict_proba takes."""
    from nightshift.storage import open_store
    from nightshift.train import curated_features, model_inputs

    spec = _spec()
    frame = curated_features(open_store(settings().store_uri), spec, dt.date.fromisoformat(day))
    if frame is None:
        raise BenchError(f"night {day}: no curated partition in {settings().store_uri}")
    return frame, model_inputs(frame, spec)


def product_first_inputs(day: str, rows: int = 1000) -> Any:
    """The first rows of the night's curated partition as model inputs: a warm-up predict, not a measurement."""
    import pyarrow.parquet as pq

    from nightshift.score import curated_keys
    from nightshift.storage import open_store
    from nightshift.train import model_inputs

    store, spec = open_store(settings().store_uri), _spec()
    with tempfile.TemporaryDirectory() as tmp:
        path = store.get_file(curated_keys(store, spec, day)[0], Path(tmp) / "first.parquet")
        batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows))
    return model_inputs(batch.to_pandas(), spec)


def product_positive_scores(model: Any, frame: Any) -> Any:
    from nightshift.train import positive_scores

    return positive_scores(model, frame, _spec())


def product_warm_reference() -> None:
    """Cache the champion's reference sample locally, as it is after the champion's first night."""
    from nightshift import registry

    config = settings()
    champion = registry.alias_version(config, MODEL, registry.CHAMPION)
    if champion is not None:
        registry.load_reference(config, champion)


def product_drift(day: str) -> dict[str, Any]:
    """The drift stage, and its per-feature verdicts read back from the summary it wrote."""
    from nightshift import nightly
    from nightshift.storage import open_store, read_json

    result = nightly.drift(MODEL, day, _run("drift", day))
    summary = read_json(open_store(settings().store_uri), result["summary_key"])
    return {"result": result, "summary": summary}


def product_night_with_scores(day: str) -> Any:
    """A night's curated rows with the champion's scores, as the drift stage joins them."""
    from nightshift.score import champion_scores
    from nightshift.storage import open_store
    from nightshift.train import curated_features

    spec, store = _spec(), open_store(settings().store_uri)
    features = curated_features(store, spec, dt.date.fromisoformat(day))
    if features is None:
        raise BenchError(f"night {day}: no curated partition in {settings().store_uri}")
    scores = champion_scores(store, spec, day).rename(columns={"entity_id": spec.entity_id})
    return features.merge(scores, on=spec.entity_id, how="left") if len(scores) else features


def product_full_drift(reference: Any, current: Any, day: str) -> dict[str, Any]:
    """Evidently's DataDriftPreset with the spec's per-column methods on every row of both sides (no sampling)."""
    from nightshift.drift import compute_drift

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
    """One nightly DAG run for `day` through Airflow's scheduler (LocalExecutor), as `nightshift demo` runs it."""
    from nightshift.supervisor import Services, airflow_env, prepare_airflow
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
        api = Api(f"http://127.0.0.1:{port}")
        try:
            log("e2e: starting Airflow's api-server, scheduler and dag-processor (LocalExecutor)")
            services.start()
            deadline = time.monotonic() + 300
            while not api.dag_known(dag_id):
                services.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"{dag_id} was not parsed within 300 s; see {services.log_dir}")
                time.sleep(2)
            api.unpause(dag_id)
            log(f"e2e: triggering {dag_id} for {day}")
            started = time.monotonic()
            run_id = api.trigger_at(dag_id, f"{day}T02:00:00Z")["dag_run_id"]
            state = "queued"
            while state not in ("success", "failed"):
                services.check_alive()
                if time.monotonic() - started > timeout:
                    raise BenchError(
                        f"{dag_id} run {run_id} still {state} after {timeout:.0f} s; see {services.log_dir}"
                    )
                time.sleep(1)
                state = api.run(dag_id, run_id)["state"]
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


# ---------------------------------------------------------------------------------------------------------------
# Child side: `python -m nightshift_dev.bench stage <name> <json>` runs one stage and prints one result line.
# ---------------------------------------------------------------------------------------------------------------


def _label_delay() -> dt.timedelta:
    from nightshift.config import get_spec

    return dt.timedelta(days=get_spec(MODEL, PROJECT_ROOT / "include" / "models").target.label_delay_days)


def _train_as_of() -> dt.date:
    """The retrain's as-of date: the day the last training night's labels land."""
    return TRAIN_START + dt.timedelta(days=TRAIN_NIGHTS - 1) + _label_delay()


def _label_days(nights: tuple[str, ...]) -> list[str]:
    """The dates the nights' labels land on."""
    return [(dt.date.fromisoformat(day) + _label_delay()).isoformat() for day in nights]


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
    setup_rss = _rss_now_gib()
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
    setup_rss = _rss_now_gib()
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
    setup_rss = _rss_now_gib()
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
    result["peak_rss_gib"] = _peak_rss_gib()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Parent side: the workspace, the cached data, the run order, the figures and the table.
# ---------------------------------------------------------------------------------------------------------------

_LOWER = "<="
_HIGHER = ">="


@dataclasses.dataclass(frozen=True)
class Options:
    rows: int = DEFAULT_ROWS
    sizes: tuple[int, ...] = DEFAULT_SIZES
    skip: frozenset[str] = frozenset()
    json_out: Path | None = None
    agreement_nights: int = 4
    rows_per_file: int = 1_000_000
    e2e_timeout: float = 1800.0


@dataclasses.dataclass(frozen=True)
class DataSet:
    """One folder of generated nights, all with the same rows per night."""

    name: str
    rows: int
    nights: tuple[str, ...]
    shift: str | None
    files: int

    def params(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "shift": self.shift,
            "files": self.files,
            "seed": SEED,
            "bad_row_share": BAD_ROW_SHARE,
        }


def targets(rows: int, sizes: tuple[int, ...]) -> dict[str, tuple[str, float]]:
    """Each figure's JSON key and its target, from the issue (on a 2-core, 24 GiB machine)."""
    label = size_label(rows)
    found = {
        "scoring_vs_limit_ratio": (_HIGHER, 0.8),
        **{f"scoring_peak_rss_gib_{size_label(size)}": (_LOWER, 1.5) for size in sorted({*sizes, rows})},
        f"drift_seconds_{label}": (_LOWER, 10.0),
        "drift_speedup_vs_full": (_HIGHER, 8.0),
        "drift_verdict_agreement": (_HIGHER, 1.0),
        f"validation_seconds_{label}": (_LOWER, 20.0),
        "warehouse_rows_per_s": (_HIGHER, 200_000.0),
        "warehouse_speedup_vs_insert": (_HIGHER, 10.0),
        "dag_parse_seconds_max": (_LOWER, 0.5),
        f"nightly_e2e_seconds_{label}": (_LOWER, 180.0),
        f"retrain_seconds_{label}": (_LOWER, 300.0),
    }
    return found


def figure_keys(rows: int, sizes: tuple[int, ...]) -> list[str]:
    """Every figure key the JSON carries (figures without a target included), in table order."""
    label = size_label(rows)
    keys = [
        "scoring_vs_limit_ratio",
        "scoring_vs_limit_ratio_linear",
        *[f"scoring_peak_rss_gib_{size_label(size)}" for size in sorted({*sizes, rows})],
        f"drift_seconds_{label}",
        "drift_speedup_vs_full",
        "drift_verdict_agreement",
        f"validation_seconds_{label}",
        f"validation_peak_rss_gib_{label}",
        "warehouse_rows_per_s",
        "warehouse_speedup_vs_insert",
        "dag_parse_seconds_max",
        f"nightly_e2e_seconds_{label}",
        f"retrain_seconds_{label}",
    ]
    return keys


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    try:
        with open("/proc/meminfo") as handle:
            total = next(line for line in handle if line.startswith("MemTotal:"))
        info["memory_gib"] = round(_gib(float(total.split()[1])), 1)
        with open("/proc/cpuinfo") as handle:
            model = next((line for line in handle if line.startswith("model name")), "")
        info["cpu_model"] = model.split(":", 1)[1].strip() if model else platform.processor()
    except (OSError, StopIteration):
        pass
    return info


class Bench:
    """One benchmark run: the workspace under `$NIGHTSHIFT_HOME/bench`, the children it starts, the results."""

    def __init__(self, options: Options, log: Callable[[str], None] = print) -> None:
        self.options = options
        self.home = settings().home / "bench"
        self.log_dir = self.home / "logs"
        self.say = log
        self.started = time.monotonic()
        self.children = 0
        self.errors: dict[str, str] = {}
        self.details: dict[str, Any] = {}
        self.figures: dict[str, float | None] = dict.fromkeys(figure_keys(options.rows, options.sizes))
        self.generation: dict[str, Any] = {}
        self.child_seconds: list[dict[str, Any]] = []
        self.growth_rows: dict[int, dict[str, dict[str, float]]] = {}

    # -- workspace --------------------------------------------------------------------------------------------

    def store(self, data: DataSet) -> Path:
        return self.home / "stores" / data.name

    def settings_env(self, store: Path | None) -> dict[str, str]:
        """The bench's own store, warehouse and MLflow, never the demo's (or production's)."""
        found = {
            "NIGHTSHIFT_HOME": str(self.home),
            "NIGHTSHIFT_WAREHOUSE_URL": f"sqlite:///{self.home / 'warehouse.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.home / 'mlflow.db'}",
            "NIGHTSHIFT_MLFLOW_ARTIFACT_ROOT": (self.home / "mlartifacts").as_uri(),
            "NIGHTSHIFT_MODELS_DIR": str(PROJECT_ROOT / "include" / "models"),
        }
        if store is not None:
            found["NIGHTSHIFT_STORE_URI"] = store.as_uri()
        return found

    def env(self, store: Path | None) -> dict[str, str]:
        """The environment of every child: this process's, with the bench's settings."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("NIGHTSHIFT_SCHEDULE_")}
        return {**env, **self.settings_env(store), "PYTHONUNBUFFERED": "1"}

    def reset_state(self, datasets: list[DataSet]) -> None:
        """Start from an empty registry, warehouse and Airflow; keep only the generated drops (the cache)."""
        self.home.mkdir(parents=True, exist_ok=True)
        from nightshift_dev.demo import remove_paths

        remove_paths(self.home, ("warehouse.db", "mlflow.db", "mlartifacts", "cache", "airflow", "logs"))
        self.log_dir.mkdir(parents=True)
        for data in datasets:
            folder = self.store(data)
            if folder.exists():
                for entry in folder.iterdir():
                    if entry.name not in ("landing", "bench-data.json"):
                        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def progress(self, message: str) -> None:
        self.say(f"[bench] {time.monotonic() - self.started:6.0f}s  {message}")

    def child(self, stage: str, arguments: dict[str, Any], store: Path | None, what: str) -> dict[str, Any]:
        """Run one stage in a fresh interpreter; return its result with its own peak RSS."""
        self.children += 1
        log_path = self.log_dir / f"{self.children:02d}-{stage}.log"
        command = [sys.executable, "-m", "nightshift_dev.bench", "stage", stage, json.dumps(arguments)]
        started = time.monotonic()
        with log_path.open("w") as output:
            done = subprocess.run(
                command, env=self.env(store), stdout=subprocess.PIPE, stderr=output, text=True, check=False
            )
            output.write(done.stdout)
        self.child_seconds.append({"stage": stage, "what": what, "seconds": round(time.monotonic() - started, 1)})
        found = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if done.returncode != 0 or not found:
            tail = log_path.read_text()[-3000:]
            raise BenchError(f"{what} failed (exit code {done.returncode}); log {log_path}:\n{tail}")
        result: dict[str, Any] = json.loads(found[-1][len(RESULT_MARK) :])
        return result

    # -- data -------------------------------------------------------------------------------------------------

    def files_for(self, rows: int) -> int:
        return max(1, math.ceil(rows / self.options.rows_per_file))

    def datasets(self) -> dict[str, DataSet]:
        rows, skip = self.options.rows, self.options.skip
        measured = 2 if "agreement" in skip else 5
        training_nights = tuple((TRAIN_START + dt.timedelta(days=i)).isoformat() for i in range(TRAIN_NIGHTS))
        found = {
            "bootstrap": DataSet("bootstrap", BOOTSTRAP_ROWS, training_nights, None, 1),
            "figures": DataSet(
                size_label(rows),
                rows,
                tuple(night(i) for i in range(1, measured + 1)),
                SHIFT_NIGHT.isoformat(),
                self.files_for(rows),
            ),
        }
        if "retrain" not in skip:
            per_night = rows // TRAIN_NIGHTS
            found["training"] = DataSet(
                f"train-{size_label(rows)}", per_night, training_nights, None, self.files_for(per_night)
            )
        if "growth" not in skip:
            for size in self.options.sizes:
                if size != rows:
                    found[f"growth-{size}"] = DataSet(
                        size_label(size), size, (night(1),), SHIFT_NIGHT.isoformat(), self.files_for(size)
                    )
        return found

    def ensure_data(self, sets: list[DataSet]) -> None:
        """Generate the nights the data sets lack; nights generated before with the same parameters are reused."""
        jobs, markers = [], {}
        for data in sets:
            folder = self.store(data)
            marker = folder / "bench-data.json"
            known: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() else {}
            if known.get("params") != data.params():
                if folder.exists():
                    shutil.rmtree(folder)
                known = {"params": data.params(), "nights": {}}
            present = {
                day: seconds
                for day, seconds in known["nights"].items()
                if (folder / "landing" / MODEL / f"dt={day}" / "_SUCCESS").exists()
            }
            missing = [day for day in data.nights if day not in present]
            self.generation[data.name] = {"cached": sorted(set(data.nights) - set(missing)), "generated": {}}
            markers[folder.as_uri()] = (marker, present, data)
            if missing:
                folder.mkdir(parents=True, exist_ok=True)
                jobs.append(
                    {
                        "store_uri": folder.as_uri(),
                        "nights": missing,
                        "rows": data.rows,
                        "shift": data.shift,
                        "files": data.files,
                    }
                )
                self.progress(f"generating {len(missing)} night(s) of {data.rows:,} rows into {folder}")
        if not jobs:
            return
        out = self.child("generate", {"jobs": jobs}, None, "data generation")
        for uri, seconds in out["generated"].items():
            marker, present, data = markers[uri]
            present.update(seconds)
            marker.write_text(json.dumps({"params": data.params(), "nights": present}, indent=2))
            self.generation[data.name]["generated"] = seconds

    # -- sections ---------------------------------------------------------------------------------------------

    def section(self, name: str, run: Callable[[], None]) -> None:
        """Run one part of the bench; a failure is recorded and reported, and the rest still runs."""
        try:
            run()
        except (BenchError, OSError, RuntimeError, ValueError, KeyError) as exc:
            self.errors[name] = str(exc)
            self.progress(f"{name} FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def run(self) -> dict[str, Any]:
        options = self.options
        sets = self.datasets()
        self.reset_state(list(sets.values()))
        start_machine = machine()
        self.progress(
            f"workspace {self.home}; {options.rows:,} rows per night, growth at "
            f"{', '.join(size_label(size) for size in options.sizes)}; skipping {sorted(options.skip) or 'nothing'}"
        )
        if "dag-parse" not in options.skip:
            self.section("dag_parse", self.measure_dag_parse)
        started = time.monotonic()
        self.section("data", lambda: self.ensure_data(list(sets.values())))
        self.generation["seconds"] = round(time.monotonic() - started, 1)
        self.progress(f"data ready in {self.generation['seconds']:.0f}s (generation is not a figure)")
        if "data" not in self.errors:
            self.section("bootstrap", lambda: self.bootstrap(sets["bootstrap"]))
        if "data" in self.errors or "bootstrap" in self.errors:
            return self.finish(start_machine)
        if "training" in sets:
            self.section("retrain", lambda: self.measure_retrain(sets["training"]))
        self.section("figures", lambda: self.measure_figures(sets["figures"], sets["bootstrap"]))
        if "growth" not in options.skip:
            self.section("growth", lambda: self.measure_growth(sets, sets["bootstrap"]))
        if "warehouse" not in options.skip:
            self.section("warehouse", self.measure_warehouse)
        if "e2e" not in options.skip:
            self.section("e2e", lambda: self.measure_e2e(sets["figures"]))
        return self.finish(start_machine)

    def bootstrap(self, data: DataSet) -> None:
        """A first champion from a small training set, so every later stage has one to load."""
        self.progress("bootstrap: curating a small training set and registering a first champion")
        self.details["bootstrap"] = self.child(
            "retrain",
            {
                "as_of": _train_as_of().isoformat(),
                "run_name": "bench-bootstrap",
                "nights": list(data.nights),
                "label_days": _label_days(data.nights),
            },
            self.store(data),
            "the bootstrap champion",
        )

    def measure_retrain(self, data: DataSet) -> None:
        self.progress(
            f"retrain: curating {TRAIN_NIGHTS} nights of {data.rows:,} rows and their labels, then train, "
            "evaluate against the champion and promote"
        )
        out = self.child(
            "retrain",
            {
                "as_of": _train_as_of().isoformat(),
                "run_name": "bench-retrain",
                "nights": list(data.nights),
                "label_days": _label_days(data.nights),
            },
            self.store(data),
            "the retrain",
        )
        self.figures[f"retrain_seconds_{size_label(self.options.rows)}"] = round(out["seconds"], 2)
        self.details["retrain"] = out
        self.progress(
            f"retrain: {out['seconds']:.1f}s on {out['train_rows'] + out['holdout_rows']:,} labelled rows "
            f"({', '.join(f'{step} {seconds:.1f}s' for step, seconds in out['steps'].items())}); "
            f"{out['action']} v{out['candidate_version']}"
        )

    def measure_figures(self, data: DataSet, bootstrap: DataSet) -> None:
        options, store = self.options, self.store(data)
        label, n1 = size_label(options.rows), night(1)
        boot_uri = self.store(bootstrap).as_uri()

        self.progress(f"validation: night {n1}, {options.rows:,} rows")
        validated = self.child("validate", {"day": n1}, store, f"validation of {n1}")
        self.figures[f"validation_seconds_{label}"] = round(validated["seconds"], 2)
        self.figures[f"validation_peak_rss_gib_{label}"] = validated["peak_rss_gib"]
        self.details["validation"] = {**validated, "files": data.files}
        self.progress(f"validation: {validated['seconds']:.1f}s, peak RSS {validated['peak_rss_gib']:.2f} GiB")

        scoring: dict[str, Any] = {}
        if "linear" not in options.skip:
            self.progress("scoring: a linear model (LogisticRegression in the same pipeline) and its limit")
            linear = self.child(
                "score",
                {"day": n1, "model": "linear", "bootstrap_store_uri": boot_uri, "with_limit": True},
                store,
                "linear scoring",
            )
            self.figures["scoring_vs_limit_ratio_linear"] = round(linear["limit"]["seconds"] / linear["seconds"], 3)
            scoring["linear"] = {"stage": linear, "limit": linear.pop("limit")}
        self.progress("scoring: the champion (the demo spec's HistGradientBoostingClassifier) and its limit")
        limit = self.child(
            "predict", {"day": n1, "model": "champion", "bootstrap_store_uri": boot_uri}, store, "predict_proba limit"
        )
        scored = self.child(
            "score", {"day": n1, "model": "champion", "bootstrap_store_uri": boot_uri}, store, f"scoring of {n1}"
        )
        self.figures["scoring_vs_limit_ratio"] = round(limit["seconds"] / scored["seconds"], 3)
        self.figures[f"scoring_peak_rss_gib_{label}"] = scored["peak_rss_gib"]
        scoring["champion"] = {"stage": scored, "limit": limit}
        self.details["scoring"] = scoring
        self.progress(
            f"scoring: {scored['seconds']:.1f}s vs predict_proba {limit['seconds']:.1f}s "
            f"(ratio {self.figures['scoring_vs_limit_ratio']}), peak RSS {scored['peak_rss_gib']:.2f} GiB"
        )

        self.progress(f"drift: our stage on {n1}")
        drift = self.child("drift", {"day": n1}, store, f"drift of {n1}")
        self.figures[f"drift_seconds_{label}"] = round(drift["seconds"], 2)
        self.progress(f"drift: {drift['seconds']:.1f}s, peak RSS {drift['peak_rss_gib']:.2f} GiB")
        self.growth_rows = {
            options.rows: {
                "validation": {"seconds": validated["seconds"], "peak_rss_gib": validated["peak_rss_gib"]},
                "scoring": {"seconds": scored["seconds"], "peak_rss_gib": scored["peak_rss_gib"]},
                "drift": {"seconds": drift["seconds"], "peak_rss_gib": drift["peak_rss_gib"]},
            }
        }
        others = list(data.nights[1:])
        self.progress(f"drift: validating and scoring the other nights {', '.join(others)} (setup)")
        self.details["other_nights"] = self.child(
            "prepare", {"nights": others, "label_days": [], "score": True}, store, "the other nights"
        )["nights"]
        self.progress(f"drift: Evidently on every row of {n1} against every row of {night(2)}")
        full = self.child("full_drift", {"nights": [n1], "reference_night": night(2)}, store, "full-data drift")
        self.figures["drift_speedup_vs_full"] = round(full["seconds"] / drift["seconds"], 2)
        self.progress(f"drift: full data {full['seconds']:.1f}s, speedup {self.figures['drift_speedup_vs_full']}x")

        ours = {
            n1: {key: drift[key] for key in ("seconds", "verdicts", "prediction_drifted", "rows", "reference_rows")}
        }
        theirs = dict(full["nights"])
        rest = [day for day in self.agreement_nights() if day != n1] if "agreement" not in options.skip else []
        if rest:
            self.progress(f"drift agreement: our stage and the full data on {', '.join(rest)}")
            more = self.child(
                "full_drift", {"nights": rest, "reference_night": night(2), "ours": True}, store, "drift agreement"
            )
            theirs.update(more["nights"])
            ours.update(more["ours"])
        pairs = [
            (day, feature, verdict, theirs[day]["verdicts"][feature])
            for day in sorted(ours)
            for feature, verdict in ours[day]["verdicts"].items()
        ]
        self.figures["drift_verdict_agreement"] = round(sum(a == b for *_, a, b in pairs) / len(pairs), 4)
        self.details["drift"] = {
            "stage": drift,
            "full_data": {key: value for key, value in full.items() if key != "nights"},
            "reference_night": night(2),
            "nights": {
                day: {"ours": ours[day], "full_data": theirs[day], "shifted": day >= SHIFT_NIGHT.isoformat()}
                for day in sorted(ours)
            },
            "disagreements": [
                {"night": day, "feature": feature, "ours": a, "full_data": b} for day, feature, a, b in pairs if a != b
            ],
        }
        self.progress(f"drift agreement: {self.figures['drift_verdict_agreement']} over {len(ours)} night(s)")

    def agreement_nights(self) -> list[str]:
        """Stable nights N1, N3 and shifted nights N4, N5, as many as asked (half stable, half shifted)."""
        stable, shifted = [night(1), night(3)], [night(4), night(5)]
        count = max(2, min(4, self.options.agreement_nights))
        return stable[: count - count // 2] + shifted[: count // 2]

    def measure_growth(self, sets: dict[str, DataSet], bootstrap: DataSet) -> None:
        boot_uri = self.store(bootstrap).as_uri()
        for size in self.options.sizes:
            if size == self.options.rows:
                continue
            data = sets[f"growth-{size}"]
            store, day = self.store(data), data.nights[0]
            self.progress(f"growth: {size:,} rows: validation, scoring, drift")
            validated = self.child("validate", {"day": day}, store, f"validation of {size:,} rows")
            scored = self.child(
                "score", {"day": day, "model": "champion", "bootstrap_store_uri": boot_uri}, store, "scoring"
            )
            drift = self.child("drift", {"day": day}, store, f"drift of {size:,} rows")
            self.growth_rows[size] = {
                stage: {"seconds": out["seconds"], "peak_rss_gib": out["peak_rss_gib"]}
                for stage, out in (("validation", validated), ("scoring", scored), ("drift", drift))
            }
            self.figures[f"scoring_peak_rss_gib_{size_label(size)}"] = scored["peak_rss_gib"]
            self.progress(
                f"growth: {size:,} rows: validation {validated['seconds']:.1f}s, scoring {scored['seconds']:.1f}s, "
                f"drift {drift['seconds']:.1f}s; peak RSS {validated['peak_rss_gib']:.2f}, "
                f"{scored['peak_rss_gib']:.2f}, {drift['peak_rss_gib']:.2f} GiB"
            )

    def growth_table(self) -> list[dict[str, Any]]:
        rows = self.growth_rows
        if not rows:
            return []
        first = min(rows)
        table = []
        for size in sorted(rows):
            entry: dict[str, Any] = {"rows": size, "label": size_label(size)}
            for stage, measured in rows[size].items():
                base = rows[first][stage]
                per_row = (measured["seconds"] / size) / (base["seconds"] / first)
                entry[stage] = {
                    "seconds": round(measured["seconds"], 3),
                    "peak_rss_gib": measured["peak_rss_gib"],
                    "time_per_row_vs_first": round(per_row, 3),
                    "memory_vs_first": round(measured["peak_rss_gib"] / base["peak_rss_gib"], 3),
                }
            table.append(entry)
        return table

    def measure_warehouse(self) -> None:
        import sqlalchemy as sa

        rows = self.options.rows
        name = f"nightshift_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError as exc:
            admin.dispose()
            raise BenchError(f"no PostgreSQL for the warehouse figure at {POSTGRES_ADMIN_URL}: {exc}") from None
        url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        try:
            self.progress(f"warehouse: loading {rows:,} predictions into a throwaway Postgres database {name}")
            out = self.child("warehouse", {"url": url, "rows": rows, "seed": SEED}, None, "the warehouse load")
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        self.details["warehouse"] = out
        self.figures["warehouse_rows_per_s"] = round(float(out["rows_per_s"]))
        self.figures["warehouse_speedup_vs_insert"] = round(float(out["speedup"]), 2)
        self.progress(
            f"warehouse: {out['rows_per_s']:,.0f} rows/s, {out['speedup']:.1f}x row-wise INSERT "
            f"({out['baseline_rows_per_s']:,.0f} rows/s)"
        )

    def measure_dag_parse(self) -> None:
        self.progress("DAG files: parse time in fresh interpreters (3 each, median)")
        timings = {
            path.name: product_dag_parse(path, repeats=3) for path in sorted((PROJECT_ROOT / "dags").glob("*.py"))
        }
        medians = {name: round(statistics.median(values), 4) for name, values in timings.items()}
        self.figures["dag_parse_seconds_max"] = max(medians.values())
        self.details["dag_parse"] = {"median_seconds": medians, "runs": timings}
        self.progress(f"DAG files: slowest {max(medians, key=lambda name: medians[name])} {max(medians.values()):.3f}s")

    def measure_e2e(self, data: DataSet) -> None:
        out = product_nightly_e2e(
            self.settings_env(self.store(data)), self.home, night(1), self.options.e2e_timeout, self.progress
        )
        self.figures[f"nightly_e2e_seconds_{size_label(self.options.rows)}"] = round(out["seconds"], 1)
        self.details["nightly_e2e"] = out
        self.progress(f"e2e: trigger to success in {out['seconds']:.0f}s")

    # -- results ----------------------------------------------------------------------------------------------

    def finish(self, start_machine: dict[str, Any]) -> dict[str, Any]:
        options = self.options
        goals = targets(options.rows, options.sizes)
        checks = {}
        for key, (op, bound) in goals.items():
            value = self.figures.get(key)
            passed = None if value is None else (value >= bound if op == _HIGHER else value <= bound)
            checks[key] = {"target": f"{op} {bound:g}", "pass": passed}
        end_machine = machine()
        result: dict[str, Any] = {
            **self.figures,
            "growth": self.growth_table(),
            "targets": checks,
            "rows": options.rows,
            "sizes": list(options.sizes),
            "skipped": sorted(options.skip),
            "model": MODEL,
            "seconds": round(time.monotonic() - self.started, 1),
            "generation": self.generation,
            "details": {**self.details, "children": self.child_seconds},
            "errors": self.errors,
            "machine": {**end_machine, "load_average_start": start_machine["load_average"]},
            "workspace": str(self.home),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return result


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key.startswith("warehouse_rows"):
        return f"{value:,.0f}"
    if "agreement" in key or "ratio" in key:
        return f"{value:.3f}"
    return f"{value:.2f}"


def _baseline(key: str, result: dict[str, Any]) -> str:
    details = result.get("details", {})
    scoring = details.get("scoring", {})
    if key == "scoring_vs_limit_ratio" and "champion" in scoring:
        parts = scoring["champion"]
        return f"stage {parts['stage']['seconds']:.2f}s / predict_proba {parts['limit']['seconds']:.2f}s"
    if key == "scoring_vs_limit_ratio_linear" and "linear" in scoring:
        parts = scoring["linear"]
        return f"stage {parts['stage']['seconds']:.2f}s / predict_proba {parts['limit']['seconds']:.2f}s"
    if key == "drift_speedup_vs_full" and "drift" in details:
        full = details["drift"]["full_data"]["seconds"]
        return f"full-data Evidently {full:.1f}s"
    if key == "drift_verdict_agreement" and "drift" in details:
        nights = details["drift"]["nights"]
        shifted = sum(1 for item in nights.values() if item["shifted"])
        return f"{len(nights) - shifted} stable + {shifted} shifted nights"
    if (
        key == "warehouse_speedup_vs_insert"
        and "warehouse" in details
        and "baseline_rows_per_s" in details["warehouse"]
    ):
        return f"executemany {details['warehouse']['baseline_rows_per_s']:,.0f} rows/s"
    if key.startswith("drift_seconds") and "drift" in details:
        stage = details["drift"]["stage"]
        sample = stage.get("sample", {})
        return (
            f"sampled {sample.get('current_sampled', 0):,} of {stage['rows']:,} rows, "
            f"reference {sample.get('reference_sampled', 0):,}"
        )
    if key.startswith("validation_seconds") and "validation" in details:
        out = details["validation"]
        return f"{out['rows']:,} rows, {out['quarantined']:,} quarantined, {out.get('files', 1)} file(s)"
    if key == "warehouse_rows_per_s" and "rows" in details.get("warehouse", {}):
        return f"{details['warehouse']['rows']:,} rows"
    if key.startswith("retrain_seconds") and "retrain" in details:
        out = details["retrain"]
        return f"{out['train_rows'] + out['holdout_rows']:,} labelled rows, {out['action']}"
    if key.startswith("nightly_e2e") and "nightly_e2e" in details:
        tasks = details["nightly_e2e"]["tasks"]
        slowest = max(tasks, key=lambda name: tasks[name]["seconds"] or 0.0)
        return f"trigger -> success, LocalExecutor; slowest task {slowest} {tasks[slowest]['seconds'] or 0:.0f}s"
    return ""


def skipped_by(key: str, rows: int) -> str:
    """The --skip part that leaves this figure out ('' for figures every run measures)."""
    parts = {
        "scoring_vs_limit_ratio_linear": "linear",
        "warehouse_": "warehouse",
        "dag_parse_": "dag-parse",
        "nightly_e2e_": "e2e",
        "retrain_": "retrain",
    }
    for prefix, part in parts.items():
        if key.startswith(prefix):
            return part
    if key.startswith("scoring_peak_rss_gib_") and key != f"scoring_peak_rss_gib_{size_label(rows)}":
        return "growth"
    return ""


def format_table(result: dict[str, Any]) -> str:
    """The figures with their targets and PASS/MISS, then the growth table."""
    info = result["machine"]
    lines = [
        f"nightshift bench: {result['model']}, {result['rows']:,} rows per night; growth at "
        f"{', '.join(size_label(size) for size in result['sizes'])}",
        f"machine: {info.get('cpus')} CPUs ({info.get('cpu_model', '?')}), {info.get('memory_gib', '?')} GiB; "
        f"load average {info.get('load_average_start')} at start, {info.get('load_average')} at the end",
        "",
        f"{'figure':<34} {'value':>12} {'target':>11}  {'result':<6}  baseline / note",
    ]
    checks = result["targets"]
    for key in figure_keys(result["rows"], tuple(result["sizes"])):
        value = result.get(key)
        check = checks.get(key)
        target = check["target"] if check else ""
        if value is None:
            verdict = "SKIP" if skipped_by(key, result["rows"]) in result["skipped"] else "ERROR"
        else:
            verdict = "info" if check is None else ("PASS" if check["pass"] else "MISS")
        lines.append(f"{key:<34} {_fmt(key, value):>12} {target:>11}  {verdict:<6}  {_baseline(key, result)}")
    growth = result.get("growth") or []
    if growth:
        first = growth[0]["label"]
        lines += [
            "",
            f"growth (seconds, peak RSS GiB; per-row time and memory relative to {first})",
            f"{'rows':>8}  " + "  ".join(f"{stage:^31}" for stage in ("validation", "scoring", "drift")),
        ]
        for entry in growth:
            cells = []
            for stage in ("validation", "scoring", "drift"):
                item = entry[stage]
                cells.append(
                    f"{item['seconds']:7.2f}s {item['peak_rss_gib']:5.2f}G "
                    f"x{item['time_per_row_vs_first']:5.2f}/row x{item['memory_vs_first']:4.2f}m"
                )
            lines.append(f"{entry['label']:>8}  " + "  ".join(cells))
    if result.get("errors"):
        lines += ["", "errors:"] + [f"  {name}: {text.splitlines()[0]}" for name, text in result["errors"].items()]
    lines.append(f"\nfinished in {result['seconds']:.0f}s")
    return "\n".join(lines)


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part.replace("_", "")) for part in value.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected row counts separated by commas") from None
    if not sizes or min(sizes) < 1000:
        raise argparse.ArgumentTypeError(f"{value!r}: every size must be at least 1000 rows")
    return sizes


def _skip(value: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - set(SKIPPABLE))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; valid: {', '.join(SKIPPABLE)}")
    return names


def _rows(value: str) -> int:
    try:
        rows = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a row count") from None
    if rows < 4000:
        raise argparse.ArgumentTypeError(f"{value!r}: at least 4000 rows (the retrain needs 4 nights)")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=_rows, default=DEFAULT_ROWS, help="rows per night for the figures")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        help="rows per night for the growth table, comma-separated (default 100000,1000000,10000000)",
    )
    parser.add_argument(
        "--skip", type=_skip, default=frozenset(), help=f"parts to leave out, comma-separated: {', '.join(SKIPPABLE)}"
    )
    parser.add_argument(
        "--json-out", type=Path, default=None, help="write the JSON here (default $NIGHTSHIFT_HOME/bench/bench-<time>)"
    )
    parser.add_argument(
        "--agreement-nights", type=int, default=4, help="nights compared with the full-data drift run (2 to 4)"
    )
    parser.add_argument(
        "--rows-per-file", type=int, default=1_000_000, help="a night's drop is split into files of this many rows"
    )


def run_from_args(args: argparse.Namespace) -> int:
    """`nightshift bench`: run, print the table, write the JSON; exit 1 when a part failed."""
    options = Options(
        rows=args.rows,
        sizes=args.sizes,
        skip=args.skip,
        json_out=args.json_out,
        agreement_nights=args.agreement_nights,
        rows_per_file=args.rows_per_file,
    )
    bench = Bench(options)
    result = bench.run()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = options.json_out or bench.home / f"bench-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    path.write_text(text)
    (bench.home / "latest.json").write_text(text)
    print()
    print(format_table(result))
    print(f"JSON: {path} (and {bench.home / 'latest.json'})")
    return 1 if result["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stage"]:
        if len(argv) != 3:
            print("usage: python -m nightshift_dev.bench stage <name> <json arguments>", file=sys.stderr)
            return 2
        return run_stage(argv[1], json.loads(argv[2]))
    parser = argparse.ArgumentParser(prog="python -m nightshift_dev.bench", description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
