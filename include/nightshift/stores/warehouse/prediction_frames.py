"""The frames given to `load_predictions`, checked value by value against what the warehouse holds and cut into
Arrow tables of at most LOAD_SLICE_ROWS rows; a bad value is a BadPredictions naming frame, row, column and value."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from nightshift.stores.warehouse.binary_copy import _string_offsets
from nightshift.stores.warehouse.tables import predictions

PREDICTION_COLUMNS = ("prediction_id", "entity_id", "score", "model", "model_version", "alias", "run_id")
"""The columns of a frame given to `load_predictions` (every model kind); the loader adds `dt`."""
CLASS_COLUMNS = ("predicted_label", "class_probabilities")
"""The columns a multiclass frame holds besides PREDICTION_COLUMNS: the predicted class's name (a string) and
`class_probabilities`, JSON text of an object mapping each class's name to its probability."""
LOAD_SLICE_ROWS = 100_000
"""Rows checked and encoded at a time: bounds a load's memory whatever the size of the frames it is given."""
_INSERT_COLUMNS = tuple(column.name for column in predictions.columns)
_STRING_LIMITS = {
    name: int(predictions.c[name].type.length)  # type: ignore[attr-defined]
    for name in (*PREDICTION_COLUMNS, "predicted_label")
    if name != "score"
}


class BadPredictions(ValueError):
    """Predictions that cannot be loaded; the message names the model, night, frame, row, column and value."""


def _not_a_string(value: Any) -> bool:
    return not (value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value)))


def _not_a_number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating)


def _first(mask: Any) -> int:
    """The position of the first true value of a boolean Arrow array."""
    import pyarrow.compute as pc

    return int(pc.index(mask, True).as_py())


def _has_nul(array: Any) -> bool:
    """Whether any string of the Arrow string array holds a NUL byte (one pass over its bytes)."""
    import numpy as np

    offsets = _string_offsets(array)
    data = array.buffers()[2]
    if data is None or offsets[-1] == offsets[0]:
        return False
    return not np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0])).all()


def _too_long(array: Any, limit: int) -> int | None:
    """The position of the first string longer than `limit` characters, or None (bytes are counted first: cheaper)."""
    import pyarrow.compute as pc

    if not len(array) or pc.max(pc.binary_length(array)).as_py() <= limit:
        return None
    longer = pc.greater(pc.utf8_length(array), limit)
    return _first(longer) if pc.any(longer).as_py() else None


def _checked_table(part: Any, model: str, locate: Any, columns: tuple[str, ...] = PREDICTION_COLUMNS) -> Any:
    """One slice of a frame as an Arrow table in COPY's column order, after checking every value the warehouse holds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays: dict[str, Any] = {}
    for name in columns:
        array = _column_array(part[name], name, locate)
        if name == "score":
            _check_scores(array, locate)
        elif name == "class_probabilities":
            _check_probabilities(array, locate)
        else:
            _check_text(array, name, locate)
        arrays[name] = array
    other = pc.invert(pc.equal(arrays["model"], model))
    if pc.any(other).as_py():
        bad = _first(other)
        raise BadPredictions(
            f"{locate(bad)}: model {arrays['model'][bad].as_py()!r} is not the model being loaded ({model!r})"
        )
    return pa.table({name: arrays[name] for name in _INSERT_COLUMNS if name in arrays})


def _column_array(series: Any, name: str, locate: Any) -> Any:
    """The column as one Arrow array (float64 scores, strings otherwise); BadPredictions on a value that is neither
    or a missing one."""
    import pandas as pd
    import pyarrow as pa

    if name == "score":
        if pd.api.types.is_bool_dtype(series.dtype):
            raise BadPredictions(f"{locate(0)}: score holds booleans ({series.dtype}), not numbers")
        arrow_type, odd, kind = pa.float64(), _not_a_number, "a number"
    else:
        arrow_type, odd, kind = pa.string(), _not_a_string, "a string"
    try:
        array = pa.array(series, type=arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        bad = next((pos for pos, value in enumerate(series) if value is not None and odd(value)), None)
        if bad is None:
            raise BadPredictions(f"{locate(0)}: {name} ({series.dtype}) is not {kind}: {exc}") from None
        raise BadPredictions(f"{locate(bad)}: {name} {series.iloc[bad]!r} is not {kind}") from None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise BadPredictions(f"{locate(_first(array.is_null()))}: {name} is missing (None or NaN)")
    return array


def _check_scores(array: Any, locate: Any) -> None:
    import pyarrow.compute as pc

    finite = pc.is_finite(array)
    if not pc.all(finite).as_py():
        bad = _first(pc.invert(finite))
        raise BadPredictions(f"{locate(bad)}: score {array[bad].as_py()!r} is not a finite number")


def _check_text(array: Any, name: str, locate: Any) -> None:
    """Within the column's length limit and free of NUL characters (PostgreSQL text refuses them)."""
    import pyarrow.compute as pc

    limit = _STRING_LIMITS[name]
    bad = _too_long(array, limit)
    if bad is not None:
        raise BadPredictions(
            f"{locate(bad)}: {name} {array[bad].as_py()[:80]!r}… is {len(array[bad].as_py())} characters long; "
            f"the warehouse holds at most {limit}"
        )
    if _has_nul(array):
        bad = _first(pc.match_substring(array, "\x00"))
        raise BadPredictions(f"{locate(bad)}: {name} contains a NUL character, which Postgres refuses")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        twice = next(key for key, _ in pairs if sum(other == key for other, _ in pairs) > 1)
        raise ValueError(f"class {twice!r} appears twice")
    return found


def _storable(name: str) -> bool:
    """Whether Postgres's JSONB takes `name` (a JSON escape can spell a NUL or half a surrogate pair; it takes neither)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in name


def _probabilities_problem(text: str) -> str | None:
    """What is wrong with one `class_probabilities` text, or None: it must be a JSON object of finite numbers."""
    try:
        found = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        return f"is not JSON text ({exc})"
    if not isinstance(found, dict) or not found:
        return "is not a JSON object of class names and probabilities"
    for key, value in found.items():
        if not _storable(key):
            return f"has a class name {key!r} Postgres refuses (a NUL character or a lone surrogate)"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"has {value!r} for class {key!r}, not a number"
        try:
            finite = math.isfinite(value)
        except OverflowError:
            finite = False
        if not finite:
            return f"has {value!r} for class {key!r}, not a finite number"
    return None


_DECODE = json.JSONDecoder(parse_constant=_refuse_constant).decode
_LARGEST = sys.float_info.max


def _plainly_fine(text: str) -> bool:
    """A quick yes for the usual text: an object of finite numbers without escapes, so its quotes (two per class
    name) show whether a class appears twice. False sends the text to `_probabilities_problem`."""
    try:
        found = _DECODE(text)
    except (ValueError, RecursionError):
        return False
    if type(found) is not dict or not found or "\\" in text or text.count('"') != 2 * len(found):
        return False
    for value in found.values():
        if (type(value) is not float and type(value) is not int) or not -_LARGEST <= value <= _LARGEST:
            return False
    return True


def _check_probabilities(array: Any, locate: Any) -> None:
    """Each value a JSON object of class names to finite numbers (parsed one by one: multiclass frames only)."""
    for pos, text in enumerate(array.to_pylist()):
        if _plainly_fine(text):
            continue
        problem = _probabilities_problem(text)
        if problem is not None:
            shown = text if len(text) <= 80 else f"{text[:80]}…"
            raise BadPredictions(f"{locate(pos)}: class_probabilities {shown!r} {problem}")


def _kind(columns: tuple[str, ...]) -> str:
    if len(columns) > len(PREDICTION_COLUMNS):
        return f"holds {' and '.join(CLASS_COLUMNS)} (multiclass)"
    return f"holds no {' or '.join(CLASS_COLUMNS)} (binary or regression)"


def _frame_columns(frame: Any, number: int, where: str) -> tuple[str, ...]:
    """The columns the frame's rows carry: PREDICTION_COLUMNS, plus CLASS_COLUMNS for a multiclass frame."""
    columns = [str(column) for column in frame.columns]
    classes = [name for name in CLASS_COLUMNS if name in columns]
    expected = (*PREDICTION_COLUMNS, *CLASS_COLUMNS) if classes else PREDICTION_COLUMNS
    missing = [name for name in expected if name not in columns]
    extra = [name for name in columns if name not in expected]
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if missing or extra or twice:
        problems = [
            *([f"missing {', '.join(missing)}"] if missing else []),
            *([f"unexpected {', '.join(extra)}"] if extra else []),
            *([f"repeated {', '.join(twice)}"] if twice else []),
        ]
        raise BadPredictions(
            f"{where}: frame {number} has the wrong columns ({'; '.join(problems)}); expected exactly "
            f"{', '.join(PREDICTION_COLUMNS)}, or those and {', '.join(CLASS_COLUMNS)} for a multiclass model "
            "(the loader adds dt)"
        )
    return expected


def _checked_tables(frames: Iterable[Any], model: str, day: dt.date) -> Iterator[Any]:
    """Every frame, checked and cut into Arrow tables of at most LOAD_SLICE_ROWS rows; one frame in memory at a time."""
    import pandas as pd

    where = f"predictions of model {model!r} for {day}"
    loaded = 0
    leading: tuple[int, tuple[str, ...]] | None = None
    for number, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise BadPredictions(f"{where}: frame {number} is a {type(frame).__name__}, not a pandas DataFrame")
        columns = _frame_columns(frame, number, where)
        if len(frame) and leading is None:
            leading = number, columns
        elif len(frame) and leading is not None and columns != leading[1]:
            raise BadPredictions(
                f"{where}: frame {number} {_kind(columns)} but frame {leading[0]} {_kind(leading[1])}; every frame of "
                "one load holds the same kind of predictions"
            )
        for offset in range(0, len(frame), LOAD_SLICE_ROWS):
            part = frame.iloc[offset : offset + LOAD_SLICE_ROWS]

            def locate(
                pos: int, number: int = number, row: int = offset, frame: Any = frame, first: int = loaded
            ) -> str:
                row += pos
                return f"{where}: frame {number}, row {row} (index {frame.index[row]!r}; row {first + row} of the load)"

            yield _checked_table(part, model, locate, columns)
        loaded += len(frame)
