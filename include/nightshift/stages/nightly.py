"""The nightly stages as the DAG calls them: each takes a model name, a date and the run, returns a small dict.

Every stage reads and writes through the object store and warehouse chosen by configuration, replaces its
outputs for the date whole, and is safe to rerun.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightshift.config import ModelSpec, Settings, get_spec, settings
from nightshift.runs import RunInfo
from nightshift.stores.objects import (
    MARKER,
    ObjectStore,
    fault_point,
    open_store,
    partition_file,
    partition_files,
    partition_key,
    partition_url,
    partition_writer,
    publish_partition,
    read_json,
    read_manifest,
    read_partition_json,
    remove_partition,
)


class ValidationFailed(RuntimeError):
    """The night's drop broke a blocking rule; nothing of it was curated or scored."""


@dataclass(frozen=True)
class Night:
    spec: ModelSpec
    day: dt.date
    settings: Settings
    store: ObjectStore

    @property
    def dt(self) -> str:
        return self.day.isoformat()

    def key(self, area: str) -> str:
        return partition_key(area, self.spec.name, self.dt)


def night(model: str, day: str | dt.date) -> Night:
    config = settings()
    spec = get_spec(model, config.models_dir)
    date = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    return Night(spec, date, config, open_store(config.store_uri))


def _warehouse(config: Settings) -> Any:
    from nightshift.stores import warehouse

    return warehouse.connect(config.warehouse_url)


def drop_ready(model: str, day: str) -> bool:
    from nightshift.stages.ingest import drop_is_ready

    current = night(model, day)
    return drop_is_ready(current.store, current.spec, current.dt)


CHUNK_ROWS = 250_000


def staging_prefix(current: Night, run: RunInfo | None = None) -> str:
    """Where a run's mapped tasks leave their pieces for the commit step (under the night when `run` is None)."""
    base = f"staging/{current.spec.name}/dt={current.dt}"
    return f"{base}/run={re.sub(r'[^A-Za-z0-9._-]', '_', run.run_id)}" if run else base


def plan_parts(model: str, day: str, run: RunInfo) -> list[dict[str, Any]]:
    """One part per file of the night's drop, in name order: what `validate_part` fans out over."""
    from nightshift.stages.ingest import DropError, drop_files

    current = night(model, day)
    current.store.delete_prefix(staging_prefix(current))
    try:
        files = drop_files(current.store, current.spec, current.dt)
    except DropError as exc:
        _record_validation(current, run, _unreadable_result(current, str(exc)), quarantine=None, curated=None)
        raise ValidationFailed(f"{exc}\nNothing from this drop was curated or scored{_kept_note(current)}.") from None
    return [{"dt": current.dt, "index": index, "key": key} for index, key in enumerate(files)]


def validate_part(
    model: str, day: str, part: dict[str, Any], run: RunInfo, chunk_rows: int = CHUNK_ROWS
) -> dict[str, Any]:
    """Validate one file of the drop chunk by chunk; stage its accepted rows, rejected rows and result for the commit.

    Memory stays at a few chunks whatever the file's size. The file is judged as a whole night only by
    `commit_validation` (row count, ids repeated across files, bad-row share).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshift.stages.ingest import DropError, read_drop_chunks
    from nightshift.stages.validate.checks import ROW_NUMBER, combine_results, validate_frame

    current = night(model, day)
    spec, store = current.spec, current.store
    key, index = str(part["key"]), int(part["index"])
    source = store.url_for(key)
    staged = f"{staging_prefix(current, run)}/validate/part-{index:05d}"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        curated_path, rejected_path = Path(tmp) / "curated.parquet", Path(tmp) / "rejected.csv"
        writer: Any = None
        first_row = 1
        try:
            for raw in read_drop_chunks(store, spec, key, chunk_rows):
                outcome = validate_frame(raw, spec, source, first_row=first_row, whole_batch=False)
                results.append(outcome.result)
                if len(outcome.quarantined):
                    outcome.quarantined.to_csv(
                        rejected_path, mode="a", header=not rejected_path.exists(), index=False, lineterminator="\r\n"
                    )
                if outcome.passed and len(outcome.accepted):
                    every_row = np.arange(first_row, first_row + len(raw), dtype=np.int64)
                    kept = np.setdiff1d(every_row, outcome.quarantined[ROW_NUMBER].to_numpy(), assume_unique=True)
                    frame = outcome.accepted.assign(**{ROW_NUMBER: kept})
                    if writer is None:
                        writer = pq.ParquetWriter(
                            curated_path, _curated_schema(pa.Table.from_pandas(frame, preserve_index=False))
                        )
                    writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False))
                first_row += len(raw)
        except DropError as exc:
            results.append(_unreadable_result(current, str(exc), source=source))
        finally:
            if writer is not None:
                writer.close()
        result = combine_results(results, source, file=Path(key).name)
        for name, path in (("curated.parquet", curated_path), ("rejected.csv", rejected_path)):
            if path.exists():
                store.put_file(f"{staged}/{name}", path)
        store.write_bytes(f"{staged}/result.json", json.dumps(result, sort_keys=True, default=str).encode())
    return {
        "dt": current.dt,
        "index": index,
        "key": key,
        "staged": staged,
        "rows": int(result["rows"]),
        "quarantined": int(result["quarantined_rows"]),
        "passed": bool(result["passed"]),
    }


def _curated_schema(table: Any) -> Any:
    """The first chunk's Arrow schema, with columns that chunk held no values for typed as strings."""
    import pyarrow as pa

    fields = [pa.field(field.name, pa.string()) if pa.types.is_null(field.type) else field for field in table.schema]
    return pa.schema(fields, metadata=table.schema.metadata)


def commit_validation(model: str, day: str, parts: list[dict[str, Any]], run: RunInfo) -> dict[str, Any]:
    """Judge the whole night from its validated parts, then publish the curated partition and quarantine or fail.

    Rows whose id an earlier part already holds move to quarantine here. Nothing is curated unless the night
    passes; the validation result and the quarantine are written either way.
    """
    from nightshift.stages.ingest import drop_prefix
    from nightshift.stages.validate.checks import night_result

    current = night(model, day)
    spec, store = current.spec, current.store
    parts = sorted(parts, key=lambda part: int(part["index"]))
    results = [read_json(store, f"{part['staged']}/result.json") for part in parts]
    source = store.url_for(parts[0]["key"]) if len(parts) == 1 else store.url_for(drop_prefix(spec, current.dt))
    repeats = _repeated_ids(current, parts) if all(result["passed"] for result in results) else {}
    duplicates = [
        {"file": Path(parts[index]["key"]).name, "row": int(row), "value": value, "first": first}
        for index, found in repeats.items()
        for row, value, first in found
    ]
    result = {**night_result(results, spec, source, duplicates), "dt": current.dt, "run_id": run.run_id}
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        quarantine = _night_quarantine(current, parts, repeats, Path(tmp))
        curated = _curated_files(current, parts, repeats, Path(tmp)) if result["passed"] else None
        _record_validation(current, run, result, quarantine=quarantine, curated=curated)
    store.delete_prefix(f"{staging_prefix(current, run)}/validate")
    if not result["passed"]:
        raise ValidationFailed(
            f"{result['failure_message']}\nNothing from this drop was curated or scored{_kept_note(current)}. "
            "Rejected rows and reasons: "
            f"{store.url_for(current.key('quarantine'))}/rejected.csv; full result: "
            f"{store.url_for(current.key('validation'))}/result.html"
        )
    return {
        "dt": current.dt,
        "curated": store.url_for(current.key("curated")),
        "rows": int(result["rows"]),
        "accepted": int(result["accepted_rows"]),
        "quarantined": int(result["quarantined_rows"]),
        "parts": len(parts),
    }


RepeatedRows = dict[int, list[tuple[int, str, str]]]
"""Keyed by the part's position in the night's parts."""


def _repeated_ids(current: Night, parts: list[dict[str, Any]], batch_rows: int = 500_000) -> RepeatedRows:
    """Per part position: (row number, id, where first seen) of accepted rows whose id an earlier row already holds.

    Only one hash per row is held (8 bytes a row); the ids and row numbers of rows sharing a hash are read back
    and compared exactly, in night order.
    """
    import numpy as np
    import pyarrow.parquet as pq

    from nightshift.stages.validate.checks import ROW_NUMBER, id_hashes, shared_hash_positions

    if current.spec.validation.checks.unique_ids == "off":
        return {}
    entity = current.spec.entity_id
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        files: dict[int, Any] = {}
        hashes: list[Any] = []
        for position, part in enumerate(parts):
            key = f"{part['staged']}/curated.parquet"
            found_hashes = []
            if current.store.exists(key):
                files[position] = pq.ParquetFile(current.store.get_file(key, Path(tmp) / f"{part['index']}.parquet"))
                batches = files[position].iter_batches(batch_size=batch_rows, columns=[entity])
                found_hashes = [id_hashes(batch.column(0).to_pandas()) for batch in batches]
            hashes.append(np.concatenate(found_hashes) if found_hashes else np.empty(0, dtype=np.uint64))
        candidates = shared_hash_positions(hashes)
        del hashes
        first_seen: dict[str, str] = {}
        repeats: RepeatedRows = {}
        for position in sorted(candidates):
            chosen, start = candidates[position], 0
            name = Path(parts[position]["key"]).name
            for batch in files[position].iter_batches(batch_size=batch_rows, columns=[entity, ROW_NUMBER]):
                lo, hi = np.searchsorted(chosen, [start, start + batch.num_rows])
                taken = batch.take(chosen[lo:hi] - start)
                for value, row in zip(taken.column(0).to_pylist(), taken.column(1).to_pylist(), strict=True):
                    if value in first_seen:
                        repeats.setdefault(position, []).append((int(row), str(value), first_seen[value]))
                    else:
                        first_seen[value] = f"{name} row {row}"
                start += batch.num_rows
    return repeats


def _night_quarantine(current: Night, parts: list[dict[str, Any]], repeats: RepeatedRows, folder: Path) -> Path:
    """One rejected.csv for the night: every part's rejected rows, then ids repeated across parts, with reasons."""
    import pandas as pd

    from nightshift.stages.ingest import write_csv
    from nightshift.stages.validate.checks import REASONS, ROW_NUMBER

    store, spec = current.store, current.spec
    path = folder / "rejected.csv"
    several = len(parts) > 1
    frames = []
    for part in parts:
        key = f"{part['staged']}/rejected.csv"
        if store.exists(key):
            rejected = pd.read_csv(
                store.get_file(key, folder / f"rejected-{part['index']}.csv"),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
            )
            frames.append(rejected.assign(_source_file=part["key"]) if several else rejected)
    for index, found in repeats.items():
        rows = pd.DataFrame(
            {
                spec.entity_id: [value for _, value, _ in found],
                ROW_NUMBER: [row for row, _, _ in found],
                REASONS: [f"{spec.entity_id}: {value!r} repeats the id of {first}" for _, value, first in found],
            }
        )
        frames.append(rows.assign(_source_file=parts[index]["key"]) if several else rows)
    columns = [*spec.raw_columns, ROW_NUMBER, REASONS, *(["_source_file"] if several else [])]
    quarantined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return write_csv(quarantined.reindex(columns=columns), path)


def _curated_files(current: Night, parts: list[dict[str, Any]], repeats: RepeatedRows, folder: Path) -> dict[str, Any]:
    """Name -> staged key (copied as is) or local path (a part rewritten without its repeated ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nightshift.stages.validate.checks import ROW_NUMBER

    files: dict[str, Any] = {}
    for position, part in enumerate(parts):
        key = f"{part['staged']}/curated.parquet"
        if not current.store.exists(key):
            continue
        name = f"part-{int(part['index']):05d}.parquet"
        if position not in repeats:
            files[name] = key
            continue
        table = pq.read_table(current.store.get_file(key, folder / name))
        doomed = pa.array([row for row, _, _ in repeats[position]], type=pa.int64())
        kept = table.filter(pc.invert(pc.is_in(table.column(ROW_NUMBER), value_set=doomed)))
        path = folder / f"rewritten-{name}"
        pq.write_table(kept, path)
        files[name] = path
    return files


def validate(model: str, day: str, run: RunInfo, chunk_rows: int = CHUNK_ROWS) -> dict[str, Any]:
    """The whole validation stage in one process: every part in turn, then the commit."""
    parts = plan_parts(model, day, run)
    return commit_validation(model, day, [validate_part(model, day, part, run, chunk_rows) for part in parts], run)


def _unreadable_result(current: Night, message: str, source: str | None = None) -> dict[str, Any]:
    from nightshift.stages.ingest import drop_prefix

    return {
        "source": source or current.store.url_for(drop_prefix(current.spec, current.dt)),
        "model": current.spec.name,
        "dt": current.dt,
        "rows": 0,
        "accepted_rows": 0,
        "clean_rows": 0,
        "quarantined_rows": 0,
        "bad_row_share": 0.0,
        "max_bad_row_share": current.spec.validation.max_bad_row_share,
        "passed": False,
        "failure_message": message,
        "checks": [
            {
                "check": "file",
                "expectation": None,
                "column": None,
                "severity": "block",
                "success": False,
                "unexpected_count": 0,
                "examples": [],
                "row_level": False,
                "spec_field": "sources.drop",
                "problem": message,
            }
        ],
        "failure_kinds": [],
    }


def _record_validation(
    current: Night,
    run: RunInfo,
    result: dict[str, Any],
    quarantine: Path | None,
    curated: dict[str, Any] | None,
) -> None:
    """Persist the result and its page, the quarantine, the curated partition (or its absence), and the warehouse row."""
    from nightshift.stages.validate.checks import render_validation_page
    from nightshift.stores import warehouse

    store, model = current.store, current.spec.name
    result = {**result, "run_id": run.run_id}
    if curated is None:
        result["kept"] = _kept_output(current)
    with partition_writer(
        store, current.key("validation"), {"model": model, "dt": current.dt, "run_id": run.run_id}
    ) as folder:
        (folder / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
        (folder / "result.html").write_text(render_validation_page(result))
    if quarantine is not None:
        manifest = {"model": model, "dt": current.dt, "rows": int(result["quarantined_rows"]), "run_id": run.run_id}
        publish_partition(store, current.key("quarantine"), manifest, local={"rejected.csv": quarantine})
    engine = _warehouse(current.settings)
    if curated is not None:
        manifest = {"model": model, "dt": current.dt, "rows": int(result["accepted_rows"]), "run_id": run.run_id}
        staged = {name: value for name, value in curated.items() if isinstance(value, str)}
        local = {name: value for name, value in curated.items() if isinstance(value, Path)}
        publish_partition(store, current.key("curated"), manifest, staged=staged, local=local)
    warehouse.record_validation(
        engine,
        {
            "model": model,
            "dt": current.day,
            "rows": int(result["rows"]),
            "accepted_rows": int(result["accepted_rows"]),
            "quarantined_rows": int(result["quarantined_rows"]),
            "bad_row_share": float(result["bad_row_share"]),
            "passed": bool(result["passed"]),
            "message": result.get("failure_message"),
            "result_uri": partition_url(store, current.key("validation"), "result.html"),
            "run_id": run.run_id,
        },
        run_type=run.run_type,
    )


def _kept_output(current: Night) -> dict[str, Any]:
    """What a failed validation leaves in place: the night's earlier curated rows and predictions, if it has any."""
    kept = {}
    for area in ("curated", "predictions"):
        manifest = read_manifest(current.store, current.key(area))
        if manifest is not None:
            kept[area] = {
                key: manifest.get(key) for key in ("revision", "run_id", "rows", "versions") if key in manifest
            }
    return kept


def _kept_note(current: Night) -> str:
    kept = _kept_output(current)
    if not kept:
        return ""
    runs = sorted({str(item.get("run_id")) for item in kept.values() if item.get("run_id")})
    earlier = f" of run {', '.join(runs)}" if runs else ""
    return f"; the night's earlier {' and '.join(kept)}{earlier} stay as they were"


def serving_versions(config: Settings, model: str) -> dict[str, str] | None:
    """The versions a night is scored with now: the champion's (and the challenger's, in shadow); None without one."""
    from nightshift.stores import registry

    champion = registry.alias_version(config, model, registry.CHAMPION)
    if champion is None:
        return None
    versions = {registry.CHAMPION: champion.version}
    challenger = registry.alias_version(config, model, registry.CHALLENGER)
    if challenger is not None and challenger.version != champion.version:
        versions[registry.CHALLENGER] = challenger.version
    return versions


def scoring_plan(model: str, day: str, run: RunInfo) -> list[dict[str, Any]]:
    """One part per curated file, each carrying the model versions to use, resolved once for the whole night.

    With no champion yet, a single part that says so: `commit_scores` clears the night's predictions and records
    it in the warehouse's scoring backlog (see `nightshift.stages.backlog`).
    """
    from nightshift.stages.backlog import NO_CHAMPION

    current = night(model, day)
    versions = serving_versions(current.settings, model)
    if versions is None:
        return [{"dt": current.dt, "index": 0, "key": None, "versions": {}, "skipped": NO_CHAMPION}]
    return plan_scoring(current, versions)


def plan_scoring(current: Night, versions: dict[str, str]) -> list[dict[str, Any]]:
    """The parts `score_part` fans out over: one per curated file of the night, each carrying `versions`."""
    from nightshift.stages.score.predict import curated_keys

    keys = curated_keys(current.store, current.spec, current.dt)
    return [{"dt": current.dt, "index": index, "key": key, "versions": versions} for index, key in enumerate(keys)]


def score_part(model: str, day: str, part: dict[str, Any], run: RunInfo, chunk_rows: int = 200_000) -> dict[str, Any]:
    """Score one curated file with the plan's versions, in chunks; stage one Parquet file per alias."""
    from nightshift.stages.score.predict import Scorer, iter_parquet, score_batches, scoring_columns
    from nightshift.stores import registry

    current = night(model, day)
    index = int(part["index"])
    if part.get("skipped"):
        return {"dt": current.dt, "index": index, "skipped": part["skipped"], "staged": {}, "rows": {}}
    scorers = [
        Scorer(
            alias,
            version,
            registry.load_model(current.settings, registry.get_version(current.settings, model, version)),
        )
        for alias, version in part["versions"].items()
    ]
    staged_prefix = f"{staging_prefix(current, run)}/score/part-{index:05d}"
    staged: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        paths = {scorer.alias: Path(tmp) / f"{scorer.alias}-{index:05d}.parquet" for scorer in scorers}
        counts = score_batches(
            iter_parquet(current.store, [part["key"]], chunk_rows, scoring_columns(current.spec)),
            current.spec,
            current.dt,
            scorers,
            run.run_id,
            paths,
        )
        for path in paths.values():
            staged[path.name] = f"{staged_prefix}/{path.name}"
            current.store.put_file(staged[path.name], path)
    return {"dt": current.dt, "index": index, "staged": staged, "rows": counts, "versions": part["versions"]}


def commit_scores(model: str, day: str, parts: list[dict[str, Any]], run: RunInfo) -> dict[str, Any]:
    """Publish the night's predictions partition from the scored parts and load them into the warehouse.

    A skipped plan (no champion) clears the night's predictions and records the night as unscored, with the reason
    and the command that scores it, in the warehouse's `scoring_backlog`.
    """
    from nightshift.stages.backlog import command
    from nightshift.stages.score.predict import iter_predictions
    from nightshift.stores import warehouse

    current = night(model, day)
    engine = _warehouse(current.settings)
    prefix = current.key("predictions")
    skipped = next((part["skipped"] for part in parts if part.get("skipped")), None)
    if skipped:
        remove_partition(current.store, prefix)
        warehouse.replace_predictions(engine, model, current.day, [])
        row = {"model": model, "dt": current.day, "reason": skipped, "command": command(model), "run_id": run.run_id}
        warehouse.record_unscored(engine, row)
        return {"dt": current.dt, "skipped": skipped, "rows": {}, "command": row["command"]}
    versions = parts[0]["versions"] if parts else {}
    counts: dict[str, int] = {alias: 0 for alias in versions}
    for part in parts:
        for alias, scored in part["rows"].items():
            counts[alias] += int(scored)
    staged = {name: key for part in parts for name, key in part["staged"].items()}
    manifest = {"model": model, "dt": current.dt, "run_id": run.run_id, "versions": versions, "rows": counts}
    publish_partition(current.store, prefix, manifest, staged=staged)
    fault_point("warehouse", prefix)
    loaded = warehouse.load_predictions(
        engine, model, current.day, iter_predictions(current.store, current.spec, current.dt)
    )
    current.store.delete_prefix(f"{staging_prefix(current, run)}/score")
    return {
        "dt": current.dt,
        "address": current.store.url_for(prefix),
        "rows": counts,
        "loaded": loaded,
        "versions": versions,
        "parts": len(parts),
    }


def score(model: str, day: str, run: RunInfo, chunk_rows: int = 200_000) -> dict[str, Any]:
    """The whole scoring stage in one process: plan, every part in turn, then the commit."""
    parts = scoring_plan(model, day, run)
    return commit_scores(model, day, [score_part(model, day, part, run, chunk_rows) for part in parts], run)


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


def report_prefix(model: str) -> str:
    return f"reports/drift/{model}"


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
    night, oldest first (see `_measurements`).
    """
    from nightshift.stages.backlog import NO_CHAMPION, command
    from nightshift.stages.drift.measure import compute_drift
    from nightshift.stores import registry, warehouse

    current = night(model, day)
    engine = _warehouse(current.settings)
    pending = next(iter(warehouse.backlog(engine, model, warehouse.UNSCORED, night=current.day)), None)
    version = scored_version(current)
    if version is None and pending is not None:
        return _not_measured(current, run, pending["reason"], pending["command"])
    champion = (
        registry.get_version(current.settings, model, version)
        if version is not None
        else registry.alias_version(current.settings, model, registry.CHAMPION)
    )
    if champion is None:
        return _not_measured(current, run, NO_CHAMPION, command(model))
    reference = registry.load_reference(current.settings, champion)
    features, total = night_sample(current)
    result = compute_drift(
        reference,
        features,
        current.spec,
        model=model,
        dt=current.dt,
        model_version=champion.version,
        current_rows=total,
    )
    prefix = f"{report_prefix(model)}/dt={current.dt}"
    summary = {
        **result.summary,
        "run_id": run.run_id,
        "run_type": run.run_type,
        "measurements": _measurements(current.store, prefix, run, champion.version),
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
    report_uri = partition_url(current.store, prefix, "report.html")
    summary_key = partition_file(current.store, prefix, "summary.json")
    _record_drift(engine, current, summary, report_uri, run)
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
    }


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
        _warehouse(current.settings),
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


def night_sample(current: Night, batch_rows: int = 200_000) -> tuple[Any, int]:
    """The drift sample of the night's curated rows (spec.drift sample_size and seed) and the night's row count.

    Reads the partition in batches and keeps only the sampled rows, so memory does not grow with the night. The
    champion's scores of the same rows come along as `score`: from the same positions of the part's predictions
    file (scoring keeps the curated order), or, if a part's file does not line up, joined by entity id.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshift.stages.drift.measure import sample_positions
    from nightshift.stages.score.predict import champion_scores, curated_keys

    spec, store = current.spec, current.store
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
                    picked = _take_rows(scores, local, ["entity_id", "score"], batch_rows)
                    if picked.column("entity_id").equals(taken.column(spec.entity_id).cast(pa.string())):
                        taken = taken.append_column("score", picked.column("score"))
                        parts.append(taken)
                        continue
            aligned = False
            parts.append(taken)
    if not parts:
        return pd.DataFrame(columns=columns), total
    if aligned:
        return pa.concat_tables(parts).to_pandas(), total
    sample = pa.concat_tables([part.select(columns) for part in parts]).to_pandas()
    joined = champion_scores(store, spec, current.dt, sample[spec.entity_id])
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


def refresh_index(store: ObjectStore, model: str) -> None:
    """Rebuild index.html and latest.json from every complete night's summary."""
    from nightshift.stages.drift.measure import latest_pointer, render_index

    base = report_prefix(model)
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
        summaries.append(summary)
    summaries.sort(key=lambda item: item["dt"])
    store.write_bytes(f"{base}/index.html", render_index(summaries, model).encode())
    store.write_bytes(f"{base}/latest.json", json.dumps(latest_pointer(summaries, model), indent=2).encode())


def labelled_day_count(store: ObjectStore, spec: ModelSpec, day: dt.date) -> int:
    """Feature dates in the training window whose curated rows and accepted labels have both arrived by `day`."""
    from nightshift.stages.labels.parse import labelled_days

    return len(labelled_days(store, spec, day))


def decide(model: str, day: str, run: RunInfo, drift_result: dict[str, Any] | None) -> dict[str, Any]:
    """Decide, record and return whether tonight requests a retrain, with the reasons for the asset event."""
    from nightshift.lifecycle.policy import decide_retrain
    from nightshift.stores import registry, warehouse

    current = night(model, day)
    spec = current.spec
    engine = _warehouse(current.settings)
    champion = registry.alias_version(current.settings, model, registry.CHAMPION)
    window_start = current.day - dt.timedelta(days=spec.drift.window_nights - 1)
    history = [
        {**row, "critical_drifted": json.loads(row["critical_drifted"])}
        for row in warehouse.drift_history(engine, model, window_start, current.day)
    ]
    tonight = None
    if drift_result and "summary_key" in drift_result:
        tonight = read_json(current.store, drift_result["summary_key"])
    decision = decide_retrain(
        spec,
        current.day,
        has_champion=champion is not None,
        labelled_days=labelled_day_count(current.store, spec, current.day),
        history=history,
        tonight=tonight,
        last_request=warehouse.last_requested(engine, model, current.day),
        is_backfill=run.is_backfill,
    )
    report = (drift_result or {}).get("report")
    warehouse.record_retrain_decision(
        engine,
        {
            "model": model,
            "dt": current.day,
            "requested": decision.requested,
            "decision": decision.decision,
            "reasons": json.dumps(decision.reasons),
            "report_uri": report,
            "run_id": run.run_id,
            "run_type": run.run_type,
        },
        model_version=champion.version if champion else None,
    )
    return {
        "model": model,
        "dt": current.dt,
        **decision.as_dict(),
        "report": report,
        "champion_version": champion.version if champion else None,
    }
