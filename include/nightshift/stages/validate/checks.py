"""Validate one daily drop against its model spec with Great Expectations Core, row by row and as a batch.

`validate_frame` coerces the values to the spec's types (unparseable values become row-level reasons), builds the
checks the spec implies, runs them through GX and splits the rows: blocking row-level failures move rows to
quarantine; blocking batch-level failures, or too many bad rows, fail the whole drop.
"""

from __future__ import annotations

import difflib
from typing import Any

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.expectations.expectation import Expectation

from nightshift.config import ModelSpec, SpecError
from nightshift.readers import READ_KIND, READ_PROBLEM
from nightshift.stages.validate.coerce import coerce_table, column_kinds, strings_table
from nightshift.stages.validate.findings import Check, RowFailures
from nightshift.stages.validate.gx_run import CHECK_META_KEY, COLUMN_KWARGS, run_gx
from nightshift.stages.validate.outcome import ValidationOutcome, frame_outcome, missing_columns_outcome
from nightshift.stages.validate.text import one_line, present, quoted_values, values_at
from nightshift.stores.warehouse import predictions as _predictions_table

_TYPE_WORDS = {
    "int": "is not an integer",
    "float": "is not a number",
    "bool": "is not true/false",
    "timestamp": "is not a timestamp",
}
_FAMILY_ORDER = {"types": 0, "ids": 1, "nulls": 2, "ranges": 3, "categories": 4, "unique_ids": 5, "extra": 6}
MAX_ID_LENGTH = int(_predictions_table.c.entity_id.type.length)  # type: ignore[attr-defined]
"""The longest entity id the warehouse holds; longer ids are quarantined here, before anything is published."""


def validate_frame(
    raw: pd.DataFrame | pa.Table, spec: ModelSpec, source: str, *, first_row: int = 1, whole_batch: bool = True
) -> ValidationOutcome:
    """Validate a drop read as strings (columns = spec.raw_columns) and split it into accepted and quarantined rows.

    `raw` is a pandas frame or an Arrow table of strings, as the readers yield them. `first_row` is the row number
    of the frame's first row in its file. With `whole_batch=False` the frame is one chunk of a larger batch: the
    row count and the bad-row share, which only the whole batch can judge, are left to `night_result`.

    Raises SpecError (a ValueError) only for a spec that cannot be run, e.g. an unknown extra_checks expectation;
    problems in the data never raise.
    """
    table = raw if isinstance(raw, pa.Table) else strings_table(raw.reset_index(drop=True))
    extra_checks = _extra_checks(spec)
    read_check = _read_check(table)
    table = table.drop_columns([column for column in (READ_PROBLEM, READ_KIND) if column in table.column_names])
    missing = [column for column in spec.raw_columns if column not in table.column_names]
    if missing:
        return missing_columns_outcome(table.to_pandas(), spec, source, missing)

    rows = table.num_rows
    kinds = column_kinds(spec)
    typed = coerce_table(table, kinds)
    type_checks = _type_checks(table, spec, kinds, typed.unparsed)
    id_check = _id_check(table, spec)
    spec_checks = [check for check in _spec_checks(spec) if whole_batch or check.family != "row_count"]
    checks = [*([read_check] if read_check else []), *type_checks, id_check, *spec_checks, *extra_checks]
    for check in checks:
        check.first_row = first_row
    type_checked = {check.name for check in type_checks}
    run_gx(table, typed, [check for check in checks if check.gx_expectation is not None])
    unreadable = _failed_rows(read_check, rows)
    bad_ids = _failed_rows(id_check, rows)
    for check in checks:
        if check.family == "nulls" and check.failures and f"types:{check.column}" in type_checked:
            _drop_rows(check, present(table.column(check.column)))
        if check.family == "unique_ids" and check.failures:
            _drop_rows(check, (typed.first_positions(spec.entity_id) == np.arange(rows)) | bad_ids)
        if check is not read_check and check.failures and unreadable.any():
            _drop_rows(check, unreadable)

    checks.sort(key=lambda check: check.sort_key)
    return frame_outcome(table, typed, spec, source, checks, first_row=first_row, whole_batch=whole_batch)


def _extra_checks(spec: ModelSpec) -> list[Check]:
    valid = _expectation_names()
    checks: list[Check] = []
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
        for key in (*COLUMN_KWARGS, "column_list"):
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
            expectation = cls(**extra.kwargs, meta={CHECK_META_KEY: name})
        except Exception as exc:
            raise SpecError(
                f"{where}.kwargs: {extra.expectation} does not accept {extra.kwargs!r}: {one_line(exc)}"
            ) from None
        column = extra.kwargs.get("column")
        checks.append(
            Check(
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


def _read_check(raw: pa.Table) -> Check | None:
    """Rows the reader could not read as written (READ_PROBLEM set): quarantined, whatever the spec's severities."""
    if READ_PROBLEM not in raw.column_names:
        return None
    check = Check("read", "read", None, None, "block", 0, "sources.drop")
    problems = np.asarray(raw.column(READ_PROBLEM).to_numpy(zero_copy_only=False), dtype=object)
    positions = np.flatnonzero(pd.notna(problems))
    if len(positions):
        given = (
            values_at(raw, READ_KIND, positions)
            if READ_KIND in raw.column_names
            else np.full(len(positions), None, dtype=object)
        )
        labels = np.where(pd.notna(given), given, "row that could not be read").astype(str)
        for label in dict.fromkeys(labels.tolist()):
            chosen = positions[labels == label]
            reasons = problems[chosen].astype(object)
            check.failures.append(RowFailures(label, chosen, reasons, reasons))
    return check


def _failed_rows(check: Check | None, rows: int) -> np.ndarray:
    failed = np.zeros(rows, dtype=bool)
    for failure in check.failures if check else []:
        failed[failure.positions] = True
    return failed


def _id_check(raw: pa.Table, spec: ModelSpec) -> Check:
    """Ids later steps cannot use: blank after trimming, longer than the warehouse holds, or holding a NUL."""
    column = spec.entity_id
    check = Check(f"ids:{column}", "ids", None, column, "block", _sort_key(spec, column, "ids"), "entity_id")
    text = raw.column(column)
    given = present(text)
    lengths = np.asarray(pc.fill_null(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    trimmed = np.asarray(
        pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    nul = np.asarray(pc.fill_null(pc.match_substring(text, "\x00"), False).to_numpy(zero_copy_only=False), dtype=bool)
    for label, mask, words in (
        (f"{column} is blank", given & (trimmed == 0), " is blank (only spaces); every row needs an id"),
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
        shown = values_at(raw, column, positions)
        quoted = quoted_values(shown)
        if words is None:
            tail = " is " + lengths[positions].astype(str).astype(object)
            reasons = (
                f"{column}: " + quoted + tail + f" characters long; the warehouse holds ids of at most {MAX_ID_LENGTH}"
            )
        else:
            reasons = f"{column}: " + quoted + words
        check.failures.append(RowFailures(label, positions, np.asarray(reasons, dtype=object), shown))
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


def _type_checks(raw: pa.Table, spec: ModelSpec, kinds: dict[str, str], unparsed: dict[str, np.ndarray]) -> list[Check]:
    """One types check per parsed column, failing the rows whose value is present but did not parse."""
    severity = spec.validation.checks.types
    if severity == "off":
        return []
    checks: list[Check] = []
    for column, failed in unparsed.items():
        kind = kinds[column]
        check = Check(
            name=f"types:{column}",
            family="types",
            expectation=None,
            column=column,
            severity=severity,
            sort_key=_sort_key(spec, column, "types"),
            spec_field="validation.checks.types",
        )
        positions = np.flatnonzero(failed)
        if len(positions):
            shown = values_at(raw, column, positions)
            reasons = column + ": " + quoted_values(shown) + f" {_TYPE_WORDS[kind]}"
            check.failures.append(RowFailures(f"{column} {_TYPE_WORDS[kind]}", positions, reasons, shown))
        checks.append(check)
    return checks


def _spec_checks(spec: ModelSpec) -> list[Check]:
    """The GX checks the spec's features and validation.checks imply."""
    settings = spec.validation.checks
    v = spec.validation
    wanted = [
        _gx_check(
            spec,
            "row_count",
            None,
            settings.row_count,
            gxe.ExpectTableRowCountToBeBetween,
            "validation.min_rows / validation.max_rows",
            min_value=v.min_rows,
            max_value=v.max_rows,
        ),
        *(
            _gx_check(
                spec, "nulls", column, settings.nulls, gxe.ExpectColumnValuesToNotBeNull, "validation.checks.nulls"
            )
            for column in (spec.entity_id, spec.timestamp)
        ),
        *_feature_checks(spec),
        _gx_check(
            spec,
            "unique_ids",
            spec.entity_id,
            settings.unique_ids,
            gxe.ExpectColumnValuesToBeUnique,
            "validation.checks.unique_ids",
        ),
    ]
    return [check for check in wanted if check is not None]


def _feature_checks(spec: ModelSpec) -> list[Check | None]:
    """Per feature, in spec order: its nullability, range and categories checks (None where turned off)."""
    settings = spec.validation.checks
    checks: list[Check | None] = []
    for column, feature in spec.features.items():
        if not feature.nullable:
            checks.append(
                _gx_check(
                    spec,
                    "nulls",
                    column,
                    settings.nulls,
                    gxe.ExpectColumnValuesToNotBeNull,
                    f"features.{column}.nullable",
                )
            )
        if feature.min is not None or feature.max is not None:
            checks.append(
                _gx_check(
                    spec,
                    "ranges",
                    column,
                    settings.ranges,
                    gxe.ExpectColumnValuesToBeBetween,
                    f"features.{column}.min / max",
                    min_value=feature.min,
                    max_value=feature.max,
                )
            )
        if feature.categories:
            checks.append(
                _gx_check(
                    spec,
                    "categories",
                    column,
                    settings.categories,
                    gxe.ExpectColumnValuesToBeInSet,
                    f"features.{column}.categories",
                    value_set=list(feature.categories),
                )
            )
    return checks


def _gx_check(
    spec: ModelSpec,
    family: str,
    column: str | None,
    severity: str,
    cls: type[Expectation],
    spec_field: str,
    **kwargs: Any,
) -> Check | None:
    """One check run by the GX expectation `cls` on `column` (None: on the table), or None when it is off."""
    if severity == "off":
        return None
    name = f"{family}:{column}" if column else family
    if column is not None:
        kwargs["column"] = column
    return Check(
        name=name,
        family=family,
        expectation=cls.__name__,
        column=column,
        severity=severity,
        sort_key=0 if column is None else _sort_key(spec, column, family),
        spec_field=spec_field,
        gx_expectation=cls(**kwargs, meta={CHECK_META_KEY: name}),
        kwargs=kwargs,
        row_level=column is not None,
    )


def _drop_rows(check: Check, drop: np.ndarray) -> None:
    """Forget failures on rows where `drop` is True.

    Used so that a value present in the source but unparseable is reported by the types check and not again as
    missing, and so that only the later copies of a repeated id count (GX flags every copy).
    """
    kept = []
    for failure in check.failures:
        keep = ~drop[failure.positions]
        if keep.any():
            kept.append(
                RowFailures(failure.label, failure.positions[keep], failure.reasons[keep], failure.values[keep])
            )
    check.failures = kept
