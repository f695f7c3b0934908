"""Find and read the day's raw drop, with errors that name the file and what is expected.

Every file under the drop's prefix is data, except the `_SUCCESS` marker: each is read by the reader, among the
spec's formats, that reads its name, or the night fails naming it. Nothing is skipped for its name.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from nightshift.config import ModelSpec
from nightshift.readers import READ_KIND, READ_PROBLEM, READERS, Dialect, DropError, check_columns, reader_for_file
from nightshift.stores.objects import MARKER, ObjectStore, is_complete

__all__ = [
    "READ_KIND",
    "READ_PROBLEM",
    "DropError",
    "check_columns",
    "drop_files",
    "drop_is_ready",
    "drop_prefix",
    "frame_to_csv_bytes",
    "neutralise_formulas",
    "read_drop",
    "read_drop_chunks",
    "read_drop_tables",
    "read_source_chunks",
    "read_source_tables",
    "source_files",
    "write_csv",
]

CHUNK_ROWS = 250_000
_KNOWN_KINDS: tuple[tuple[tuple[str, ...], str, str | None], ...] = (
    ((".csv",), "a CSV file", "csv"),
    ((".gz",), "a gzip-compressed file", "csv.gz"),
    (
        (".gzip",),
        "a gzip-compressed file named .gzip: name it .csv.gz (format 'csv.gz' reads names ending in .gz)",
        None,
    ),
    ((".zip", ".bz2", ".xz", ".zst", ".7z"), "a compressed archive: land its CSV files uncompressed or gzipped", None),
    ((".parquet", ".pq"), "a Parquet file", "parquet"),
    ((".xlsx", ".xls"), "an Excel workbook: export the sheet as CSV", None),
    ((".tsv", ".txt", ".psv", ".dat"), "a text file named otherwise: name it .csv (and set the delimiter)", None),
    ((".json", ".jsonl", ".ndjson"), "a JSON file, which nightshift does not read", None),
    ((".crc",), "a checksum file from the exporting job: land the drop without it", None),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_LINE_END = "\r\n"
"""RFC 4180's line end: with it, a value holding a lone carriage return is quoted too, so no row splits."""
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START_RE2 = "^[=+\\-@\t\r']"
_PLAIN_NUMBER_RE2 = r"^[+-]?(\p{Nd}+\.?\p{Nd}*|\.\p{Nd}+)([eE][+-]?\p{Nd}+)?$"
"""_FORMULA_START and _PLAIN_NUMBER for Arrow's regular expressions (RE2's \\d is ASCII only; Python's any digit)."""


def drop_prefix(spec: ModelSpec, dt: str) -> str:
    return spec.sources.drop.path.format(model=spec.name, dt=dt).rstrip("/")


def drop_is_ready(store: ObjectStore, spec: ModelSpec, dt: str) -> bool:
    """True once the drop's `_SUCCESS` marker has landed."""
    return is_complete(store, drop_prefix(spec, dt))


def drop_files(store: ObjectStore, spec: ModelSpec, dt: str) -> list[str]:
    """Every data file of the day's drop, in name order; DropError naming any file the spec's formats cannot read."""
    return source_files(store, drop_prefix(spec, dt), spec.sources.drop.formats, "sources.drop")


def source_files(store: ObjectStore, prefix: str, formats: tuple[str, ...], setting: str) -> list[str]:
    """Data files under `prefix` (all but the `_SUCCESS` marker); DropError when one is unreadable or none is there."""
    url = store.url_for(prefix)
    keys = [key for key in store.list(prefix) if Path(key).name != MARKER]
    if not is_complete(store, prefix):
        present = f"{len(keys)} file(s) are there so far" if keys else "nothing is there yet"
        raise DropError(
            f"{url}: the drop has no {MARKER} marker, so it is not complete ({present}); the exporting job writes "
            f"{MARKER} last, once every file has landed"
        )
    unreadable = [key for key in keys if reader_for_file(Path(key).name, formats) is None]
    if unreadable:
        listed = "; ".join(
            f"{key.removeprefix(prefix + '/')} is {_kind_of(Path(key).name, setting)}" for key in unreadable
        )
        raise DropError(
            f"{url}: {_plural(len(unreadable), 'file')} of the drop cannot be read: {listed}. "
            f"{_allowed(formats, setting)}. Every file of a drop is read or the night fails, so that no rows are "
            "skipped unseen: remove or convert the file(s), then rerun"
        )
    if not keys:
        raise DropError(
            f"{url}: the drop is marked complete ({MARKER}) but holds no data file; expected one or more data "
            f"files. {_allowed(formats, setting)}"
        )
    return keys


def _allowed(formats: tuple[str, ...], setting: str) -> str:
    """What the spec's formats read, e.g. "Format 'csv' (sources.drop.format) reads files whose names end in .csv"."""
    reads = " and ".join(
        f"{READERS[name].description}" + (f" ({name})" if len(formats) > 1 else "") for name in formats
    )
    named = repr(formats[0]) if len(formats) == 1 else "[" + ", ".join(formats) + "]"
    return f"Format {named} ({setting}.format) reads {reads}"


def _kind_of(name: str, setting: str) -> str:
    lowered = name.lower()
    for suffixes, kind, file_format in _KNOWN_KINDS:
        if lowered.endswith(suffixes):
            return kind + (f": set {setting}.format to include {file_format!r}" if file_format else "")
    return "not a file of these formats" + (" (it has no extension)" if "." not in name.lstrip("._") else "")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def read_source_chunks(
    store: ObjectStore,
    key: str,
    columns: list[str],
    chunk_rows: int = CHUNK_ROWS,
    *,
    dialect: Dialect | None = None,
    row_problems: bool = False,
    formats: tuple[str, ...] = ("csv",),
) -> Iterator[pd.DataFrame]:
    """Yield the file's rows as strings (empty cells as missing), only `columns`, in order, `chunk_rows` at a time.

    The file is read by the reader of `formats` that reads its name. With `row_problems`, rows that cannot be
    read as written are yielded too, with READ_PROBLEM and READ_KIND columns saying why (the validation
    quarantines them); without it the first such row raises DropError naming the file and the line or row.
    """
    tables = read_source_tables(
        store, key, columns, chunk_rows, dialect=dialect, row_problems=row_problems, formats=formats
    )
    for table in tables:
        yield table.to_pandas()


def read_source_tables(
    store: ObjectStore,
    key: str,
    columns: list[str],
    chunk_rows: int = CHUNK_ROWS,
    *,
    dialect: Dialect | None = None,
    row_problems: bool = False,
    formats: tuple[str, ...] = ("csv",),
) -> Iterator[pa.Table]:
    """What `read_source_chunks` yields, as Arrow tables of string columns."""
    label = store.url_for(key)
    dialect = dialect or Dialect()
    reader = reader_for_file(Path(key).name, formats)
    if reader is None:
        raise DropError(f"{label}: {_allowed(formats, dialect.setting)}, which this file's name does not match")
    with tempfile.TemporaryDirectory() as tmp:
        path = store.get_file(key, Path(tmp) / Path(key).name)
        yield from reader.tables(path, label, columns, dialect, chunk_rows=chunk_rows, row_problems=row_problems)


def read_drop_chunks(
    store: ObjectStore, spec: ModelSpec, key: str, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """One file of the day's drop as the spec describes it, rows that cannot be read kept with their reasons."""
    for table in read_drop_tables(store, spec, key, chunk_rows):
        yield table.to_pandas()


def read_drop_tables(store: ObjectStore, spec: ModelSpec, key: str, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    """What `read_drop_chunks` yields, as Arrow tables of string columns."""
    source = spec.sources.drop
    yield from read_source_tables(
        store,
        key,
        spec.raw_columns,
        chunk_rows,
        dialect=Dialect.of(source, "sources.drop"),
        row_problems=True,
        formats=source.formats,
    )


def read_drop(store: ObjectStore, spec: ModelSpec, dt: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (file key, raw string frame) for each file of the day's drop."""
    for key in drop_files(store, spec, dt):
        frames = list(read_drop_chunks(store, spec, key))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=spec.raw_columns)
        yield key, frame


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy in which no text cell would run as a spreadsheet formula.

    A cell starting with =, +, -, @, a tab or a carriage return gets a single quote in front (`=SUM(A1)` becomes
    `'=SUM(A1)`), and so does a cell that already starts with a quote, so removing one leading quote always gives
    the value back. Plain numbers such as -5 or +1.5e3 are left as they are: a spreadsheet reads them as numbers.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        risky = _risky_cells(values)
        if risky is not None and risky.any():
            out[column] = values.mask(risky, "'" + values[risky].astype(str))
    return out


def _risky_cells(values: pd.Series) -> pd.Series | None:
    """True for the text cells `neutralise_formulas` quotes; None for a column without text."""
    import pyarrow.compute as pc

    try:
        text = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        text = None
    if text is None:
        try:
            risky = values.str.startswith(_FORMULA_START, na=False)
        except AttributeError:
            return None
        return risky & ~values.str.fullmatch(_PLAIN_NUMBER, na=False)
    starts = pc.fill_null(pc.match_substring_regex(text, _FORMULA_START_RE2), False)
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_NUMBER_RE2), False)
    return pd.Series(pc.and_not(starts, plain).to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


def frame_to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as CSV for people to open (formula cells neutralised, see neutralise_formulas)."""
    buffer = io.StringIO()
    neutralise_formulas(frame).to_csv(buffer, index=False, lineterminator=_LINE_END)
    return buffer.getvalue().encode()


def write_csv(frame: pd.DataFrame, path: Path, *, append: bool = False) -> Path:
    """Write the frame as a CSV file for people to open (formula cells neutralised, see neutralise_formulas).

    With `append`, the rows go after those already in the file, without a header.
    """
    neutralise_formulas(frame).to_csv(
        path, mode="a" if append else "w", header=not append, index=False, lineterminator=_LINE_END
    )
    return path
