"""How a target's label values parse, one parser per target kind behind one interface.

A parser takes the label column as read (strings, missing cells as NA) and returns the parsed values, which rows
are not labels, and why. Multiclass and regression targets add one parser each to
`PARSERS`; the spec has no target kind yet, so every target is binary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.config import ModelSpec

MAX_SHOWN_CHARS = 60
BINARY_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}
"""Binary label spellings after trimming and lower-casing: what pandas, spreadsheets and SQL exports write."""


@dataclass(frozen=True)
class ParsedLabels:
    values: np.ndarray
    """The parsed label of every row; meaningful only where `failed` is False."""
    failed: np.ndarray
    """Per row, True when the value is not a label."""
    reasons: np.ndarray
    """For each failed row, in row order: why, naming the column, the value and what is valid."""


LabelParser = Callable[[pd.Series, ModelSpec], ParsedLabels]


def shown(value: str) -> str:
    return repr(value if len(value) <= MAX_SHOWN_CHARS else value[: MAX_SHOWN_CHARS - 1] + "…")


def strings(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, missing cells as nulls."""
    try:
        array = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array([None if pd.isna(value) else str(value) for value in values], type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def binary_vocabulary(spec: ModelSpec) -> dict[str, int]:
    """Accepted spellings (trimmed, lower-cased) -> 0 or 1, including the spec's positive label."""
    vocabulary = dict(BINARY_VALUES)
    vocabulary.setdefault(str(spec.target.positive_label).strip().lower(), 1)
    return vocabulary


def binary_expected(spec: ModelSpec) -> str:
    expected = "0 or 1 (also 0.0/1.0 or true/false, any case"
    positive = str(spec.target.positive_label).strip().lower()
    if positive not in BINARY_VALUES:
        expected += f", or the positive label {positive!r}"
    return expected + ")"


def parse_binary(raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
    """0/1, 0.0/1.0, true/false (any case, trimmed) and the spec's positive label, as 0 or 1 (int8)."""
    column = spec.target.column
    expected = binary_expected(spec)
    vocabulary = binary_vocabulary(spec)
    trimmed = pc.utf8_trim_whitespace(strings(raw))
    found = pc.index_in(pc.utf8_lower(trimmed), value_set=pa.array(list(vocabulary), type=pa.string()))
    index = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    failed = index < 0
    codes = np.asarray(list(vocabulary.values()), dtype=np.int8)
    values = np.where(failed, 0, codes[np.maximum(index, 0)]).astype(np.int8)
    blank = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(trimmed), 0), True).to_numpy(zero_copy_only=False))
    given = raw.to_numpy(dtype=object)
    reasons = [
        f"{column}: the label is missing; expected {expected}"
        if blank[position]
        else f"{column}: {shown(str(given[position]))} is not a label; expected {expected}"
        for position in np.flatnonzero(failed)
    ]
    return ParsedLabels(values=values, failed=failed, reasons=np.asarray(reasons, dtype=object))


PARSERS: dict[str, LabelParser] = {"binary": parse_binary}


def target_kind(spec: ModelSpec) -> str:
    """The kind of the spec's target; binary until the spec names a kind."""
    return "binary"


def parse_labels(raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
    return PARSERS[target_kind(spec)](raw, spec)
