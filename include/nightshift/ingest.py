"""Find and read the day's raw drop and label drop, with errors that name the file and what is expected."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from nightshift.config import ModelSpec
from nightshift.storage import ObjectStore, is_complete, partition_files


class DropError(ValueError):
    """A drop that cannot be read as the spec describes; the message names the file and what is valid."""


def drop_prefix(spec: ModelSpec, dt: str) -> str:
    return spec.sources.drop.path.format(model=spec.name, dt=dt).rstrip("/")


def drop_is_ready(store: ObjectStore, spec: ModelSpec, dt: str) -> bool:
    """True once the drop's `_SUCCESS` marker has landed."""
    return is_complete(store, drop_prefix(spec, dt))


def drop_files(store: ObjectStore, spec: ModelSpec, dt: str) -> list[str]:
    files = partition_files(store, drop_prefix(spec, dt), suffix=".csv")
    if not files:
        raise DropError(
            f"{store.url_for(drop_prefix(spec, dt))}: the drop is marked complete but holds no .csv file; "
            "expected one or more CSV files with a header row"
        )
    return files


def _header(path: Path, label: str) -> list[str]:
    with path.open(newline="") as handle:
        try:
            return next(csv.reader(handle))
        except StopIteration:
            raise DropError(f"{label}: the file is empty; expected a CSV header row and data rows") from None
        except csv.Error as exc:
            raise DropError(f"{label}: not a readable CSV file ({exc})") from None


def check_columns(found: list[str], expected: list[str], label: str) -> None:
    missing = [column for column in expected if column not in found]
    duplicated = sorted({column for column in found if found.count(column) > 1})
    if missing or duplicated:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if duplicated:
            parts.append(f"duplicated columns {duplicated}")
        unknown = [column for column in found if column not in expected]
        if unknown:
            parts.append(f"unexpected columns {unknown}")
        raise DropError(f"{label}: {'; '.join(parts)}. Expected the header: {','.join(expected)}")


def read_csv_chunks(
    store: ObjectStore, key: str, columns: list[str], chunk_rows: int = 250_000
) -> Iterator[pd.DataFrame]:
    """Yield the file's rows as strings (empty cells as missing), only `columns`, in order, `chunk_rows` at a time."""
    label = store.url_for(key)
    with tempfile.TemporaryDirectory() as tmp:
        path = store.get_file(key, Path(tmp) / Path(key).name)
        check_columns(_header(path, label), columns, label)
        try:
            reader = pd.read_csv(
                path,
                dtype=str,
                usecols=columns,
                keep_default_na=False,
                na_values=[""],
                chunksize=chunk_rows,
                on_bad_lines="error",
            )
            for chunk in reader:
                yield chunk[columns]
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DropError(f"{label}: not a well-formed CSV file: {exc}") from None


def read_drop(store: ObjectStore, spec: ModelSpec, dt: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (file key, raw string frame) for each file of the day's drop."""
    for key in drop_files(store, spec, dt):
        frames = list(read_csv_chunks(store, key, spec.raw_columns))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=spec.raw_columns)
        yield key, frame


def frame_to_csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()
