"""Backfills through all three doors while the scheduler is busy catching up a season, on `make airflow`'s setup.

`nightshift airflow` (embedded PostgreSQL, LocalExecutor) catches up a short season of small nights scored by a
registered champion. While later nights are still running: a backfill created in the real Airflow UI in headless
Chromium (Trigger -> Backfill, a date range, "All Runs", Run Backfill), one through the CLI exactly as the README
shows it, and one through the REST API (`POST /api/v2/backfills`, as `nightshift demo` sends it). Every backfill's
runs succeed, no run is lost or duplicated, the scheduler stays up, the nights' outputs are replaced whole by the
backfill runs, and no backfill run requests a retrain. Screenshots of each UI step: `artifacts/browser/`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import MODEL, NIGHTLY, LocalAirflow, Screenshots

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SEASON_START = dt.date(2026, 10, 1)
NIGHTS = 10  # each door needs nights still catching up when it opens: the last one opens after about 6
ROWS = 500
TERMINAL = ("success", "failed")
NIGHT_TIMEOUT = 1500  # seconds for the scheduled nights a door needs to finish, on a busy 2-core machine
BACKFILL_TIMEOUT = 1200  # seconds for one backfill's runs
SEASON_TIMEOUT = 2400  # seconds for the whole catch-up


def night(offset: int) -> dt.date:
    return SEASON_START + dt.timedelta(days=offset)


SEASON = [night(offset) for offset in range(NIGHTS)]
# each door replays two nights the scheduler has already run; their runs are reprocessed ("All Runs")
DOORS = {"ui": (night(0), night(1)), "cli": (night(2), night(3)), "rest": (night(4), night(5))}


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def runs_by_date(airflow: LocalAirflow) -> dict[dt.date, list[dict[str, Any]]]:
    """Every run of the nightly DAG, by the date of its logical date."""
    found: list[dict[str, Any]] = []
    while True:
        page = airflow.api(f"/dags/{NIGHTLY}/dagRuns?limit=100&offset={len(found)}&order_by=id")
        found.extend(page["dag_runs"])
        if not page["dag_runs"] or len(found) >= (page["total_entries"] or 0):
            break
    runs: dict[dt.date, list[dict[str, Any]]] = {}
    for run in found:
        runs.setdefault(when(run["logical_date"]).date(), []).append(run)
    return runs


def failed_tasks(airflow: LocalAirflow, run_id: str) -> list[str]:
    from urllib.parse import quote

    page = airflow.api(f"/dags/{NIGHTLY}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=100")
    return [f"{ti['task_id']}[{ti['map_index']}]" for ti in page["task_instances"] if ti["state"] == "failed"]


def fail_on_failed_runs(airflow: LocalAirflow, runs: dict, dates: list[dt.date], step: str) -> None:
    for day in dates:
        for run in runs.get(day, []):
            if run["state"] == "failed":
                tasks = ", ".join(failed_tasks(airflow, run["dag_run_id"]))
                pytest.fail(f"{step}: run {run['dag_run_id']} of {day} failed (tasks {tasks}); {airflow.logs}")


def wait_for_nights(airflow: LocalAirflow, dates: list[dt.date], step: str, timeout: float = NIGHT_TIMEOUT) -> dict:
    """Wait until every date has a successful run; fail at once when one of them failed."""

    def done() -> dict | None:
        runs = runs_by_date(airflow)
        fail_on_failed_runs(airflow, runs, dates, step)
        ok = all(any(run["state"] == "success" for run in runs.get(day, [])) for day in dates)
        return runs if ok else None

    return airflow.wait_until(done, step, timeout, every=5)


def catching_up(runs: dict[dt.date, list[dict[str, Any]]]) -> list[dt.date]:
    """The season's nights the scheduler has not finished yet (no run, or a scheduled run still going)."""
    return [
        day
        for day in SEASON
        if not runs.get(day)
        or any(run["state"] not in TERMINAL and run["run_type"] == "scheduled" for run in runs[day])
    ]


@dataclass
class Door:
    name: str
    first: dt.date
    last: dt.date
    runs_before: dict = field(default_factory=dict)
    busy: list[dt.date] = field(default_factory=list)
    backfill: dict = field(default_factory=dict)
    runs_after: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)

    @property
    def dates(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def replayed(self) -> list[dt.date]:
        """The nights of the range whose run the backfill took over (Airflow reprocesses a run in place)."""
        return [day for day in self.dates if any(run["run_type"] == "backfill" for run in self.runs_after.get(day, []))]


# --- the three doors ------------------------------------------------------------------------------------------


def ui_backfill(airflow: LocalAirflow, page: Any, shots: Screenshots, door: Door) -> dict:
    """Trigger -> Backfill in the DAG's page: the date range, "All Runs", Run Backfill; the POSTs it sent."""
    from playwright.sync_api import expect

    posts: list[dict[str, Any]] = []

    def record(response: Any) -> None:  # every request the dialog sends to create a backfill, retries included
        if response.request.method == "POST" and response.url.split("?")[0].endswith("/api/v2/backfills"):
            posts.append({"status": response.status, "url": response.url})

    page.on("response", record)
    page.goto(f"{airflow.base_url}/dags/{NIGHTLY}")
    trigger = page.get_by_test_id("trigger-dag-button")
    expect(trigger).to_be_visible()
    shots.take(page, "dag-page")
    trigger.click()
    dialog = page.locator('[data-scope="dialog"][data-part="content"]')
    expect(dialog.get_by_role("heading", name=f"Trigger Dag - {NIGHTLY}")).to_be_visible()
    dialog.locator("label").filter(has=page.locator('input[value="backfill"]')).click()
    expect(dialog.get_by_role("heading", name=f"Run Backfill - {NIGHTLY}")).to_be_visible()
    shots.take(page, "backfill-dialog")
    for label, day in (("From", door.first), ("To", door.last)):
        pick_date(page, dialog, label, day)
    shots.take(page, "date-range")
    dialog.locator("label").filter(has=page.locator('input[value="completed"]')).click()
    expect(dialog.locator('input[value="completed"]')).to_be_checked()
    runs_text = f"{len(door.dates)} runs will be triggered."
    expect(dialog.get_by_text(runs_text)).to_be_visible()
    shots.take(page, "all-runs-dry-run")
    submit = dialog.get_by_role("button", name="Run Backfill", exact=True)
    expect(submit).to_be_enabled()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/backfills")) as sent:
        submit.click()
    created = sent.value
    assert created.status == 200, f"the UI's POST /api/v2/backfills answered {created.status}: {created.text()}"
    backfill = dict(created.json())  # read now: a response's body is gone once the page navigates away
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Backfill in progress")).to_be_visible(timeout=120_000)
    shots.take(page, "backfill-in-progress")
    page.goto("about:blank")  # the DAG page refreshes itself every few seconds: no CPU for it while runs run
    door.detail["posts"] = posts
    door.detail["dialog_said"] = runs_text
    return backfill


def pick_date(page: Any, dialog: Any, label: str, day: dt.date) -> None:
    """Type a date (no time) into the From or To picker: the UI makes it 00:00 for From and 23:59:59.999 for To."""
    from playwright.sync_api import expect

    field_root = dialog.get_by_role("group").filter(has=page.get_by_text(label, exact=True))
    field_root.get_by_test_id("datetime-input").click()
    picker = page.locator('[data-scope="popover"][data-part="content"][data-state="open"]')
    picker.get_by_placeholder("YYYY/MM/DD").fill(day.strftime("%Y/%m/%d"))
    page.keyboard.press("Escape")
    expect(picker).to_have_count(0)
    expect(field_root).to_contain_text(day.strftime("%b %d, %Y"))


def cli_backfill(airflow: LocalAirflow, door: Door) -> dict:
    """`airflow backfill create` exactly as the README shows it, after `eval "$(nightshift airflow-env)"`."""
    known = {backfill["id"] for backfill in airflow.api(f"/backfills?dag_id={NIGHTLY}&limit=100")["backfills"]}
    args = ["backfill", "create", "--dag-id", NIGHTLY, "--from-date", door.first.isoformat()]
    args += ["--to-date", door.last.isoformat(), "--reprocess-behavior", "completed"]
    done = airflow.airflow_cli(*args)
    door.detail["command"] = "airflow " + " ".join(args)
    door.detail["output"] = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, f"`{door.detail['command']}` exited {done.returncode}:\n{door.detail['output']}"
    new = [b for b in airflow.api(f"/backfills?dag_id={NIGHTLY}&limit=100")["backfills"] if b["id"] not in known]
    assert len(new) == 1, f"`{door.detail['command']}` created {len(new)} backfills: {new}"
    return dict(new[0])


def rest_backfill(airflow: LocalAirflow, door: Door) -> dict:
    from nightshift_dev.airflow_api import AirflowApi

    return AirflowApi(airflow.base_url).backfill(NIGHTLY, door.first, door.last)


def wait_for_backfill(airflow: LocalAirflow, door: Door) -> dict:
    step = f"{door.name} backfill {door.backfill['id']} ({door.first}..{door.last})"

    def completed() -> dict | None:
        fail_on_failed_runs(airflow, runs_by_date(airflow), door.dates, step)
        backfill = airflow.api(f"/backfills/{door.backfill['id']}")
        return backfill if backfill["completed_at"] else None

    return airflow.wait_until(completed, f"{step}: waiting for its runs", BACKFILL_TIMEOUT, every=5)


def open_door(airflow: LocalAirflow, page: Any, shots: Screenshots, door: Door) -> None:
    step = f"{door.name} backfill of {door.first}..{door.last}"
    door.runs_before = wait_for_nights(airflow, door.dates, f"{step}: waiting for the scheduled runs of those nights")
    door.busy = catching_up(door.runs_before)
    try:
        if door.name == "ui":
            door.backfill = ui_backfill(airflow, page, shots, door)
        elif door.name == "cli":
            door.backfill = cli_backfill(airflow, door)
        else:
            door.backfill = rest_backfill(airflow, door)
    except Exception as exc:
        if door.name == "ui":
            shots.take(page, "failed")
        pytest.fail(f"{step}: creating it failed: {type(exc).__name__}: {exc}; {airflow.logs}{airflow.tail()}")
    door.backfill = wait_for_backfill(airflow, door)
    if door.name == "ui":
        page.goto(f"{airflow.base_url}/dags/{NIGHTLY}/backfills")
        from playwright.sync_api import expect

        listed = page.locator("tr").filter(has_text=f"{door.first} 00:00:00")
        expect(listed).to_contain_text("All Runs")
        expect(listed).to_contain_text(f"{door.last} 23:59:59")
        shots.take(page, "backfills-tab-done")
        page.goto("about:blank")
    door.runs_after = runs_by_date(airflow)


@pytest.fixture(scope="module")
def doors(local_airflow: LocalAirflow, page: Any, screenshots: Screenshots) -> dict:
    """All three doors one after another (one backfill per DAG at a time), then the rest of the catch-up."""
    import time

    started = time.monotonic()
    opened: dict[str, Door] = {}
    for name, (first, last) in DOORS.items():
        opened[name] = Door(name, first, last)
        open_door(local_airflow, page, screenshots, opened[name])
        door = opened[name]
        took = when(door.backfill["completed_at"]) - when(door.backfill["created_at"])
        busy = ", ".join(str(day) for day in door.busy)
        print(
            f"\n[browser] {name} backfill {door.first}..{door.last}: its runs took {took.total_seconds():.0f}s, "
            f"done at {time.monotonic() - started:.0f}s; still catching up when it was created: {busy}"
        )
    final = wait_for_nights(local_airflow, SEASON, "waiting for the rest of the catch-up", SEASON_TIMEOUT)
    print(f"[browser] season done at {time.monotonic() - started:.0f}s")
    return {
        "doors": opened,
        "final": final,
        "health": local_airflow.api("/monitor/health"),
        "schedulers": [proc.pid for proc in local_airflow.scheduler_processes()],
        "events": local_airflow.api(f"/assets/events?source_dag_id={NIGHTLY}&limit=100")["asset_events"],
    }


# --- what must hold -------------------------------------------------------------------------------------------


def only_run(doors: dict, day: dt.date) -> dict:
    runs = doors["final"][day]
    assert len(runs) == 1, f"{day} has {len(runs)} runs: {[run['dag_run_id'] for run in runs]}"
    return runs[0]


def test_the_ui_sent_one_backfill_request_and_it_was_accepted(doors):
    ui = doors["doors"]["ui"]
    assert [post["status"] for post in ui.detail["posts"]] == [200], ui.detail["posts"]
    assert ui.backfill["reprocess_behavior"] == "completed"
    assert when(ui.backfill["from_date"]).date() == ui.first and when(ui.backfill["to_date"]).date() == ui.last


@pytest.mark.parametrize("name", DOORS)
def test_each_backfill_was_created_while_nights_were_still_catching_up(doors, name):
    door = doors["doors"][name]
    assert door.busy, f"the catch-up was already over when the {name} backfill was created: raise NIGHTS"


@pytest.mark.parametrize("name", DOORS)
def test_each_backfill_reran_its_nights_and_they_succeeded(doors, name):
    door = doors["doors"][name]
    assert door.backfill["completed_at"], door.backfill
    assert door.replayed, f"the {name} backfill replayed none of {door.dates}: {door.runs_after}"
    for day in door.replayed:
        runs = door.runs_after[day]
        assert [(run["run_type"], run["state"]) for run in runs] == [("backfill", "success")], (name, day, runs)
        assert when(runs[0]["start_date"]) >= when(door.backfill["created_at"]), (name, day, runs)


def test_no_run_was_lost_deleted_or_duplicated(doors):
    final = doors["final"]
    assert sorted(final) == SEASON, f"nights with runs: {sorted(final)}"
    for day in SEASON:
        assert only_run(doors, day)["state"] == "success", final[day]
    for door in doors["doors"].values():
        for snapshot in (door.runs_before, door.runs_after):
            for day, runs in snapshot.items():
                ids = {run["dag_run_id"] for run in runs}
                assert ids <= {only_run(doors, day)["dag_run_id"]}, f"{door.name}: runs of {day} changed: {runs}"


def test_the_scheduler_is_still_the_one_that_started(doors, local_airflow):
    assert doors["health"]["scheduler"]["status"] == "healthy", doors["health"]
    assert doors["schedulers"] == [local_airflow.scheduler_pid], (doors["schedulers"], local_airflow.scheduler_pid)


def manifest(store_root: Path, area: str, day: dt.date) -> tuple[dict, float]:
    marker = store_root / area / MODEL / f"dt={day}" / "_SUCCESS"
    assert marker.exists(), f"{marker} is missing: the partition is incomplete"
    return json.loads(marker.read_text()), marker.stat().st_mtime


@pytest.mark.parametrize("name", DOORS)
def test_the_backfilled_nights_outputs_are_complete_and_replaced(doors, local_airflow, name):
    door = doors["doors"][name]
    store = local_airflow.home / "store"
    created = when(door.backfill["created_at"]).timestamp()
    assert door.replayed, f"the {name} backfill replayed none of {door.dates}"
    for day in door.replayed:
        run_id = only_run(doors, day)["dag_run_id"]
        partitions = {area: manifest(store, area, day) for area in ("validation", "curated", "predictions")}
        partitions["drift"] = manifest(store, "reports/drift", day)
        for area, (_, written) in partitions.items():
            assert written >= created, f"{name}: {area} of {day} was not rewritten by the backfill"
        result = json.loads((store / "validation" / MODEL / f"dt={day}" / "result.json").read_text())
        assert result["run_id"] == run_id and result["passed"], result
        assert result["accepted_rows"] + result["quarantined_rows"] == result["rows"] == ROWS, result
        curated, predictions = partitions["curated"][0], partitions["predictions"][0]
        assert curated["rows"] == result["accepted_rows"], curated
        revision = store / "curated" / MODEL / f"dt={day}" / f"rev={curated['revision']}"
        assert all((revision / name).exists() for name in curated["files"]), curated
        assert predictions["run_id"] == run_id, predictions
        assert predictions["versions"] == {"champion": local_airflow.champion}, predictions
        assert predictions["rows"] == {"champion": result["accepted_rows"]}, predictions
        summary = json.loads((store / "reports/drift" / MODEL / f"dt={day}" / "summary.json").read_text())
        assert (summary["run_id"], summary["run_type"]) == (run_id, "backfill"), summary


def backfilled_runs(doors: dict) -> dict[str, tuple[dt.date, float]]:
    return {
        only_run(doors, day)["dag_run_id"]: (day, when(door.backfill["created_at"]).timestamp())
        for door in doors["doors"].values()
        for day in door.replayed
    }


def test_no_backfill_run_requested_a_retrain(doors, local_airflow):
    from urllib.parse import quote

    for run_id, (day, created) in backfilled_runs(doors).items():
        path = f"/dags/{NIGHTLY}/dagRuns/{quote(run_id, safe='')}/taskInstances/request_retrain"
        assert local_airflow.api(path)["state"] == "skipped", f"request_retrain of {day} ({run_id})"
        late = [
            e for e in doors["events"] if e["source_run_id"] == run_id and when(e["timestamp"]).timestamp() > created
        ]
        assert late == [], f"asset events from the backfill run of {day}: {late}"


def test_the_warehouse_records_the_backfill_runs_decisions_without_a_request(doors, local_airflow):
    import sqlalchemy as sa

    from nightshift.config import settings
    from nightshift.stores import warehouse

    dates = [day for door in doors["doors"].values() for day in door.replayed]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NIGHTSHIFT_HOME", str(local_airflow.home))
        for key in ("NIGHTSHIFT_WAREHOUSE_URL",):
            patch.delenv(key, raising=False)
        engine = warehouse.connect(settings().warehouse_url)
    table = warehouse.retrain_decisions
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.dt, table.c.run_type, table.c.requested, table.c.run_id).where(
                    table.c.model == MODEL, table.c.dt.in_(dates)
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(row.dt for row in rows) == sorted(dates), rows
    assert {(row.run_type, row.requested) for row in rows} == {("backfill", False)}, rows


def test_the_cli_backfill_includes_the_last_night_of_its_date_only_range(doors):
    """The README's `--from-date D1 --to-date D2`: D2 is a night of the range (the UI's date-only range includes it)."""
    cli = doors["doors"]["cli"]
    logical = [run["logical_date"] for day in cli.dates for run in cli.runs_after.get(day, [])]
    assert cli.replayed == cli.dates, (
        f"`{cli.detail['command']}` replayed {cli.replayed} of {cli.dates}: Airflow read the range as "
        f"{cli.backfill['from_date']} to {cli.backfill['to_date']}; the nights' logical dates are {logical}"
    )
