"""Score a curated partition in chunks with the champion (and the challenger in shadow)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nightshift.config import ModelSpec
from nightshift.storage import ObjectStore, partition_files, partition_key, partition_writer
from nightshift.train import positive_scores

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


@dataclass(frozen=True)
class Scorer:
    alias: str
    version: str
    model: Any


def prediction_ids(model: str, dt: str, alias: str, entity_ids: pd.Series) -> list[str]:
    """Deterministic ids: the same model, night, alias and entity always give the same id."""
    prefix = f"{model}|{dt}|{alias}|"
    return [hashlib.sha256((prefix + entity).encode()).hexdigest()[:32] for entity in entity_ids]


def iter_curated(store: ObjectStore, spec: ModelSpec, dt: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    prefix = partition_key("curated", spec.name, dt)
    keys = partition_files(store, prefix, suffix=".parquet")
    if not keys:
        raise FileNotFoundError(f"{store.url_for(prefix)}: no complete curated partition; run validation first")
    with tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            path = store.get_file(key, Path(tmp) / Path(key).name)
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()


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
        writers = {
            scorer.alias: pq.ParquetWriter(folder / f"{scorer.alias}.parquet", PREDICTION_SCHEMA) for scorer in scorers
        }
        try:
            for chunk in iter_curated(store, spec, dt, chunk_rows):
                entity_ids = chunk[spec.entity_id].astype(str)
                for scorer in scorers:
                    scores = positive_scores(scorer.model, chunk, spec)
                    table = pa.table(
                        {
                            "prediction_id": prediction_ids(spec.name, dt, scorer.alias, entity_ids),
                            "entity_id": entity_ids.to_numpy(),
                            "score": np.asarray(scores, dtype="float64"),
                            "model": np.full(len(chunk), spec.name),
                            "model_version": np.full(len(chunk), scorer.version),
                            "alias": np.full(len(chunk), scorer.alias),
                            "run_id": np.full(len(chunk), run_id),
                        },
                        schema=PREDICTION_SCHEMA,
                    )
                    writers[scorer.alias].write_table(table)
                    counts[scorer.alias] += len(chunk)
        finally:
            for writer in writers.values():
                writer.close()
        manifest["rows"] = counts
    return {"address": store.url_for(prefix), "rows": counts}


def iter_predictions(store: ObjectStore, spec: ModelSpec, dt: str, chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    prefix = partition_key("predictions", spec.name, dt)
    with tempfile.TemporaryDirectory() as tmp:
        for key in partition_files(store, prefix, suffix=".parquet"):
            path = store.get_file(key, Path(tmp) / Path(key).name)
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()


def champion_scores(store: ObjectStore, spec: ModelSpec, dt: str) -> pd.DataFrame:
    """Entity id and champion score of a night's predictions."""
    frames = [
        chunk.loc[chunk["alias"] == "champion", ["entity_id", "score"]] for chunk in iter_predictions(store, spec, dt)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["entity_id", "score"])
