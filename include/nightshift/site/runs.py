"""What one DAG run wrote: a nightly run's pages in the store, a retrain's or rollback's entry in the promotion ledger."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from nightshift.dag_defaults import DAG_KINDS
from nightshift.stores.objects import ObjectStore, partition_key, read_manifest

UNFINISHED = ("queued", "running", "restarting", "up_for_retry", "scheduled", "deferred")


@dataclass(frozen=True)
class RunFacts:
    """What Airflow knows of a run: its ids, the date it is keyed on (logical date, else run_after), its state."""

    dag_id: str
    run_id: str
    day: dt.date | None
    state: str | None = None
    run_type: str | None = None


@dataclass(frozen=True)
class Page:
    """One object a run's page links to (`key`), or why it is absent (`note`)."""

    label: str
    key: str | None
    note: str = ""


@dataclass
class Night:
    """A nightly run's pages, with what the page says about the night."""

    model: str
    day: str
    pages: list[Page] = field(default_factory=list)
    model_version: str | None = None
    validation: dict[str, Any] | None = None


def split_dag_id(dag_id: str, models: list[str]) -> tuple[str, str] | None:
    """(model, kind) of a nightshift DAG id `<model>_<kind>`, or None for any other DAG."""
    for kind in DAG_KINDS:
        model = dag_id.removesuffix(f"_{kind}")
        if model != dag_id and model in models:
            return model, kind
    return None


def _read(store: ObjectStore, key: str) -> Any:
    try:
        return json.loads(store.read_bytes(key))
    except FileNotFoundError:
        return None


def _written_by(store: ObjectStore, prefix: str, run_id: str) -> str:
    manifest = read_manifest(store, prefix) or {}
    writer = manifest.get("run_id")
    return (
        f"the current revision was written by another run of this night: {writer}"
        if writer not in (None, run_id)
        else ""
    )


def _absent(run: RunFacts, validation: dict[str, Any] | None, area: str) -> str:
    """Why a page of the night is not there, from the run's state and the night's validation result."""
    if run.state in UNFINISHED:
        return f"not written yet: the run is {run.state}"
    if validation is None:
        return "not written: the night has no validation result (its drop never arrived, or the run failed before)"
    if not validation.get("passed", True) and area != "validation":
        return "not written: the night failed in validation"
    return "not written by this run"


def nightly_pages(store: ObjectStore, model: str, run: RunFacts) -> Night:
    """The pages of the night `run` is keyed on: whichever exist in the store, and why the others do not."""
    if run.day is None:
        raise ValueError(f"run {run.run_id} of {run.dag_id} has no logical date: it is keyed on no night")
    day = run.day.isoformat()
    night = Night(model=model, day=day)
    checks = partition_key("validation", model, day)
    night.validation = _read(store, f"{checks}/result.json")
    _add(night, store, run, checks, [("validation page", "result.html"), ("validation result (JSON)", "result.json")])
    _add_rejected(night, store, run)
    drift = f"reports/drift/{model}/dt={day}"
    summary = _read(store, f"{drift}/summary.json")
    if summary is not None:
        night.model_version = summary.get("model_version")
    if summary is not None and summary.get("skipped"):
        note = f"not measured: {summary['skipped']}"
        night.pages += [Page("drift report", None, note), Page("drift report (JSON)", None, note)]
        night.pages.append(Page("drift summary (JSON)", f"{drift}/summary.json"))
    else:
        pairs = [
            ("drift report", "report.html"),
            ("drift report (JSON)", "report.json"),
            ("drift summary (JSON)", "summary.json"),
        ]
        _add(night, store, run, drift, pairs)
    performance = f"reports/performance/{model}/dt={day}"
    _add(night, store, run, performance, [("performance page", "performance.html")])
    return night


def _add_rejected(night: Night, store: ObjectStore, run: RunFacts) -> None:
    """The night's rejected rows; a night whose validation rejected none says so (its file, if any, is a header)."""
    prefix = partition_key("quarantine", night.model, night.day)
    if night.validation is None or night.validation.get("quarantined_rows"):
        _add(night, store, run, prefix, [("rejected rows (CSV)", "rejected.csv")])
        return
    key = f"{prefix}/rejected.csv"
    if store.exists(key):
        night.pages.append(Page("rejected rows (CSV)", key, "empty: validation rejected no row of this night"))
    else:
        night.pages.append(Page("rejected rows (CSV)", None, "not written: validation rejected no row of this night"))


def _add(night: Night, store: ObjectStore, run: RunFacts, prefix: str, files: list[tuple[str, str]]) -> None:
    area = prefix.split("/", 1)[0]
    for label, name in files:
        key = f"{prefix}/{name}"
        if store.exists(key):
            night.pages.append(Page(label, key, _written_by(store, prefix, run.run_id)))
        else:
            night.pages.append(Page(label, None, _absent(run, night.validation, area)))


def ledger_entries(rows: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The ledger rows `run_id` wrote (a promotion run writes one; a rejected candidate's run too)."""
    return [row for row in rows if row["run_id"] == run_id]
