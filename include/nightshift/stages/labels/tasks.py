"""The labels stage's task: judge the label drop that landed on a date, quarantine its bad rows, curate the rest."""

from __future__ import annotations

import json
from typing import Any

from nightshift.runs import RunInfo
from nightshift.stages.night import night
from nightshift.stores.objects import partition_writer


def ingest_labels(model: str, day: str, run: RunInfo) -> dict[str, Any]:
    """Judge the label drop that landed on this date: write its quarantine, then curate it or fail.

    Rejected rows and their reasons (`rejected.csv`) and the counts (`result.json`) are published first; when the
    rejected share is over `validation.max_bad_row_share` the task fails and the day's curated labels stay as they
    were. Otherwise the accepted labels replace the day's curated labels.
    """
    from nightshift.stages.ingest import frame_to_csv_bytes
    from nightshift.stages.labels import parse as labels

    current = night(model, day)
    store, spec = current.store, current.spec
    judged = labels.read_labels(store, spec, current.dt)
    if judged is None:
        return {
            "dt": current.dt,
            "received": 0,
            "accepted": 0,
            "rejected": 0,
            "note": "no label drop landed on this date",
        }
    source = store.url_for(labels.labels_prefix(spec, current.dt))
    result = {**labels.summary(judged, spec, source), "dt": current.dt, "run_id": run.run_id}
    quarantine = labels.quarantine_labels_prefix(spec, current.dt)
    manifest = {"model": model, "dt": current.dt, "rows": len(judged.rejected), "run_id": run.run_id}
    with partition_writer(store, quarantine, manifest) as folder:
        (folder / "rejected.csv").write_bytes(frame_to_csv_bytes(judged.rejected))
        (folder / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    if not result["passed"]:
        raise labels.LabelDropRejected(labels.failure_message(result, current.dt, store.url_for(quarantine)))
    curated = labels.curated_labels_prefix(spec, current.dt)
    accepted = {"model": model, "dt": current.dt, "rows": len(judged.accepted), "run_id": run.run_id}
    with partition_writer(store, curated, accepted) as folder:
        judged.accepted.to_parquet(folder / "labels.parquet", index=False)
    return {
        "dt": current.dt,
        "source": source,
        "received": judged.received,
        "accepted": len(judged.accepted),
        "rejected": len(judged.rejected),
        "rejected_share": judged.rejected_share,
        "curated": store.url_for(curated),
        "quarantine": store.url_for(quarantine),
    }
