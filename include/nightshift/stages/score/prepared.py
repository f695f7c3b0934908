"""A fitted pipeline prepared for scoring Arrow batches of curated rows.

The pipeline nightshift trains (`nightshift.lifecycle.train.build_pipeline`: median imputation and standard scaling
of the numbers, one-hot encoding of the categories, then the estimator) spends most of a linear model's scoring time
in scikit-learn's checks of Python strings, one cell at a time. `prepare` reads the fitted steps' statistics and
does the same arithmetic on whole Arrow columns in numpy: the same float64 operations in the same order, so the
estimator receives the very matrix scikit-learn's own transform builds, bit for bit. Before it is used it is checked
against the pipeline's own transform on the first rows and on rows with every kind of missing and unseen value; a
pipeline of any other shape, or a batch with column types it does not know, goes through scikit-learn as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.kinds import model_inputs

if TYPE_CHECKING:
    from nightshift.config import ModelSpec

log = logging.getLogger(__name__)

CHECK_ROWS = 1000
"""How many of the first batch's rows the prepared transform is checked on (besides the synthetic edge rows)."""
UNSEEN = "\x00nightshift-unseen-category"


def frame_of(batch: pa.RecordBatch | pa.Table | pd.DataFrame) -> pd.DataFrame:
    return batch if isinstance(batch, pd.DataFrame) else batch.to_pandas()


@dataclass(frozen=True)
class NumericBlock:
    """Median imputation then standard scaling of numeric columns (SimpleImputer -> StandardScaler)."""

    columns: list[str]
    fill: np.ndarray
    mean: np.ndarray | None
    scale: np.ndarray | None
    out: slice

    def write(self, batch: pa.RecordBatch | pa.Table, target: np.ndarray) -> bool:
        block = np.empty((len(self.columns), batch.num_rows), dtype="float64")
        for position, name in enumerate(self.columns):
            values = batch.column(name)
            if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
                return False
            block[position] = _floats(values)
        if np.isinf(block).any():
            return False
        missing = np.isnan(block)
        for row in np.flatnonzero(missing.any(axis=1)):
            block[row, missing[row]] = self.fill[row]
        if self.mean is not None:
            block -= self.mean[:, np.newaxis]
        if self.scale is not None:
            block /= self.scale[:, np.newaxis]
        target[:, self.out] = block.T
        return True


@dataclass(frozen=True)
class CategoryBlock:
    """One-hot encoding of category columns after constant imputation (SimpleImputer -> OneHotEncoder)."""

    columns: list[str]
    categories: list[list[str]]
    null_codes: list[int]
    """Per column, the one-hot position of a missing value (None is a category when training saw it), else -1."""
    out: slice

    def write(self, batch: pa.RecordBatch | pa.Table, target: np.ndarray) -> bool:
        flat = target.reshape(-1)
        starts = np.arange(batch.num_rows, dtype=np.int64) * target.shape[1]
        start = self.out.start
        for name, categories, null_code in zip(self.columns, self.categories, self.null_codes, strict=True):
            codes = _category_codes(batch.column(name), categories, null_code)
            if codes is None:
                return False
            known = codes >= 0
            if known.all():
                flat[starts + (start + codes)] = 1.0
            else:
                flat[starts[known] + (start + codes[known])] = 1.0
            start += len(categories) + (null_code >= 0)
        return True


def _floats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The column as float64 as `model_inputs` converts it (through pandas' own Arrow conversion), NaN for nulls."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype="float64")


def _category_codes(values: pa.Array | pa.ChunkedArray, categories: list[str], null_code: int) -> np.ndarray | None:
    """Each value's position among the encoder's categories: -1 when unseen, `null_code` when missing; None when the
    column is not a string column."""
    if isinstance(values, pa.ChunkedArray):
        parts = [_category_codes(chunk, categories, null_code) for chunk in values.chunks]
        if any(part is None for part in parts):
            return None
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)  # type: ignore[arg-type]
    value_set = pa.array(categories, type=pa.string())
    if pa.types.is_dictionary(values.type):
        if not _is_string(values.type.value_type) or values.dictionary.null_count:
            return None
        lookup = _positions(values.dictionary, value_set)
        codes = lookup[np.asarray(pc.fill_null(values.indices, 0).to_numpy(), dtype=np.int64)]
    elif _is_string(values.type):
        codes = _positions(values, value_set)
    else:
        return None
    if values.null_count:
        codes[values.is_null().to_numpy(zero_copy_only=False)] = null_code
    return codes


def _positions(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    found = pc.fill_null(pc.index_in(values, value_set=value_set), -1)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


class PreparedModel:
    """What the kinds call on an Arrow batch (`predict_proba`, `predict`, `classes_`), the pipeline's own
    preprocessing done in numpy where the pipeline is nightshift's, through scikit-learn otherwise."""

    def __init__(self, pipeline: Any, spec: ModelSpec, blocks: list[NumericBlock | CategoryBlock] | None, width: int):
        self.pipeline = pipeline
        self.spec = spec
        self.blocks = blocks
        self.width = width

    @property
    def classes_(self) -> Any:
        return self.pipeline.classes_

    @property
    def fast(self) -> bool:
        return self.blocks is not None

    def transform(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray | None:
        """The matrix the final estimator takes, or None when a column's type needs scikit-learn's own path."""
        if self.blocks is None or isinstance(batch, pd.DataFrame):
            return None
        target = np.zeros((batch.num_rows, self.width), dtype="float64")
        for block in self.blocks:
            if block.columns and any(name not in batch.schema.names for name in block.columns):
                return None
            if not block.write(batch, target):
                return None
        return target

    def _inputs(self, batch: pa.RecordBatch | pa.Table | pd.DataFrame) -> tuple[Any, np.ndarray | None]:
        matrix = self.transform(batch) if not isinstance(batch, pd.DataFrame) else None
        return (self.pipeline[-1], matrix) if matrix is not None else (self.pipeline, None)

    def predict_proba(self, batch: pa.RecordBatch | pa.Table | pd.DataFrame) -> np.ndarray:
        estimator, matrix = self._inputs(batch)
        if matrix is None:
            return np.asarray(self.pipeline.predict_proba(model_inputs(frame_of(batch), self.spec)))
        return np.asarray(estimator.predict_proba(matrix))

    def predict(self, batch: pa.RecordBatch | pa.Table | pd.DataFrame) -> np.ndarray:
        estimator, matrix = self._inputs(batch)
        if matrix is None:
            return np.asarray(self.pipeline.predict(model_inputs(frame_of(batch), self.spec)))
        return np.asarray(estimator.predict(matrix))


def prepare(pipeline: Any, spec: ModelSpec, sample: pa.RecordBatch | pa.Table | None = None) -> PreparedModel:
    """The pipeline prepared for scoring; its numpy preprocessing only where it matches scikit-learn's transform
    exactly on `sample`'s first rows and on edge rows (nulls, unseen categories)."""
    if isinstance(pipeline, PreparedModel):
        return pipeline
    plan = _plan(pipeline)
    if plan is None:
        return PreparedModel(pipeline, spec, None, 0)
    prepared = PreparedModel(pipeline, spec, *plan)
    checks = [_edge_rows(prepared)] + ([sample.slice(0, CHECK_ROWS)] if sample is not None and sample.num_rows else [])
    problem = next((found for rows in checks if (found := _mismatch(prepared, rows))), None)
    if problem:
        log.warning("scoring %s through scikit-learn's own preprocessing: %s", spec.name, problem)
        return PreparedModel(pipeline, spec, None, 0)
    return prepared


def _plan(pipeline: Any) -> tuple[list[NumericBlock | CategoryBlock], int] | None:
    """The blocks of a fitted nightshift pipeline's ColumnTransformer, or None for a pipeline of another shape."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return None
    transformer = pipeline.steps[0][1]
    if type(transformer) is not ColumnTransformer or getattr(transformer, "sparse_output_", True):
        return None
    if any(getattr(step, "_sklearn_output_config", None) for step in (pipeline, transformer)):
        return None
    blocks: list[NumericBlock | CategoryBlock] = []
    width = 0
    for name, fitted, columns in transformer.transformers_:
        out = transformer.output_indices_.get(name, slice(0, 0))
        width = max(width, out.stop)
        if (isinstance(fitted, str) and fitted == "drop") or out.stop == out.start:
            continue
        block = _block(fitted, columns, out)
        if block is None:
            return None
        blocks.append(block)
    return blocks, width


def _block(fitted: Any, columns: Any, out: slice) -> NumericBlock | CategoryBlock | None:
    """One fitted transformer of the ColumnTransformer as a block, when it is one of nightshift's two."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if type(fitted) is not Pipeline or getattr(fitted, "_sklearn_output_config", None):
        return None
    if not isinstance(columns, list) or not all(isinstance(column, str) for column in columns):
        return None
    kinds = [type(step) for _, step in fitted.steps]
    if kinds == [SimpleImputer, StandardScaler]:
        return _numeric_block(fitted, columns, out)
    if kinds == [SimpleImputer, OneHotEncoder]:
        return _category_block(fitted, columns, out)
    return None


def _numeric_block(fitted: Any, columns: list[str], out: slice) -> NumericBlock | None:
    imputer, scaler = fitted.steps[0][1], fitted.steps[1][1]
    statistics = np.asarray(imputer.statistics_)
    if (
        imputer.strategy != "median"
        or not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values))
        or imputer.add_indicator
        or statistics.dtype != np.float64
        or np.isnan(statistics).any()
        or len(columns) != out.stop - out.start
    ):
        return None
    mean = np.asarray(scaler.mean_, dtype="float64") if scaler.with_mean else None
    scale = np.asarray(scaler.scale_, dtype="float64") if scaler.with_std and scaler.scale_ is not None else None
    return NumericBlock(columns, statistics, mean, scale, out)


def _category_block(fitted: Any, columns: list[str], out: slice) -> CategoryBlock | None:
    imputer, encoder = fitted.steps[0][1], fitted.steps[1][1]
    if (
        imputer.strategy != "constant"
        or not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values))
        or imputer.add_indicator
        or encoder.handle_unknown != "ignore"
        or encoder.drop is not None
        or getattr(encoder, "_infrequent_enabled", False)
        or np.dtype(encoder.dtype) != np.float64
    ):
        return None
    categories: list[list[str]] = []
    null_codes: list[int] = []
    for found in encoder.categories_:
        values = list(found)
        named = [value for value in values if isinstance(value, str)]
        has_none = values[-1:] == [None] and len(named) == len(values) - 1
        if len(named) != len(values) - has_none or len(set(named)) != len(named):
            return None
        categories.append(named)
        null_codes.append(len(named) if has_none else -1)
    if (
        sum(len(names) + (code >= 0) for names, code in zip(categories, null_codes, strict=True))
        != out.stop - out.start
    ):
        return None
    return CategoryBlock(columns, categories, null_codes, out)


def _edge_rows(prepared: PreparedModel) -> pa.Table:
    """Rows of every spec feature: each numeric value missing, each category missing, unseen, and every known
    category in turn."""
    blocks = prepared.blocks or []
    known = {
        name: names
        for block in blocks
        if isinstance(block, CategoryBlock)
        for name, names in zip(block.columns, block.categories, strict=True)
    }
    rows = max([len(names) for names in known.values()] + [0]) + 2
    edge: dict[str, pa.Array] = {}
    for name, feature in prepared.spec.features.items():
        if name in known:
            cycled = [known[name][i % len(known[name])] for i in range(rows - 2)]
            edge[name] = pa.array([None, UNSEEN, *cycled], type=pa.string())
        else:
            edge[name] = pa.nulls(rows, type=pa.string() if feature.type == "category" else pa.float64())
    return pa.table(edge)


def _mismatch(prepared: PreparedModel, rows: pa.RecordBatch | pa.Table) -> str | None:
    """Why the prepared transform is not scikit-learn's on these rows, or None when it is the same to the bit."""
    try:
        ours = prepared.transform(rows)
        theirs = np.asarray(prepared.pipeline[0].transform(model_inputs(frame_of(rows), prepared.spec)))
    except Exception as exc:  # a pipeline that cannot transform these rows scores through scikit-learn
        return f"{type(exc).__name__}: {exc}"
    if ours is None:
        return "a column's type is not one the prepared transform reads"
    if ours.shape != theirs.shape or theirs.dtype != ours.dtype or not np.array_equal(ours, theirs):
        return "the prepared transform differs from scikit-learn's on the check rows"
    return None
