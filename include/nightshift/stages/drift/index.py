"""A model's drift index: every complete night's summary with its links, rendered to index.html and latest.json."""

from __future__ import annotations

import json
from typing import Any

from nightshift.stores.objects import MARKER, ObjectStore, partition_file, read_manifest, read_partition_json


def report_prefix(model: str) -> str:
    return f"reports/drift/{model}"


def _night_performance(store: ObjectStore, model: str, night_dir: str) -> dict[str, Any] | None:
    """The champion's judged performance of a night for the index (its page linked relative to the index), or None."""
    prefix = f"reports/performance/{model}/{night_dir}"
    if read_manifest(store, prefix) is None:
        return None
    document = read_partition_json(store, prefix, "performance.json")
    champion = (document.get("aliases") or {}).get("champion")
    if not champion:
        return None
    metric = document.get("metric")
    estimate = (champion.get("estimated") or {}).get(metric) or {}
    judgement = champion.get("judgement") or {}
    return {
        "metric": metric,
        "estimated": estimate.get("value"),
        "estimated_lower": estimate.get("lower"),
        "estimated_upper": estimate.get("upper"),
        "realized": (champion.get("realized") or {}).get(metric),
        "coverage": champion.get("coverage"),
        "basis": judgement.get("basis"),
        "degraded": judgement.get("degraded"),
        "concept_drift": judgement.get("concept_drift"),
        "page": f"../../performance/{model}/{night_dir}/performance.html",
    }


def night_summaries(store: ObjectStore, model: str) -> list[dict[str, Any]]:
    """Every complete night's summary, oldest first, with its links relative to the index: the report's current
    revision, the performance page, the validation page and JSON and the rejected rows (those that exist)."""
    base = report_prefix(model)
    validation = set(store.list(f"validation/{model}")) | set(store.list(f"quarantine/{model}"))
    summaries = []
    for key in store.list(base):
        night_dir, _, name = key[len(base) + 1 :].partition("/")
        if name != MARKER:
            continue
        prefix = f"{base}/{night_dir}"
        revision = partition_file(store, prefix, "summary.json").rsplit("/", 1)[0][len(base) + 1 :]
        summary = read_partition_json(store, prefix, "summary.json")
        if not summary.get("skipped"):
            summary["report_html"] = f"{revision}/report.html"
            summary["report_json"] = f"{revision}/report.json"
        summary["performance"] = _night_performance(store, model, night_dir)
        summary["validation"] = _night_validation(validation, model, night_dir)
        summaries.append(summary)
    summaries.sort(key=lambda item: item["dt"])
    return summaries


def _night_validation(keys: set[str], model: str, night_dir: str) -> dict[str, str | None]:
    """The night's validation page, its JSON and its rejected rows relative to the index (None for those absent)."""
    found = {
        "page": f"validation/{model}/{night_dir}/result.html",
        "json": f"validation/{model}/{night_dir}/result.json",
        "rejected": f"quarantine/{model}/{night_dir}/rejected.csv",
    }
    return {name: f"../../../{key}" if key in keys else None for name, key in found.items()}


def refresh_index(store: ObjectStore, model: str) -> None:
    """Rebuild index.html and latest.json from every complete night's summary."""
    from nightshift.stages.drift.measure import latest_pointer, render_index

    base = report_prefix(model)
    summaries = night_summaries(store, model)
    store.write_bytes(f"{base}/index.html", render_index(summaries, model).encode())
    store.write_bytes(f"{base}/latest.json", json.dumps(latest_pointer(summaries, model), indent=2).encode())
