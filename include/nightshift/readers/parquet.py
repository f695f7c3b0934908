"""Parquet files (names ending in .parquet or .pq, in any case), read a batch at a time.

Every value becomes the text the CSV reader would have read for it, so the spec's checks and reasons are the same
whatever the format: integers and decimals as digits, floats in their shortest round-trip form (3.0 as "3", 0.1
as "0.1", NaN as "nan"), booleans as "true"/"false", dates as YYYY-MM-DD, timestamps in ISO 8601 (zoned ones in
UTC, with a Z), dictionary-encoded columns decoded, binary as UTF-8 text. Nulls are missing. A cell that is not one
such value (a list, struct or map; a duration or time; binary that is not UTF-8) keeps its row, with the reason.
Rows are numbered from 1, the first row of the file, across all its row groups.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nightshift.readers.base import READ_KIND, READ_PROBLEM, Dialect, DropError, as_frames, check_columns
from nightshift.readers.text import hex_bytes

MAGIC = b"PAR1"
NOT_ONE_VALUE = "row with a list, struct or map value"
UNREAD_TYPE = "row with a value of a type nightshift does not read"
NOT_UTF8 = "row with bytes that are not valid utf-8"
VALID_TYPES = "integers, floats, decimals, booleans, strings, UTF-8 binary, dates and timestamps (or nulls)"


@dataclass
class _Column:
    """One column of a batch as text (null where missing), and its cells that are not one readable value."""

    text: pa.Array
    bad: np.ndarray
    """Positions of the unreadable cells, ascending."""
    reasons: list[str]
    """Per unreadable cell: why, without its row number."""
    kind: str = ""


class ParquetReader:
    format = "parquet"
    description = "files whose names end in .parquet or .pq, in any case"

    def reads(self, name: str) -> bool:
        return name.lower().endswith((".parquet", ".pq"))

    def chunks(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pd.DataFrame]:
        yield from as_frames(
            self.tables(path, label, columns, dialect, chunk_rows=chunk_rows, row_problems=row_problems)
        )

    def tables(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pa.Table]:
        parquet = _open(path, label)
        check_columns(parquet.schema_arrow.names, columns, label)
        first_row = 1
        for table in _tables(parquet, label, columns, chunk_rows):
            yield _text_table(table, label, columns, first_row, row_problems)
            first_row += table.num_rows


def _open(path: Path, label: str) -> pq.ParquetFile:
    """The file's footer read; DropError saying why when the file is not Parquet or is cut short."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(len(MAGIC))
        handle.seek(max(0, size - len(MAGIC)))
        tail = handle.read(len(MAGIC))
    if size == 0:
        raise DropError(f"{label}: not a Parquet file: it is empty (0 bytes)")
    if head != MAGIC:
        raise DropError(
            f"{label}: not a Parquet file: it starts with {hex_bytes(head)}, not the Parquet magic bytes "
            f"{hex_bytes(MAGIC)} (PAR1). Is it another format under a Parquet name?"
        )
    if tail != MAGIC or size < 3 * len(MAGIC):
        raise DropError(
            f"{label}: not a Parquet file: it starts like one but does not end with the magic bytes PAR1, so it is "
            f"truncated ({size} bytes; was it copied before it was completely written?). Land the complete file again"
        )
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DropError(f"{label}: not a Parquet file: its footer cannot be read ({exc})") from None


def _tables(parquet: pq.ParquetFile, label: str, columns: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """The file's rows, `columns` only and in that order, `chunk_rows` at a time (fewer in the last)."""
    batches = parquet.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=True)
    pending: list[pa.RecordBatch] = []
    rows = read = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (pa.ArrowException, OSError) as exc:
            raise DropError(f"{label}: the Parquet data cannot be read after row {read}: {exc}") from None
        read += batch.num_rows
        pending.append(batch)
        rows += batch.num_rows
        while rows >= chunk_rows:
            table = pa.Table.from_batches(pending).select(columns)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(pending).select(columns)


def _text_table(table: pa.Table, label: str, columns: list[str], first_row: int, row_problems: bool) -> pa.Table:
    """The rows as strings; cells that are not one value in READ_PROBLEM (or DropError without row problems)."""
    name = label.rstrip("/").rsplit("/", 1)[-1]
    texts: dict[str, pa.Array] = {}
    reasons = np.full(table.num_rows, None, dtype=object)
    kinds = np.full(table.num_rows, None, dtype=object)
    for column in columns:
        converted = _as_text(table.column(column).combine_chunks(), column, name)
        texts[column] = converted.text
        for position, reason in zip(converted.bad.tolist(), converted.reasons, strict=True):
            if reasons[position] is None:
                reasons[position] = f"row {first_row + position}: {reason}"
                kinds[position] = converted.kind
    problems = np.flatnonzero(pd.notna(reasons))
    if len(problems) and not row_problems:
        raise DropError(f"{label}: {reasons[problems[0]]}")
    if len(problems):
        texts[READ_PROBLEM] = pa.array(reasons, type=pa.string(), from_pandas=True)
        texts[READ_KIND] = pa.array(kinds, type=pa.string(), from_pandas=True)
    return pa.table(texts)


def _as_text(array: pa.Array, column: str, name: str) -> _Column:
    """The column as a string array, by its Arrow type (see the module's docstring)."""
    kind = array.type
    if isinstance(kind, pa.ExtensionType):
        return _as_text(array.storage, column, name)
    if pa.types.is_dictionary(kind):
        return _as_text(array.dictionary_decode(), column, name)
    if pa.types.is_timestamp(kind):
        return _plain(_timestamp_text(array))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return _binary_text(array, column, name)
    if pa.types.is_binary_view(kind):
        return _binary_text(array.cast(pa.binary()), column, name)
    if _is_scalar(kind):
        return _plain(pc.cast(array, pa.string()))
    nested = pa.types.is_nested(kind)
    what = (
        f"holds {kind} values (a Parquet {_nested_name(kind)} column) in {name}, not one value per cell"
        if nested
        else f"holds {kind} values in {name}, a type nightshift does not read"
    )
    bad = np.flatnonzero(np.asarray(array.is_valid(), dtype=bool))
    values = array.take(pa.array(bad, type=pa.int64())).to_pylist()
    shown = np.full(len(array), None, dtype=object)
    shown[bad] = [_shown(value) for value in values]
    reason = f"{column} {what}; Parquet columns nightshift reads hold {VALID_TYPES}"
    return _Column(
        pa.array(shown, type=pa.string()), bad, [reason] * len(bad), NOT_ONE_VALUE if nested else UNREAD_TYPE
    )


def _is_scalar(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_date(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
    )


def _nested_name(kind: pa.DataType) -> str:
    for name in ("struct", "map", "union"):
        if getattr(pa.types, f"is_{name}")(kind):
            return name
    return "list"


def _plain(text: pa.Array) -> _Column:
    return _Column(text, np.zeros(0, dtype=np.int64), [])


def _timestamp_text(array: pa.Array) -> pa.Array:
    """ISO 8601 text: 2026-10-01T10:00:00 (naive) or 2026-10-01T10:00:00Z (zoned, in UTC), with fractions of a
    second when any value of the batch has them."""
    kind = array.type
    wall = array.cast(pa.timestamp(kind.unit)) if kind.tz is not None else array
    with contextlib.suppress(pa.ArrowInvalid):
        wall = wall.cast(pa.timestamp("s"))
    text = pc.replace_substring(pc.cast(wall, pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "") if kind.tz is not None else text


def _binary_text(array: pa.Array, column: str, name: str) -> _Column:
    """Binary values as UTF-8 text; a value that is not UTF-8 is shown with backslash escapes and kept as a problem."""
    plain = array.cast(pa.binary()) if pa.types.is_fixed_size_binary(array.type) else array
    try:
        return _plain(pc.cast(plain, pa.string()))
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    bad: list[int] = []
    reasons: list[str] = []
    for position, value in enumerate(plain.to_pylist()):
        if value is None:
            texts.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            byte = value[int(exc.start)]
            texts.append(value.decode("utf-8", "backslashreplace"))
            bad.append(position)
            reasons.append(
                f"{column}: byte 0x{byte:02x} at byte {exc.start} of the value is not valid UTF-8 (a Parquet "
                f"{array.type} column in {name}), shown as \\x{byte:02x}; binary columns must hold UTF-8 text"
            )
    return _Column(pa.array(texts, type=pa.string()), np.asarray(bad, dtype=np.int64), reasons, NOT_UTF8)


def _shown(value: Any) -> str:
    """A cell that is not one value, as text for the quarantine (lists, structs and maps as JSON)."""
    return json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, (list, dict, tuple)) else str(value)
