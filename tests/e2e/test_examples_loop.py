"""Each example model (binary on gzipped CSV, multiclass on Parquet, regression on Parquet drops with gzipped-CSV
labels) through the real nightly and retrain DAGs (dag.test): a promoted champion, a scored night, a drift report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nightshift.stores.objects import partition_files, read_partition_json
from nightshift_dev.examples import EXAMPLES
from tests.airflow_helpers import asset_events, load_dag, migrate_airflow_db, night_at, task_states, use_local_stores

pytestmark = pytest.mark.e2e

START = dt.date(2026, 10, 1)
NIGHTS = 5
SCORED = START + dt.timedelta(days=NIGHTS - 1)
"""The first night after the first champion: scored, its drift measured, and shifted."""
ROWS = 600


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def loop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Land the example's nights (shifted on the last one), run each night and every retrain it requests."""
    from nightshift.config import get_spec, retrain_asset_name, settings
    from nightshift.stores.objects import open_store
    from nightshift_dev.examples import land_example

    model = request.param
    home = tmp_path_factory.mktemp(model)
    with pytest.MonkeyPatch.context() as patch:
        use_local_stores(patch, home)
        config = settings()
        store = open_store(config.store_uri)
        spec = get_spec(model)
        land_example(store, spec, START, nights=NIGHTS, rows_per_night=ROWS, shift_from=SCORED, seed=3)
        migrate_airflow_db()
        nightly, retrain = load_dag(f"{model}_nightly"), load_dag(f"{model}_retrain")
        record: dict[str, Any] = {"model": model, "spec": spec, "config": config, "store": store, "nights": {}}
        record["retrains"] = []
        for offset in range(NIGHTS):
            date = START + dt.timedelta(days=offset)
            run = nightly.test(logical_date=night_at(date), run_after=night_at(date))
            states = task_states(run)
            record["nights"][date] = {"state": str(run.state), "tasks": states}
            if states.get("request_retrain") == "success":
                event = asset_events(retrain_asset_name(model))[-1]
                conf = {"as_of": event["dt"], "reason": "; ".join(event["reasons"])}
                done = retrain.test(logical_date=night_at(date) + dt.timedelta(hours=1), run_conf=conf)
                record["retrains"].append({"dt": date, "state": str(done.state), "tasks": task_states(done)})
        yield record


def _table(loop: dict[str, Any], name: str) -> list[dict[str, Any]]:
    from nightshift.stores import warehouse

    engine = warehouse.connect(loop["config"].warehouse_url)
    return warehouse.fetch_all(engine, getattr(warehouse, name), model=loop["model"])


def test_every_night_and_retrain_succeeds_and_a_champion_is_promoted(loop):
    failed = {date: night["tasks"] for date, night in loop["nights"].items() if night["state"] != "success"}
    assert not failed, failed
    assert loop["retrains"] and all(item["state"] == "success" for item in loop["retrains"]), loop["retrains"]
    ledger = _table(loop, "promotion_ledger")
    promoted = [row for row in ledger if row["action"] == "promote" and row["champion_after"]]
    assert promoted, ledger
    spec = loop["spec"]
    assert promoted[0]["metric"] == spec.gate_metric
    evaluation = (
        json.loads(promoted[0]["details"]) if isinstance(promoted[0]["details"], str) else promoted[0]["details"]
    )
    from nightshift.config import TASKS

    assert set(evaluation["evaluation"]["candidate"]["metrics"]) == set(TASKS[spec.task].metrics)


def _champion_predictions(loop: dict[str, Any]) -> pd.DataFrame:
    store = loop["store"]
    keys = [
        key
        for key in partition_files(store, f"predictions/{loop['model']}/dt={SCORED}", ".parquet")
        if key.rsplit("/", 1)[-1].startswith("champion")
    ]
    assert keys, f"no champion predictions for {SCORED}"
    return pd.concat([pd.read_parquet(store.local_path(key)) for key in keys], ignore_index=True)


def test_the_night_after_the_first_champion_is_scored_with_the_kinds_own_columns(loop):
    spec, predictions = loop["spec"], _champion_predictions(loop)
    assert len(predictions) == ROWS and predictions["prediction_id"].is_unique
    if spec.task == "multiclass":
        assert set(predictions["predicted_label"]) <= set(spec.classes)
        probabilities = [json.loads(text) for text in predictions["class_probabilities"]]
        assert all(list(row) == spec.classes for row in probabilities)
        assert np.allclose([sum(row.values()) for row in probabilities], 1.0)
        best = [max(row, key=row.get) for row in probabilities]
        assert best == predictions["predicted_label"].tolist()
        assert np.allclose(predictions["score"], [max(row.values()) for row in probabilities])
    elif spec.task == "binary":
        assert "predicted_label" not in predictions and predictions["score"].between(0, 1).all()
    else:
        assert "predicted_label" not in predictions and predictions["score"].std() > 0
    stored = [row for row in _table(loop, "predictions") if str(row["dt"]) == SCORED.isoformat()]
    assert len(stored) == len(predictions) * len({row["alias"] for row in stored})
    if spec.task == "multiclass":
        assert all(row["predicted_label"] in spec.classes for row in stored)
    else:
        assert all(row["predicted_label"] is None and row["class_probabilities"] is None for row in stored)


def test_the_scored_night_has_a_drift_report_with_the_kinds_prediction_and_the_shift(loop):
    spec, store = loop["spec"], loop["store"]
    summary = read_partition_json(store, f"reports/drift/{loop['model']}/dt={SCORED}", "summary.json")
    assert summary["task"] == spec.task and summary["model_version"]
    shifted = set(EXAMPLES[loop["model"]].shifts)
    assert shifted & set(summary["drifted_features"]), summary["drifted_features"]
    assert summary["prediction"] is not None
    from nightshift.config import TASKS

    assert set(summary["champion_holdout"]["metrics"]) == set(TASKS[spec.task].metrics)
    index = store.read_bytes(f"reports/drift/{loop['model']}/index.html").decode()
    assert SCORED.isoformat() in index and f"A {spec.task} model" in index


def test_labels_are_curated_as_the_kind_parses_them(loop):
    spec, store = loop["spec"], loop["store"]
    day = START + dt.timedelta(days=1)
    keys = partition_files(store, f"curated/{loop['model']}/labels/dt={day}", ".parquet")
    labels = pd.concat([pd.read_parquet(store.local_path(key)) for key in keys])[spec.target.column]
    assert len(labels) == ROWS
    if spec.task == "multiclass":
        assert set(labels) <= set(spec.classes)
    elif spec.task == "regression":
        assert labels.dtype == "float64" and labels.nunique() > 50
    else:
        assert set(labels) == {0, 1}


def test_live_performance_follows_the_kind_realized_for_every_kind_estimated_for_classifiers(loop):
    from nightshift.config import TASKS

    spec = loop["spec"]
    rules = TASKS[spec.task]
    nights = [row for row in _table(loop, "performance_nights") if row["alias"] == "champion"]
    tonight = next(row for row in nights if row["dt"] == SCORED)
    assert tonight["metric"] == spec.performance_metric
    assert (tonight["estimated"] is not None) == rules.estimable, tonight
    metrics = [row for row in _table(loop, "performance_metrics") if row["dt"] == SCORED and row["alias"] == "champion"]
    assert {row["metric"] for row in metrics if row["kind"] == "realized"} == set(rules.live_metrics)
    estimated = {row["metric"] for row in metrics if row["kind"] == "estimated"}
    assert estimated == (set(rules.live_metrics) if rules.estimable else set())
    labelled = [row for row in nights if row["realized"] is not None]
    assert labelled, "a night scored before the last one has its labels by the end"
    assert all(0 < row["coverage"] <= 1 and row["labelled_rows"] <= row["rows"] for row in labelled)
    page = read_partition_json(loop["store"], f"reports/performance/{loop['model']}/dt={SCORED}", "performance.json")
    assert page["task"] == spec.task and set(page["aliases"]) >= {"champion"}
