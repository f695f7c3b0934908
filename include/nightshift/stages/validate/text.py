"""How validation words values: plurals, one-line errors, sentences, numbers and shortened cell values.

Pure formatting shared by the checks and the outcomes; every message the validation stage writes is built from these.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MAX_SHOWN_CHARS = 60


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def one_line(error: object, limit: int = 400) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence(text: str) -> str:
    """The text as a sentence: capitalised (unless it starts with an address) and ending with a full stop."""
    starts_with_address = "://" in text.split(" ", 1)[0]
    text = text[:1].upper() + text[1:] if text[:1].islower() and not starts_with_address else text
    return text if text.endswith(".") else f"{text}."


def as_float(value: Any) -> float:
    """The value as a float, NaN for None."""
    return float(value) if value is not None else math.nan


def number_text(value: Any) -> str:
    """A number as written in a message: whole numbers without a decimal point."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def shown_value(value: Any) -> str:
    """One cell value as a message shows it: 'empty' when missing, cut to MAX_SHOWN_CHARS."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "empty"
    text = str(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def shown_values(values: np.ndarray) -> np.ndarray:
    """shown_value for many values at once (Arrow when they are all strings or missing)."""
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return np.asarray([shown_value(value) for value in values], dtype=object)
    too_long = pc.greater(pc.utf8_length(text), MAX_SHOWN_CHARS)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, MAX_SHOWN_CHARS - 1), "…", "")
    shown = pc.fill_null(pc.if_else(too_long, cut, text), "empty")
    return np.asarray(shown.to_numpy(zero_copy_only=False), dtype=object)


def values_at(table: pa.Table, column: str, positions: np.ndarray) -> np.ndarray:
    """The column's values at `positions` as Python objects, None where missing."""
    taken = table.column(column).take(pa.array(positions, type=pa.int64()))
    return np.asarray(taken.to_numpy(zero_copy_only=False), dtype=object)


def present(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a value is there (not null)."""
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def quoted_values(values: np.ndarray) -> np.ndarray:
    return "'" + shown_values(values) + "'"


def jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/NaT/NA as None, anything else as text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(item) for item in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
