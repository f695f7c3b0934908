"""CSV files (names ending in .csv, in any case), in the spec's encoding and delimiter.

A clean file is read by Arrow's multithreaded parser. A file that Arrow cannot read exactly (a row with another
number of fields than the header, a NUL byte, a byte not valid in the encoding, a line break inside a value) is
read again from where Arrow stopped by the exact reader, which knows every row's line and byte offset and keeps
each row it cannot read as written, with the reason, instead of dropping or altering it.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from nightshift.readers.base import READ_KIND, READ_PROBLEM, Dialect, DropError, as_frames, check_columns
from nightshift.readers.text import check_delimiter, is_utf8, read_header

ARROW_BLOCK_BYTES = 1 << 20
"""Arrow parses this much text at a time; its reader parses a few dozen blocks ahead, so this bounds its memory."""
SCAN_BYTES = 1 << 24
MAX_SHOWN = 40
QUOTE = '"'
WRONG_WIDTH = "row with the wrong number of fields"
NUL_BYTE = "row with a NUL byte"


class _Trouble(Exception):
    """The fast path cannot read the rest of the file exactly; the exact reader takes over."""


class CsvReader:
    format = "csv"
    description = "files whose names end in .csv, in any case"

    def reads(self, name: str) -> bool:
        return name.lower().endswith(".csv")

    def chunks(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pd.DataFrame]:
        yield from as_frames(
            self.tables(path, label, columns, dialect, chunk_rows=chunk_rows, row_problems=row_problems)
        )

    def tables(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pa.Table]:
        header = read_header(path, label, dialect)
        check_delimiter(header, columns, label, dialect)
        check_columns(header, columns, label)
        yielded = 0
        scan = _scan(path)
        if not scan.nul:
            try:
                for table in _arrow_chunks(path, header, columns, dialect, chunk_rows, scan):
                    yield table
                    yielded += table.num_rows
                return
            except _Trouble:
                pass
        yield from _exact_chunks(path, label, header, columns, dialect, chunk_rows, yielded, row_problems)


@dataclass(frozen=True)
class _Scan:
    nul: bool
    """A NUL byte somewhere: some row has a problem, the exact reader reads the file."""
    breaks: tuple[str, ...]
    """Line breaks a quoted value may hold, which the fast path must look for in every value."""


def _scan(path: Path) -> _Scan:
    """One pass over the bytes at memory speed: NUL bytes, quotes, and which line breaks occur."""
    nul = quote = lone_cr = False
    with path.open("rb") as handle:
        while block := handle.read(SCAN_BYTES):
            nul = nul or b"\x00" in block
            quote = quote or QUOTE.encode() in block
            lone_cr = lone_cr or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n"))
    return _Scan(nul, (("\n", "\r") if lone_cr else ("\n",)) if quote else ())


def _arrow_encoding(encoding: str) -> str:
    return "utf8" if is_utf8(encoding) else codecs.lookup(encoding).name


def _arrow_chunks(
    path: Path, header: list[str], columns: list[str], dialect: Dialect, chunk_rows: int, scan: _Scan
) -> Iterator[pa.Table]:
    """Tables from Arrow; raises _Trouble (before yielding any row after the first problem) when a row is odd."""
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    wanted = set(columns)
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=_arrow_encoding(dialect.encoding), block_size=ARROW_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() if name in wanted else pa.binary() for name in header},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, UnicodeError, LookupError) as exc:
        raise _Trouble from exc
    pending: list[pa.RecordBatch] = []
    rows = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowException, UnicodeError) as exc:
            raise _Trouble from exc
        if invalid or batch.schema.names != header or _holds_breaks(batch, scan.breaks):
            raise _Trouble
        pending.append(batch.select(columns))
        rows += batch.num_rows
        while rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).combine_chunks()
            rest = table.slice(chunk_rows)
            pending, rows = rest.to_batches(), rest.num_rows
    if invalid:
        raise _Trouble
    if rows:
        yield pa.Table.from_batches(pending).combine_chunks()


def _holds_breaks(batch: pa.RecordBatch, breaks: tuple[str, ...]) -> bool:
    """A value with a line break: maybe a quote that never closes; only the exact reader can tell."""
    return any(pc.any(pc.match_substring(column, text)).as_py() for column in batch.columns for text in breaks)


@dataclass
class _Lines:
    """The file's physical lines, decoded one by one, noting where each row starts and what is wrong in it."""

    handle: IO[bytes]
    dialect: Dialect
    count: int = 0
    offset: int = 0
    exhausted: bool = False
    row_line: int = 0
    row_offset: int = 0
    quotes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._raw = (piece for line in self.handle for piece in line.splitlines(keepends=True))
        self._strip_bom = is_utf8(self.dialect.encoding)

    def __iter__(self) -> _Lines:
        return self

    def begin_row(self) -> None:
        self.row_line, self.row_offset, self.quotes, self.problems = self.count + 1, self.offset, 0, []

    def __next__(self) -> str:
        try:
            raw = next(self._raw)
        except StopIteration:
            self.exhausted = True
            raise
        start = self.offset
        self.offset += len(raw)
        self.count += 1
        if self.count == 1 and self._strip_bom and raw.startswith(codecs.BOM_UTF8):
            raw, start = raw[len(codecs.BOM_UTF8) :], start + len(codecs.BOM_UTF8)
        if b"\x00" in raw:
            at = start + raw.index(b"\x00")
            self.problems.append((NUL_BYTE, f"a NUL byte (0x00) at byte offset {at}, shown as \\x00"))
            raw = raw.replace(b"\x00", b"\\x00")
        try:
            text = raw.decode(self.dialect.encoding)
        except UnicodeDecodeError as exc:
            at = start + int(exc.start)
            byte = raw[int(exc.start)]
            self.problems.append(
                (
                    f"row with bytes that are not valid {self.dialect.encoding}",
                    f"byte 0x{byte:02x} at byte offset {at} is not valid {self.dialect.encoding} "
                    f"({self.dialect.setting}.encoding), shown as \\x{byte:02x}",
                )
            )
            text = raw.decode(self.dialect.encoding, "backslashreplace")
        self.quotes += text.count(QUOTE)
        return text

    def where(self) -> str:
        last = self.count if not self.exhausted else max(self.count, self.row_line)
        return f"line {self.row_line}" if last <= self.row_line else f"lines {self.row_line}-{last}"


def _exact_chunks(
    path: Path,
    label: str,
    header: list[str],
    columns: list[str],
    dialect: Dialect,
    chunk_rows: int,
    skip: int,
    row_problems: bool,
) -> Iterator[pa.Table]:
    """Tables read row by row with the standard csv module, after the first `skip` data rows."""
    positions = [header.index(column) for column in columns]
    with path.open("rb") as handle:
        lines = _Lines(handle, dialect)
        reader = csv.reader(lines, delimiter=dialect.delimiter, quotechar=QUOTE, doublequote=True, strict=False)
        buffer = _Rows(columns, row_problems)
        seen = 0
        while True:
            lines.begin_row()
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise DropError(f"{label}: {lines.where()} (from byte offset {lines.row_offset}): {exc}") from None
            if lines.row_line == 1 or not fields:
                continue
            _check_closed(fields, lines, label)
            seen += 1
            if seen <= skip:
                continue
            _add_row(buffer, fields, lines, header, positions, label)
            if len(buffer) >= chunk_rows:
                yield buffer.table()
        if len(buffer):
            yield buffer.table()


def _add_row(
    buffer: _Rows, fields: list[str], lines: _Lines, header: list[str], positions: list[int], label: str
) -> None:
    """The row's values into the buffer; a row that cannot be read as written goes in with its reason, or fails the
    file when the buffer keeps no row problems."""
    problem = lines.problems[0] if lines.problems else None
    if problem is None and len(fields) != len(header):
        problem = (WRONG_WIDTH, _width_problem(fields, header))
    if problem is None:
        buffer.add([fields[index] or None for index in positions])
        return
    if not buffer.row_problems:
        raise DropError(f"{label}: {lines.where()} (from byte offset {lines.row_offset}): {problem[1]}")
    values = [(fields[index] if index < len(fields) else "") or None for index in positions]
    buffer.add(values, f"{lines.where()}: {problem[1]}", problem[0])


def _check_closed(fields: list[str], lines: _Lines, label: str) -> None:
    """A quote opened and never closed swallows the rest of the file into one value: the file fails."""
    if lines.exhausted and lines.quotes % 2 and any("\n" in value or "\r" in value for value in fields):
        raise DropError(
            f"{label}: line {lines.row_line} (byte offset {lines.row_offset}): a quoted value opens here and is "
            f"never closed, so the rest of the file ({lines.count - lines.row_line + 1} lines) would be read as "
            'one value. Close the quote, or double a quote that is part of a value ("")'
        )


def _width_problem(fields: list[str], header: list[str]) -> str:
    text = f"{len(fields)} fields where the header has {len(header)}"
    if len(fields) > len(header):
        extra = ", ".join(repr(_short(value)) for value in fields[len(header) :][:3])
        more = ", …" if len(fields) - len(header) > 3 else ""
        return f"{text} (extra values {extra}{more})"
    absent = ", ".join(header[len(fields) :][:5]) + (", …" if len(header) - len(fields) > 5 else "")
    return f"{text} (no value for {absent})"


def _short(value: str) -> str:
    return value if len(value) <= MAX_SHOWN else value[: MAX_SHOWN - 1] + "…"


@dataclass
class _Rows:
    """Rows collected for the next frame, with their read problems when the caller keeps them."""

    columns: list[str]
    row_problems: bool
    values: list[list[str | None]] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    kinds: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    def add(self, values: list[str | None], reason: str | None = None, kind: str | None = None) -> None:
        self.values.append(values)
        self.reasons.append(reason)
        self.kinds.append(kind)

    def table(self) -> pa.Table:
        found = {
            column: pa.array([row[index] for row in self.values], type=pa.string())
            for index, column in enumerate(self.columns)
        }
        if self.row_problems:
            found[READ_PROBLEM] = pa.array(self.reasons, type=pa.string())
            found[READ_KIND] = pa.array(self.kinds, type=pa.string())
        self.values, self.reasons, self.kinds = [], [], []
        return pa.table(found)
