"""Old or new at every crash point: a rerun killed at each publish step leaves readers a complete partition.

One night is run whole, then rerun in a fresh process that kills itself (os._exit, no clean-up) at one publish
step of one partition. The parent then reads every partition through its manifest, checks that each is a complete
revision of either run, and that the warehouse's predictions are those of a complete revision the store still
holds; then it reruns the night and checks that store and warehouse agree on the new run.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.integration import postgres
from tests.manifests import published_manifest

MODEL = "credit_risk"
DAY = dt.date(2026, 10, 1)
KILLED = 137

pytestmark = pytest.mark.skipif(postgres.unavailable() is not None, reason=str(postgres.unavailable()))

AREAS = {
    "validation": f"validation/{MODEL}/dt={DAY}",
    "quarantine": f"quarantine/{MODEL}/dt={DAY}",
    "curated": f"curated/{MODEL}/dt={DAY}",
    "predictions": f"predictions/{MODEL}/dt={DAY}",
    "reports": f"reports/drift/{MODEL}/dt={DAY}",
}
CRASH_POINTS = [
    ("curated", "file"),
    ("curated", "switch"),
    ("curated", "switched"),
    ("predictions", "file"),
    ("predictions", "switch"),
    ("predictions", "warehouse"),
    ("predictions", "switched"),
    ("predictions", "pruned"),
    ("validation", "copied"),
    ("quarantine", "switch"),
    ("reports", "file"),
    ("reports", "switched"),
    ("labels", "switch"),
]
WINDOW = {"switched", "pruned", "warehouse"}
"""The steps after the predictions' manifest switched and before the warehouse committed the new rows."""


def _label_day(store: Any) -> str:
    days = sorted({key.split("dt=", 1)[1].split("/", 1)[0] for key in store.list(f"landing/{MODEL}/labels")})
    return days[0]


def _run_night(run_id: str, label_day: str) -> None:
    from nightshift.runs import RunInfo
    from nightshift.stages.drift import tasks as drift_tasks
    from nightshift.stages.labels import tasks as label_tasks
    from nightshift.stages.score import tasks as score_tasks
    from nightshift.stages.validate import tasks as validate_tasks

    run = RunInfo(run_id, "manual")
    validate_tasks.validate(MODEL, DAY.isoformat(), run)
    score_tasks.score(MODEL, DAY.isoformat(), run, chunk_rows=300)
    drift_tasks.drift(MODEL, DAY.isoformat(), run)
    label_tasks.ingest_labels(MODEL, label_day, run)


def _killed_at(area_prefix: str, step: str, run_id: str, label_day: str) -> None:
    """The child: rerun the night and die at the first `step` of the partition under `area_prefix`."""
    from nightshift.stores.objects import set_fault_hook

    def kill(reached: str, prefix: str) -> None:
        if reached == step and prefix.startswith(area_prefix):
            os._exit(KILLED)

    set_fault_hook(kill)
    _run_night(run_id, label_day)
    os._exit(0)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from nightshift.config import get_spec, settings
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate
    from tests.champions import register_champion

    home = tmp_path_factory.mktemp("crash-home")
    saved = {key: os.environ.get(key) for key in ("NIGHTSHIFT_HOME", "NIGHTSHIFT_WAREHOUSE_URL", "MLFLOW_TRACKING_URI")}
    with postgres.throwaway_database("nightshift_crash") as database:
        os.environ["NIGHTSHIFT_HOME"] = str(home)
        os.environ["NIGHTSHIFT_WAREHOUSE_URL"] = postgres.url_for(database)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
        try:
            spec = get_spec(MODEL, settings().models_dir)
            store = open_store(settings().store_uri)
            plan = SimulationPlan(start=DAY, days=1, rows_per_day=600, bad_row_share=0.02, files_per_day=2)
            simulate(store, spec, plan)
            register_champion(DAY - dt.timedelta(days=1), rows=1500)
            label_day = _label_day(store)
            _run_night("manual__first", label_day)
            yield {"store": store, "label_day": label_day, "url": postgres.url_for(database)}
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _prefixes(label_day: str) -> dict[str, str]:
    return {
        **AREAS,
        "labels": f"curated/{MODEL}/labels/dt={label_day}",
        "label_quarantine": f"quarantine/{MODEL}/labels/dt={label_day}",
    }


def _visible(store: Any, prefix: str) -> dict[str, Any]:
    """What a reader sees: the manifest and every file it names, each read in full."""
    from nightshift.stores.objects import partition_files, read_manifest

    manifest = read_manifest(store, prefix)
    assert manifest is not None, f"{prefix}: the partition vanished"
    keys = partition_files(store, prefix)
    assert [key.rsplit("/", 1)[-1] for key in keys] == manifest["files"]
    return {"manifest": manifest, "sizes": [len(store.read_bytes(key)) for key in keys]}


def _prediction_runs(store: Any, keys: list[str]) -> set[str]:
    return set(pd.concat([pd.read_parquet(store.local_path(key), columns=["run_id"]) for key in keys])["run_id"])


def _warehouse_predictions(url: str) -> pd.DataFrame:
    from nightshift.stores import warehouse

    engine = warehouse.connect(url)
    try:
        return pd.DataFrame(warehouse.fetch_all(engine, warehouse.predictions, model=MODEL, dt=DAY))
    finally:
        engine.dispose()


@pytest.mark.parametrize(("area", "step"), CRASH_POINTS, ids=[f"{area}-{step}" for area, step in CRASH_POINTS])
def test_a_rerun_killed_at_a_publish_step_leaves_the_old_or_the_new_night_and_the_next_rerun_agrees(
    night: dict[str, Any], area: str, step: str
) -> None:
    from nightshift.stores.objects import partition_files, read_manifest, revisions

    store, label_day = night["store"], night["label_day"]
    prefixes = _prefixes(label_day)
    before = {name: published_manifest(store, prefix) for name, prefix in prefixes.items()}
    crashed_run = f"manual__crash_{area}_{step}"
    child = multiprocessing.get_context("spawn").Process(
        target=_killed_at, args=(prefixes[area], step, crashed_run, label_day)
    )
    child.start()
    child.join(300)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == KILLED, f"the rerun was not killed at {step} of {area} (exit {child.exitcode})"

    for name, prefix in prefixes.items():
        seen = _visible(store, prefix)
        assert seen["manifest"]["revision"] in {before[name]["revision"], *revisions(store, prefix)}
    predictions = prefixes["predictions"]
    current = read_manifest(store, predictions)
    loaded = _warehouse_predictions(night["url"])
    assert current is not None and int(current["rows"]["champion"]) > 0
    loaded_runs = set(loaded["run_id"])
    assert len(loaded_runs) == 1, "the warehouse holds one run's predictions for the night"
    if loaded_runs != {current["run_id"]}:
        assert area == "predictions" and step in WINDOW, "store and warehouse disagree outside the one window"
        assert loaded_runs == {before["predictions"]["run_id"]}
        assert before["predictions"]["revision"] in revisions(store, predictions), (
            "the revision the warehouse still reflects is kept in the store"
        )
    else:
        assert _prediction_runs(store, partition_files(store, predictions)) == loaded_runs

    rerun = f"manual__after_{area}_{step}"
    _run_night(rerun, label_day)
    after = read_manifest(store, predictions)
    assert after is not None and after["run_id"] == rerun
    loaded = _warehouse_predictions(night["url"])
    assert set(loaded["run_id"]) == {rerun} == _prediction_runs(store, partition_files(store, predictions))
    assert len(loaded) == sum(int(rows) for rows in after["rows"].values())
    for name, prefix in prefixes.items():
        assert _visible(store, prefix)["manifest"]["run_id"] == rerun, f"{name} is not the rerun's"
        if name in {"curated", "predictions", "labels"}:
            assert len(revisions(store, prefix)) <= 2, f"{prefix}: revisions a crash left are pruned"
    assert store.list(f"staging/{MODEL}") == [], "no staged piece of the killed run is left"
