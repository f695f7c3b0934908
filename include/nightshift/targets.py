"""How a target's label values parse, one parser per target kind behind one interface.

A parser takes the label column as read (strings, missing cells as NA) and returns the parsed values with, per
row, why the value is not a label ("" when it is). Multiclass and regression targets add one parser each to
`PARSERS`; the spec has no target kind yet, so every target is binary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from nightshift.config import ModelSpec

MAX_SHOWN_CHARS = 60
BINARY_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}
"""Binary label spellings after trimming and lower-casing: what pandas, spreadsheets and SQL exports write."""


@dataclass(frozen=True)
class ParsedLabels:
    values: pd.Series
    """The parsed labels; meaningful only where `reasons` is ""."""
    reasons: pd.Series
    """Per row, why the value is not a label, naming the column, the value and what is valid; "" when it is one."""


LabelParser = Callable[[pd.Series, ModelSpec], ParsedLabels]


def shown(value: str) -> str:
    return repr(value if len(value) <= MAX_SHOWN_CHARS else value[: MAX_SHOWN_CHARS - 1] + "…")


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
    text = raw.astype("string").str.strip()
    values = text.str.lower().map(binary_vocabulary(spec))
    blank = text.isna() | (text == "")
    reasons = pd.Series("", index=raw.index, dtype=object)
    wrong = values.isna() & ~blank
    reasons[blank] = f"{column}: the label is missing; expected {expected}"
    reasons[wrong] = [f"{column}: {shown(value)} is not a label; expected {expected}" for value in raw[wrong]]
    return ParsedLabels(values=values.fillna(0).astype("int8"), reasons=reasons)


PARSERS: dict[str, LabelParser] = {"binary": parse_binary}


def target_kind(spec: ModelSpec) -> str:
    """The kind of the spec's target; binary until the spec names a kind."""
    return "binary"


def parse_labels(raw: pd.Series, spec: ModelSpec) -> ParsedLabels:
    return PARSERS[target_kind(spec)](raw, spec)
