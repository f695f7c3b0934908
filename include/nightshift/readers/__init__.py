"""Drop readers, one module per format: each turns one file into frames of strings with the spec's columns.

A new format is one module with a Reader and one entry in READERS (and its name in config.Source.FORMATS).
"""

from __future__ import annotations

from collections.abc import Iterable

from nightshift.readers.base import READ_KIND, READ_PROBLEM, Dialect, DropError, Reader, check_columns
from nightshift.readers.csv import CsvReader
from nightshift.readers.gzip_csv import GzipCsvReader
from nightshift.readers.parquet import ParquetReader

READERS: dict[str, Reader] = {"csv": CsvReader(), "csv.gz": GzipCsvReader(), "parquet": ParquetReader()}

__all__ = [
    "READERS",
    "READ_KIND",
    "READ_PROBLEM",
    "Dialect",
    "DropError",
    "Reader",
    "check_columns",
    "reader_for",
    "reader_for_file",
]


def reader_for(file_format: str) -> Reader:
    return READERS[file_format]


def reader_for_file(name: str, formats: Iterable[str]) -> Reader | None:
    """The reader, among those of `formats` (in order), that reads a file of this name; None when none does."""
    for file_format in formats:
        reader = READERS[file_format]
        if reader.reads(name):
            return reader
    return None
