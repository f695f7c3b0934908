"""Score a curated partition in chunks with the champion (and the challenger in shadow)."""

from __future__ import annotations

import binascii
import hashlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nightshift.config import ModelSpec
from nightshift.kinds import kind_of
from nightshift.stores.objects import ObjectStore, partition_files, partition_key, partition_writer

PREDICTION_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("entity_id", pa.string()),
        ("score", pa.float64()),
        ("model", pa.string()),
        ("model_version", pa.string()),
        ("alias", pa.string()),
        ("run_id", pa.string()),
    ]
)
"""What every kind's prediction file holds; a kind with more columns (see `prediction_schema`) appends them."""
KIND_COLUMNS = {"predicted_label": pa.string(), "class_probabilities": pa.string()}
"""The optional prediction columns a kind may add (multiclass: the predicted class and a JSON object of the
per-class probabilities), in the order they are written."""


def prediction_schema(spec: ModelSpec) -> pa.Schema:
    """The prediction files' schema for the spec's kind: PREDICTION_SCHEMA plus the kind's own columns."""
    schema = PREDICTION_SCHEMA
    for name in kind_of(spec).extra_columns:
        schema = schema.append(pa.field(name, KIND_COLUMNS[name]))
    return schema


@dataclass(frozen=True)
class Scorer:
    alias: str
    version: str
    model: Any


Chunk: TypeAlias = "pa.RecordBatch | pa.Table | pd.DataFrame"
"""A batch of curated rows: Arrow as read from Parquet, or a pandas frame."""
CONSTANT_COLUMNS = ("model", "model_version", "alias", "run_id", "predicted_label")
"""The prediction columns Parquet dictionary-encodes: one value per file (or per class). Ids, scores and the JSON of
class probabilities are unique per row, where a dictionary only costs time before Parquet falls back to plain."""
UNCOMPRESSED_COLUMNS = ("prediction_id", "score")
"""Columns written without compression: hex digits and random doubles shrink by a tenth at most under Snappy, which
cost a third of the write."""


def prediction_ids(model: str, dt: str, alias: str, entity_ids: pd.Series | pa.Array) -> pa.StringArray:
    """Deterministic 32-hex-digit ids: the same model, night, alias and entity always give the same id.

    Two 64-bit SipHash values of the entity id, keyed by a digest of model, night and alias, computed for the whole
    column at once: from the Arrow buffers of a string column without nulls (`siphash`), through pandas'
    `hash_array` otherwise; both give the same values.
    """
    from nightshift.stages.score.siphash import hash_strings, keys_of

    key = hashlib.sha256(f"{model}|{dt}|{alias}".encode()).hexdigest()
    if isinstance(entity_ids, pa.ChunkedArray):
        entity_ids = entity_ids.combine_chunks()
    rows = len(entity_ids)
    pair = np.empty((rows, 2), dtype=">u8")
    if isinstance(entity_ids, pa.Array) and entity_ids.null_count == 0 and _is_string(entity_ids.type):
        pair[:] = hash_strings(entity_ids, [keys_of(key[:16]), keys_of(key[16:32])]).T
    else:
        values = entity_ids.to_numpy(zero_copy_only=False) if isinstance(entity_ids, pa.Array) else entity_ids
        values = np.asarray(values, dtype=object)
        pair[:, 0] = pd.util.hash_array(values, categorize=False, hash_key=key[:16])
        pair[:, 1] = pd.util.hash_array(values, categorize=False, hash_key=key[16:32])
    digits = pa.py_buffer(binascii.hexlify(pair.tobytes()))
    offsets = pa.py_buffer(np.arange(0, 32 * rows + 1, 32, dtype=np.int32).tobytes())
    return pa.StringArray.from_buffers(rows, offsets, digits)


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def entity_strings(chunk: Chunk, column: str) -> pa.StringArray:
    """The chunk's entity ids as strings, as pandas' `astype(str)` spells them (a string column as it is)."""
    if not isinstance(chunk, pd.DataFrame):
        values = chunk.column(column)
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if _is_string(values.type) and values.null_count == 0:
            return values.cast(pa.string())
        chunk = pd.DataFrame({column: values.to_pandas()})
    return pa.array(chunk[column].astype(str).to_numpy(dtype=object), type=pa.string())


def curated_keys(store: ObjectStore, spec: ModelSpec, dt: str) -> list[str]:
    prefix = partition_key("curated", spec.name, dt)
    keys = partition_files(store, prefix, suffix=".parquet")
    if not keys:
        raise FileNotFoundError(f"{store.url_for(prefix)}: no complete curated partition; run validation first")
    return keys


def iter_batches(
    store: ObjectStore,
    keys: list[str],
    chunk_rows: int,
    columns: list[str] | None = None,
    dictionary: tuple[str, ...] = (),
) -> Iterator[pa.RecordBatch]:
    """The rows of each Parquet object in turn as Arrow batches, `chunk_rows` at a time (one object on local disk at
    a time); the string columns named in `dictionary` are read as dictionaries (no string per row)."""
    for key in keys:
        with tempfile.TemporaryDirectory() as tmp:
            path = store.get_file(key, Path(tmp) / Path(key).name)
            schema = pq.read_schema(path)
            encoded = [name for name in dictionary if name in schema.names and _is_string(schema.field(name).type)]
            parquet = pq.ParquetFile(path, read_dictionary=encoded or None)
            read = parquet.iter_batches(batch_size=chunk_rows, columns=columns)
            yield from _rebatched(read, chunk_rows) if encoded else read


def _rebatched(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch | pa.Table]:
    """Batches of exactly `rows` rows (the last one shorter), as Parquet yields them without dictionaries: with them,
    it also cuts at every row group. The rows a model sees at once stay the same, and so do its outputs to the bit
    (a linear model's matrix products round differently with other chunk bounds)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows == rows:
            yield batch
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def iter_parquet(
    store: ObjectStore, keys: list[str], chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The rows of each Parquet object in turn, `chunk_rows` at a time (one object on local disk at a time)."""
    for batch in iter_batches(store, keys, chunk_rows, columns):
        yield batch.to_pandas()


def scoring_columns(spec: ModelSpec) -> list[str]:
    """What scoring reads from a curated file: the entity id and the features."""
    return [spec.entity_id, *spec.feature_names]


def category_columns(spec: ModelSpec) -> tuple[str, ...]:
    return tuple(name for name, feature in spec.features.items() if feature.type == "category")


def iter_scoring_batches(
    store: ObjectStore, spec: ModelSpec, keys: list[str], chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """What scoring reads from curated files: the entity id and the features, categories as dictionaries."""
    return iter_batches(store, keys, chunk_rows, scoring_columns(spec), category_columns(spec))


def iter_curated(
    store: ObjectStore, spec: ModelSpec, dt: str, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    return iter_parquet(store, curated_keys(store, spec, dt), chunk_rows, columns)


def score_partition(
    store: ObjectStore,
    spec: ModelSpec,
    dt: str,
    scorers: list[Scorer],
    run_id: str,
    chunk_rows: int = 200_000,
) -> dict[str, Any]:
    """Write `predictions/<model>/dt=<dt>/<alias>.parquet` for each scorer; return counts and the address."""
    prefix = partition_key("predictions", spec.name, dt)
    counts = {scorer.alias: 0 for scorer in scorers}
    manifest: dict[str, Any] = {
        "model": spec.name,
        "dt": dt,
        "run_id": run_id,
        "versions": {scorer.alias: scorer.version for scorer in scorers},
    }
    with partition_writer(store, prefix, manifest) as folder:
        paths = {scorer.alias: folder / f"{scorer.alias}.parquet" for scorer in scorers}
        batches = iter_scoring_batches(store, spec, curated_keys(store, spec, dt), chunk_rows)
        counts = score_batches(batches, spec, dt, scorers, run_id, paths)
        manifest["rows"] = counts
    return {"address": store.url_for(prefix), "rows": counts}


@dataclass(frozen=True)
class _Read:
    """A batch with its entity ids as strings and each scorer's prediction ids."""

    chunk: Chunk
    entity_ids: pa.StringArray
    ids: dict[str, pa.StringArray]


def _read(batches: Iterator[Chunk], spec: ModelSpec, dt: str, scorers: list[Scorer]) -> _Read | None:
    chunk = next(batches, None)
    if chunk is None:
        return None
    entity_ids = entity_strings(chunk, spec.entity_id)
    return _Read(chunk, entity_ids, {s.alias: prediction_ids(spec.name, dt, s.alias, entity_ids) for s in scorers})


class _PredictionFiles:
    """One Parquet file of predictions per scorer, appended a batch at a time; rows written per alias."""

    def __init__(self, spec: ModelSpec, run_id: str, paths: dict[str, Path]) -> None:
        self.spec, self.run_id, self.kind, self.schema = spec, run_id, kind_of(spec), prediction_schema(spec)
        options = {
            "use_dictionary": [name for name in CONSTANT_COLUMNS if name in self.schema.names],
            "compression": {name: "none" if name in UNCOMPRESSED_COLUMNS else "snappy" for name in self.schema.names},
        }
        self.writers = {alias: pq.ParquetWriter(path, self.schema, **options) for alias, path in paths.items()}
        self.counts = dict.fromkeys(paths, 0)

    def write(self, scorer: Scorer, read: _Read, scores: np.ndarray) -> None:
        rows = len(read.entity_ids)
        columns = self.kind.prediction_columns(scores, self.spec)
        table = pa.table(
            {
                "prediction_id": read.ids[scorer.alias],
                "entity_id": read.entity_ids,
                "score": np.asarray(columns.pop("score"), dtype="float64"),
                "model": pa.repeat(self.spec.name, rows),
                "model_version": pa.repeat(scorer.version, rows),
                "alias": pa.repeat(scorer.alias, rows),
                "run_id": pa.repeat(self.run_id, rows),
                **columns,
            },
            schema=self.schema,
        )
        self.writers[scorer.alias].write_table(table)
        self.counts[scorer.alias] += rows

    def close(self) -> None:
        for parquet in self.writers.values():
            parquet.close()


def score_batches(
    batches: Iterator[Chunk],
    spec: ModelSpec,
    dt: str,
    scorers: list[Scorer],
    run_id: str,
    paths: dict[str, Path],
) -> dict[str, int]:
    """Score each batch with every scorer and append the predictions to its Parquet file; return rows per alias.

    Each scorer's pipeline is prepared on the first batch (`nightshift.stages.score.prepared`). Reading the next
    batch and hashing its ids, and writing the last predictions, run on two helper threads while the model predicts
    (Arrow, numpy and the tree ensembles release the GIL), so the stage costs little more than the predictions
    themselves. At most two batches are in flight, so memory stays flat.
    """
    from nightshift.stages.score.prepared import prepare

    files = _PredictionFiles(spec, run_id, {scorer.alias: paths[scorer.alias] for scorer in scorers})
    kind, batches = kind_of(spec), iter(batches)
    models: dict[str, Any] = {}
    try:
        with ThreadPoolExecutor(1, "nightshift-read") as reader, ThreadPoolExecutor(1, "nightshift-write") as writer:
            upcoming = reader.submit(_read, batches, spec, dt, scorers)
            written: list[Future[None]] = []
            while (current := upcoming.result()) is not None:
                upcoming = reader.submit(_read, batches, spec, dt, scorers)
                for scorer in scorers:
                    if scorer.alias not in models:
                        sample = None if isinstance(current.chunk, pd.DataFrame) else current.chunk
                        models[scorer.alias] = prepare(scorer.model, spec, sample)
                    scores = kind.outputs(models[scorer.alias], current.chunk, spec)
                    written.append(writer.submit(files.write, scorer, current, scores))
                while len(written) > len(scorers):
                    written.pop(0).result()
            for pending in written:
                pending.result()
    finally:
        files.close()
    return files.counts


def iter_predictions(store: ObjectStore, spec: ModelSpec, dt: str, chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    prefix = partition_key("predictions", spec.name, dt)
    return iter_parquet(store, partition_files(store, prefix, suffix=".parquet"), chunk_rows)


def champion_scores(
    store: ObjectStore, spec: ModelSpec, dt: str, entity_ids: pd.Series | None = None, column: str = "score"
) -> pd.DataFrame:
    """Entity id and one prediction column (the score by default) of a night's champion predictions (only for
    `entity_ids`, when given)."""
    wanted = None if entity_ids is None else pd.Index(entity_ids.astype(str))
    prefix = partition_key("predictions", spec.name, dt)
    keys = [key for key in partition_files(store, prefix, ".parquet") if Path(key).name.startswith("champion")]
    frames = []
    for chunk in iter_parquet(store, keys, 500_000, columns=["entity_id", column, "alias"]):
        chunk = chunk.loc[chunk["alias"] == "champion", ["entity_id", column]]
        frames.append(chunk if wanted is None else chunk[chunk["entity_id"].isin(wanted)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["entity_id", column])
