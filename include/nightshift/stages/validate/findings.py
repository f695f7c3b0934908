"""One check of a drop and what it found: rows failing it (with reasons) or a problem with the batch as a whole.

A check's `record()` is the JSON-able entry the validation result lists for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from great_expectations.expectations.expectation import Expectation

from nightshift.stages.validate.text import as_float, jsonable, shown_value

MAX_EXAMPLES = 5


@dataclass
class RowFailures:
    """Rows failing one check in one way, e.g. 'annual_income below minimum 0'."""

    label: str
    positions: np.ndarray
    reasons: np.ndarray
    values: np.ndarray


@dataclass
class Check:
    """One check of a drop: what it tests and how strictly, then what it found (row failures or a batch problem)."""

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
    failures: list[RowFailures] = field(default_factory=list)
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
            (int(position), jsonable(value))
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
            entry["observed_value"] = jsonable(self.observed)
        if self.batch_problem is not None:
            entry["problem"] = self.batch_problem
        if self.error is not None:
            entry["error"] = self.error
        return entry


def kwargs_text(check: Check) -> str:
    """The check's expectation arguments as `key=value` text, its column left out."""
    return ", ".join(f"{key}={value!r}" for key, value in check.kwargs.items() if key != "column")


def describe_batch_problem(check: Check, result: dict[str, Any]) -> str:
    """Why a failed batch-level check blocks the batch, from its GX result's observed value."""
    observed = result.get("observed_value")
    if check.family == "row_count":
        low, high = check.kwargs["min_value"], check.kwargs["max_value"]
        if observed == 0:
            return (
                f"the drop has no data rows (0 rows), below the minimum of {low} (validation.min_rows). "
                "Check that the upstream export ran and wrote its data"
            )
        if isinstance(observed, int | np.integer) and low is not None and observed < as_float(low):
            return (
                f"only {observed} rows, below the minimum of {low} (validation.min_rows). "
                "Check that the upstream export wrote the whole file"
            )
        return f"{observed} rows, above the maximum of {high} (validation.max_rows)"
    return (
        f"blocking check {check.name} failed: observed {shown_value(observed)}, "
        f"expected {check.expectation}({kwargs_text(check)}) ({check.spec_field})"
    )
