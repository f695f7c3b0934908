"""Outcomes of validation: a frame's checks turned into accepted and quarantined rows, and results combined
chunk by chunk, file by file, into the night's verdict (row count, ids repeated across parts, bad-row share).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.config import ModelSpec
from nightshift.pages.validation import validation_page
from nightshift.reasons import join_reasons
from nightshift.stages.validate.coerce import Typed
from nightshift.stages.validate.findings import MAX_EXAMPLES, Check, RowFailures, describe_batch_problem
from nightshift.stages.validate.text import jsonable, plural, sentence, shown_value

ROW_NUMBER = "_row_number"
REASONS = "_reasons"
MOST_COMMON = 3


@dataclass
class ValidationOutcome:
    """What validate_frame found: rows safe to score, rejected rows with reasons, and a JSON-able record.

    `table` holds the accepted rows typed, in Arrow (what is curated); `accepted` is the same as a pandas frame.
    `kept` are the accepted rows' positions in the frame validated.
    """

    table: pa.Table
    quarantined: pd.DataFrame
    result: dict[str, Any]
    passed: bool
    failure_message: str | None
    kept: np.ndarray

    @property
    def accepted(self) -> pd.DataFrame:
        return accepted_frame(self.table)


_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def accepted_frame(table: pa.Table) -> pd.DataFrame:
    """Typed rows as pandas: integers as Int64 and booleans as pandas booleans (both nullable), strings as objects."""
    return table.to_pandas(types_mapper=_PANDAS_TYPES.get)


def frame_outcome(
    raw: pa.Table,
    typed: Typed,
    spec: ModelSpec,
    source: str,
    checks: list[Check],
    *,
    first_row: int = 1,
    whole_batch: bool = True,
) -> ValidationOutcome:
    """Split a checked frame into accepted and quarantined rows (none accepted if the batch fails) and its result."""
    rows = raw.num_rows
    blocking = [failure for check in checks if check.blocks_rows for failure in check.failures]
    bad = np.zeros(rows, dtype=bool)
    for failure in blocking:
        bad[failure.positions] = True
    bad_positions = np.flatnonzero(bad)
    quarantined = raw.take(pa.array(bad_positions, type=pa.int64())).to_pandas()
    quarantined[ROW_NUMBER] = pd.Series(bad_positions + first_row, dtype="int64")
    quarantined[REASONS] = _joined_reasons(blocking, bad_positions)

    limit = spec.validation.max_bad_row_share
    share = float(len(bad_positions) / rows) if rows else 0.0
    problems = [
        check.batch_problem or f"blocking check {check.name} could not run: {check.error} ({check.spec_field})"
        for check in checks
        if check.blocks_batch
    ]
    kinds = _failure_kinds(blocking, first_row)
    if whole_batch and share > limit:
        problems.append(_share_problem(kinds, len(bad_positions), rows, share, limit))
    passed = not problems
    failure_message = f"{source}: " + " ".join(sentence(problem) for problem in problems) if problems else None

    kept = np.flatnonzero(~bad) if passed else np.zeros(0, dtype=np.int64)
    table = typed.table()
    accepted = table.take(pa.array(kept, type=pa.int64())) if len(kept) < rows else table
    result = {
        "source": source,
        "model": spec.name,
        "rows": rows,
        "accepted_rows": accepted.num_rows,
        "clean_rows": int(rows - len(bad_positions)),
        "quarantined_rows": len(quarantined),
        "bad_row_share": share,
        "max_bad_row_share": float(limit),
        "passed": passed,
        "failure_message": failure_message,
        "checks": [check.record() for check in checks],
        "failure_kinds": kinds,
        "gx_version": gx.__version__,
    }
    return ValidationOutcome(accepted, quarantined, result, passed, failure_message, kept)


def _joined_reasons(blocking: list[RowFailures], bad_positions: np.ndarray) -> pd.Series:
    """One '; '-joined reason string per bad row, in column order."""
    if not len(bad_positions):
        return pd.Series([], dtype=object)
    _, joined = join_reasons([failure.positions for failure in blocking], [failure.reasons for failure in blocking])
    return pd.Series(joined, dtype=object)


def _failure_kinds(blocking: list[RowFailures], first_row: int) -> list[dict[str, Any]]:
    """Blocking failures grouped by kind: label, row count, and the first row with its value."""
    kinds: dict[str, dict[str, Any]] = {}
    for failure in blocking:
        first = int(failure.positions[0]) + first_row
        kind = kinds.setdefault(failure.label, {"label": failure.label, "count": 0, "row": first, "value": None})
        kind["count"] += len(failure.positions)
        if first <= kind["row"]:
            kind["row"], kind["value"] = first, jsonable(failure.values[0])
    return list(kinds.values())


def _share_problem(kinds: list[dict[str, Any]], bad: int, rows: int, share: float, limit: float) -> str:
    common = sorted(kinds, key=lambda kind: (-kind["count"], kind["label"]))
    listed = "; ".join(
        f"{kind['label']} ({plural(kind['count'], 'row')}, e.g. {_where(kind)}: {shown_value(kind['value'])})"
        for kind in common[:MOST_COMMON]
    )
    if len(common) > MOST_COMMON:
        more = plural(len(common) - MOST_COMMON, "more kind")
        listed += f"; and {more} of failure (see the quarantined rows' {REASONS})"
    return (
        f"{bad} of {rows} rows ({share:.1%}) failed blocking checks, above the limit of {limit:.1%} "
        f"(validation.max_bad_row_share). Most common: {listed}"
    )


def combine_results(results: list[dict[str, Any]], source: str, file: str | None = None) -> dict[str, Any]:
    """One result for consecutive chunks of a batch (or for parts of a night), checks and failure kinds merged.

    With `file`, every example and failure kind is tagged with the file it came from. Judging the batch as a whole
    (row count, bad-row share) is left to `night_result`.
    """
    checks: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for result in results:
        for record in result["checks"]:
            examples = [{**example, "file": file} if file else example for example in record.get("examples", [])]
            merged = checks.get(record["check"])
            if merged is None:
                checks[record["check"]] = {**record, "examples": examples}
                continue
            merged["unexpected_count"] += record["unexpected_count"]
            merged["success"] = merged["success"] and record["success"]
            merged["examples"] = sorted([*merged["examples"], *examples], key=_example_order)[:MAX_EXAMPLES]
            for key in ("problem", "error", "observed_value"):
                if key in record and key not in merged:
                    merged[key] = record[key]
        for kind in result.get("failure_kinds", []):
            tagged = {**kind, "file": file} if file else dict(kind)
            merged_kind = kinds.setdefault(kind["label"], {**tagged, "count": 0})
            merged_kind["count"] += kind["count"]
            if _example_order(tagged) < _example_order(merged_kind):
                merged_kind.update(row=tagged["row"], value=tagged["value"], file=tagged.get("file"))
    problems = [problem for result in results if (problem := result.get("failure_message"))]
    rows = sum(int(result["rows"]) for result in results)
    bad = sum(int(result["quarantined_rows"]) for result in results)
    return {
        "source": source,
        "model": results[0]["model"] if results else None,
        "rows": rows,
        "accepted_rows": sum(int(result["accepted_rows"]) for result in results),
        "clean_rows": rows - bad,
        "quarantined_rows": bad,
        "bad_row_share": float(bad / rows) if rows else 0.0,
        "max_bad_row_share": results[0]["max_bad_row_share"] if results else None,
        "passed": all(result["passed"] for result in results),
        "failure_message": " ".join(problems) or None,
        "checks": list(checks.values()),
        "failure_kinds": list(kinds.values()),
        "gx_version": gx.__version__,
    }


def night_result(
    parts: list[dict[str, Any]],
    spec: ModelSpec,
    source: str,
    duplicates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Judge a whole night from its parts' combined results: row count, repeated ids across parts, bad-row share.

    `duplicates` are rows accepted by their own part whose id an earlier part or chunk already holds, each a dict
    with file, row, value (the id) and first (where the id was first seen); they move to quarantine here.
    """
    duplicates = duplicates or []
    combined = combine_results(parts, source)
    rows = combined["rows"]
    settings = spec.validation.checks
    checks = combined["checks"]
    kinds = combined["failure_kinds"]
    if duplicates and settings.unique_ids == "block":
        _count_repeated_ids(checks, kinds, duplicates, spec.entity_id)
    bad = combined["quarantined_rows"] + (len(duplicates) if settings.unique_ids == "block" else 0)
    limit = spec.validation.max_bad_row_share
    share = float(bad / rows) if rows else 0.0
    problems = [
        record.get("problem")
        or f"blocking check {record['check']} could not run: {record['error']} ({record.get('spec_field')})"
        for record in checks
        if record["severity"] == "block" and (record.get("problem") or record.get("error"))
    ]
    if settings.row_count != "off":
        unread = any(record["check"] == "file" and not record["success"] for record in checks)
        count_problem = _row_count_problem(rows, spec, unread)
        checks.insert(0, _row_count_record(rows, settings.row_count, count_problem))
        if count_problem and settings.row_count == "block" and not unread:
            problems.insert(0, count_problem)
    if share > limit:
        problems.append(_share_problem(kinds, bad, rows, share, limit))
    passed = not problems
    stated = [problem.removeprefix(f"{source}: ") for problem in problems]
    message = f"{source}: " + " ".join(sentence(problem) for problem in stated) if problems else None
    return {
        **combined,
        "accepted_rows": rows - bad if passed else 0,
        "clean_rows": rows - bad,
        "quarantined_rows": bad,
        "bad_row_share": share,
        "max_bad_row_share": float(limit),
        "passed": passed,
        "failure_message": message,
        "checks": checks,
        "failure_kinds": kinds,
    }


def _count_repeated_ids(
    checks: list[dict[str, Any]], kinds: list[dict[str, Any]], duplicates: list[dict[str, Any]], entity_id: str
) -> None:
    """Add the ids repeated across parts to the failure kinds and to the unique_ids check's record."""
    label = f"{entity_id} repeats an id of an earlier part of the night"
    first = min(duplicates, key=_example_order)
    kinds.append({"label": label, "count": len(duplicates), **_located(first), "value": first["value"]})
    unique = next((record for record in checks if record["check"] == f"unique_ids:{entity_id}"), None)
    if unique is not None:
        unique["unexpected_count"] += len(duplicates)
        unique["success"] = False
        shown = [{**_located(item), "value": item["value"]} for item in duplicates]
        unique["examples"] = sorted([*unique["examples"], *shown], key=_example_order)[:MAX_EXAMPLES]


def _row_count_problem(rows: int, spec: ModelSpec, unread: bool) -> str | None:
    """What is wrong with the night's row count, if anything; not judged when a file could not be read."""
    if unread:
        return "not judged: a file of the drop could not be read, so its rows are not known"
    low, high = spec.validation.min_rows, spec.validation.max_rows
    if not (rows == 0 or rows < low or rows > high):
        return None
    severity = spec.validation.checks.row_count
    row_check = Check(
        "row_count", "row_count", "ExpectTableRowCountToBeBetween", None, severity, 0, "", row_level=False
    )
    row_check.kwargs = {"min_value": low, "max_value": high}
    return describe_batch_problem(row_check, {"observed_value": rows})


def _row_count_record(rows: int, severity: str, problem: str | None) -> dict[str, Any]:
    """The night's row_count check as the result lists it."""
    return {
        "check": "row_count",
        "expectation": "ExpectTableRowCountToBeBetween",
        "column": None,
        "severity": severity,
        "success": problem is None,
        "unexpected_count": 0,
        "examples": [],
        "row_level": False,
        "spec_field": "validation.min_rows / validation.max_rows",
        "observed_value": rows,
        **({"problem": problem} if problem else {}),
    }


_HASH_WEIGHTS = np.random.default_rng(20261001).integers(1, 2**63, size=512, dtype=np.uint64) * np.uint64(
    2
) + np.uint64(1)
_HASH_BATCH = 1 << 16


def id_hashes(ids: pd.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per id: 8 bytes a row, whatever the ids' length; equal ids hash alike (and missing ones too).

    Computed over the ids' UTF-8 bytes with numpy, a batch of rows at a time, without a Python string per id.
    """
    if isinstance(ids, pd.Series):
        from nightshift.stages.validate.coerce import arrow_strings

        ids = arrow_strings(ids)
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    found = [_string_hashes(pc.cast(chunk, pa.large_string())) for chunk in chunks]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.uint64)


def _string_hashes(array: pa.Array) -> np.ndarray:
    out = np.zeros(len(array), dtype=np.uint64)
    if not len(array):
        return out
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    for start in range(0, len(array), _HASH_BATCH):
        bounds = offsets[start : start + _HASH_BATCH + 1]
        local = bounds - bounds[0]
        lengths = np.diff(local)
        values = data[bounds[0] : bounds[-1]].astype(np.uint64) + np.uint64(1)
        width = int(lengths[0])
        if 0 < width <= len(_HASH_WEIGHTS) and (lengths == width).all():
            sums = (values.reshape(-1, width) * _HASH_WEIGHTS[:width]).sum(axis=1, dtype=np.uint64)
        else:
            within = np.arange(len(values), dtype=np.int64) - np.repeat(local[:-1], lengths)
            weighted = values * _HASH_WEIGHTS[within % len(_HASH_WEIGHTS)]
            sums = np.zeros(len(lengths), dtype=np.uint64)
            filled = lengths > 0
            if filled.any():
                sums[filled] = np.add.reduceat(weighted, local[:-1][filled])
        mixed = sums ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        mixed[~valid[start : start + len(lengths)]] = np.uint64(0xD6E8FEB86659FD93)
        out[start : start + len(lengths)] = _mix(mixed)
    return out


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves about half the output bits."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def shared_hash_positions(parts: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Per part (by position in `parts`), the sorted positions of rows whose id hash another row of any part shares.

    These are the candidates for repeated ids; the caller compares their actual ids (a hash collision is no
    repeat). The parts and one sorted copy: about 17 bytes a row at the peak.
    """
    if not parts or not sum(len(part) for part in parts):
        return {}
    ordered = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
    ordered.sort()
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(shared):
        return {}
    found: dict[int, np.ndarray] = {}
    for index, part in enumerate(parts):
        positions = np.flatnonzero(np.isin(part, shared))
        if len(positions):
            found[index] = positions
    return found


def _located(item: dict[str, Any]) -> dict[str, Any]:
    return {"file": item.get("file"), "row": item["row"]}


def _example_order(item: dict[str, Any]) -> tuple[str, int]:
    return (str(item.get("file") or ""), int(item["row"]))


def _where(item: dict[str, Any]) -> str:
    return f"{item['file']} row {item['row']}" if item.get("file") else f"row {item['row']}"


def missing_columns_outcome(raw: pd.DataFrame, spec: ModelSpec, source: str, missing: list[str]) -> ValidationOutcome:
    """A drop lacking spec columns: every row quarantined, the batch failed."""
    present = ", ".join(str(column) for column in raw.columns) or "none"
    problem = (
        f"the drop lacks the column(s) {', '.join(missing)}; expected {', '.join(spec.raw_columns)} but found {present}"
    )
    message = f"{source}: {sentence(problem)}"
    check = Check("columns", "types", None, None, "block", 0, "raw_columns", row_level=False, batch_problem=problem)
    quarantined = raw.reindex(columns=spec.raw_columns)
    quarantined[ROW_NUMBER] = pd.Series(np.arange(1, len(raw) + 1), dtype="int64")
    quarantined[REASONS] = pd.Series(
        f"the drop lacks the column(s) {', '.join(missing)}", index=raw.index, dtype=object
    )
    result = {
        "source": source,
        "model": spec.name,
        "rows": len(raw),
        "accepted_rows": 0,
        "clean_rows": 0,
        "quarantined_rows": len(raw),
        "bad_row_share": 1.0 if len(raw) else 0.0,
        "max_bad_row_share": float(spec.validation.max_bad_row_share),
        "passed": False,
        "failure_message": message,
        "checks": [check.record()],
        "failure_kinds": [],
        "gx_version": gx.__version__,
    }
    nothing = pa.table({column: pa.array([], type=pa.string()) for column in spec.raw_columns})
    return ValidationOutcome(nothing, quarantined, result, False, message, np.zeros(0, dtype=np.int64))


def render_validation_page(result: dict[str, Any]) -> str:
    """A self-contained HTML page summarising one validation result dict."""
    return validation_page(result)
