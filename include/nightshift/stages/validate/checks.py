"""Validate one daily drop against its model spec with Great Expectations Core, row by row and as a batch.

Values are first coerced to the spec's types with Arrow and pandas (unparseable values become row-level reasons),
then the typed frame is checked by GX expectations derived from the spec. Blocking row-level failures move rows to
quarantine; blocking batch-level failures, or too many bad rows, fail the whole drop.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations.expectation import Expectation

from nightshift.config import ModelSpec, SpecError
from nightshift.pages.validation import validation_page
from nightshift.readers import READ_KIND, READ_PROBLEM
from nightshift.reasons import join_reasons
from nightshift.stores.warehouse import predictions as _predictions_table

ROW_NUMBER = "_row_number"
REASONS = "_reasons"
MAX_EXAMPLES = 5
MOST_COMMON = 3
MAX_SHOWN_CHARS = 60

_CHECK_META_KEY = "nightshift_check"
_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": MAX_EXAMPLES,
    "exclude_unexpected_values": True,
}
_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")
_TYPE_WORDS = {
    "int": "is not an integer",
    "float": "is not a number",
    "bool": "is not true/false",
    "timestamp": "is not a timestamp",
}
_NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NAIVE_PATTERN = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)?$"
_ZONED_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})$"
_OFFSET_SUFFIX_PATTERN = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_MAX_EXACT_INT = 2.0**53
_FAMILY_ORDER = {"types": 0, "ids": 1, "nulls": 2, "ranges": 3, "categories": 4, "unique_ids": 5, "extra": 6}
MAX_ID_LENGTH = int(_predictions_table.c.entity_id.type.length)  # type: ignore[attr-defined]
"""The longest entity id the warehouse holds; longer ids are quarantined here, before anything is published."""
_COLUMN_KWARGS = ("column", "column_A", "column_B")

# GX fingerprints every in-memory batch below this size (an MD5 over a hash of every row) for its batch markers,
# which nightshift never reads: a quarter of validation time. Zero turns the fingerprint off.
pandas_execution_engine.HASH_THRESHOLD = 0


@dataclass
class ValidationOutcome:
    """What validate_frame found: rows safe to score, rejected rows with reasons, and a JSON-able record."""

    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    result: dict[str, Any]
    passed: bool
    failure_message: str | None


@dataclass
class _RowFailures:
    """Rows failing one check in one way, e.g. 'annual_income below minimum 0'."""

    label: str
    positions: np.ndarray
    reasons: np.ndarray
    values: np.ndarray


@dataclass
class _Check:
    name: str
    family: str
    expectation: str | None
    column: str | None
    severity: str
    sort_key: int
    spec_field: str
    gx_expectation: Expectation | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    row_level: bool = True
    failures: list[_RowFailures] = field(default_factory=list)
    tolerated: bool = False
    first_row: int = 1
    batch_problem: str | None = None
    observed: Any = None
    error: str | None = None

    @property
    def unexpected_count(self) -> int:
        return int(sum(len(failure.positions) for failure in self.failures))

    @property
    def success(self) -> bool:
        if self.error is not None or self.batch_problem is not None:
            return False
        return self.tolerated or self.unexpected_count == 0

    @property
    def blocks_rows(self) -> bool:
        return self.severity == "block" and self.row_level and not self.tolerated and self.error is None

    @property
    def blocks_batch(self) -> bool:
        return self.severity == "block" and (self.batch_problem is not None or self.error is not None)

    def examples(self) -> list[dict[str, Any]]:
        rows = [
            (int(position), _jsonable(value))
            for failure in self.failures
            for position, value in zip(failure.positions[:MAX_EXAMPLES], failure.values[:MAX_EXAMPLES], strict=True)
        ]
        first = self.first_row
        return [{"row": position + first, "value": value} for position, value in sorted(rows)[:MAX_EXAMPLES]]

    def record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "check": self.name,
            "expectation": self.expectation,
            "column": self.column,
            "severity": self.severity,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "examples": self.examples(),
            "row_level": self.row_level,
            "spec_field": self.spec_field,
        }
        if self.observed is not None:
            entry["observed_value"] = _jsonable(self.observed)
        if self.batch_problem is not None:
            entry["problem"] = self.batch_problem
        if self.error is not None:
            entry["error"] = self.error
        return entry


def validate_frame(
    raw: pd.DataFrame, spec: ModelSpec, source: str, *, first_row: int = 1, whole_batch: bool = True
) -> ValidationOutcome:
    """Validate a drop read as strings (columns = spec.raw_columns) and split it into accepted and quarantined rows.

    `first_row` is the row number of the frame's first row in its file. With `whole_batch=False` the frame is one
    chunk of a larger batch: the row count and the bad-row share, which only the whole batch can judge, are left
    to `night_result`.

    Raises SpecError (a ValueError) only for a spec that cannot be run, e.g. an unknown extra_checks expectation;
    problems in the data never raise.
    """
    raw = raw.reset_index(drop=True)
    extra_checks = _extra_checks(spec)
    read_check = _read_check(raw)
    raw = raw.drop(columns=[READ_PROBLEM, READ_KIND], errors="ignore")
    missing = [column for column in spec.raw_columns if column not in raw.columns]
    if missing:
        return _missing_columns_outcome(raw, spec, source, missing)

    typed, type_checks = _coerce_frame(raw, spec)
    id_check = _id_check(raw, spec)
    spec_checks = [check for check in _spec_checks(spec) if whole_batch or check.family != "row_count"]
    checks = [*([read_check] if read_check else []), *type_checks, id_check, *spec_checks, *extra_checks]
    for check in checks:
        check.first_row = first_row
    type_checked = {check.name for check in type_checks}
    _run_gx(raw, typed, [check for check in checks if check.gx_expectation is not None])
    unreadable = _failed_rows(read_check, len(raw))
    bad_ids = _failed_rows(id_check, len(raw))
    for check in checks:
        if check.family == "nulls" and check.failures and f"types:{check.column}" in type_checked:
            _drop_rows(check, raw[check.column].notna().to_numpy())
        if check.family == "unique_ids" and check.failures:
            _drop_rows(check, ~typed[spec.entity_id].duplicated(keep="first").to_numpy() | bad_ids)
        if check is not read_check and check.failures and unreadable.any():
            _drop_rows(check, unreadable)

    checks.sort(key=lambda check: check.sort_key)
    return _outcome(raw, typed, spec, source, checks, first_row=first_row, whole_batch=whole_batch)


def _extra_checks(spec: ModelSpec) -> list[_Check]:
    valid = _expectation_names()
    checks: list[_Check] = []
    seen: set[str] = set()
    for index, extra in enumerate(spec.validation.extra_checks):
        where = f"model {spec.name!r}: validation.extra_checks[{index}]"
        cls = getattr(gxe, extra.expectation, None)
        if extra.expectation not in valid or cls is None:
            close = difflib.get_close_matches(extra.expectation, valid, n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise SpecError(
                f"{where}.expectation: {extra.expectation!r} is not a Great Expectations Core expectation.{hint} "
                f"Valid names: {', '.join(valid)}."
            )
        for key in (*_COLUMN_KWARGS, "column_list"):
            named = extra.kwargs.get(key)
            for column in named if isinstance(named, list) else [named]:
                if column is not None and column not in spec.raw_columns:
                    raise SpecError(
                        f"{where}.kwargs.{key}: {column!r} is not a column of this model; "
                        f"valid: {', '.join(spec.raw_columns)}"
                    )
        name = f"extra:{extra.expectation}" + (f":{extra.kwargs['column']}" if "column" in extra.kwargs else "")
        if name in seen:
            name = f"{name}#{index}"
        seen.add(name)
        try:
            expectation = cls(**extra.kwargs, meta={_CHECK_META_KEY: name})
        except Exception as exc:
            raise SpecError(
                f"{where}.kwargs: {extra.expectation} does not accept {extra.kwargs!r}: {_one_line(exc)}"
            ) from None
        column = extra.kwargs.get("column")
        checks.append(
            _Check(
                name=name,
                family="extra",
                expectation=extra.expectation,
                column=column if isinstance(column, str) else None,
                severity=extra.severity,
                sort_key=_sort_key(spec, column if isinstance(column, str) else None, "extra"),
                spec_field=f"validation.extra_checks[{index}]",
                gx_expectation=expectation,
                kwargs=dict(extra.kwargs),
            )
        )
    return checks


def _read_check(raw: pd.DataFrame) -> _Check | None:
    """Rows the reader could not read as written (READ_PROBLEM set): quarantined, whatever the spec's severities."""
    if READ_PROBLEM not in raw.columns:
        return None
    check = _Check("read", "read", None, None, "block", 0, "sources.drop")
    problems = raw[READ_PROBLEM].to_numpy(dtype=object)
    positions = np.flatnonzero(pd.notna(problems))
    if len(positions):
        given = raw[READ_KIND] if READ_KIND in raw.columns else pd.Series(None, index=raw.index, dtype=object)
        kinds = given.to_numpy(dtype=object)[positions]
        labels = np.where(pd.notna(kinds), kinds, "row that could not be read").astype(str)
        for label in dict.fromkeys(labels.tolist()):
            chosen = positions[labels == label]
            reasons = problems[chosen].astype(object)
            check.failures.append(_RowFailures(label, chosen, reasons, reasons))
    return check


def _failed_rows(check: _Check | None, rows: int) -> np.ndarray:
    failed = np.zeros(rows, dtype=bool)
    for failure in check.failures if check else []:
        failed[failure.positions] = True
    return failed


def _id_check(raw: pd.DataFrame, spec: ModelSpec) -> _Check:
    """Ids later steps cannot use: blank after trimming, longer than the warehouse holds, or holding a NUL."""
    column = spec.entity_id
    check = _Check(f"ids:{column}", "ids", None, column, "block", _sort_key(spec, column, "ids"), "entity_id")
    values = raw[column]
    text = _arrow_strings(values)
    present = ~np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.asarray(pc.fill_null(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    trimmed = np.asarray(pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_numpy(), dtype=np.int64)
    nul = np.asarray(pc.fill_null(pc.match_substring(text, "\x00"), False).to_numpy(zero_copy_only=False), dtype=bool)
    shown = values.to_numpy(dtype=object)
    for label, mask, words in (
        (f"{column} is blank", present & (trimmed == 0), " is blank (only spaces); every row needs an id"),
        (
            f"{column} longer than {MAX_ID_LENGTH} characters",
            lengths > MAX_ID_LENGTH,
            None,
        ),
        (f"{column} holds a NUL character", nul, " holds a NUL character, which the warehouse cannot store"),
    ):
        positions = np.flatnonzero(mask)
        if not len(positions):
            continue
        quoted = _quoted(shown[positions])
        if words is None:
            tail = " is " + lengths[positions].astype(str).astype(object)
            reasons = (
                f"{column}: " + quoted + tail + f" characters long; the warehouse holds ids of at most {MAX_ID_LENGTH}"
            )
        else:
            reasons = f"{column}: " + quoted + words
        check.failures.append(_RowFailures(label, positions, np.asarray(reasons, dtype=object), shown[positions]))
    return check


def _expectation_names() -> list[str]:
    return sorted(
        name
        for name in dir(gxe)
        if name.startswith("Expect")
        and name != "Expectation"
        and isinstance(getattr(gxe, name), type)
        and issubclass(getattr(gxe, name), Expectation)
    )


def _sort_key(spec: ModelSpec, column: str | None, family: str) -> int:
    position = spec.raw_columns.index(column) if column in spec.raw_columns else len(spec.raw_columns)
    return 1 + position * 10 + _FAMILY_ORDER[family]


def _coerce_frame(raw: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, list[_Check]]:
    """Typed copy of the drop plus one types check per parsed column (failures filled in)."""
    severity = spec.validation.checks.types
    kinds: dict[str, str] = {spec.entity_id: "str", spec.timestamp: "timestamp"}
    kinds.update({name: feature.type for name, feature in spec.features.items()})
    columns: dict[str, Any] = {}
    checks: list[_Check] = []
    for column, kind in kinds.items():
        values = raw[column]
        if kind in ("str", "category"):
            columns[column] = values.astype(object)
            continue
        text = _arrow_text(values)
        present = ~np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        typed, parsed = _PARSERS[kind](text, present)
        columns[column] = typed
        if severity == "off":
            continue
        check = _Check(
            name=f"types:{column}",
            family="types",
            expectation=None,
            column=column,
            severity=severity,
            sort_key=_sort_key(spec, column, "types"),
            spec_field="validation.checks.types",
        )
        positions = np.flatnonzero(present & ~parsed)
        if len(positions):
            shown = values.to_numpy(dtype=object)[positions]
            reasons = column + ": " + _quoted(shown) + f" {_TYPE_WORDS[kind]}"
            check.failures.append(_RowFailures(f"{column} {_TYPE_WORDS[kind]}", positions, reasons, shown))
        checks.append(check)
    return pd.DataFrame(columns, index=raw.index), checks


def _arrow_strings(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, null where missing."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(values.astype(str).where(values.notna(), None).to_numpy(dtype=object), type=pa.string())


def _arrow_text(values: pd.Series) -> pa.Array:
    """The values as a whitespace-trimmed Arrow string array, null where missing."""
    return pc.utf8_trim_whitespace(_arrow_strings(values))


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


def _spec_checks(spec: ModelSpec) -> list[_Check]:
    """The GX checks the spec's features and validation.checks imply."""
    settings = spec.validation.checks
    checks: list[_Check] = []

    def add(
        family: str, column: str | None, severity: str, cls: type[Expectation], spec_field: str, **kwargs: Any
    ) -> None:
        if severity == "off":
            return
        name = f"{family}:{column}" if column else family
        if column is not None:
            kwargs["column"] = column
        checks.append(
            _Check(
                name=name,
                family=family,
                expectation=cls.__name__,
                column=column,
                severity=severity,
                sort_key=0 if column is None else _sort_key(spec, column, family),
                spec_field=spec_field,
                gx_expectation=cls(**kwargs, meta={_CHECK_META_KEY: name}),
                kwargs=kwargs,
                row_level=column is not None,
            )
        )

    v = spec.validation
    add(
        "row_count",
        None,
        settings.row_count,
        gxe.ExpectTableRowCountToBeBetween,
        "validation.min_rows / validation.max_rows",
        min_value=v.min_rows,
        max_value=v.max_rows,
    )
    for column in (spec.entity_id, spec.timestamp):
        add("nulls", column, settings.nulls, gxe.ExpectColumnValuesToNotBeNull, "validation.checks.nulls")
    for column, feature in spec.features.items():
        if not feature.nullable:
            add("nulls", column, settings.nulls, gxe.ExpectColumnValuesToNotBeNull, f"features.{column}.nullable")
        if feature.min is not None or feature.max is not None:
            add(
                "ranges",
                column,
                settings.ranges,
                gxe.ExpectColumnValuesToBeBetween,
                f"features.{column}.min / max",
                min_value=feature.min,
                max_value=feature.max,
            )
        if feature.categories:
            add(
                "categories",
                column,
                settings.categories,
                gxe.ExpectColumnValuesToBeInSet,
                f"features.{column}.categories",
                value_set=list(feature.categories),
            )
    add(
        "unique_ids",
        spec.entity_id,
        settings.unique_ids,
        gxe.ExpectColumnValuesToBeUnique,
        "validation.checks.unique_ids",
    )
    return checks


def _run_gx(raw: pd.DataFrame, typed: pd.DataFrame, checks: list[_Check]) -> None:
    """Run the GX checks on the typed frame and record their findings on the checks.

    Checks are grouped into one suite per column they need, each validated on a frame of just those columns:
    GX's pandas engine copies the whole frame for every column expectation, so narrow frames are several times
    faster than one wide suite.
    """
    if not checks:
        return
    frame = _gx_frame(typed)
    groups: dict[tuple[str, ...], list[_Check]] = {}
    for check in checks:
        groups.setdefault(_needed_columns(check, frame), []).append(check)
    try:
        batch_definition = _gx_batch_definition()
    except Exception as exc:
        for check in checks:
            check.error = f"Great Expectations could not start: {type(exc).__name__}: {_one_line(exc)}"
        return
    for index, (columns, group) in enumerate(groups.items()):
        _run_gx_group(batch_definition, f"nightshift_{index}", frame[list(columns)], group, raw, typed)


def _gx_batch_definition() -> Any:
    """A whole-dataframe batch definition on an ephemeral GX context, progress bars off."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (
        context.data_sources.add_pandas("nightshift")
        .add_dataframe_asset("drop")
        .add_batch_definition_whole_dataframe("whole_drop")
    )


def _run_gx_group(
    batch_definition: Any, name: str, frame: pd.DataFrame, group: list[_Check], raw: pd.DataFrame, typed: pd.DataFrame
) -> None:
    """One suite of the checks that need the same columns, validated on `frame`; each check gets its finding."""
    by_name = {check.name: check for check in group}
    try:
        suite = gx.ExpectationSuite(name=name)
        for check in group:
            if check.gx_expectation is not None:
                suite.add_expectation(check.gx_expectation)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        results = batch.validate(suite, result_format=_RESULT_FORMAT).results
    except Exception as exc:
        for check in group:
            check.error = f"Great Expectations could not run this check: {type(exc).__name__}: {_one_line(exc)}"
        return
    for check in group:
        check.error = "Great Expectations returned no result for this check"
    for outcome in results:
        config = outcome.expectation_config
        found = by_name.get(((config.meta if config else None) or {}).get(_CHECK_META_KEY, ""))
        if found is not None:
            _read_gx_result(found, outcome.success, outcome.result or {}, outcome.exception_info, raw, typed)


def _needed_columns(check: _Check, frame: pd.DataFrame) -> tuple[str, ...]:
    if check.family != "extra":
        return (check.column or str(frame.columns[0]),)
    named = _named_columns(check.kwargs)
    if "row_condition" in check.kwargs or not named:
        return tuple(str(column) for column in frame.columns)
    return tuple(named)


def _named_columns(kwargs: dict[str, Any]) -> list[str]:
    """Columns an expectation's kwargs refer to, in order, without repeats."""
    named: list[str] = []
    for key in (*_COLUMN_KWARGS, "column_list"):
        value = kwargs.get(key)
        named.extend(value if isinstance(value, list) else [value] if isinstance(value, str) else [])
    return list(dict.fromkeys(named))


def _gx_frame(typed: pd.DataFrame) -> pd.DataFrame:
    """The typed frame with nullable Int64 columns as float64: GX compares those in a per-value Python loop."""
    return pd.DataFrame(
        {
            column: typed[column].astype("float64") if isinstance(dtype, pd.Int64Dtype) else typed[column]
            for column, dtype in typed.dtypes.items()
        }
    )


def _read_gx_result(
    check: _Check, success: bool | None, result: dict[str, Any], info: Any, raw: pd.DataFrame, typed: pd.DataFrame
) -> None:
    error = _gx_error(info)
    check.error = None
    if error is not None:
        check.error = error
        check.row_level = False
        return
    if "unexpected_index_list" not in result:
        check.row_level = False
        check.observed = result.get("observed_value")
        if not success:
            check.batch_problem = _batch_problem(check, result)
        return
    check.row_level = True
    positions = np.asarray(result["unexpected_index_list"], dtype=np.int64)
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    if check.family == "extra" and success:
        check.tolerated = True
    if not len(positions):
        return
    if check.column is not None and check.column in typed.columns:
        check.failures = _describe_rows(check, positions, raw, typed)
    else:
        named = [column for column in _named_columns(check.kwargs) if column in raw.columns]
        values = np.full(len(positions), "", dtype=object)
        for index, column in enumerate(named):
            shown = _shown_array(raw[column].to_numpy(dtype=object)[positions])
            values = values + ("" if index == 0 else ", ") + f"{column}=" + shown
        reasons = f"failed {check.expectation}({_kwargs_text(check)}): " + values
        label = f"{' / '.join(named)} failed {check.expectation}".lstrip()
        check.failures = [_RowFailures(label, positions, reasons.astype(object), values)]


def _gx_error(info: Any) -> str | None:
    if not isinstance(info, dict) or not info:
        return None
    if "raised_exception" in info:
        return _one_line(info.get("exception_message") or "unknown error") if info["raised_exception"] else None
    messages = sorted(
        {
            _one_line(entry.get("exception_message") or "unknown error")
            for entry in info.values()
            if isinstance(entry, dict) and entry.get("raised_exception", True)
        }
    )
    return "; ".join(messages) or None


def _describe_rows(check: _Check, positions: np.ndarray, raw: pd.DataFrame, typed: pd.DataFrame) -> list[_RowFailures]:
    """Per-row reasons for a column check, worded from the check's family."""
    column = check.column
    assert column is not None
    kwargs = check.kwargs
    values = raw[column].to_numpy(dtype=object)[positions]
    if check.family == "nulls":
        unreadable = pd.notna(values)
        reasons = np.where(
            unreadable,
            f"{column}: " + _quoted(values) + " could not be read and the column is not nullable",
            f"{column}: value is missing (the column is not nullable)",
        )
        return [_RowFailures(f"{column} is missing", positions, reasons.astype(object), values)]
    if check.family == "ranges":
        numbers = typed[column].to_numpy(dtype="float64", na_value=np.nan)[positions]
        failures = []
        for limit, word, mask in (
            (kwargs["min_value"], "below the minimum", numbers < _float(kwargs["min_value"])),
            (kwargs["max_value"], "above the maximum", numbers > _float(kwargs["max_value"])),
        ):
            if limit is not None and mask.any():
                shown = _shown_array(values[mask])
                reasons = f"{column}: " + shown + f" is {word} {_number(limit)}"
                label = f"{column} {word.replace('the ', '')} {_number(limit)}"
                failures.append(_RowFailures(label, positions[mask], reasons.astype(object), shown))
        return failures
    if check.family == "categories":
        allowed = ", ".join(str(value) for value in kwargs["value_set"])
        shown = _shown_array(values)
        reasons = f"{column}: " + _quoted(values) + f" is not one of {allowed}"
        return [_RowFailures(f"{column} not one of {allowed}", positions, reasons.astype(object), shown)]
    if check.family == "unique_ids":
        ids = typed[column]
        first = ~ids.duplicated().to_numpy()
        first_rows = pd.Series(np.flatnonzero(first) + check.first_row, index=ids[first])
        firsts = ids.iloc[positions].map(first_rows).to_numpy()
        reasons = f"{column}: " + _quoted(values) + " repeats the id of row " + firsts.astype(str).astype(object)
        return [
            _RowFailures(f"{column} repeats an earlier id", positions, reasons.astype(object), _shown_array(values))
        ]
    shown = _shown_array(values)
    reasons = f"{column}: " + shown + f" failed {check.expectation}({_kwargs_text(check)})"
    return [_RowFailures(f"{column} failed {check.expectation}", positions, reasons.astype(object), shown)]


def _drop_rows(check: _Check, drop: np.ndarray) -> None:
    """Forget failures on rows where `drop` is True.

    Used so that a value present in the source but unparseable is reported by the types check and not again as
    missing, and so that only the later copies of a repeated id count (GX flags every copy).
    """
    kept = []
    for failure in check.failures:
        keep = ~drop[failure.positions]
        if keep.any():
            kept.append(
                _RowFailures(failure.label, failure.positions[keep], failure.reasons[keep], failure.values[keep])
            )
    check.failures = kept


def _batch_problem(check: _Check, result: dict[str, Any]) -> str:
    observed = result.get("observed_value")
    if check.family == "row_count":
        low, high = check.kwargs["min_value"], check.kwargs["max_value"]
        if observed == 0:
            return (
                f"the drop has no data rows (0 rows), below the minimum of {low} (validation.min_rows). "
                "Check that the upstream export ran and wrote its data"
            )
        if isinstance(observed, int | np.integer) and low is not None and observed < _float(low):
            return (
                f"only {observed} rows, below the minimum of {low} (validation.min_rows). "
                "Check that the upstream export wrote the whole file"
            )
        return f"{observed} rows, above the maximum of {high} (validation.max_rows)"
    return (
        f"blocking check {check.name} failed: observed {_shown(observed)}, "
        f"expected {check.expectation}({_kwargs_text(check)}) ({check.spec_field})"
    )


def _outcome(
    raw: pd.DataFrame,
    typed: pd.DataFrame,
    spec: ModelSpec,
    source: str,
    checks: list[_Check],
    *,
    first_row: int = 1,
    whole_batch: bool = True,
) -> ValidationOutcome:
    rows = len(raw)
    blocking = [failure for check in checks if check.blocks_rows for failure in check.failures]
    bad = np.zeros(rows, dtype=bool)
    for failure in blocking:
        bad[failure.positions] = True
    bad_positions = np.flatnonzero(bad)
    quarantined = raw.iloc[bad_positions].reset_index(drop=True)
    quarantined[ROW_NUMBER] = pd.Series(bad_positions + first_row, dtype="int64")
    quarantined[REASONS] = _joined_reasons(blocking, bad_positions)

    limit = spec.validation.max_bad_row_share
    share = float(len(bad_positions) / rows) if rows else 0.0
    problems = [
        check.batch_problem or f"blocking check {check.name} could not run: {check.error} ({check.spec_field})"
        for check in checks
        if check.blocks_batch
    ]
    kinds = _failure_kinds(blocking, first_row)
    if whole_batch and share > limit:
        problems.append(_share_problem(kinds, len(bad_positions), rows, share, limit))
    passed = not problems
    failure_message = f"{source}: " + " ".join(_sentence(problem) for problem in problems) if problems else None

    clean = typed.iloc[np.flatnonzero(~bad)] if passed else typed.iloc[0:0]
    accepted = clean.reset_index(drop=True)
    result = {
        "source": source,
        "model": spec.name,
        "rows": rows,
        "accepted_rows": len(accepted),
        "clean_rows": int(rows - len(bad_positions)),
        "quarantined_rows": len(quarantined),
        "bad_row_share": share,
        "max_bad_row_share": float(limit),
        "passed": passed,
        "failure_message": failure_message,
        "checks": [check.record() for check in checks],
        "failure_kinds": kinds,
        "gx_version": gx.__version__,
    }
    return ValidationOutcome(accepted, quarantined, result, passed, failure_message)


def _joined_reasons(blocking: list[_RowFailures], bad_positions: np.ndarray) -> pd.Series:
    """One '; '-joined reason string per bad row, in column order."""
    if not len(bad_positions):
        return pd.Series([], dtype=object)
    _, joined = join_reasons([failure.positions for failure in blocking], [failure.reasons for failure in blocking])
    return pd.Series(joined, dtype=object)


def _failure_kinds(blocking: list[_RowFailures], first_row: int) -> list[dict[str, Any]]:
    """Blocking failures grouped by kind: label, row count, and the first row with its value."""
    kinds: dict[str, dict[str, Any]] = {}
    for failure in blocking:
        first = int(failure.positions[0]) + first_row
        kind = kinds.setdefault(failure.label, {"label": failure.label, "count": 0, "row": first, "value": None})
        kind["count"] += len(failure.positions)
        if first <= kind["row"]:
            kind["row"], kind["value"] = first, _jsonable(failure.values[0])
    return list(kinds.values())


def _share_problem(kinds: list[dict[str, Any]], bad: int, rows: int, share: float, limit: float) -> str:
    common = sorted(kinds, key=lambda kind: (-kind["count"], kind["label"]))
    listed = "; ".join(
        f"{kind['label']} ({_plural(kind['count'], 'row')}, e.g. {_where(kind)}: {_shown(kind['value'])})"
        for kind in common[:MOST_COMMON]
    )
    if len(common) > MOST_COMMON:
        more = _plural(len(common) - MOST_COMMON, "more kind")
        listed += f"; and {more} of failure (see the quarantined rows' {REASONS})"
    return (
        f"{bad} of {rows} rows ({share:.1%}) failed blocking checks, above the limit of {limit:.1%} "
        f"(validation.max_bad_row_share). Most common: {listed}"
    )


def combine_results(results: list[dict[str, Any]], source: str, file: str | None = None) -> dict[str, Any]:
    """One result for consecutive chunks of a batch (or for parts of a night), checks and failure kinds merged.

    With `file`, every example and failure kind is tagged with the file it came from. Judging the batch as a whole
    (row count, bad-row share) is left to `night_result`.
    """
    checks: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for result in results:
        for record in result["checks"]:
            examples = [{**example, "file": file} if file else example for example in record.get("examples", [])]
            merged = checks.get(record["check"])
            if merged is None:
                checks[record["check"]] = {**record, "examples": examples}
                continue
            merged["unexpected_count"] += record["unexpected_count"]
            merged["success"] = merged["success"] and record["success"]
            merged["examples"] = sorted([*merged["examples"], *examples], key=_example_order)[:MAX_EXAMPLES]
            for key in ("problem", "error", "observed_value"):
                if key in record and key not in merged:
                    merged[key] = record[key]
        for kind in result.get("failure_kinds", []):
            tagged = {**kind, "file": file} if file else dict(kind)
            merged_kind = kinds.setdefault(kind["label"], {**tagged, "count": 0})
            merged_kind["count"] += kind["count"]
            if _example_order(tagged) < _example_order(merged_kind):
                merged_kind.update(row=tagged["row"], value=tagged["value"], file=tagged.get("file"))
    problems = [problem for result in results if (problem := result.get("failure_message"))]
    rows = sum(int(result["rows"]) for result in results)
    bad = sum(int(result["quarantined_rows"]) for result in results)
    return {
        "source": source,
        "model": results[0]["model"] if results else None,
        "rows": rows,
        "accepted_rows": sum(int(result["accepted_rows"]) for result in results),
        "clean_rows": rows - bad,
        "quarantined_rows": bad,
        "bad_row_share": float(bad / rows) if rows else 0.0,
        "max_bad_row_share": results[0]["max_bad_row_share"] if results else None,
        "passed": all(result["passed"] for result in results),
        "failure_message": " ".join(problems) or None,
        "checks": list(checks.values()),
        "failure_kinds": list(kinds.values()),
        "gx_version": gx.__version__,
    }


def night_result(
    parts: list[dict[str, Any]],
    spec: ModelSpec,
    source: str,
    duplicates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Judge a whole night from its parts' combined results: row count, repeated ids across parts, bad-row share.

    `duplicates` are rows accepted by their own part whose id an earlier part or chunk already holds, each a dict
    with file, row, value (the id) and first (where the id was first seen); they move to quarantine here.
    """
    duplicates = duplicates or []
    combined = combine_results(parts, source)
    rows = combined["rows"]
    settings = spec.validation.checks
    checks = combined["checks"]
    kinds = combined["failure_kinds"]
    if duplicates and settings.unique_ids == "block":
        label = f"{spec.entity_id} repeats an id of an earlier part of the night"
        first = min(duplicates, key=_example_order)
        kinds.append({"label": label, "count": len(duplicates), **_located(first), "value": first["value"]})
        unique = next((record for record in checks if record["check"] == f"unique_ids:{spec.entity_id}"), None)
        if unique is not None:
            unique["unexpected_count"] += len(duplicates)
            unique["success"] = False
            shown = [{**_located(item), "value": item["value"]} for item in duplicates]
            unique["examples"] = sorted([*unique["examples"], *shown], key=_example_order)[:MAX_EXAMPLES]
    bad = combined["quarantined_rows"] + (len(duplicates) if settings.unique_ids == "block" else 0)
    limit = spec.validation.max_bad_row_share
    share = float(bad / rows) if rows else 0.0
    problems = [
        record.get("problem")
        or f"blocking check {record['check']} could not run: {record['error']} ({record.get('spec_field')})"
        for record in checks
        if record["severity"] == "block" and (record.get("problem") or record.get("error"))
    ]
    unread = any(record["check"] == "file" and not record["success"] for record in checks)
    if settings.row_count != "off":
        low, high = spec.validation.min_rows, spec.validation.max_rows
        count_problem = None
        if unread:
            count_problem = "not judged: a file of the drop could not be read, so its rows are not known"
        elif rows == 0 or rows < low or rows > high:
            row_check = _Check(
                "row_count",
                "row_count",
                "ExpectTableRowCountToBeBetween",
                None,
                settings.row_count,
                0,
                "",
                row_level=False,
            )
            row_check.kwargs = {"min_value": low, "max_value": high}
            count_problem = _batch_problem(row_check, {"observed_value": rows})
        checks.insert(
            0,
            {
                "check": "row_count",
                "expectation": "ExpectTableRowCountToBeBetween",
                "column": None,
                "severity": settings.row_count,
                "success": count_problem is None,
                "unexpected_count": 0,
                "examples": [],
                "row_level": False,
                "spec_field": "validation.min_rows / validation.max_rows",
                "observed_value": rows,
                **({"problem": count_problem} if count_problem else {}),
            },
        )
        if count_problem and settings.row_count == "block" and not unread:
            problems.insert(0, count_problem)
    if share > limit:
        problems.append(_share_problem(kinds, bad, rows, share, limit))
    passed = not problems
    stated = [problem.removeprefix(f"{source}: ") for problem in problems]
    message = f"{source}: " + " ".join(_sentence(problem) for problem in stated) if problems else None
    return {
        **combined,
        "accepted_rows": rows - bad if passed else 0,
        "clean_rows": rows - bad,
        "quarantined_rows": bad,
        "bad_row_share": share,
        "max_bad_row_share": float(limit),
        "passed": passed,
        "failure_message": message,
        "checks": checks,
        "failure_kinds": kinds,
    }


def id_hashes(ids: pd.Series) -> np.ndarray:
    """A 64-bit hash per id: 8 bytes a row, whatever the ids' length."""
    return pd.util.hash_array(ids.to_numpy(dtype=object), categorize=False)


def shared_hash_positions(parts: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Per part (by position in `parts`), the sorted positions of rows whose id hash another row of any part shares.

    These are the candidates for repeated ids; the caller compares their actual ids (a hash collision is no
    repeat). About 17 bytes a row at the peak.
    """
    if not parts or not sum(len(part) for part in parts):
        return {}
    every = np.concatenate(parts) if len(parts) > 1 else parts[0]
    ordered = np.sort(every)
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(shared):
        return {}
    found: dict[int, np.ndarray] = {}
    for index, part in enumerate(parts):
        positions = np.flatnonzero(np.isin(part, shared))
        if len(positions):
            found[index] = positions
    return found


def _located(item: dict[str, Any]) -> dict[str, Any]:
    return {"file": item.get("file"), "row": item["row"]}


def _example_order(item: dict[str, Any]) -> tuple[str, int]:
    return (str(item.get("file") or ""), int(item["row"]))


def _where(item: dict[str, Any]) -> str:
    return f"{item['file']} row {item['row']}" if item.get("file") else f"row {item['row']}"


def _missing_columns_outcome(raw: pd.DataFrame, spec: ModelSpec, source: str, missing: list[str]) -> ValidationOutcome:
    present = ", ".join(str(column) for column in raw.columns) or "none"
    problem = (
        f"the drop lacks the column(s) {', '.join(missing)}; expected {', '.join(spec.raw_columns)} but found {present}"
    )
    message = f"{source}: {_sentence(problem)}"
    check = _Check("columns", "types", None, None, "block", 0, "raw_columns", row_level=False, batch_problem=problem)
    quarantined = raw.reindex(columns=spec.raw_columns)
    quarantined[ROW_NUMBER] = pd.Series(np.arange(1, len(raw) + 1), dtype="int64")
    quarantined[REASONS] = pd.Series(
        f"the drop lacks the column(s) {', '.join(missing)}", index=raw.index, dtype=object
    )
    result = {
        "source": source,
        "model": spec.name,
        "rows": len(raw),
        "accepted_rows": 0,
        "clean_rows": 0,
        "quarantined_rows": len(raw),
        "bad_row_share": 1.0 if len(raw) else 0.0,
        "max_bad_row_share": float(spec.validation.max_bad_row_share),
        "passed": False,
        "failure_message": message,
        "checks": [check.record()],
        "failure_kinds": [],
        "gx_version": gx.__version__,
    }
    return ValidationOutcome(pd.DataFrame(columns=spec.raw_columns), quarantined, result, False, message)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _one_line(error: object, limit: int = 400) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sentence(text: str) -> str:
    """The text as a sentence: capitalised (unless it starts with an address) and ending with a full stop."""
    starts_with_address = "://" in text.split(" ", 1)[0]
    text = text[:1].upper() + text[1:] if text[:1].islower() and not starts_with_address else text
    return text if text.endswith(".") else f"{text}."


def _kwargs_text(check: _Check) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in check.kwargs.items() if key != "column")


def _float(value: Any) -> float:
    return float(value) if value is not None else math.nan


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "empty"
    text = str(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def _shown_array(values: np.ndarray) -> np.ndarray:
    """_shown for many values at once (Arrow when they are all strings or missing)."""
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return np.asarray([_shown(value) for value in values], dtype=object)
    too_long = pc.greater(pc.utf8_length(text), MAX_SHOWN_CHARS)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, MAX_SHOWN_CHARS - 1), "…", "")
    shown = pc.fill_null(pc.if_else(too_long, cut, text), "empty")
    return np.asarray(shown.to_numpy(zero_copy_only=False), dtype=object)


def _quoted(values: np.ndarray) -> np.ndarray:
    return "'" + _shown_array(values) + "'"


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/NaT/NA as None, anything else as text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(item) for item in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def render_validation_page(result: dict[str, Any]) -> str:
    """A self-contained HTML page summarising one validation result dict."""
    return validation_page(result)
