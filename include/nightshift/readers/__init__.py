"""Drop readers, one module per format: each turns one file into frames of strings with the spec's columns.

A new format is one module with a Reader and one entry in READERS.
"""

from __future__ import annotations

from nightshift.readers.base import READ_KIND, READ_PROBLEM, Dialect, DropError, Reader, check_columns
from nightshift.readers.csv import CsvReader

READERS: dict[str, Reader] = {"csv": CsvReader()}

__all__ = ["READERS", "READ_KIND", "READ_PROBLEM", "Dialect", "DropError", "Reader", "check_columns", "reader_for"]


def reader_for(file_format: str) -> Reader:
    return READERS[file_format]
