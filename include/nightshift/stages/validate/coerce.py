"""Text -> typed columns: a drop's string values parsed to the spec's types with Arrow (pandas for the rare rest).

Self-contained: it knows the spec's column kinds and nothing of the checks. A value present in the text but not
parseable becomes missing in the typed frame and is flagged in a mask, for the caller to word.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.config import ModelSpec

_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")
_NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NAIVE_PATTERN = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)?$"
_ZONED_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})$"
_OFFSET_SUFFIX_PATTERN = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_MAX_EXACT_INT = 2.0**53


def column_kinds(spec: ModelSpec) -> dict[str, str]:
    """Each spec column's kind, in spec order: 'str' for the id, 'timestamp' for the timestamp, features' types."""
    kinds: dict[str, str] = {spec.entity_id: "str", spec.timestamp: "timestamp"}
    kinds.update({name: feature.type for name, feature in spec.features.items()})
    return kinds


def coerce_frame(raw: pd.DataFrame, kinds: dict[str, str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Typed copy of the `kinds` columns of `raw`, and per parsed column the mask of values present but unparseable.

    'str' and 'category' columns are kept as they are (object dtype) and have no mask.
    """
    columns: dict[str, pd.Series] = {}
    unparsed: dict[str, np.ndarray] = {}
    for column, kind in kinds.items():
        values = raw[column]
        if kind in ("str", "category"):
            columns[column] = values.astype(object)
            continue
        text = arrow_text(values)
        present = ~np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        typed, parsed = _PARSERS[kind](text, present)
        columns[column] = typed
        unparsed[column] = present & ~parsed
    return pd.DataFrame(columns, index=raw.index), unparsed


def arrow_strings(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, null where missing."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(values.astype(str).where(values.notna(), None).to_numpy(dtype=object), type=pa.string())


def arrow_text(values: pd.Series) -> pa.Array:
    """The values as a whitespace-trimmed Arrow string array, null where missing."""
    return pc.utf8_trim_whitespace(arrow_strings(values))


def _parse_int(text: pa.Array, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    floats = _to_floats(text, present)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(floats) & (floats == np.trunc(floats)) & (np.abs(floats) < _MAX_EXACT_INT)
    integers = pd.arrays.IntegerArray(np.where(whole, floats, 0).astype(np.int64), ~whole)
    return pd.Series(integers, dtype="Int64"), whole


def _parse_float(text: pa.Array, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    floats = _to_floats(text, present)
    finite = np.isfinite(floats)
    return pd.Series(np.where(finite, floats, np.nan), dtype="float64"), finite


def _parse_bool(text: pa.Array, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    words = pc.utf8_lower(text)
    true = np.asarray(pc.is_in(words, value_set=pa.array(_TRUE_WORDS)), dtype=bool)
    false = np.asarray(pc.is_in(words, value_set=pa.array(_FALSE_WORDS)), dtype=bool)
    parsed = true | false
    return pd.Series(pd.arrays.BooleanArray(true, ~parsed)), parsed


def _parse_timestamp(text: pa.Array, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    stamps = _to_timestamps(text, present)
    return pd.Series(stamps, dtype="datetime64[ns]"), ~np.isnat(stamps)


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False), dtype=bool)


def _cast(text: pa.Array, mask: np.ndarray | None, target: pa.DataType) -> np.ndarray:
    """Arrow-cast all strings, or only the masked ones (the rest become null); raises ArrowInvalid on any failure."""
    chosen = text if mask is None else pc.if_else(pa.array(mask), text, pa.scalar(None, pa.string()))
    cast = pc.cast(chosen, target)
    if pa.types.is_timestamp(target):
        cast = cast.cast(pa.timestamp("ns"))
    return np.asarray(cast.to_numpy(zero_copy_only=False))


def _strings(text: pa.Array, mask: np.ndarray) -> np.ndarray:
    return np.asarray(text.filter(pa.array(mask)).to_numpy(zero_copy_only=False), dtype=object)


def _to_floats(text: pa.Array, present: np.ndarray) -> np.ndarray:
    """Numbers with NaN for missing or unparseable values: Arrow for plain decimals, pandas for anything else.

    Arrow parses the whole column in one cast when every value is a number; otherwise a regex picks the ones it
    can cast, and pandas gets the remainder, so one bad value does not make the whole column slow.
    """
    try:
        return np.array(_cast(text, None, pa.float64()), dtype="float64")
    except pa.ArrowException:
        pass
    floats = np.full(len(text), np.nan)
    fast = _matches(text, _NUMBER_PATTERN)
    try:
        floats[fast] = _cast(text, fast, pa.float64())[fast]
    except pa.ArrowException:
        fast[:] = False
    rest = present & ~fast
    if rest.any():
        floats[rest] = np.asarray(pd.to_numeric(pd.Series(_strings(text, rest)), errors="coerce"), dtype="float64")
    return floats


def _to_timestamps(text: pa.Array, present: np.ndarray) -> np.ndarray:
    """ISO 8601 strings as naive-UTC datetime64[ns], NaT where missing or unparseable.

    Arrow parses the common forms (the whole column at once when it can); pandas the rest, in separate calls for
    strings with and without an offset, because pandas' format="ISO8601" applies one string's offset to naive
    strings parsed in the same call.
    """
    for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        try:
            return np.array(_cast(text, None, target), dtype="datetime64[ns]")
        except pa.ArrowException:
            pass
    stamps = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    handled = np.zeros(len(text), dtype=bool)
    slow: list[np.ndarray] = []
    for pattern, target in ((_ZONED_PATTERN, pa.timestamp("ns", "UTC")), (_NAIVE_PATTERN, pa.timestamp("ns"))):
        fast = _matches(text, pattern)
        if fast.any():
            try:
                stamps[fast] = _cast(text, fast, target)[fast]
            except pa.ArrowException:
                slow.append(fast)
            handled |= fast
    rest = present & ~handled
    if rest.any():
        with_offset = _matches(text, _OFFSET_SUFFIX_PATTERN)
        slow.extend([rest & with_offset, rest & ~with_offset])
    for mask in slow:
        if mask.any():
            parsed = pd.to_datetime(pd.Series(_strings(text, mask)), utc=True, errors="coerce", format="ISO8601")
            stamps[mask] = np.asarray(parsed.dt.tz_convert(None), dtype="datetime64[ns]")
    return stamps


_PARSERS: dict[str, Callable[[pa.Array, np.ndarray], tuple[pd.Series, np.ndarray]]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "timestamp": _parse_timestamp,
}
