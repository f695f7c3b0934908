"""Postgres's binary COPY format, encoded by hand from Arrow tables, and the worker thread that feeds it to psycopg2.

Why it exists: the warehouse's driver is psycopg2, whose `copy_expert` only reads bytes from a file-like object and has
no binary row encoder, so the rows are encoded here: a slice's columns become COPY rows in a few Arrow kernels (no Python
loop over rows), while a worker thread encodes the next slice as the server parses this one. Kept over psycopg 3's
`copy` after measuring both (docs/benchmark.md, "Why the warehouse keeps its own COPY encoder"). Self-contained: it
knows the columns COPY sends and nothing else of the warehouse.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_COPY_COLUMNS = ("prediction_id", "entity_id", "score", "model_version", "alias", "run_id")
"""The columns COPY sends, in its order; model and dt are the same on every row, so the table's defaults fill them."""
_ROW_COLUMNS = _COPY_COLUMNS[:3]
_GROUP_COLUMNS = _COPY_COLUMNS[3:]
"""Columns that hold one value through long runs of rows (one scorer's output): COPY leaves them to defaults then."""
_CLASS_COLUMNS = ("predicted_label", "class_probabilities")
"""Sent after the others only by slices that hold them (multiclass predictions); otherwise the rows get NULL."""
_PREFIXES = {"class_probabilities": b"\x01"}
"""What a value's bytes start with: JSONB's binary format is a version byte (1), then the JSON text."""
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_COPY_READ_BYTES = 1 << 20


def _string_offsets(array: Any) -> Any:
    import numpy as np

    return np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)


def _constant(values: Any) -> str | None:
    """The one value of an Arrow string array that holds nothing else, or None."""
    import pyarrow.compute as pc

    first = values[0].as_py()
    return first if pc.all(pc.equal(values, first)).as_py() else None


def _copy_rows(table: Any, columns: Sequence[str]) -> Any:
    """`table`'s `columns` as rows of COPY's binary format (no header), built by Arrow: no Python loop over rows.

    A column holding one value throughout is written as a constant, merged with its constant neighbours.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = table.num_rows

    def fixed(data: bytes, width: int) -> Any:
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), rows, [None, pa.py_buffer(data)]).cast(
            pa.binary()
        )

    parts: list[Any] = []
    constant = bytearray(struct.pack("!h", len(columns)))
    for name in columns:
        values = table[name].combine_chunks()
        prefix = _PREFIXES.get(name, b"")
        if name == "score":
            cells = np.empty(rows, dtype=[("size", ">i4"), ("value", ">f8")])
            cells["size"] = 8
            cells["value"] = values.to_numpy()
            field = [fixed(cells.tobytes(), 12)]
        elif (value := _constant(values)) is not None:
            encoded = prefix + value.encode()
            constant += struct.pack("!i", len(encoded)) + encoded
            continue
        else:
            sizes = np.diff(_string_offsets(values))
            if prefix:
                field = [fixed((sizes + len(prefix)).astype(">i4").tobytes(), 4), pa.scalar(prefix, pa.binary())]
            else:
                field = [fixed(sizes.astype(">i4").tobytes(), 4)]
            field.append(values.cast(pa.binary()))
        if constant:
            parts.append(pa.scalar(bytes(constant), pa.binary()))
            constant = bytearray()
        parts += field
    if constant:
        parts.append(pa.scalar(bytes(constant), pa.binary()))
    joined = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))
    offsets = _string_offsets(joined)
    return joined.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _encoded(table: Any) -> tuple[tuple[tuple[str, ...] | None, tuple[str, ...]], int, Any]:
    """A slice ready for COPY: its segment key (group, columns sent), rows, bytes.

    The group is the values of _GROUP_COLUMNS when each holds one value: such a slice leaves those columns to the
    table's defaults and sends only _ROW_COLUMNS. The _CLASS_COLUMNS the slice holds are sent after the others.
    """
    names = set(table.column_names)
    extra = tuple(name for name in _CLASS_COLUMNS if name in names)
    values = [_constant(table[name].combine_chunks()) for name in _GROUP_COLUMNS]
    if all(value is not None for value in values):
        group = tuple(str(value) for value in values)
        columns = (*_ROW_COLUMNS, *extra)
        return (group, columns), table.num_rows, _copy_rows(table, columns)
    columns = (*_COPY_COLUMNS, *extra)
    return (None, columns), table.num_rows, _copy_rows(table, columns)


_END = object()


class _CopyStream:
    """What psycopg2's `copy_expert` reads: binary COPY data that a worker thread encodes from the frames meanwhile.

    The worker checks and encodes the next slice while the server parses this one; at most two encoded slices wait.
    The data comes in segments, one COPY each: a run of slices of one group and the same columns (see `_encoded`),
    or of mixed slices. `next_segment` starts the next one and returns its group (`columns` names what it sends);
    `read` gives its bytes, ending where it ends.
    A problem in the frames stops the COPY and is kept in `error`, for the caller to raise instead of the driver's.
    """

    def __init__(self, tables: Iterator[Any]) -> None:
        self.rows = 0
        self.error: BaseException | None = None
        self._tables = tables
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._next: Any = None
        self._key: Any = None
        self.columns: tuple[str, ...] = _COPY_COLUMNS
        self._pending = memoryview(b"")
        self._ended = True
        self._worker = threading.Thread(target=self._encode, name="nightshift-copy", daemon=True)

    def __enter__(self) -> _CopyStream:
        self._worker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._worker.join()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            with suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def _encode(self) -> None:
        try:
            for table in self._tables:
                if table.num_rows and not self._put(_encoded(table)):
                    return
        except BaseException as exc:
            self._put(exc)
        else:
            self._put(_END)

    def _take(self) -> Any:
        """The next encoded slice, or _END; a failure of the worker is raised here."""
        item, self._next = (self._next if self._next is not None else self._queue.get()), None
        if isinstance(item, BaseException):
            self.error = item
            raise item
        return item

    def next_segment(self) -> object:
        """Start the next segment and return its group (None for mixed slices), or _END when all is sent."""
        item = self._take()
        if item is _END:
            return _END
        self._key = item[0]
        group, self.columns = self._key
        self._next = item
        self._pending = memoryview(_COPY_HEADER)
        self._ended = False
        return group

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            if self._ended:
                return b""
            item = self._take()
            if item is _END or item[0] != self._key:
                self._next = item
                self._ended = True
                self._pending = memoryview(_COPY_TRAILER)
            else:
                self.rows += item[1]
                self._pending = memoryview(item[2])
        size = len(self._pending) if size is None or size < 0 else size
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return bytes(chunk)


def _copy(connection: Connection, table: str, tables: Iterator[Any]) -> int:
    """Stream `tables` into `table` with binary COPY, one COPY per segment; the number of rows."""
    engine = connection.engine
    driver: Any = connection.connection.driver_connection
    copy = ""
    with _CopyStream(tables) as stream, driver.cursor() as cursor:
        try:
            while (group := stream.next_segment()) is not _END:
                if isinstance(group, tuple):
                    defaults = ", ".join(f"ALTER {name} SET DEFAULT %({name})s" for name in _GROUP_COLUMNS)
                    connection.exec_driver_sql(
                        f"ALTER TABLE {table} {defaults}", dict(zip(_GROUP_COLUMNS, group, strict=True))
                    )
                copy = f"COPY {table} ({', '.join(stream.columns)}) FROM STDIN WITH (FORMAT binary, FREEZE)"
                cursor.copy_expert(copy, stream, size=_COPY_READ_BYTES)
        except engine.dialect.loaded_dbapi.Error as exc:
            if stream.error is not None:
                raise stream.error from None
            dropped = engine.dialect.is_disconnect(exc, driver, cursor)
            if dropped:
                connection.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                copy,
                {"rows_before_the_error": stream.rows},
                exc,
                engine.dialect.loaded_dbapi.Error,
                connection_invalidated=dropped,
                dialect=engine.dialect,
            ) from exc
        return stream.rows
