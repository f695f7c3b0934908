"""A short simulated season through the real DAGs (dag.test), asserting the whole loop's behaviour."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from nightshift.stores.objects import flat_partition_writer, partition_file, partition_files
from tests.airflow_helpers import asset_events, load_dag, migrate_airflow_db, night_at, task_states, use_local_stores

pytestmark = pytest.mark.e2e

START = dt.date(2026, 10, 1)
SHIFT = dt.date(2026, 10, 9)
NIGHTS = 14
ROWS = 1500
OVER_LIMIT = START + dt.timedelta(days=NIGHTS)
MALFORMED = OVER_LIMIT + dt.timedelta(days=1)
EMPTY = OVER_LIMIT + dt.timedelta(days=2)
MODEL = "credit_risk"
RERUN = START + dt.timedelta(days=NIGHTS - 3)


def day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """Run every night of the season, plus the retrains the nights request, and keep what happened."""
    from nightshift.config import retrain_asset_name, settings
    from nightshift.stores.objects import open_store
    from nightshift_dev.simulate import SimulationPlan, simulate

    home = tmp_path_factory.mktemp("season")
    with pytest.MonkeyPatch.context() as patch:
        use_local_stores(patch, home)
        config = settings()
        store = open_store(config.store_uri)
        from nightshift.config import get_spec

        spec = get_spec(MODEL)
        simulate(
            store,
            spec,
            SimulationPlan(
                start=START,
                days=NIGHTS + 1,
                rows_per_day=ROWS,
                shift_date=SHIFT,
                bad_row_share=0.01,
                bad_dates={OVER_LIMIT: 0.25},
                files_per_day=2,
            ),
        )
        with flat_partition_writer(store, f"landing/{MODEL}/dt={MALFORMED}", {}) as folder:
            (folder / "part-00000.csv").write_text("application_id,age,favourite_colour\na1,30,red\n")
        with flat_partition_writer(store, f"landing/{MODEL}/dt={EMPTY}", {}) as folder:
            (folder / "part-00000.csv").write_text("")

        migrate_airflow_db()
        nightly = load_dag(f"{MODEL}_nightly")
        retrain = load_dag(f"{MODEL}_retrain")
        record: dict = {"home": home, "config": config, "store": store, "nights": {}, "retrains": []}
        for offset in range(NIGHTS):
            date = day(offset)
            run = nightly.test(logical_date=night_at(date), run_after=night_at(date))
            states = task_states(run)
            record["nights"][date] = {"state": str(run.state), "tasks": states}
            if date == RERUN:
                # Same logical date and run_after: the same run id, as when a night is cleared in the UI.
                record["before_rerun"] = champion_predictions(store, date)
                record["rerun"] = nightly.test(logical_date=night_at(date), run_after=night_at(date))
                record["after_rerun"] = champion_predictions(store, date)
            if states.get("request_retrain") == "success":
                event = asset_events(retrain_asset_name(MODEL))[-1]
                conf = {"as_of": event["dt"], "reason": "; ".join(event["reasons"])}
                retrain_run = retrain.test(logical_date=night_at(date) + dt.timedelta(hours=1), run_conf=conf)
                record["retrains"].append({"dt": date, "event": event, "state": str(retrain_run.state)})
        record["events"] = asset_events(retrain_asset_name(MODEL))

        last = day(NIGHTS - 1)
        worse = retrain.test(
            logical_date=night_at(last) + dt.timedelta(hours=5),
            run_conf={
                "as_of": last.isoformat(),
                "estimator": "sklearn.dummy.DummyClassifier",
                "estimator_params": {"strategy": "prior"},
                "reason": "test: a deliberately worse candidate",
            },
        )
        record["worse"] = worse
        from nightshift.stores import registry

        record["champion_after_worse"] = registry.alias_version(config, MODEL, registry.CHAMPION)
        rollback = load_dag(f"{MODEL}_rollback")
        record["rollback"] = rollback.test(
            logical_date=night_at(last) + dt.timedelta(hours=6), run_conf={"reason": "test: roll back"}
        )
        record["champion_after_rollback"] = registry.alias_version(config, MODEL, registry.CHAMPION)
        for date in (OVER_LIMIT, MALFORMED, EMPTY):
            run = nightly.test(logical_date=night_at(date), run_after=night_at(date))
            record["nights"][date] = {"state": str(run.state), "tasks": task_states(run)}
        yield record


def champion_predictions(store, date) -> pd.DataFrame:
    keys = [
        key
        for key in partition_files(store, f"predictions/{MODEL}/dt={date}", ".parquet")
        if key.rsplit("/", 1)[-1].startswith("champion-")
    ]
    assert keys, f"no champion predictions for {date}"
    return pd.concat([pd.read_parquet(store.local_path(key)) for key in keys], ignore_index=True)


def warehouse_rows(season, table: str) -> list[dict]:
    from nightshift.stores import warehouse

    engine = warehouse.connect(season["config"].warehouse_url)
    return warehouse.fetch_all(engine, getattr(warehouse, table), model=MODEL)


def test_every_good_night_succeeds(season):
    for offset in range(NIGHTS):
        assert season["nights"][day(offset)]["state"] == "success", (day(offset), season["nights"][day(offset)])


def test_no_drift_request_before_the_shift_and_one_after_naming_features(season):
    drift_requests = [event for event in season["events"] if "no champion" not in " ".join(event["reasons"])]
    assert drift_requests, season["events"]
    assert all(dt.date.fromisoformat(event["dt"]) >= SHIFT for event in drift_requests)
    first = drift_requests[0]
    assert first["drifted_features"], first
    assert {"credit_score", "debt_to_income"} & set(first["drifted_features"])
    assert re.search(rf"/dt={first['dt']}/rev=[^/]+/report\.html$", first["report"]), first["report"]
    bootstrap = [event for event in season["events"] if "no champion" in " ".join(event["reasons"])]
    assert len(bootstrap) == 1 and dt.date.fromisoformat(bootstrap[0]["dt"]) < SHIFT


def test_better_candidate_promoted_and_ledger_written(season):
    ledger = warehouse_rows(season, "promotion_ledger")
    promotions = [row for row in ledger if row["action"] == "promote"]
    assert promotions[0]["previous_version"] is None
    after_drift = [row for row in promotions if row["previous_version"] is not None]
    assert after_drift, ledger
    best = after_drift[-1]
    assert best["candidate_score"] > best["champion_score"] + 0.005
    details = json.loads(best["details"])
    assert details["evaluation"]["candidate"]["rows"] == details["evaluation"]["champion"]["rows"]
    assert season["champion_after_worse"].version == best["champion_after"]


def test_worse_candidate_refused_and_champion_unchanged(season):
    assert str(season["worse"].state) == "success"
    ledger = warehouse_rows(season, "promotion_ledger")
    refusal = [row for row in ledger if row["run_id"] == season["worse"].run_id]
    assert [row["action"] for row in refusal] == ["refuse"]
    assert refusal[0]["champion_after"] == refusal[0]["previous_version"]
    assert refusal[0]["candidate_score"] < refusal[0]["champion_score"]
    assert season["champion_after_worse"].version == refusal[0]["previous_version"]


def test_rollback_restores_the_version_the_champion_replaced(season):
    assert str(season["rollback"].state) == "success"
    ledger = warehouse_rows(season, "promotion_ledger")
    [rollback] = [row for row in ledger if row["action"] == "rollback"]
    replaced = [
        row for row in ledger if row["action"] == "promote" and row["champion_after"] == rollback["previous_version"]
    ]
    assert rollback["previous_version"] == season["champion_after_worse"].version
    assert rollback["champion_after"] == replaced[-1]["previous_version"]
    assert season["champion_after_rollback"].version == rollback["champion_after"]
    assert json.loads(rollback["reasons"]) == ["test: roll back"]


def test_rerun_is_identical_and_does_not_duplicate(season):
    assert str(season["rerun"].state) == "success"
    pd.testing.assert_frame_equal(season["before_rerun"], season["after_rerun"])
    predictions = [row for row in warehouse_rows(season, "predictions") if row["dt"] == RERUN]
    ids = [row["prediction_id"] for row in predictions]
    assert (
        len(ids)
        == len(set(ids))
        == len(season["after_rerun"]) + sum(1 for row in predictions if row["alias"] == "challenger")
    )
    for table in ("validation_runs", "drift_nights", "retrain_decisions"):
        assert len([row for row in warehouse_rows(season, table) if row["dt"] == RERUN]) == 1, table
    metrics = [(row["feature"]) for row in warehouse_rows(season, "drift_metrics") if row["dt"] == RERUN]
    assert len(metrics) == len(set(metrics)) > 0


def test_bad_rows_quarantined_with_reasons_and_the_rest_scored(season):
    store = season["store"]
    date = day(NIGHTS - 2)
    rejected = pd.read_csv(store.local_path(f"quarantine/{MODEL}/dt={date}/rejected.csv"))
    assert len(rejected) > 0
    assert rejected["_reasons"].str.contains(r"age: 'unknown'|annual_income|home_ownership|credit_score").all()
    scored = champion_predictions(store, date)
    assert len(scored) + len(rejected) == ROWS
    assert not set(scored["entity_id"]) & set(rejected["application_id"])


def test_over_limit_drop_fails_readably_and_scores_nothing(season):
    night = season["nights"][OVER_LIMIT]
    assert night["state"] == "failed"
    assert night["tasks"]["validate_part"] == "success"
    assert night["tasks"]["commit_validation"] == "failed"
    assert night["tasks"]["score_part"] in ("upstream_failed", None)
    [row] = [row for row in warehouse_rows(season, "validation_runs") if row["dt"] == OVER_LIMIT]
    assert not row["passed"]
    assert "above the limit of 5.0%" in row["message"] and "max_bad_row_share" in row["message"]
    store = season["store"]
    assert not store.exists(f"predictions/{MODEL}/dt={OVER_LIMIT}/_SUCCESS")
    assert not store.exists(f"curated/{MODEL}/dt={OVER_LIMIT}/_SUCCESS")
    assert not [row for row in warehouse_rows(season, "predictions") if row["dt"] == OVER_LIMIT]


def test_the_summary_lists_refused_batches_and_whether_they_were_repaired(season):
    from nightshift.stages.summary import format_summary, season_summary

    summary = season_summary(season["config"], MODEL)
    refused = {batch["dt"]: batch for batch in summary["refused_batches"]}
    assert set(refused) == {str(OVER_LIMIT), str(MALFORMED), str(EMPTY)}
    assert refused[str(OVER_LIMIT)]["bad_row_share"] > 0.05
    assert not any(batch["repaired"] for batch in refused.values())
    assert f"{OVER_LIMIT} {refused[str(OVER_LIMIT)]['bad_row_share']:.1%} bad rows, not repaired yet" in format_summary(
        summary
    )


@pytest.mark.parametrize(
    ("date", "expected"),
    [(MALFORMED, r"missing columns \['application_ts'"), (EMPTY, "the file is empty")],
)
def test_malformed_files_get_a_clear_error(season, date, expected):
    night = season["nights"][date]
    assert night["state"] == "failed" and night["tasks"]["commit_validation"] == "failed"
    [row] = [row for row in warehouse_rows(season, "validation_runs") if row["dt"] == date]
    assert f"dt={date}/part-00000.csv" in row["message"]
    assert pd.Series([row["message"]]).str.contains(expected, case=False).all(), row["message"]
    result = json.loads(season["store"].read_bytes(f"validation/{MODEL}/dt={date}/result.json"))
    assert result["passed"] is False


def test_drift_index_lists_every_scored_night(season):
    store = season["store"]
    index = store.read_bytes(f"reports/drift/{MODEL}/index.html").decode()
    nights = [row["dt"] for row in warehouse_rows(season, "drift_nights")]
    assert nights
    for date in nights:
        linked = partition_file(store, f"reports/drift/{MODEL}/dt={date}", "report.html")
        assert linked.split(f"reports/drift/{MODEL}/", 1)[1] in index
    latest = json.loads(store.read_bytes(f"reports/drift/{MODEL}/latest.json"))
    assert latest["dt"] == max(nights).isoformat()
    assert Path(store.local_path(f"reports/drift/{MODEL}/dt={latest['dt']}/report.json")).stat().st_size > 1000


def test_nights_before_the_first_champion_are_scored_once_it_exists(season):
    from nightshift.stages.summary import season_summary

    store = season["store"]
    backlog = warehouse_rows(season, "scoring_backlog")
    first = next(row for row in warehouse_rows(season, "promotion_ledger") if row["action"] == "promote")
    assert backlog, "the season starts without a champion, so its first nights wait for one"
    assert {(row["status"], row["scored_version"]) for row in backlog} == {("scored", first["candidate_version"])}
    for row in backlog:
        assert len(champion_predictions(store, row["dt"])) > 0
        summary = json.loads(store.read_bytes(f"reports/drift/{MODEL}/dt={row['dt']}/summary.json"))
        assert summary["model_version"] == first["candidate_version"]
        assert summary["scored_late"]["scored_by"] == row["scored_run_id"] != row["run_id"]
    assert {day(offset) for offset in range(NIGHTS)} <= {row["dt"] for row in warehouse_rows(season, "drift_nights")}
    assert all(season["nights"][day(offset)]["tasks"]["score_backlog"] == "success" for offset in range(NIGHTS))
    summary = season_summary(season["config"], MODEL)
    assert summary["nights_unscored"] == [] and len(summary["nights_scored_late"]) == len(backlog)
    assert summary["nights_with_drift_report"] >= NIGHTS


def test_the_shift_is_caught_by_the_performance_rule_estimated_first_and_realized_after(season):
    """After the shift the estimate of the rule's metric (log loss) moves on the night itself; its labels confirm it a
    night later; a retrain request names the performance rule with those figures."""
    performance = {row["dt"]: row for row in warehouse_rows(season, "performance_nights") if row["alias"] == "champion"}
    shifted = performance[SHIFT]
    assert shifted["basis"] == "realized" and shifted["degraded"], shifted
    assert shifted["estimated"] - shifted["reference"] > 0.05, "the estimate moves with the population"
    before = [row for when, row in performance.items() if when < SHIFT and row["basis"] == "realized"]
    assert before and not any(row["degraded"] for row in before)
    last = performance[day(NIGHTS - 1)]
    assert last["realized"] is None and last["basis"] == "estimated" and last["coverage"] == 0
    fired = [event for event in season["events"] if "performance" in event.get("fired", [])]
    assert fired, season["events"]
    rule = fired[0]["rules"]["performance"]
    assert rule["metric"] == "log_loss" and str(SHIFT) in rule["degraded_nights"]
    assert dt.date.fromisoformat(fired[0]["dt"]) >= SHIFT
    page = season["store"].read_bytes(f"reports/performance/{MODEL}/dt={SHIFT}/performance.html").decode()
    assert f"{shifted['realized']:.3f}" in page and f"{shifted['estimated']:.3f}" in page
    index = season["store"].read_bytes(f"reports/drift/{MODEL}/index.html").decode()
    assert f"performance/{MODEL}/dt={SHIFT}/performance.html" in index
