"""Read and judge the day's label drop: accepted labels, and rejected rows with their reasons."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nightshift import warehouse
from nightshift.config import ModelSpec
from nightshift.ingest import read_csv_chunks
from nightshift.storage import ObjectStore, is_complete, partition_files, partition_key, read_manifest
from nightshift.targets import parse_labels, shown

ROW_NUMBER = "_row_number"
REASONS = "_reasons"
SOURCE_FILE = "_source_file"
MOST_COMMON = 3


class LabelDropRejected(RuntimeError):
    """A label drop with more rejected rows than the spec allows; nothing of it was curated."""


def labels_prefix(spec: ModelSpec, dt: str) -> str:
    return spec.sources.labels.path.format(model=spec.name, dt=dt).rstrip("/")


def curated_labels_prefix(spec: ModelSpec, dt: str) -> str:
    return f"curated/{spec.name}/labels/dt={dt}"


def quarantine_labels_prefix(spec: ModelSpec, dt: str) -> str:
    return f"quarantine/{spec.name}/labels/dt={dt}"


def id_length_limit() -> int:
    """The longest entity id the warehouse holds."""
    return int(warehouse.predictions.c.entity_id.type.length)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class JudgedLabels:
    accepted: pd.DataFrame
    """Id and parsed label of every accepted row, in drop order."""
    rejected: pd.DataFrame
    """The rejected rows as received, with `_row_number` (1 = first data row) and `_reasons`."""
    kinds: list[dict[str, Any]]
    """Rejections grouped by kind (`kind`, `count`, the first one's `row`, `where` and `value`), most common first."""

    @property
    def received(self) -> int:
        return len(self.accepted) + len(self.rejected)

    @property
    def rejected_share(self) -> float:
        return len(self.rejected) / self.received if self.received else 0.0


def read_labels(store: ObjectStore, spec: ModelSpec, dt: str) -> JudgedLabels | None:
    """The label drop of `dt`, judged, or None when none landed."""
    prefix = labels_prefix(spec, dt)
    if not is_complete(store, prefix):
        return None
    columns = [spec.entity_id, spec.target.column]
    frames = [
        chunk for key in partition_files(store, prefix, suffix=".csv") for chunk in read_csv_chunks(store, key, columns)
    ]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return judge_labels(raw, spec)


@dataclass(frozen=True)
class _Check:
    kind: str
    failed: np.ndarray
    reasons: pd.Series


def _id_checks(ids: pd.Series, spec: ModelSpec) -> list[_Check]:
    column, limit = spec.entity_id, id_length_limit()
    text = ids.astype("string")
    missing = text.isna().to_numpy()
    blank = (~missing) & (text.str.strip() == "").fillna(False).to_numpy(dtype=bool)
    lengths = text.str.len().fillna(0).to_numpy(dtype=np.int64)
    too_long = lengths > limit
    nul = text.str.contains("\x00", regex=False).fillna(False).to_numpy(dtype=bool)
    return [
        _Check("missing id", missing, pd.Series(f"{column}: missing id", index=ids.index)),
        _Check(
            "blank id",
            blank,
            column
            + ": "
            + text.fillna("").map(shown)
            + " is blank after trimming spaces; an id needs a visible character",
        ),
        _Check(
            "id too long",
            too_long,
            column
            + ": "
            + text.fillna("").map(shown)
            + " is "
            + pd.Series(lengths, index=ids.index).astype(str)
            + f" characters long; the warehouse holds at most {limit}",
        ),
        _Check(
            "id with a NUL character",
            nul,
            column + ": " + text.fillna("").map(shown) + " holds a NUL character, which the warehouse cannot store",
        ),
    ]


def _superseded(ids: pd.Series, usable: np.ndarray, where: pd.Series, spec: ModelSpec) -> _Check:
    """Rows whose id a later row (with a usable id) repeats: the later row wins."""
    positions = pd.Series(np.arange(len(ids)), index=ids.index)
    candidates = ids.where(usable)
    later = candidates.duplicated(keep="last").to_numpy() & usable
    last = positions.groupby(candidates, dropna=True).transform("max").fillna(0).astype("int64").to_numpy()
    later_where = pd.Series(where.to_numpy()[last], index=ids.index)
    reasons = (
        spec.entity_id + ": " + ids.fillna("").astype(str).map(shown) + " is superseded by the later " + later_where
    )
    return _Check("superseded by a later row", later, reasons)


def _locations(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each row's number (its own `_row_number` when the reader gave one) and where it is, for the reasons."""
    if ROW_NUMBER in raw.columns:
        rows = raw[ROW_NUMBER].astype("int64")
    else:
        rows = pd.Series(np.arange(1, len(raw) + 1, dtype=np.int64), index=raw.index)
    where = "row " + rows.astype(str)
    if SOURCE_FILE in raw.columns:
        where = raw[SOURCE_FILE].astype(str).map(lambda key: Path(key).name) + " " + where
    return rows, where


def judge_labels(raw: pd.DataFrame, spec: ModelSpec) -> JudgedLabels:
    """Split a label drop's raw string rows into accepted labels and rejected rows with every reason that applies."""
    raw = raw.reset_index(drop=True)
    ids, column = raw[spec.entity_id], spec.target.column
    rows, where = _locations(raw)
    checks = _id_checks(ids, spec)
    usable = ~np.logical_or.reduce([check.failed for check in checks])
    parsed = parse_labels(raw[column], spec)
    checks.append(_Check("not a label", (parsed.reasons != "").to_numpy(), parsed.reasons))
    checks.append(_superseded(ids, usable, where, spec))
    joined = pd.Series("", index=raw.index, dtype=object)
    for check in checks:
        mark = pd.Series(check.failed, index=raw.index)
        joined = joined.mask(mark, joined.where(joined == "", joined + "; ") + check.reasons)
    bad = (joined != "").to_numpy()
    extra = [name for name in (SOURCE_FILE,) if name in raw.columns]
    rejected = raw.loc[bad, [spec.entity_id, column, *extra]].assign(**{ROW_NUMBER: rows[bad], REASONS: joined[bad]})
    accepted = pd.DataFrame({spec.entity_id: ids[~bad], column: parsed.values[~bad]})
    return JudgedLabels(
        accepted=accepted.reset_index(drop=True),
        rejected=rejected[[spec.entity_id, column, ROW_NUMBER, REASONS, *extra]].reset_index(drop=True),
        kinds=_kinds(checks, rows, where, raw[spec.entity_id], raw[column]),
    )


def _kinds(
    checks: list[_Check], rows: pd.Series, where: pd.Series, ids: pd.Series, labels: pd.Series
) -> list[dict[str, Any]]:
    kinds = []
    for check in checks:
        positions = np.flatnonzero(check.failed)
        if len(positions):
            first = int(positions[0])
            value = labels.iloc[first] if check.kind == "not a label" else ids.iloc[first]
            kinds.append(
                {
                    "kind": check.kind,
                    "count": len(positions),
                    "row": int(rows.iloc[first]),
                    "where": str(where.iloc[first]),
                    "value": None if pd.isna(value) else str(value),
                }
            )
    return sorted(kinds, key=lambda kind: -int(kind["count"]))


def summary(judged: JudgedLabels, spec: ModelSpec, source: str) -> dict[str, Any]:
    """The label drop's counts and verdict, as written beside the quarantine (`result.json`)."""
    limit = spec.validation.max_bad_row_share
    return {
        "model": spec.name,
        "source": source,
        "received": judged.received,
        "accepted": len(judged.accepted),
        "rejected": len(judged.rejected),
        "rejected_share": judged.rejected_share,
        "max_bad_row_share": limit,
        "passed": judged.rejected_share <= limit,
        "kinds": judged.kinds,
    }


def failure_message(result: dict[str, Any], day: str, quarantine: str) -> str:
    """Why the label drop failed: the drop, the share, the limit, the most common reasons and where to read the rest."""
    common = "; ".join(
        f"{kind['kind']} ({kind['count']} row{'' if kind['count'] == 1 else 's'}, e.g. {kind['where']}: "
        f"{'empty' if kind['value'] is None else shown(kind['value'])})"
        for kind in result["kinds"][:MOST_COMMON]
    )
    return (
        f"{result['source']}: {result['rejected']} of {result['received']} label rows "
        f"({result['rejected_share']:.1%}) were rejected, above the limit of {result['max_bad_row_share']:.1%} "
        f"(validation.max_bad_row_share). Most common: {common}. No labels of {day} were curated "
        f"(any earlier curated labels of that day are kept). Rejected rows and reasons: {quarantine}/rejected.csv"
    )


def accepted_label_count(store: ObjectStore, spec: ModelSpec, day: dt.date) -> int:
    """Labels curated from the label drop of `day`: its manifest's row count (Parquet footers when it has none)."""
    prefix = curated_labels_prefix(spec, day.isoformat())
    manifest = read_manifest(store, prefix)
    if manifest is None:
        return 0
    if "rows" in manifest:
        return int(manifest["rows"])
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        return sum(
            pq.read_metadata(store.get_file(key, Path(tmp) / Path(key).name)).num_rows
            for key in partition_files(store, prefix, suffix=".parquet")
        )


def labelled_days(store: ObjectStore, spec: ModelSpec, day: dt.date) -> list[dt.date]:
    """Feature dates in the training window ending `day` whose curated rows and accepted labels have both arrived."""
    delay = dt.timedelta(days=spec.target.label_delay_days)
    found = []
    for offset in range(spec.training.window_days - 1, -1, -1):
        feature_day = day - dt.timedelta(days=offset)
        label_day = feature_day + delay
        if label_day > day:
            continue
        if is_complete(store, partition_key("curated", spec.name, feature_day.isoformat())) and (
            accepted_label_count(store, spec, label_day) > 0
        ):
            found.append(feature_day)
    return found
