"""Score a curated partition in chunks with the champion (and the challenger in shadow)."""

from __future__ import annotations

import binascii
import hashlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nightshift.config import ModelSpec
from nightshift.kinds import kind_of, outputs
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


def prediction_ids(model: str, dt: str, alias: str, entity_ids: pd.Series) -> pa.StringArray:
    """Deterministic 32-hex-digit ids: the same model, night, alias and entity always give the same id.

    Two 64-bit SipHash values of the entity id, keyed by a digest of model, night and alias, computed for the whole
    column at once (hashlib per row cost as much as the model's predictions).
    """
    key = hashlib.sha256(f"{model}|{dt}|{alias}".encode()).hexdigest()
    values = entity_ids.to_numpy(dtype=object)
    pair = np.empty((len(values), 2), dtype=">u8")
    pair[:, 0] = pd.util.hash_array(values, categorize=False, hash_key=key[:16])
    pair[:, 1] = pd.util.hash_array(values, categorize=False, hash_key=key[16:32])
    digits = pa.py_buffer(binascii.hexlify(pair.tobytes()))
    offsets = pa.py_buffer(np.arange(0, 32 * len(values) + 1, 32, dtype=np.int32).tobytes())
    return pa.StringArray.from_buffers(len(values), offsets, digits)


def curated_keys(store: ObjectStore, spec: ModelSpec, dt: str) -> list[str]:
    prefix = partition_key("curated", spec.name, dt)
    keys = partition_files(store, prefix, suffix=".parquet")
    if not keys:
        raise FileNotFoundError(f"{store.url_for(prefix)}: no complete curated partition; run validation first")
    return keys


def iter_parquet(
    store: ObjectStore, keys: list[str], chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The rows of each Parquet object in turn, `chunk_rows` at a time (one object on local disk at a time)."""
    for key in keys:
        with tempfile.TemporaryDirectory() as tmp:
            path = store.get_file(key, Path(tmp) / Path(key).name)
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
                yield batch.to_pandas()


def scoring_columns(spec: ModelSpec) -> list[str]:
    """What scoring reads from a curated file: the entity id and the features."""
    return [spec.entity_id, *spec.feature_names]


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
        batches = iter_curated(store, spec, dt, chunk_rows, scoring_columns(spec))
        counts = score_batches(batches, spec, dt, scorers, run_id, paths)
        manifest["rows"] = counts
    return {"address": store.url_for(prefix), "rows": counts}


def score_batches(
    batches: Iterator[pd.DataFrame],
    spec: ModelSpec,
    dt: str,
    scorers: list[Scorer],
    run_id: str,
    paths: dict[str, Path],
) -> dict[str, int]:
    """Score each batch with every scorer and append the predictions to its Parquet file; return rows per alias.

    Reading the next batch and writing the last predictions run on two helper threads while the model predicts
    (Arrow and the tree ensembles release the GIL), so the stage costs little more than the predictions
    themselves. At most two batches are in flight, so memory stays flat.
    """
    counts = {scorer.alias: 0 for scorer in scorers}
    schema, kind = prediction_schema(spec), kind_of(spec)
    writers = {scorer.alias: pq.ParquetWriter(paths[scorer.alias], schema) for scorer in scorers}

    def write(scorer: Scorer, entity_ids: pd.Series, scores: np.ndarray) -> None:
        rows = len(entity_ids)
        columns = kind.prediction_columns(scores, spec)
        table = pa.table(
            {
                "prediction_id": prediction_ids(spec.name, dt, scorer.alias, entity_ids),
                "entity_id": pa.array(entity_ids.to_numpy(dtype=object), type=pa.string()),
                "score": np.asarray(columns.pop("score"), dtype="float64"),
                "model": pa.repeat(spec.name, rows),
                "model_version": pa.repeat(scorer.version, rows),
                "alias": pa.repeat(scorer.alias, rows),
                "run_id": pa.repeat(run_id, rows),
                **columns,
            },
            schema=schema,
        )
        writers[scorer.alias].write_table(table)
        counts[scorer.alias] += rows

    batches = iter(batches)
    try:
        with ThreadPoolExecutor(1, "nightshift-read") as reader, ThreadPoolExecutor(1, "nightshift-write") as writer:
            upcoming = reader.submit(next, batches, None)
            written: list[Future[None]] = []
            while (chunk := upcoming.result()) is not None:
                upcoming = reader.submit(next, batches, None)
                entity_ids = chunk[spec.entity_id].astype(str)
                for scorer in scorers:
                    scores = outputs(scorer.model, chunk, spec)
                    written.append(writer.submit(write, scorer, entity_ids, scores))
                while len(written) > len(scorers):
                    written.pop(0).result()
            for pending in written:
                pending.result()
    finally:
        for parquet in writers.values():
            parquet.close()
    return counts


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
