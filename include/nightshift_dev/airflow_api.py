"""The few calls of Airflow's public REST API (v2) the demo, the benchmark and the tests make."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any


class AirflowApiError(RuntimeError):
    """Airflow's REST API refused a call or stayed unreachable; the message names the call and the answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


class AirflowApi:
    """The few calls of Airflow's public REST API (v2) the demo and the tests need: runs, triggers, backfills.

    A busy machine makes the API server slow or briefly unreachable: each call retries connection errors,
    time-outs and transient answers (429, 5xx) with a bounded exponential backoff, then fails naming the call.
    """

    def __init__(self, base_url: str, attempts: int = 6, backoff: float = 1.0, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 30))
            request = urllib.request.Request(
                f"{self.base_url}/api/v2{path}", data=data, method=method, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:1000]
                last = f"answered {exc.code}: {detail}"
                if exc.code not in TRANSIENT_STATUSES:
                    raise AirflowApiError(f"Airflow API {method} {path} {last}", exc.code) from None
            except (OSError, TimeoutError) as exc:
                last = f"unreachable ({getattr(exc, 'reason', exc)})"
        raise AirflowApiError(f"Airflow API {method} {path} {last} (gave up after {self.attempts} attempts)")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"/dags/{dag_id}/dagRuns?limit=100&offset={len(found)}&order_by=id")
            found.extend(page["dag_runs"])
            if len(found) >= page["total_entries"] or not page["dag_runs"]:
                return found

    def states(self, dag_id: str, run_type: str | None = None) -> dict[str, int]:
        """How many runs of a DAG are in each state (optionally only runs of one type)."""
        counts: dict[str, int] = {}
        for run in self.runs(dag_id):
            if run_type is None or run["run_type"] == run_type:
                counts[run["state"]] = counts.get(run["state"], 0) + 1
        return counts

    def queued_asset_events(self, dag_id: str) -> int:
        try:
            return int(self._call("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"])
        except AirflowApiError as exc:
            if exc.status == 404:
                return 0
            raise

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: dt.datetime | None = None) -> dict[str, Any]:
        """Start a run now; with `logical_date`, the run is keyed on that moment (a nightly on that night).

        The run id is chosen here and sent with every attempt, so an attempt whose answer was lost (the server
        created the run, then the client timed out) is found by that id instead of failing as a duplicate.
        """
        when = logical_date.isoformat() if logical_date is not None else None
        run_id = f"manual__{when}" if when else f"manual__{dt.datetime.now(dt.UTC).isoformat()}_{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": when, "conf": conf}
        try:
            return dict(self._call("POST", f"/dags/{dag_id}/dagRuns", body))
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            try:
                return self.run(dag_id, run_id)
            except AirflowApiError:
                raise exc from None

    def has_dag(self, dag_id: str) -> bool:
        """Whether the DAG processor has parsed the DAG yet (it cannot be triggered before)."""
        try:
            self._call("GET", f"/dags/{dag_id}")
        except AirflowApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"))

    def clear_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Clear every task of a run, as the UI's Clear on a run does: the scheduler runs it again from the start."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/clear"
        return dict(self._call("POST", path, {"dry_run": False, "only_failed": False}))

    def import_errors(self) -> list[str]:
        """`file: message` for every DAG file the DAG processor could not import."""
        found = self._call("GET", "/importErrors?limit=100")["import_errors"]
        traces = {item["filename"]: str(item.get("stack_trace") or item.get("stacktrace") or "?") for item in found}
        return [f"{name}: {(trace.strip().splitlines() or ['?'])[-1]}" for name, trace in traces.items()]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones one per map index (task id, state, hostname, map_index...)."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"{path}?limit=100&offset={len(found)}")
            found.extend(page["task_instances"])
            if len(found) >= page["total_entries"] or not page["task_instances"]:
                return found

    def backfill(self, dag_id: str, first: dt.date, last: dt.date) -> dict[str, Any]:
        """Create a backfill as the UI does: every night from `first` to `last`, reprocessing completed runs.

        If an earlier attempt of this call reached the server although its answer was lost, the backfill it
        created is the one returned (Airflow allows one running backfill per DAG).
        """
        body = {
            "dag_id": dag_id,
            "from_date": f"{first.isoformat()}T00:00:00Z",
            "to_date": f"{last.isoformat()}T23:59:59Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        }
        try:
            return dict(self._call("POST", "/backfills", body))
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            for running in self._call("GET", f"/backfills?dag_id={dag_id}&limit=100")["backfills"]:
                if running.get("completed_at") is None and running["from_date"][:10] == first.isoformat():
                    return dict(running)
            raise

    def backfill_completed(self, backfill_id: int) -> bool:
        return self._call("GET", f"/backfills/{backfill_id}").get("completed_at") is not None
