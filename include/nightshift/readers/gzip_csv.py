"""Gzip-compressed CSV files (names ending in .gz, in any case, e.g. part-00000.csv.gz).

The file is decompressed as a stream into a temporary file beside it, then read by the CSV reader, so the
spec's encoding and delimiter and every per-row reason work as for plain CSV. Line numbers and byte offsets in
reasons count in the decompressed text. A corrupt or truncated file fails before any of its rows is read.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.readers.base import READ_PROBLEM, Dialect, DropError, as_frames
from nightshift.readers.csv import CsvReader
from nightshift.readers.text import hex_bytes

BLOCK_BYTES = 1 << 16
DECOMPRESSED = " (in the decompressed text)"
_OFFSETS_NOTE = ". Line numbers and byte offsets count in the decompressed text"


class GzipCsvReader:
    format = "csv.gz"
    description = "files whose names end in .gz (gzip-compressed CSV, e.g. .csv.gz), in any case"

    def reads(self, name: str) -> bool:
        return name.lower().endswith(".gz")

    def chunks(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pd.DataFrame]:
        yield from as_frames(
            self.tables(path, label, columns, dialect, chunk_rows=chunk_rows, row_problems=row_problems)
        )

    def tables(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pa.Table]:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=".decompressed-", suffix=".csv")
        os.close(handle)
        text = Path(name)
        try:
            decompress(path, text, label, dialect.setting)
            try:
                for table in CsvReader().tables(
                    text, label, columns, dialect, chunk_rows=chunk_rows, row_problems=row_problems
                ):
                    yield _noted(table)
            except DropError as exc:
                message = str(exc)
                raise DropError(message + (_OFFSETS_NOTE if "offset" in message else "")) from None
        finally:
            text.unlink(missing_ok=True)


def decompress(source: Path, target: Path, label: str, setting: str = "sources.drop") -> int:
    """Stream the gzip file `source` into `target` (a block at a time); DropError naming what is wrong with it."""
    if source.stat().st_size == 0:
        raise DropError(f"{label}: the file is empty (0 bytes); expected gzip-compressed CSV text")
    written = 0
    try:
        with gzip.open(source, "rb") as packed, target.open("wb") as out:
            while block := packed.read(BLOCK_BYTES):
                out.write(block)
                written += len(block)
    except gzip.BadGzipFile as exc:
        if written == 0 and str(exc).startswith("Not a gzipped file"):
            with source.open("rb") as handle:
                head = handle.read(2)
            raise DropError(
                f"{label}: not a gzip file: it starts with {hex_bytes(head)}, not the gzip signature 0x1f 0x8b. "
                f"Format 'csv.gz' ({setting}.format) reads gzip-compressed CSV; if the file is plain CSV, name it "
                ".csv"
            ) from None
        raise DropError(_corrupt(label, written, str(exc))) from None
    except EOFError:
        raise DropError(
            f"{label}: the gzip data ends early, after {written} bytes decompressed intact: the file is truncated (was it "
            "copied before it was completely written?). Land the complete file again, then rerun"
        ) from None
    except zlib.error as exc:
        raise DropError(_corrupt(label, written, str(exc))) from None
    if written == 0:
        raise DropError(f"{label}: the gzip data decompresses to nothing (0 bytes); expected CSV text with a header")
    with target.open("rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            raise DropError(
                f"{label}: the file decompresses to gzip data again: it was compressed twice; compress once"
            )
    return written


def _corrupt(label: str, written: int, what: str) -> str:
    return (
        f"{label}: the gzip data is corrupt after {written} bytes decompressed intact ({what}). Land an intact copy of the "
        "file again, then rerun"
    )


def _noted(table: pa.Table) -> pa.Table:
    """Reasons that name a byte offset say it is in the decompressed text."""
    if READ_PROBLEM not in table.column_names:
        return table
    problems = table.column(READ_PROBLEM)
    offset = pc.fill_null(pc.match_substring(problems, "byte offset"), False)
    if not pc.any(offset).as_py():
        return table
    noted = pc.if_else(offset, pc.binary_join_element_wise(problems, DECOMPRESSED, ""), problems)
    return table.set_column(table.column_names.index(READ_PROBLEM), READ_PROBLEM, noted)
