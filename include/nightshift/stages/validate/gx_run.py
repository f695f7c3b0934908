"""Run a drop's checks through Great Expectations Core and turn each result into row failures or a batch problem.

The checks' expectations run on the typed frame; row reasons are worded from the raw text, so they show each value
as the drop wrote it.
"""

from __future__ import annotations

from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine

from nightshift.stages.validate.findings import MAX_EXAMPLES, Check, RowFailures, describe_batch_problem, kwargs_text
from nightshift.stages.validate.text import as_float, number_text, one_line, quoted_values, shown_values

CHECK_META_KEY = "nightshift_check"
"""The expectation meta key holding its check's name: how a GX result finds its check."""
COLUMN_KWARGS = ("column", "column_A", "column_B")
_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": MAX_EXAMPLES,
    "exclude_unexpected_values": True,
}


# GX fingerprints every in-memory batch below this size (an MD5 over a hash of every row) for its batch markers,
# which nightshift never reads: a quarter of validation time. Zero turns the fingerprint off.
pandas_execution_engine.HASH_THRESHOLD = 0


def run_gx(raw: pd.DataFrame, typed: pd.DataFrame, checks: list[Check]) -> None:
    """Run the GX checks on the typed frame and record their findings on the checks.

    Checks are grouped into one suite per column they need, each validated on a frame of just those columns:
    GX's pandas engine copies the whole frame for every column expectation, so narrow frames are several times
    faster than one wide suite.
    """
    if not checks:
        return
    frame = _gx_frame(typed)
    groups: dict[tuple[str, ...], list[Check]] = {}
    for check in checks:
        groups.setdefault(_needed_columns(check, frame), []).append(check)
    try:
        batch_definition = _gx_batch_definition()
    except Exception as exc:
        for check in checks:
            check.error = f"Great Expectations could not start: {type(exc).__name__}: {one_line(exc)}"
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
    batch_definition: Any, name: str, frame: pd.DataFrame, group: list[Check], raw: pd.DataFrame, typed: pd.DataFrame
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
            check.error = f"Great Expectations could not run this check: {type(exc).__name__}: {one_line(exc)}"
        return
    for check in group:
        check.error = "Great Expectations returned no result for this check"
    for outcome in results:
        config = outcome.expectation_config
        found = by_name.get(((config.meta if config else None) or {}).get(CHECK_META_KEY, ""))
        if found is not None:
            _read_gx_result(found, outcome.success, outcome.result or {}, outcome.exception_info, raw, typed)


def _needed_columns(check: Check, frame: pd.DataFrame) -> tuple[str, ...]:
    if check.family != "extra":
        return (check.column or str(frame.columns[0]),)
    named = _named_columns(check.kwargs)
    if "row_condition" in check.kwargs or not named:
        return tuple(str(column) for column in frame.columns)
    return tuple(named)


def _named_columns(kwargs: dict[str, Any]) -> list[str]:
    """Columns an expectation's kwargs refer to, in order, without repeats."""
    named: list[str] = []
    for key in (*COLUMN_KWARGS, "column_list"):
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
    check: Check, success: bool | None, result: dict[str, Any], info: Any, raw: pd.DataFrame, typed: pd.DataFrame
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
    if check.column is not None and check.column in typed.columns:
        check.failures = _describe_rows(check, positions, raw, typed)
    else:
        named = [column for column in _named_columns(check.kwargs) if column in raw.columns]
        values = np.full(len(positions), "", dtype=object)
        for index, column in enumerate(named):
            shown = shown_values(raw[column].to_numpy(dtype=object)[positions])
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


def _describe_rows(check: Check, positions: np.ndarray, raw: pd.DataFrame, typed: pd.DataFrame) -> list[RowFailures]:
    """Per-row reasons for a column check, worded from the check's family."""
    column = check.column
    assert column is not None
    kwargs = check.kwargs
    values = raw[column].to_numpy(dtype=object)[positions]
    if check.family == "nulls":
        unreadable = pd.notna(values)
        reasons = np.where(
            unreadable,
            f"{column}: " + quoted_values(values) + " could not be read and the column is not nullable",
            f"{column}: value is missing (the column is not nullable)",
        )
        return [RowFailures(f"{column} is missing", positions, reasons.astype(object), values)]
    if check.family == "ranges":
        numbers = typed[column].to_numpy(dtype="float64", na_value=np.nan)[positions]
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
        ids = typed[column]
        first = ~ids.duplicated().to_numpy()
        first_rows = pd.Series(np.flatnonzero(first) + check.first_row, index=ids[first])
        firsts = ids.iloc[positions].map(first_rows).to_numpy()
        reasons = f"{column}: " + quoted_values(values) + " repeats the id of row " + firsts.astype(str).astype(object)
        return [RowFailures(f"{column} repeats an earlier id", positions, reasons.astype(object), shown_values(values))]
    shown = shown_values(values)
    reasons = f"{column}: " + shown + f" failed {check.expectation}({kwargs_text(check)})"
    return [RowFailures(f"{column} failed {check.expectation}", positions, reasons.astype(object), shown)]
