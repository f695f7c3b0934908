"""The bench's side of the nightly run through Airflow: its REST calls and waits, and where the run's time went."""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

from nightshift_dev.bench_plan import BenchError


def bench_api(base_url: str) -> Any:
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


def wait_parsed(api: Any, services: Any, dag_id: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not api.dag_known(dag_id):
        services.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{dag_id} was not parsed within {seconds:.0f} s; see {services.log_dir}")
        time.sleep(2)


def wait_finished(api: Any, services: Any, dag_id: str, run_id: str, deadline: float) -> str:
    """Poll the run until it succeeds or fails; its final state."""
    state = "queued"
    while state not in ("success", "failed"):
        services.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{dag_id} run {run_id} still {state} at its timeout; see {services.log_dir}")
        time.sleep(1)
        state = api.run(dag_id, run_id)["state"]
    return state


E2E_STAGE_TASKS = {
    "validation": ("plan_parts", "validate_part", "commit_validation"),
    "scoring": ("scoring_plan", "score_part", "commit_scores"),
    "drift": ("drift",),
}
"""The nightly DAG's tasks that make up each stage the bench measures on its own."""


def _stamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def e2e_breakdown(
    items: list[dict[str, Any]], run: dict[str, Any], seconds: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per task its state, duration and when it was queued, started and ended (seconds after the run started); and
    where the run's time went: in tasks, between them (no task running: scheduling and task start-up), per stage."""
    run_start, run_end = _stamp(run.get("start_date")), _stamp(run.get("end_date"))
    zero = run_start or min((s for item in items if (s := _stamp(item.get("start_date")))), default=None)

    def offset(value: Any) -> float | None:
        stamp = _stamp(value)
        return None if stamp is None or zero is None else round((stamp - zero).total_seconds(), 3)

    tasks: dict[str, Any] = {}
    spans: list[tuple[float, float]] = []
    for item in sorted(items, key=lambda entry: str(entry.get("start_date") or "")):
        name = item["task_id"] + (f"[{item['map_index']}]" if item.get("map_index", -1) >= 0 else "")
        queued, start, end = (
            offset(item.get("queued_when")),
            offset(item.get("start_date")),
            offset(item.get("end_date")),
        )
        tasks[name] = {
            "state": item["state"],
            "seconds": item.get("duration"),
            "try_number": item.get("try_number"),
            "queued_at": queued,
            "started_at": start,
            "ended_at": end,
            "queued_to_start_seconds": None if queued is None or start is None else round(start - queued, 3),
        }
        if start is not None and end is not None:
            spans.append((start, end))
    busy = busy_seconds(spans)
    run_seconds = (run_end - run_start).total_seconds() if run_start and run_end else None
    breakdown = {
        "seconds": round(seconds, 3),
        "run_seconds": None if run_seconds is None else round(run_seconds, 3),
        "trigger_to_run_end_outside_run_seconds": None if run_seconds is None else round(seconds - run_seconds, 3),
        "task_seconds_sum": round(sum(task["seconds"] or 0.0 for task in tasks.values()), 3),
        "busy_seconds": round(busy, 3),
        "idle_seconds": None if run_seconds is None else round(run_seconds - busy, 3),
        "queued_to_start_seconds_sum": round(sum(task["queued_to_start_seconds"] or 0.0 for task in tasks.values()), 3),
        "before_first_task_seconds": min((start for start, _ in spans), default=None),
        "after_last_task_seconds": (
            None if run_seconds is None or not spans else round(run_seconds - max(end for _, end in spans), 3)
        ),
        "stages": stage_tasks(tasks),
    }
    return tasks, breakdown


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the (start, end) spans."""
    busy, reach = 0.0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            busy += end - start
            reach = end
        elif end > reach:
            busy += end - reach
            reach = end
    return busy


def stage_tasks(tasks: dict[str, Any]) -> dict[str, Any]:
    """Per stage the bench measures alone, its tasks in the run: how many, their seconds, first start to last end;
    and the run's other tasks with their seconds."""
    stages: dict[str, Any] = {}
    for stage, names in E2E_STAGE_TASKS.items():
        chosen = [task for name, task in tasks.items() if name.split("[")[0] in names]
        starts = [task["started_at"] for task in chosen if task["started_at"] is not None]
        ends = [task["ended_at"] for task in chosen if task["ended_at"] is not None]
        stages[stage] = {
            "tasks": len(chosen),
            "task_seconds": round(sum(task["seconds"] or 0.0 for task in chosen), 3),
            "span_seconds": round(max(ends) - min(starts), 3) if starts and ends else None,
        }
    measured = {name for names in E2E_STAGE_TASKS.values() for name in names}
    rest = {name: task for name, task in tasks.items() if name.split("[")[0] not in measured}
    stages["not_measured_alone"] = {
        "tasks": sorted(rest),
        "task_seconds": round(sum(task["seconds"] or 0.0 for task in rest.values()), 3),
    }
    return stages


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
