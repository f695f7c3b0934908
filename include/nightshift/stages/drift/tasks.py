"""The drift stage's task: measure a night against the reference of the champion that scored it, write its
reports as a new revision, record the metrics, and refresh the model's index.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.runs import RunInfo
from nightshift.stages.drift.index import night_summaries, refresh_index, report_prefix
from nightshift.stages.night import Night, night, open_warehouse
from nightshift.stores.objects import (
    ObjectStore,
    partition_file,
    partition_files,
    partition_url,
    partition_writer,
    read_manifest,
    read_partition_json,
)

__all__ = ["drift", "night_sample", "night_summaries", "refresh_index", "report_prefix", "scored_version"]

if TYPE_CHECKING:
    from nightshift.stages.drift.measure import DriftResult
    from nightshift.stores.registry import VersionInfo


def scored_version(current: Night) -> str | None:
    """The champion version that scored the night, from its predictions manifest; None when it has no predictions."""
    manifest = read_manifest(current.store, current.key("predictions")) or {}
    version = (manifest.get("versions") or {}).get("champion")
    return None if version is None else str(version)


def drift(model: str, day: str, run: RunInfo) -> dict[str, Any]:
    """Measure the night against the reference of the champion that scored it; write the reports, refresh the index.

    A night without predictions is not measured: its summary says why and which command scores it (its row in the
    warehouse's scoring backlog). Measuring a night of the backlog marks its row scored. A night scored outside the
    DAG, with no version in its manifest, is measured against the serving champion. A rerun publishes a new revision of
    the night's report (the earlier ones stay) and its summary's `measurements` lists every run that measured the
    night, oldest first (see `_measurements`). The summary's `data_quality` (see `quality.data_quality`) goes into
    the warehouse's `data_quality` table too.
    """
    from nightshift.stages.backlog import NO_CHAMPION, command
    from nightshift.stores import warehouse

    current = night(model, day)
    engine = open_warehouse(current.settings)
    pending = next(iter(warehouse.backlog(engine, model, warehouse.UNSCORED, night=current.day)), None)
    version = scored_version(current)
    if version is None and pending is not None:
        return _not_measured(current, run, pending["reason"], pending["command"])
    champion = _measuring_champion(current, version)
    if champion is None:
        return _not_measured(current, run, NO_CHAMPION, command(model))
    result = _measure(current, champion)
    prefix = f"{report_prefix(model)}/dt={current.dt}"
    summary = _publish_report(current, prefix, run, result, champion.version, pending)
    report_uri = partition_url(current.store, prefix, "report.html")
    summary_key = partition_file(current.store, prefix, "summary.json")
    _record_drift(engine, current, summary, report_uri, run)
    _record_data_quality(engine, current, summary)
    if pending is not None:
        warehouse.resolve_unscored(engine, model, current.day, champion.version, run.run_id)
    return {
        "dt": current.dt,
        "report": report_uri,
        "summary": current.store.url_for(summary_key),
        "summary_key": summary_key,
        "model_version": champion.version,
        "drift_share": summary["drift_share"],
        "dataset_drift": summary["dataset_drift"],
        "drifted_features": summary["drifted_features"],
        "data_quality_flagged": summary["data_quality"]["flagged"],
    }


def _measure(current: Night, champion: VersionInfo) -> DriftResult:
    """The night's drift and data quality against the champion's reference, with its task and holdout metrics."""
    from nightshift.kinds import kind_of
    from nightshift.stages.drift.measure import compute_drift
    from nightshift.stages.drift.quality import data_quality
    from nightshift.stores import registry

    reference = registry.load_reference(current.settings, champion)
    statistics = registry.load_reference_statistics(current.settings, champion)
    features, total = night_sample(current)
    result = compute_drift(
        reference,
        features,
        current.spec,
        model=current.spec.name,
        dt=current.dt,
        model_version=champion.version,
        prediction_column=kind_of(current.spec).prediction_drift.column,
        current_rows=total,
        data_quality=data_quality(features, reference, statistics, current.spec),
    )
    result.summary["task"] = current.spec.task
    logged = registry.holdout_metrics(current.settings, champion)
    result.summary["champion_holdout"] = {
        "gate_metric": current.spec.gate_metric,
        "metrics": {name: value for name, value in logged.items() if name in kind_of(current.spec).metrics},
    }
    return result


def _measuring_champion(current: Night, version: str | None) -> VersionInfo | None:
    """The version that scored the night, or the serving champion for a night scored with no version recorded."""
    from nightshift.stores import registry

    if version is not None:
        return registry.get_version(current.settings, current.spec.name, version)
    return registry.alias_version(current.settings, current.spec.name, registry.CHAMPION)


def _publish_report(
    current: Night, prefix: str, run: RunInfo, result: DriftResult, version: str, pending: dict[str, Any] | None
) -> dict[str, Any]:
    """Publish the night's report, its JSON and its summary as a new revision, refresh the index; return the summary.

    A night of the scoring backlog (`pending`) says in its summary which run left it unscored and which scored it.
    """
    model = current.spec.name
    summary = {
        **result.summary,
        "run_id": run.run_id,
        "run_type": run.run_type,
        "measurements": _measurements(current.store, prefix, run, version),
    }
    if pending is not None:
        summary["scored_late"] = {
            "reason": pending["reason"],
            "unscored_by": pending["run_id"],
            "scored_by": run.run_id,
        }
    with partition_writer(current.store, prefix, {"model": model, "dt": current.dt, "run_id": run.run_id}) as folder:
        (folder / "report.html").write_text(result.html)
        (folder / "report.json").write_text(result.report_json)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    refresh_index(current.store, model)
    return summary


def _not_measured(current: Night, run: RunInfo, reason: str, command: str) -> dict[str, Any]:
    """Write the summary of a night that has no predictions (why, and the command that scores it); refresh the index.

    The run goes into the night's measurements and the warehouse's `night_runs` with no model version.
    """
    from nightshift.stages.backlog import WHEN
    from nightshift.stores import warehouse

    model = current.spec.name
    prefix = f"{report_prefix(model)}/dt={current.dt}"
    summary = {
        "model": model,
        "dt": current.dt,
        "skipped": reason,
        "unscored": {"reason": reason, "command": command, "when": WHEN},
        "run_id": run.run_id,
        "run_type": run.run_type,
        "measurements": _measurements(current.store, prefix, run, None),
    }
    with partition_writer(current.store, prefix, {"model": model, "dt": current.dt, "run_id": run.run_id}) as folder:
        (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    refresh_index(current.store, model)
    warehouse.append_night_run(
        open_warehouse(current.settings),
        "drift",
        {"model": model, "dt": current.day, "run_id": run.run_id, "skipped": reason, "command": command},
        address=partition_url(current.store, prefix, "summary.json"),
        run_type=run.run_type,
    )
    return {"dt": current.dt, "skipped": f"not scored ({reason}), so not measured", "command": command}


def _measurements(store: ObjectStore, prefix: str, run: RunInfo, version: str | None) -> list[dict[str, Any]]:
    """The night's measurement history with this run's entry last: the earlier summary's measurements (or one entry
    made from an earlier summary that has none), the last of them given the earlier report's revision.

    An entry: run_id, run_type, measured_at (UTC), model_version (None when not scored), revision (the report's
    `rev=` folder; None for this run, whose revision is the one the manifest names once published) and scored.
    """
    earlier: list[dict[str, Any]] = []
    manifest = read_manifest(store, prefix)
    if manifest is not None:
        try:
            previous = read_partition_json(store, prefix, "summary.json")
        except FileNotFoundError:
            previous = None
        if previous is not None:
            scored = not previous.get("skipped")
            earlier = [dict(entry) for entry in previous.get("measurements") or []] or [
                {
                    "run_id": previous.get("run_id") or manifest.get("run_id"),
                    "run_type": previous.get("run_type"),
                    "measured_at": manifest.get("published_at"),
                    "model_version": previous.get("model_version") if scored else None,
                    "revision": None,
                    "scored": scored,
                }
            ]
            if earlier[-1].get("revision") is None:
                earlier[-1]["revision"] = manifest.get("revision")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entry = {
        "run_id": run.run_id,
        "run_type": run.run_type,
        "measured_at": now,
        "model_version": version,
        "revision": None,
        "scored": version is not None,
    }
    return [*earlier, entry]


def _record_drift(engine: Any, current: Night, summary: dict[str, Any], report_uri: str, run: RunInfo) -> None:
    """The night's drift summary and per-feature metrics, into the warehouse (and this run's row into night_runs)."""
    from nightshift.stores import warehouse

    model, version = current.spec.name, summary["model_version"]
    warehouse.record_drift(
        engine,
        {
            "model": model,
            "dt": current.day,
            "model_version": version,
            "drift_share": float(summary["drift_share"]),
            "dataset_drift": bool(summary["dataset_drift"]),
            "drifted_features": json.dumps(summary["drifted_features"]),
            "critical_drifted": json.dumps(summary["critical_drifted"]),
            "prediction_drifted": bool(summary["prediction"]["drifted"]) if summary.get("prediction") else None,
            "report_uri": report_uri,
            "run_id": run.run_id,
        },
        [
            {
                "model": model,
                "dt": current.day,
                "feature": item["feature"],
                "method": item["method"],
                "threshold": float(item["threshold"]),
                "score": None if item["score"] is None else float(item["score"]),
                "drifted": bool(item["drifted"]),
                "critical": bool(item["critical"]),
                "model_version": version,
            }
            for item in summary["features"]
        ],
        run_type=run.run_type,
    )


def _record_data_quality(engine: Any, current: Night, summary: dict[str, Any]) -> None:
    """The night's data quality per feature, into the warehouse (replacing the night's earlier rows)."""
    from nightshift.stores import warehouse

    quality = summary["data_quality"]
    warehouse.record_data_quality(
        engine,
        current.spec.name,
        current.day,
        [
            {
                "model": current.spec.name,
                "dt": current.day,
                "feature": item["feature"],
                "model_version": summary["model_version"],
                "rows": int(quality["rows"]),
                "missing_share": float(item["missing_share"]),
                "reference_missing_share": item["reference_missing_share"],
                "out_of_range_share": item["out_of_range_share"],
                "unseen_category_share": item["unseen_category_share"],
                "flagged": bool(item["flagged"]),
                "reasons": json.dumps(item["reasons"]),
            }
            for item in quality["features"]
        ],
    )


def night_sample(current: Night, batch_rows: int = 200_000) -> tuple[Any, int]:
    """The drift sample of the night's curated rows (spec.drift sample_size and seed) and the night's row count.

    Reads the partition in batches and keeps only the sampled rows, so memory does not grow with the night. The
    champion's predictions of the same rows come along (the kind's drift column, e.g. `score`): from the same positions of the part's predictions
    file (scoring keeps the curated order), or, if a part's file does not line up, joined by entity id.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshift.kinds import kind_of
    from nightshift.stages.drift.measure import sample_positions
    from nightshift.stages.score.predict import champion_scores, curated_keys

    spec, store = current.spec, current.store
    predicted = kind_of(spec).prediction_drift.column
    columns = [spec.entity_id, *spec.feature_names]
    keys = curated_keys(store, spec, current.dt)
    predictions = current.key("predictions")
    scored = {Path(key).name: key for key in partition_files(store, predictions, ".parquet")}
    parts, aligned = [], True
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        files = [pq.ParquetFile(store.get_file(key, Path(tmp) / Path(key).name)) for key in keys]
        total = sum(file.metadata.num_rows for file in files)
        wanted = sample_positions(total, spec.drift.sample_size, spec.drift.seed)
        start = 0
        for index, file in enumerate(files):
            rows = file.metadata.num_rows
            local = wanted[np.searchsorted(wanted, start) : np.searchsorted(wanted, start + rows)] - start
            start += rows
            if not len(local):
                continue
            taken = _take_rows(file, local, columns, batch_rows)
            score_key = scored.get(f"champion-{index:05d}.parquet")
            if aligned and score_key is not None:
                scores = pq.ParquetFile(store.get_file(score_key, Path(tmp) / f"scores-{index}.parquet"))
                if scores.metadata.num_rows == rows:
                    picked = _take_rows(scores, local, ["entity_id", predicted], batch_rows)
                    if picked.column("entity_id").equals(taken.column(spec.entity_id).cast(pa.string())):
                        taken = taken.append_column(predicted, picked.column(predicted))
                        parts.append(taken)
                        continue
            aligned = False
            parts.append(taken)
    if not parts:
        return pd.DataFrame(columns=columns), total
    if aligned:
        return pa.concat_tables(parts).to_pandas(), total
    sample = pa.concat_tables([part.select(columns) for part in parts]).to_pandas()
    joined = champion_scores(store, spec, current.dt, sample[spec.entity_id], predicted)
    if len(joined):
        sample = sample.merge(joined.rename(columns={"entity_id": spec.entity_id}), on=spec.entity_id, how="left")
    return sample, total


def _take_rows(file: Any, positions: Any, columns: list[str], batch_rows: int) -> Any:
    """The rows at sorted `positions` of a Parquet file, read batch by batch (an Arrow table)."""
    import numpy as np
    import pyarrow as pa

    pieces, start = [], 0
    for batch in file.iter_batches(batch_size=batch_rows, columns=columns):
        lo, hi = np.searchsorted(positions, [start, start + batch.num_rows])
        if hi > lo:
            pieces.append(pa.Table.from_batches([batch.take(positions[lo:hi] - start)]))
        start += batch.num_rows
    return pa.concat_tables(pieces)
