"""Curated rows as the pipeline takes them, whatever the model's kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from nightshift.config import ModelSpec


def model_inputs(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Feature columns in the types the pipeline expects: floats for numbers, strings for categories."""
    columns = {}
    for name, feature in spec.features.items():
        values = frame[name]
        if feature.type == "category":
            columns[name] = values.astype(object).where(values.notna(), None)
        elif pd.api.types.is_numeric_dtype(values.dtype):
            columns[name] = values.to_numpy(dtype="float64", na_value=np.nan)
        else:
            columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(columns, index=frame.index)
