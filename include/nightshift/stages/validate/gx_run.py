"""Run a drop's checks through Great Expectations Core and turn each result into row failures or a batch problem.

The checks' expectations run on the typed columns; row reasons are worded from the raw text, so they show each value
as the drop wrote it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations import expectation as _expectation_module

from nightshift.stages.validate.coerce import Typed
from nightshift.stages.validate.findings import MAX_EXAMPLES, Check, RowFailures, describe_batch_problem, kwargs_text
from nightshift.stages.validate.text import as_float, number_text, one_line, quoted_values, shown_values, values_at

CHECK_META_KEY = "nightshift_check"
"""The expectation meta key holding its check's name: how a GX result finds its check."""
COLUMN_KWARGS = ("column", "column_A", "column_B")
_ROWS_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": MAX_EXAMPLES,
    "exclude_unexpected_values": True,
}
"""For checks whose rows GX finds itself: every failing row's position."""
_COUNT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 0}
"""For checks whose rows nightshift finds (see `known_rows`): GX's verdict and its count of failing rows."""

log = logging.getLogger(__name__)

# GX fingerprints every in-memory batch below this size (an MD5 over a hash of every row) for its batch markers,
# which nightshift never reads: a quarter of validation time. Zero turns the fingerprint off.
pandas_execution_engine.HASH_THRESHOLD = 0
# GX renames an expectation's class to snake case (two regular expressions) each time it builds the expectation's
# configuration, about eighty times per expectation and batch; the name of a class does not change.
_expectation_module.camel_to_snake = functools.lru_cache(maxsize=None)(_expectation_module.camel_to_snake)


def run_gx(raw: pa.Table, typed: Typed, checks: list[Check]) -> None:
    """Run the GX checks on the typed columns and record their findings on the checks.

    Checks are grouped into one suite per column they need, each validated on a frame of just those columns:
    GX's pandas engine copies the whole frame for every column expectation, so narrow frames are several times
    faster than one wide suite. For the checks whose failing rows `known_rows` finds with vectorised masks, GX
    judges success and counts the failing rows; when its count disagrees with the mask's, GX is asked again for
    the rows themselves and its rows are taken.
    """
    if not checks:
        return
    try:
        batch_definition = _gx_batch_definition()
    except Exception as exc:
        for check in checks:
            check.error = f"Great Expectations could not start: {type(exc).__name__}: {one_line(exc)}"
        return
    known = {check.name: rows for check in checks if (rows := known_rows(check, typed)) is not None}
    groups: dict[tuple[tuple[str, ...], str, bool], list[Check]] = {}
    for check in checks:
        key = (_needed_columns(check, list(typed.kinds)), _view(check, typed), check.name in known)
        groups.setdefault(key, []).append(check)
    disagreeing: list[Check] = []
    for index, ((columns, view, counted), group) in enumerate(groups.items()):
        disagreeing += _run_gx_group(
            batch_definition,
            f"nightshift_{index}",
            _gx_frame(typed, columns, view),
            group,
            raw,
            typed,
            known if counted else None,
        )
    regrouped: dict[tuple[str, ...], list[Check]] = {}
    for check in disagreeing:
        regrouped.setdefault(_needed_columns(check, list(typed.kinds)), []).append(check)
    for index, (columns, group) in enumerate(regrouped.items()):
        frame = _gx_frame(typed, columns, "objects")
        _run_gx_group(batch_definition, f"nightshift_rows_{index}", frame, group, raw, typed)


@functools.cache
def _gx_batch_definition() -> Any:
    """A whole-dataframe batch definition on an ephemeral GX context, progress bars off (made once a process)."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (
        context.data_sources.add_pandas("nightshift")
        .add_dataframe_asset("drop")
        .add_batch_definition_whole_dataframe("whole_drop")
    )


def _run_gx_group(
    batch_definition: Any,
    name: str,
    frame: pd.DataFrame,
    group: list[Check],
    raw: pa.Table,
    typed: Typed,
    known: dict[str, np.ndarray] | None = None,
) -> list[Check]:
    """One suite of the checks that need the same columns, validated on `frame`; each check gets its finding.

    With `known` (rows found by nightshift, per check name), GX only counts; returns the checks whose count
    disagrees with those rows.
    """
    by_name = {check.name: check for check in group}
    try:
        suite = gx.ExpectationSuite(name=name)
        for check in group:
            if check.gx_expectation is not None:
                suite.add_expectation(check.gx_expectation)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result_format = _COUNT_FORMAT if known is not None else _ROWS_FORMAT
        results = batch.validate(suite, result_format=result_format).results
    except Exception as exc:
        for check in group:
            check.error = f"Great Expectations could not run this check: {type(exc).__name__}: {one_line(exc)}"
        return []
    for check in group:
        check.error = "Great Expectations returned no result for this check"
    disagreeing: list[Check] = []
    for outcome in results:
        config = outcome.expectation_config
        found = by_name.get(((config.meta if config else None) or {}).get(CHECK_META_KEY, ""))
        if found is None:
            continue
        result, rows = outcome.result or {}, None if known is None else known.get(found.name)
        if rows is not None and _gx_error(outcome.exception_info) is None:
            counted = result.get("unexpected_count")
            if counted != len(rows):
                log.warning(
                    "check %s: Great Expectations counts %s failing rows where nightshift's mask finds %d; "
                    "taking the rows Great Expectations finds",
                    found.name,
                    counted,
                    len(rows),
                )
                disagreeing.append(found)
                continue
            result = {**result, "unexpected_index_list": rows}
        _read_gx_result(found, outcome.success, result, outcome.exception_info, raw, typed)
    return disagreeing


def known_rows(check: Check, typed: Typed) -> np.ndarray | None:
    """Positions of the rows the check's expectation fails, found with vectorised masks; None when not known here.

    Known: ExpectColumnValuesToNotBeNull, ToBeBetween (numbers), ToBeInSet (strings) and ToBeUnique, with no
    argument but their column, limits or set and `mostly` — the spec's own checks and extra checks like them. As
    in GX, missing values fail only ExpectColumnValuesToNotBeNull.
    """
    column, kwargs, kind = check.column, check.kwargs, typed.kinds.get(str(check.column))
    if check.gx_expectation is None or column is None or kind is None or not check.row_level:
        return None
    arguments = set(kwargs) - {"column", "mostly"}
    expectation = check.expectation
    if expectation == "ExpectColumnValuesToNotBeNull" and not arguments:
        return np.flatnonzero(typed.missing(column))
    if expectation == "ExpectColumnValuesToBeUnique" and not arguments:
        return np.flatnonzero(typed.repeated(column))
    if expectation == "ExpectColumnValuesToBeBetween" and arguments <= {"min_value", "max_value"}:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if kind not in ("int", "float") or not all(_plain_number(limit) for limit in (low, high)):
            return None
        if low is None and high is None:
            return None
        numbers = typed.numbers(column)
        with np.errstate(invalid="ignore"):
            below = numbers < low if low is not None else np.zeros(len(numbers), dtype=bool)
            above = numbers > high if high is not None else np.zeros(len(numbers), dtype=bool)
        return np.flatnonzero(below | above)
    if expectation == "ExpectColumnValuesToBeInSet" and arguments == {"value_set"}:
        allowed = kwargs["value_set"]
        if kind not in ("str", "category") or not isinstance(allowed, list | tuple | set):
            return None
        if not all(isinstance(value, str) for value in allowed):
            return None
        inside = pc.is_in(typed.arrays[column], value_set=pa.array(list(allowed), type=pa.string()))
        outside = ~np.asarray(inside.to_numpy(zero_copy_only=False), dtype=bool) & ~typed.missing(column)
        return np.flatnonzero(outside)
    return None


def _plain_number(value: Any) -> bool:
    """None or a finite int or float (not a bool, a suite parameter or a date)."""
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _needed_columns(check: Check, columns: list[str]) -> tuple[str, ...]:
    if check.family != "extra":
        return (check.column or columns[0],)
    named = _named_columns(check.kwargs)
    if "row_condition" in check.kwargs or not named:
        return tuple(columns)
    return tuple(named)


def _named_columns(kwargs: dict[str, Any]) -> list[str]:
    """Columns an expectation's kwargs refer to, in order, without repeats."""
    named: list[str] = []
    for key in (*COLUMN_KWARGS, "column_list"):
        value = kwargs.get(key)
        named.extend(value if isinstance(value, list) else [value] if isinstance(value, str) else [])
    return list(dict.fromkeys(named))


def _view(check: Check, typed: Typed) -> str:
    """How GX is given a check's string columns: 'codes' for the spec's null and repeated checks of the id (a number
    per distinct id, NaN where missing: the same verdicts, the ids hashed once), 'arrow' for the spec's other
    checks and extra checks `known_rows` knows, 'objects' (Python strings, as pandas reads a CSV) for any other."""
    if check.family in ("nulls", "unique_ids") and typed.kinds.get(str(check.column)) == "str":
        return "codes"
    return "arrow" if check.family != "extra" or known_rows(check, typed) is not None else "objects"


def _gx_frame(typed: Typed, columns: tuple[str, ...], view: str) -> pd.DataFrame:
    """The typed columns GX checks (numbers as float64: GX compares nullable Int64 in a per-value Python loop),
    strings as `_view` says."""
    found: dict[str, pd.Series] = {}
    for column in columns:
        text = typed.kinds[column] in ("str", "category")
        if text and view == "codes":
            found[column] = typed.code_series(column)
        elif text and view == "objects":
            found[column] = typed.object_series(column)
        else:
            found[column] = typed.series[column]
    return pd.DataFrame(found, copy=False)


def _read_gx_result(
    check: Check, success: bool | None, result: dict[str, Any], info: Any, raw: pa.Table, typed: Typed
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
            check.batch_problem = describe_batch_problem(check, result)
        return
    check.row_level = True
    positions = np.asarray(result["unexpected_index_list"], dtype=np.int64)
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    if check.family == "extra" and success:
        check.tolerated = True
    if not len(positions):
        return
    if check.column is not None and check.column in typed.kinds:
        check.failures = _describe_rows(check, positions, raw, typed)
    else:
        named = [column for column in _named_columns(check.kwargs) if column in raw.column_names]
        values = np.full(len(positions), "", dtype=object)
        for index, column in enumerate(named):
            shown = shown_values(values_at(raw, column, positions))
            values = values + ("" if index == 0 else ", ") + f"{column}=" + shown
        reasons = f"failed {check.expectation}({kwargs_text(check)}): " + values
        label = f"{' / '.join(named)} failed {check.expectation}".lstrip()
        check.failures = [RowFailures(label, positions, reasons.astype(object), values)]


def _gx_error(info: Any) -> str | None:
    if not isinstance(info, dict) or not info:
        return None
    if "raised_exception" in info:
        return one_line(info.get("exception_message") or "unknown error") if info["raised_exception"] else None
    messages = sorted(
        {
            one_line(entry.get("exception_message") or "unknown error")
            for entry in info.values()
            if isinstance(entry, dict) and entry.get("raised_exception", True)
        }
    )
    return "; ".join(messages) or None


def _describe_rows(check: Check, positions: np.ndarray, raw: pa.Table, typed: Typed) -> list[RowFailures]:
    """Per-row reasons for a column check, worded from the check's family."""
    column = check.column
    assert column is not None
    kwargs = check.kwargs
    values = values_at(raw, column, positions)
    if check.family == "nulls":
        unreadable = pd.notna(values)
        reasons = np.where(
            unreadable,
            f"{column}: " + quoted_values(values) + " could not be read and the column is not nullable",
            f"{column}: value is missing (the column is not nullable)",
        )
        return [RowFailures(f"{column} is missing", positions, reasons.astype(object), values)]
    if check.family == "ranges":
        numbers = typed.numbers(column)[positions]
        failures = []
        for limit, word, mask in (
            (kwargs["min_value"], "below the minimum", numbers < as_float(kwargs["min_value"])),
            (kwargs["max_value"], "above the maximum", numbers > as_float(kwargs["max_value"])),
        ):
            if limit is not None and mask.any():
                shown = shown_values(values[mask])
                reasons = f"{column}: " + shown + f" is {word} {number_text(limit)}"
                label = f"{column} {word.replace('the ', '')} {number_text(limit)}"
                failures.append(RowFailures(label, positions[mask], reasons.astype(object), shown))
        return failures
    if check.family == "categories":
        allowed = ", ".join(str(value) for value in kwargs["value_set"])
        shown = shown_values(values)
        reasons = f"{column}: " + quoted_values(values) + f" is not one of {allowed}"
        return [RowFailures(f"{column} not one of {allowed}", positions, reasons.astype(object), shown)]
    if check.family == "unique_ids":
        firsts = typed.first_positions(column)[positions] + check.first_row
        reasons = f"{column}: " + quoted_values(values) + " repeats the id of row " + firsts.astype(str).astype(object)
        return [RowFailures(f"{column} repeats an earlier id", positions, reasons.astype(object), shown_values(values))]
    shown = shown_values(values)
    reasons = f"{column}: " + shown + f" failed {check.expectation}({kwargs_text(check)})"
    return [RowFailures(f"{column} failed {check.expectation}", positions, reasons.astype(object), shown)]
