"""`nightshift demo` through Airflow's real scheduler, on a machine whose every core is kept busy by other processes.

Retrains start from the asset event, not from a script; the backfill is created while the machine is loaded; the
demo prints its summary, and no process it started outlives it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nightshift.runtime import embedded_db
from tests.processes import busy_cores, processes_of_home, server_home

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cores_to_load() -> int:
    """A busy loop for each core the other test processes (pytest-xdist's workers) do not already keep busy."""
    others = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) - 1
    return max(1, (os.cpu_count() or 2) - others)


@pytest.fixture(scope="module")
def demo_run():
    with server_home(prefix="nightshift-demo-") as home:
        yield run_demo_under_load(home)


def run_demo_under_load(home: Path) -> dict:
    out = home / "summary.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "NIGHTSHIFT", "MLFLOW"))}
    env.update({"NIGHTSHIFT_HOME": str(home), "NIGHTSHIFT_AIRFLOW_PORT": str(free_port())})
    command = [
        str(Path(sys.executable).parent / "nightshift"),
        "demo",
        "--nights",
        "10",
        "--rows",
        "1500",
        "--shift-after",
        "6",
        "--timeout",
        "900",
        "--json-out",
        str(out),
    ]
    with busy_cores(seconds=3600, cores=cores_to_load()) as load:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3000, check=False)
        assert all(process.poll() is None for process in load), "the load stopped before the demo ended"
    leftovers = processes_of_home(home)
    logs = (
        "".join(path.read_text()[-3000:] for path in (home / "logs").glob("*.log")) if (home / "logs").exists() else ""
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{logs}"
    with embedded_db.running(home):
        connection = embedded_db.connect(home, "airflow")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT dag_id, run_type, state FROM dag_run ORDER BY id")
                runs = [tuple(row) for row in cursor.fetchall()]
        finally:
            connection.close()
    return {
        "summary": json.loads(out.read_text()),
        "stdout": done.stdout,
        "runs": runs,
        "home": home,
        "leftovers": leftovers,
    }


def test_nothing_outlives_the_demo(demo_run):
    assert demo_run["leftovers"] == [], demo_run["leftovers"]
    assert not embedded_db.status(demo_run["home"]).running


def test_every_night_ran_on_the_schedule(demo_run):
    nightly = [run for run in demo_run["runs"] if run[0] == "credit_risk_nightly"]
    assert len(nightly) == 10
    assert {run_type for _, run_type, _ in nightly} == {"scheduled", "backfill"}
    assert {state for _, _, state in nightly} == {"success"}


def test_retrains_were_started_by_the_asset_event(demo_run):
    retrains = [run for run in demo_run["runs"] if run[0] == "credit_risk_retrain"]
    asset_triggered = [run for run in retrains if run[1] == "asset_triggered"]
    assert len(asset_triggered) >= 2, retrains
    assert all(state == "success" for _, _, state in asset_triggered)


def test_ledger_shows_promotion_after_drift_and_the_refused_experiment(demo_run):
    ledger = demo_run["summary"]["ledger"]
    first = ledger[0]
    assert first["action"] == "promote" and first["previous_version"] is None
    assert first["actor"] == "airflow:asset_triggered"
    after_shift = [row for row in ledger if row["as_of"] >= "2026-10-07" and row["actor"] == "airflow:asset_triggered"]
    assert after_shift, ledger
    experiment = ledger[-1]
    assert experiment["action"] == "refuse"
    assert experiment["champion_after"] == experiment["previous_version"]
    assert any("misses the floor" in reason for reason in experiment["reasons"])


def test_summary_is_printed_with_the_drift_index(demo_run):
    assert "nightshift season summary: credit_risk" in demo_run["stdout"]
    summary = demo_run["summary"]
    assert summary["nights_run"] == 10
    assert summary["rows_quarantined"] > 0
    assert summary["nights_drifted"] and min(summary["nights_drifted"]) >= "2026-10-07"
    index = Path(summary["drift_index"].removeprefix("file://"))
    assert index.exists() and "2026-10-10" in index.read_text()


def test_the_summary_shows_live_performance_and_a_retrain_the_performance_rule_fired(demo_run):
    summary = demo_run["summary"]
    nights = {night["dt"]: night for night in summary["performance"]}
    assert nights and all(night["estimated"] is not None for night in nights.values())
    realized = [night for night in nights.values() if night["realized"] is not None]
    assert realized and max(night["dt"] for night in realized) < max(nights)
    assert any(night["degraded"] for night in realized if night["dt"] >= "2026-10-07")
    assert any("performance" in request["fired"] for request in summary["retrain_requests"])
    assert "  performance (log_loss;" in demo_run["stdout"]


def test_backfill_rewrites_reports_but_never_requests_a_retrain(demo_run):
    backfills = [run for run in demo_run["runs"] if run[0] == "credit_risk_nightly" and run[1] == "backfill"]
    assert len(backfills) == 2 and {state for _, _, state in backfills} == {"success"}
    assert demo_run["summary"]["backfill_nights"] == [
        {"dt": "2026-10-09", "decision": "backfill"},
        {"dt": "2026-10-10", "decision": "backfill"},
    ]
    store = demo_run["home"] / "store" / "reports" / "drift" / "credit_risk"
    for date in ("2026-10-09", "2026-10-10"):
        summary = json.loads((store / f"dt={date}" / "summary.json").read_text())
        assert summary["run_type"] == "backfill"
        assert (store / f"dt={date}" / "report.html").stat().st_size > 100_000


def test_the_refused_night_is_repaired_and_every_alert_reaches_the_local_receivers(demo_run):
    summary = demo_run["summary"]
    [refused] = summary["refused_batches"]
    assert refused["dt"] == "2026-10-10" and refused["bad_row_share"] > 0.05 and refused["repaired"]
    assert "refused batches:         1 (2026-10-10" in demo_run["stdout"] and "repaired and rerun" in demo_run["stdout"]
    sent = summary["alerts_sent"]["by_severity"]
    assert sent["page"]["task_failed"]["first"] == "2026-10-10"
    assert sent["ticket"]["drift"]["first"] >= "2026-10-07"
    assert sent["info"]["promoted"]["count"] >= 2
    subjects = summary["alerts_received"]["email"]
    assert any(s.startswith("[PAGE] credit_risk 2026-10-10: task commit_validation") for s in subjects), subjects
    assert any(s.startswith("[TICKET] credit_risk") and "drift" in s for s in subjects), subjects
    posts = summary["alerts_received"]["webhook"]
    assert any("promoted to champion" in text for text in posts), posts
    deliveries = summary["alerts_sent"]["deliveries"]
    assert sum(deliveries.values()) == len(subjects) + len(posts)
    assert "alerts sent:" in demo_run["stdout"] and "alerts received:         email" in demo_run["stdout"]
