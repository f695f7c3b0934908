"""A rerun night keeps what every run found: report revisions, the summary's measurements, the index mark, night_runs."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from nightshift.config import settings
from nightshift.runs import RunInfo
from nightshift.stages import decision
from nightshift.stages.drift import tasks as drift_tasks
from nightshift.stages.score import tasks as score_tasks
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stores import warehouse
from nightshift.stores.objects import open_store, read_partition_json
from nightshift_dev.simulate import SimulationPlan, simulate
from tests.champions import register_champion
from tests.manifests import published_manifest

MODEL = "credit_risk"
UNSCORED_NIGHT = dt.date(2026, 10, 1)
NIGHT = dt.date(2026, 10, 2)
REPORTS = f"reports/drift/{MODEL}"


def scheduled(day: dt.date) -> RunInfo:
    return RunInfo(f"scheduled__{day}T02:00:00+00:00", "scheduled")


def manual(day: dt.date, number: int) -> RunInfo:
    return RunInfo(f"manual__{day}T09:{number:02d}:00+00:00", "manual")


def measure(day: dt.date, run: RunInfo, validate: bool = True) -> dict:
    """The nightly stages in the DAG's order, in this process: validate, score, drift, decide."""
    if validate:
        validate_tasks.validate(MODEL, day.isoformat(), run)
    score_tasks.score(MODEL, day.isoformat(), run, chunk_rows=250)
    measured = drift_tasks.drift(MODEL, day.isoformat(), run)
    return {"drift": measured, "decision": decision.decide(MODEL, day.isoformat(), run, measured)}


def index_row(store, day: dt.date) -> str:
    """The index's row of one night."""
    page = store.read_bytes(f"{REPORTS}/index.html").decode()
    [row] = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", page, re.S) if f"<td>{day}" in row]
    return row


def cells(row: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)


@pytest.fixture
def season(home, demo_spec):
    store = open_store(settings().store_uri)
    plan = SimulationPlan(start=UNSCORED_NIGHT, days=2, rows_per_day=900, bad_row_share=0.01, files_per_day=2)
    simulate(store, demo_spec, plan)
    return store


def test_a_night_re_measured_by_a_new_champion_keeps_its_first_measurement(season):
    store = season
    today = dt.datetime.now(dt.UTC).date().isoformat()
    skipped = RunInfo(f"scheduled__{UNSCORED_NIGHT}T02:00:00+00:00", "scheduled")
    validate_tasks.validate(MODEL, UNSCORED_NIGHT.isoformat(), skipped)
    score_tasks.score(MODEL, UNSCORED_NIGHT.isoformat(), skipped, chunk_rows=250)
    assert "not scored" in drift_tasks.drift(MODEL, UNSCORED_NIGHT.isoformat(), skipped)["skipped"]

    first_version = register_champion(NIGHT - dt.timedelta(days=5), rows=1500)
    first = measure(NIGHT, scheduled(NIGHT))
    assert first["drift"]["model_version"] == first_version
    first_revision = published_manifest(store, f"{REPORTS}/dt={NIGHT}")["revision"]

    second_version = register_champion(NIGHT - dt.timedelta(days=1), rows=1500, replacing=first_version)
    assert second_version != first_version
    rerun = manual(NIGHT, 1)
    second = measure(NIGHT, rerun, validate=False)
    assert second["drift"]["model_version"] == second_version

    prefix = f"{REPORTS}/dt={NIGHT}"
    summary = read_partition_json(store, prefix, "summary.json")
    assert summary["model_version"] == second_version
    assert [
        (entry["run_id"], entry["run_type"], entry["model_version"], entry["revision"], entry["scored"])
        for entry in summary["measurements"]
    ] == [
        (scheduled(NIGHT).run_id, "scheduled", first_version, first_revision, True),
        (rerun.run_id, "manual", second_version, None, True),
    ]
    assert all(entry["measured_at"].startswith(today) for entry in summary["measurements"])
    manifest = published_manifest(store, prefix)
    assert manifest["revision"] != first_revision and manifest["revisions"] == [first_revision, manifest["revision"]]

    first_report = f"dt={NIGHT}/rev={first_revision}/report.html"
    assert store.exists(f"{REPORTS}/{first_report}")
    assert f"model version {first_version} ·" in store.read_bytes(f"{REPORTS}/{first_report}").decode()
    assert f"model version {second_version} ·" in store.read_bytes(f"{prefix}/report.html").decode()

    row = index_row(store, NIGHT)
    assert (
        f're-measured {today} against v{second_version}; <a href="{first_report}">first measured against '
        f"v{first_version}</a>"
    ) in row
    assert cells(row)[1] == second_version
    assert f'href="dt={NIGHT}/rev={manifest["revision"]}/report.html"' in row
    latest = json.loads(store.read_bytes(f"{REPORTS}/latest.json"))
    assert latest["re_measured"] == [
        {
            "dt": NIGHT.isoformat(),
            "runs": 2,
            "measured_at": summary["measurements"][-1]["measured_at"],
            "model_version": second_version,
            "first_model_version": first_version,
            "first_report_html": first_report,
        }
    ]

    not_scored = index_row(store, UNSCORED_NIGHT)
    assert cells(not_scored)[1] == '<span class="muted">not scored</span>'
    assert "re-measured" not in not_scored and "HTML" not in not_scored
    [entry] = read_partition_json(store, f"{REPORTS}/dt={UNSCORED_NIGHT}", "summary.json")["measurements"]
    assert (entry["model_version"], entry["scored"], entry["revision"]) == (None, False, None)

    engine = warehouse.connect(settings().warehouse_url)
    runs = warehouse.night_runs(engine, MODEL, NIGHT)
    assert [(row["stage"], row["run_id"], row["model_version"]) for row in runs] == [
        ("validation", scheduled(NIGHT).run_id, None),
        ("drift", scheduled(NIGHT).run_id, first_version),
        ("decision", scheduled(NIGHT).run_id, first_version),
        ("drift", rerun.run_id, second_version),
        ("decision", rerun.run_id, second_version),
    ]
    assert runs[1]["address"] == store.url_for(f"{REPORTS}/{first_report}")
    assert runs[3]["address"] == second["drift"]["report"] != runs[1]["address"]
    decisions = [row for row in runs if row["stage"] == "decision"]
    assert [(row["details"]["decision"], row["details"]["reasons"]) for row in decisions] == [
        (first["decision"]["decision"], first["decision"]["reasons"]),
        (second["decision"]["decision"], second["decision"]["reasons"]),
    ]
    [current] = warehouse.fetch_all(engine, warehouse.retrain_decisions, model=MODEL, dt=NIGHT)
    assert (current["run_id"], current["run_type"]) == (rerun.run_id, "manual")
    [skipped_run] = [row for row in warehouse.night_runs(engine, MODEL, UNSCORED_NIGHT) if row["stage"] == "drift"]
    assert skipped_run["model_version"] is None and "no champion" in skipped_run["details"]["skipped"]


def test_a_night_measured_twice_by_one_champion_says_so(season):
    store = season
    version = register_champion(NIGHT - dt.timedelta(days=5), rows=1500)
    measure(NIGHT, scheduled(NIGHT))
    first_revision = published_manifest(store, f"{REPORTS}/dt={NIGHT}")["revision"]
    again = manual(NIGHT, 2)
    drift_tasks.drift(MODEL, NIGHT.isoformat(), again)
    decision.decide(MODEL, NIGHT.isoformat(), again, None)

    summary = read_partition_json(store, f"{REPORTS}/dt={NIGHT}", "summary.json")
    assert [entry["model_version"] for entry in summary["measurements"]] == [version, version]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    first_at = summary["measurements"][0]["measured_at"][:10]
    assert (
        f're-measured {today} (v{version} again); <a href="dt={NIGHT}/rev={first_revision}/report.html">'
        f"first measured {first_at}</a>"
    ) in index_row(store, NIGHT)

    engine = warehouse.connect(settings().warehouse_url)
    decisions = [row for row in warehouse.night_runs(engine, MODEL, NIGHT) if row["stage"] == "decision"]
    assert [row["run_id"] for row in decisions] == [scheduled(NIGHT).run_id, again.run_id]
    assert [row["address"] for row in decisions][1] is None
    [current] = warehouse.fetch_all(engine, warehouse.retrain_decisions, model=MODEL, dt=NIGHT)
    assert current["run_id"] == again.run_id
    night_data_quality_is_in_the_summary_the_warehouse_and_latest_json(store, engine, summary, version)


def night_data_quality_is_in_the_summary_the_warehouse_and_latest_json(store, engine, summary, version) -> None:
    """The missing share of the whole curated night and of the champion's reference, read here on their own."""
    import pandas as pd

    from nightshift.config import get_spec
    from nightshift.stores import registry
    from nightshift.stores.objects import partition_files

    keys = partition_files(store, f"curated/{MODEL}/dt={NIGHT}", ".parquet")
    curated = pd.concat([pd.read_parquet(store.local_path(key)) for key in keys], ignore_index=True)
    champion = registry.get_version(settings(), MODEL, version)
    reference = registry.load_reference(settings(), champion)
    quality = summary["data_quality"]
    assert quality["rows"] == len(curated)
    features = {item["feature"]: item for item in quality["features"]}
    assert list(features) == get_spec(MODEL, settings().models_dir).feature_names
    employment = features["employment_years"]
    assert employment["missing_share"] == pytest.approx(curated["employment_years"].isna().mean())
    assert employment["reference_missing_share"] == pytest.approx(reference["employment_years"].isna().mean())
    assert 0 < employment["missing_share"] < 0.1

    rows = warehouse.fetch_all(engine, warehouse.data_quality, model=MODEL, dt=NIGHT)
    assert sorted(row["feature"] for row in rows) == sorted(features)
    for row in rows:
        item = features[row["feature"]]
        assert (row["model_version"], row["rows"], row["flagged"]) == (version, len(curated), item["flagged"])
        assert row["missing_share"] == pytest.approx(item["missing_share"])
        assert json.loads(row["reasons"]) == item["reasons"]
    assert [row["unseen_category_share"] is None for row in sorted(rows, key=lambda r: r["feature"])] == [
        features[name]["type"] != "category" for name in sorted(features)
    ]
    latest = json.loads(store.read_bytes(f"{REPORTS}/latest.json"))
    assert latest["data_quality_flagged"] == [
        {"feature": name, "reasons": item["reasons"]} for name, item in features.items() if item["flagged"]
    ]
    statistics = registry.load_reference_statistics(settings(), champion)
    assert statistics is not None and set(statistics["features"]) == set(features)


def test_a_summary_written_before_measurements_existed_becomes_the_first_entry(tmp_path):
    from nightshift.stores.objects import LocalStore, publish_partition

    store = LocalStore(f"file://{tmp_path}")
    prefix = f"{REPORTS}/dt={NIGHT}"
    older = tmp_path / "summary.json"
    older.write_text(json.dumps({"dt": NIGHT.isoformat(), "model_version": "3", "run_id": "scheduled__old"}))
    revision = publish_partition(
        store, prefix, {"model": MODEL, "dt": NIGHT.isoformat()}, local={"summary.json": older}
    )
    published_at = published_manifest(store, prefix)["published_at"]

    first, latest = drift_tasks._measurements(store, prefix, manual(NIGHT, 3), None)
    assert first == {
        "run_id": "scheduled__old",
        "run_type": None,
        "measured_at": published_at,
        "model_version": "3",
        "revision": revision,
        "scored": True,
    }
    assert (latest["run_id"], latest["model_version"], latest["revision"], latest["scored"]) == (
        manual(NIGHT, 3).run_id,
        None,
        None,
        False,
    )
    [only] = drift_tasks._measurements(store, f"{REPORTS}/dt={UNSCORED_NIGHT}", scheduled(UNSCORED_NIGHT), "3")
    assert (only["model_version"], only["revision"], only["scored"]) == ("3", None, True)
