"""The validation stage's tasks: plan one part per drop file, validate each (mapped), judge the night and publish.

Each takes a model name, a date and the run and returns a small dict; it writes through the configured stores,
replaces its outputs for the date whole, and is safe to rerun.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from nightshift.runs import RunInfo
from nightshift.stages.night import Night, night, open_warehouse, staging_prefix
from nightshift.stores.objects import partition_url, partition_writer, publish_partition, read_json, read_manifest


class ValidationFailed(RuntimeError):
    """The night's drop broke a blocking rule; nothing of it was curated or scored."""


CHUNK_ROWS = 250_000
QUARANTINE_BATCH = 100_000


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
    from nightshift.stages.validate.outcome import combine_results

    current = night(model, day)
    store = current.store
    key, index = str(part["key"]), int(part["index"])
    source = store.url_for(key)
    staged = f"{staging_prefix(current, run)}/validate/part-{index:05d}"
    with tempfile.TemporaryDirectory(prefix="nightshift-") as tmp:
        curated_path, rejected_path = Path(tmp) / "curated.parquet", Path(tmp) / "rejected.csv"
        results = _validate_chunks(current, key, chunk_rows, curated_path, rejected_path)
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


def _validate_chunks(
    current: Night, key: str, chunk_rows: int, curated_path: Path, rejected_path: Path
) -> list[dict[str, Any]]:
    """Each chunk's result, in order; rejected rows go to `rejected_path`, accepted ones (numbered) to `curated_path`.

    A file that cannot be read to its end adds a failed `file` result after the chunks read before the failure.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshift.stages.ingest import DropError, read_drop_tables
    from nightshift.stages.validate.checks import validate_frame
    from nightshift.stages.validate.outcome import ROW_NUMBER

    spec, store = current.spec, current.store
    source = store.url_for(key)
    results: list[dict[str, Any]] = []
    writer: Any = None
    first_row = 1
    try:
        for raw in read_drop_tables(store, spec, key, chunk_rows):
            outcome = validate_frame(raw, spec, source, first_row=first_row, whole_batch=False)
            results.append(outcome.result)
            if len(outcome.quarantined):
                outcome.quarantined.to_csv(
                    rejected_path, mode="a", header=not rejected_path.exists(), index=False, lineterminator="\r\n"
                )
            if outcome.passed and outcome.table.num_rows:
                table = outcome.table.append_column(ROW_NUMBER, pa.array(outcome.kept + first_row, type=pa.int64()))
                if writer is None:
                    writer = pq.ParquetWriter(curated_path, curated_schema(table))
                writer.write_table(table.cast(writer.schema))
            first_row += raw.num_rows
    except DropError as exc:
        results.append(_unreadable_result(current, str(exc), source=source))
    finally:
        if writer is not None:
            writer.close()
        pa.default_memory_pool().release_unused()
    return results


def curated_schema(table: Any) -> Any:
    """The Arrow schema curated files are written with, with the pandas metadata of the typed frame it holds.

    The metadata is what pandas would write for these rows (integers as nullable Int64, booleans as pandas
    booleans), so the files read back into the same frames; a string column the table holds no value of is
    described as empty, as pandas does.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from nightshift.stages.validate.outcome import ROW_NUMBER, accepted_frame

    first = {
        name: (present.slice(0, 1) if len(present := pc.drop_null(column)) else column.slice(0, 1))
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    sample = accepted_frame(pa.table(first))
    if ROW_NUMBER in sample.columns:
        sample[ROW_NUMBER] = sample[ROW_NUMBER].astype("int64")
    described = pa.Table.from_pandas(sample, preserve_index=False).schema
    return pa.schema(list(table.schema), metadata=described.metadata)


def commit_validation(model: str, day: str, parts: list[dict[str, Any]], run: RunInfo) -> dict[str, Any]:
    """Judge the whole night from its validated parts, then publish the curated partition and quarantine or fail.

    Rows whose id an earlier part already holds move to quarantine here. Nothing is curated unless the night
    passes; the validation result and the quarantine are written either way.
    """
    from nightshift.stages.ingest import drop_prefix
    from nightshift.stages.validate.outcome import night_result

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

    from nightshift.stages.validate.outcome import ROW_NUMBER, id_hashes, shared_hash_positions

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
                found_hashes = [id_hashes(batch.column(0)) for batch in batches]
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
    """One rejected.csv for the night: every part's rejected rows, then ids repeated across parts, with reasons.

    Written a batch of rows at a time, so memory stays flat however many rows are rejected.
    """
    import pandas as pd

    from nightshift.stages.ingest import write_csv
    from nightshift.stages.validate.outcome import REASONS, ROW_NUMBER

    store, spec = current.store, current.spec
    path = folder / "rejected.csv"
    several = len(parts) > 1
    columns = [*spec.raw_columns, ROW_NUMBER, REASONS, *(["_source_file"] if several else [])]
    written = False

    def add(rows: pd.DataFrame, key: str) -> None:
        nonlocal written
        write_csv((rows.assign(_source_file=key) if several else rows).reindex(columns=columns), path, append=written)
        written = True

    for part in parts:
        key = f"{part['staged']}/rejected.csv"
        if store.exists(key):
            local = store.get_file(key, folder / f"rejected-{part['index']}.csv")
            for rows in pd.read_csv(
                local, dtype=str, keep_default_na=False, na_values=[""], chunksize=QUARANTINE_BATCH
            ):
                add(rows, part["key"])
    for index, found in repeats.items():
        rows = pd.DataFrame(
            {
                spec.entity_id: [value for _, value, _ in found],
                ROW_NUMBER: [row for row, _, _ in found],
                REASONS: [f"{spec.entity_id}: {value!r} repeats the id of {first}" for _, value, first in found],
            }
        )
        add(rows, parts[index]["key"])
    return path if written else write_csv(pd.DataFrame(columns=columns), path)


def _curated_files(current: Night, parts: list[dict[str, Any]], repeats: RepeatedRows, folder: Path) -> dict[str, Any]:
    """Name -> staged key (copied as is) or local path (a part rewritten without its repeated ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nightshift.stages.validate.outcome import ROW_NUMBER

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
    from nightshift.stages.validate.outcome import render_validation_page
    from nightshift.stores import warehouse

    store, model = current.store, current.spec.name
    result = {"dt": current.dt, **result, "run_id": run.run_id}
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
    engine = open_warehouse(current.settings)
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
