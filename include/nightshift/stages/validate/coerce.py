"""Text -> typed columns: a drop's string values parsed to the spec's types with Arrow (pandas for the rare rest).

Self-contained: it knows the spec's column kinds and nothing of the checks. A value present in the text but not
parseable becomes missing in the typed columns and is flagged in a mask, for the caller to word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass
class Typed:
    """A drop's columns parsed to the spec's types, in three views of the same values.

    `arrays` are Arrow arrays (int64, float64, bool, timestamp[ns] or the raw strings), null where missing or
    unparseable: what is curated. `series` are what Great Expectations checks: numbers as float64 (NaN where
    missing), timestamps as datetime64[ns], booleans as pandas booleans and strings Arrow-backed, without a copy.
    `unparsed` marks, per parsed column, the values present in the text that did not parse.
    """

    kinds: dict[str, str]
    arrays: dict[str, pa.Array]
    series: dict[str, pd.Series]
    unparsed: dict[str, np.ndarray]
    rows: int
    _codes: dict[str, np.ndarray] = field(default_factory=dict)

    def table(self) -> pa.Table:
        return pa.table(self.arrays)

    def missing(self, column: str) -> np.ndarray:
        """True where the typed value is missing (absent from the text, or unparseable)."""
        return ~np.asarray(self.arrays[column].is_valid().to_numpy(zero_copy_only=False), dtype=bool)

    def numbers(self, column: str) -> np.ndarray:
        """A number column as float64, NaN where missing."""
        return np.asarray(self.series[column].to_numpy(dtype="float64", na_value=np.nan))

    def codes(self, column: str) -> np.ndarray:
        """Per row, a number standing for its value (equal values, equal numbers), -1 where missing."""
        if column not in self._codes:
            indices = pc.dictionary_encode(self.arrays[column]).indices
            self._codes[column] = np.asarray(pc.fill_null(indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        return self._codes[column]

    def code_series(self, column: str) -> pd.Series:
        """The codes as float64 with NaN where missing: as unique, and as often missing, as the values."""
        codes = self.codes(column).astype("float64")
        codes[codes < 0] = np.nan
        return pd.Series(codes, copy=False)

    def first_positions(self, column: str) -> np.ndarray:
        """Per row, the position of the first row holding the same value (-1 where missing)."""
        codes = self.codes(column)
        firsts = np.full(len(codes), -1, dtype=np.int64)
        known = codes >= 0
        if known.any():
            distinct, first = np.unique(codes[known], return_index=True)
            lookup = np.full(int(distinct[-1]) + 1, -1, dtype=np.int64)
            lookup[distinct] = np.flatnonzero(known)[first]
            firsts[known] = lookup[codes[known]]
        return firsts

    def repeated(self, column: str) -> np.ndarray:
        """True where the value is present and some other row holds it too."""
        codes = self.codes(column)
        known = codes >= 0
        counts = np.bincount(codes[known], minlength=int(codes.max()) + 1 if known.any() else 0)
        repeated = np.zeros(len(codes), dtype=bool)
        repeated[known] = counts[codes[known]] > 1
        return repeated

    def object_series(self, column: str) -> pd.Series:
        """The column as the pandas frames before Arrow held it: strings as Python objects."""
        series = self.series[column]
        if self.kinds[column] in ("str", "category"):
            return pd.Series(self.arrays[column].to_numpy(zero_copy_only=False), dtype=object)
        return series


def coerce_table(raw: pa.Table, kinds: dict[str, str]) -> Typed:
    """The `kinds` columns of a table of strings parsed to their types (see Typed).

    'str' and 'category' columns are kept as they are and have no unparsed mask.
    """
    arrays: dict[str, pa.Array] = {}
    series: dict[str, pd.Series] = {}
    unparsed: dict[str, np.ndarray] = {}
    for column, kind in kinds.items():
        values = _array(raw.column(column))
        if kind in ("str", "category"):
            arrays[column] = values
            series[column] = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([values])), copy=False)
            continue
        present = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        arrays[column], series[column], parsed = _PARSERS[kind](values, present)
        unparsed[column] = present & ~parsed
    return Typed(kinds, arrays, series, unparsed, raw.num_rows)


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous string array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def strings_table(frame: pd.DataFrame) -> pa.Table:
    """A frame of strings (as read) as an Arrow table of string columns, null where missing."""
    return pa.table({str(column): arrow_strings(frame[column]) for column in frame.columns})


def arrow_strings(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, null where missing."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(values.astype(str).where(values.notna(), None).to_numpy(dtype=object), type=pa.string())


def arrow_text(values: pd.Series) -> pa.Array:
    """The values as a whitespace-trimmed Arrow string array, null where missing."""
    return pc.utf8_trim_whitespace(arrow_strings(values))


ParseResult = tuple[pa.Array, pd.Series, np.ndarray]


def _parse_int(text: pa.Array, present: np.ndarray) -> ParseResult:
    floats = _to_floats(text, present)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(floats) & (floats == np.trunc(floats)) & (np.abs(floats) < _MAX_EXACT_INT)
    integers = pa.array(np.where(whole, floats, 0).astype(np.int64), mask=~whole)
    return integers, pd.Series(np.where(whole, floats, np.nan), dtype="float64"), whole


def _parse_float(text: pa.Array, present: np.ndarray) -> ParseResult:
    floats = _to_floats(text, present)
    finite = np.isfinite(floats)
    clean = np.where(finite, floats, np.nan)
    return pa.array(clean, mask=~finite), pd.Series(clean, dtype="float64"), finite


def _parse_bool(text: pa.Array, present: np.ndarray) -> ParseResult:
    words = pc.utf8_lower(pc.utf8_trim_whitespace(text))
    true = np.asarray(pc.is_in(words, value_set=pa.array(_TRUE_WORDS)), dtype=bool)
    false = np.asarray(pc.is_in(words, value_set=pa.array(_FALSE_WORDS)), dtype=bool)
    parsed = true | false
    return pa.array(true, mask=~parsed), pd.Series(pd.arrays.BooleanArray(true, ~parsed)), parsed


def _parse_timestamp(text: pa.Array, present: np.ndarray) -> ParseResult:
    stamps = _to_timestamps(text, present)
    missing = np.isnat(stamps)
    return pa.array(stamps, mask=missing), pd.Series(stamps, dtype="datetime64[ns]"), ~missing


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

    Arrow parses the whole column in one cast when every value is a number (Arrow reads no surrounding spaces, so
    such a column needs no trimming); otherwise a regex picks the trimmed values it can cast, and pandas gets the
    remainder, so one bad value does not make the whole column slow.
    """
    try:
        return np.array(_cast(text, None, pa.float64()), dtype="float64")
    except pa.ArrowException:
        pass
    text = pc.utf8_trim_whitespace(text)
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

    Arrow parses the common forms (the whole column at once, untrimmed, when it can); pandas the rest, in separate
    calls for strings with and without an offset, because pandas' format="ISO8601" applies one string's offset to
    naive strings parsed in the same call.
    """
    whole = _cast_whole(text)
    if whole is not None:
        return whole
    text = pc.utf8_trim_whitespace(text)
    whole = _cast_whole(text)
    if whole is not None:
        return whole
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


def _cast_whole(text: pa.Array) -> np.ndarray | None:
    """Every value cast by Arrow, zoned or else naive; None when some value is neither."""
    for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        try:
            return np.array(_cast(text, None, target), dtype="datetime64[ns]")
        except pa.ArrowException:
            pass
    return None


_PARSERS: dict[str, Callable[[pa.Array, np.ndarray], ParseResult]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "timestamp": _parse_timestamp,
}
