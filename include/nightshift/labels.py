"""Read and judge the day's label drop: accepted labels, and rejected rows with their reasons."""

from __future__ import annotations

import pandas as pd

from nightshift.config import ModelSpec
from nightshift.ingest import read_csv_chunks
from nightshift.storage import ObjectStore, is_complete, partition_files


def labels_prefix(spec: ModelSpec, dt: str) -> str:
    return spec.sources.labels.path.format(model=spec.name, dt=dt).rstrip("/")


def read_labels(store: ObjectStore, spec: ModelSpec, dt: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The label drop of `dt` as (accepted labels, rejected rows with `_reasons`), or None when none landed."""
    prefix = labels_prefix(spec, dt)
    if not is_complete(store, prefix):
        return None
    columns = [spec.entity_id, spec.target.column]
    frames = [
        chunk for key in partition_files(store, prefix, suffix=".csv") for chunk in read_csv_chunks(store, key, columns)
    ]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return judge_labels(raw, spec)


def judge_labels(raw: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a label drop's raw string rows into (accepted labels, rejected rows with `_row_number`, `_reasons`)."""
    target = raw[spec.target.column].str.strip()
    valid_target = target.isin(["0", "1"])
    valid_id = raw[spec.entity_id].notna()
    duplicated = raw[spec.entity_id].duplicated(keep="last") & valid_id
    reasons = pd.Series("", index=raw.index)
    reasons = reasons.mask(~valid_id, f"{spec.entity_id}: missing id")
    reasons = reasons.mask(
        valid_id & ~valid_target,
        spec.target.column + ": " + target.fillna("<empty>").map(repr) + " is not a label; expected 0 or 1",
    )
    reasons = reasons.mask(valid_id & valid_target & duplicated, f"{spec.entity_id}: superseded by a later row")
    bad = reasons != ""
    rejected = raw[bad].assign(_row_number=raw.index[bad] + 1, _reasons=reasons[bad])
    accepted = raw[~bad].copy()
    accepted[spec.target.column] = accepted[spec.target.column].astype("int8")
    return accepted.reset_index(drop=True), rejected.reset_index(drop=True)
