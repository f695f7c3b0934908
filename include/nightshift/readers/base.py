"""What every drop reader shares: the error it raises, the columns it adds for unreadable rows, the header check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

from nightshift.config import Source

READ_PROBLEM = "_read_problem"
"""Column a reader adds when a row could not be read as written: the reason, naming the line or row (else missing)."""
READ_KIND = "_read_kind"
"""Column beside READ_PROBLEM: the kind of problem, e.g. 'row with the wrong number of fields'."""


class DropError(ValueError):
    """A drop that cannot be read as the spec describes; the message names the file and what is valid."""


@dataclass(frozen=True)
class Dialect:
    """How a text drop is written: its encoding and its one-character delimiter."""

    encoding: str = "utf-8"
    delimiter: str = ","
    setting: str = "sources.drop"
    """Where the spec sets these, for messages."""

    @classmethod
    def of(cls, source: Source, setting: str = "sources.drop") -> Dialect:
        return cls(encoding=source.encoding, delimiter=source.delimiter, setting=setting)


class Reader(Protocol):
    """One drop format: which file names it reads, and how it turns one file into frames of strings."""

    format: str
    description: str

    def reads(self, name: str) -> bool: ...

    def chunks(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pd.DataFrame]:
        """Frames of `columns` as strings (missing where empty), in file order, `chunk_rows` rows at a time.

        With `row_problems`, a row that cannot be read as written (wrong number of fields, a NUL byte, bytes
        not valid in the encoding, a Parquet cell that is not one value) is kept, with READ_PROBLEM and READ_KIND
        saying why; without it such a row raises DropError naming the file and the line and byte offset (or the
        row). A file that cannot be read at all raises DropError.
        """
        ...

    def tables(
        self, path: Path, label: str, columns: list[str], dialect: Dialect, *, chunk_rows: int, row_problems: bool
    ) -> Iterator[pa.Table]:
        """What `chunks` yields, as Arrow tables of string columns (READ_PROBLEM and READ_KIND too, when present)."""
        ...


def as_frames(tables: Iterator[pa.Table]) -> Iterator[pd.DataFrame]:
    """Each table as a pandas frame: strings as objects, missing values as None."""
    for table in tables:
        yield table.to_pandas()


def check_columns(found: list[str], expected: list[str], label: str) -> None:
    """Raise DropError when the header lacks or repeats a column, naming them and the header expected."""
    missing = [column for column in expected if column not in found]
    duplicated = sorted({column for column in found if found.count(column) > 1})
    if not missing and not duplicated:
        return
    parts = []
    if missing:
        parts.append(f"missing columns {missing}")
        near = [
            f"{name!r} for {column!r}"
            for column in missing
            for name in found
            if name not in expected and name.strip().lower() == column.lower()
        ]
        if near:
            parts.append(f"found {', '.join(near)} (names must match exactly, in case and spaces)")
    if duplicated:
        parts.append(f"duplicated columns {duplicated}")
    unknown = [column for column in found if column not in expected]
    if unknown:
        parts.append(f"unexpected columns {unknown}")
    raise DropError(f"{label}: {'; '.join(parts)}. Expected the header: {','.join(expected)}")
