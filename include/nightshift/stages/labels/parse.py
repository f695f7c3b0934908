"""Read and judge the day's label drop: accepted labels, and rejected rows with their reasons."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from nightshift.config import ModelSpec
from nightshift.kinds import parse_labels
from nightshift.kinds.base import shown, strings
from nightshift.readers import READ_KIND, READ_PROBLEM, Dialect
from nightshift.reasons import join_reasons
from nightshift.stages.ingest import read_source_chunks, source_files
from nightshift.stores import warehouse
from nightshift.stores.objects import ObjectStore, is_complete, partition_files, partition_key, read_manifest

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
    source = spec.sources.labels
    dialect = Dialect.of(source, "sources.labels")
    files = []
    for key in source_files(store, prefix, source.formats, "sources.labels"):
        chunks = list(
            read_source_chunks(store, key, columns, dialect=dialect, row_problems=True, formats=source.formats)
        )
        frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)
        files.append(frame.assign(**{ROW_NUMBER: np.arange(1, len(frame) + 1), SOURCE_FILE: store.url_for(key)}))
    return judge_labels(pd.concat(files, ignore_index=True), spec)


@dataclass(frozen=True)
class _Check:
    kind: str
    positions: np.ndarray
    """Positions of the failing rows, ascending."""
    reasons: np.ndarray
    """One reason per failing row, aligned with `positions`."""


class _Locations:
    """Each row's number (its own `_row_number` when the reader gave one) and file, for the reasons."""

    def __init__(self, raw: pd.DataFrame) -> None:
        count = len(raw)
        given = raw[ROW_NUMBER] if ROW_NUMBER in raw.columns else None
        self.numbers = np.arange(1, count + 1, dtype=np.int64) if given is None else given.to_numpy(dtype=np.int64)
        self.files = raw[SOURCE_FILE].to_numpy(dtype=object) if SOURCE_FILE in raw.columns else None

    def where(self, position: int) -> str:
        row = f"row {self.numbers[position]}"
        return row if self.files is None else f"{Path(str(self.files[position])).name} {row}"


def _quoted(values: np.ndarray, positions: np.ndarray) -> list[str]:
    return [shown(str(values[position])) for position in positions]


def _id_checks(ids: pd.Series, spec: ModelSpec) -> list[_Check]:
    column, limit = spec.entity_id, id_length_limit()
    text = strings(ids)
    values = ids.to_numpy(dtype=object)
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.asarray(pc.fill_null(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    trimmed = np.asarray(pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_numpy(), dtype=np.int64)
    nul = np.asarray(pc.fill_null(pc.match_substring(text, "\x00"), False).to_numpy(zero_copy_only=False), dtype=bool)
    blank = np.flatnonzero(~missing & (trimmed == 0))
    too_long = np.flatnonzero(lengths > limit)
    with_nul = np.flatnonzero(nul)
    absent = np.flatnonzero(missing)
    return [
        _Check("missing id", absent, np.full(len(absent), f"{column}: missing id", dtype=object)),
        _Check(
            "blank id",
            blank,
            np.asarray(
                [
                    f"{column}: {value} is blank after trimming spaces; an id needs a visible character"
                    for value in _quoted(values, blank)
                ],
                dtype=object,
            ),
        ),
        _Check(
            "id too long",
            too_long,
            np.asarray(
                [
                    f"{column}: {value} is {lengths[position]} characters long; the warehouse holds at most {limit}"
                    for value, position in zip(_quoted(values, too_long), too_long, strict=True)
                ],
                dtype=object,
            ),
        ),
        _Check(
            "id with a NUL character",
            with_nul,
            np.asarray(
                [
                    f"{column}: {value} holds a NUL character, which the warehouse cannot store"
                    for value in _quoted(values, with_nul)
                ],
                dtype=object,
            ),
        ),
    ]


def _read_checks(raw: pd.DataFrame) -> list[_Check]:
    """Rows the reader could not read as written (READ_PROBLEM set), one check per kind of problem."""
    if READ_PROBLEM not in raw.columns:
        return []
    problems = raw[READ_PROBLEM].to_numpy(dtype=object)
    failed = np.flatnonzero(pd.notna(problems))
    given = raw[READ_KIND].to_numpy(dtype=object) if READ_KIND in raw.columns else np.full(len(raw), None)
    kinds = np.asarray([str(kind) if pd.notna(kind) else "row that could not be read" for kind in given[failed]])
    return [
        _Check(str(kind), failed[kinds == kind], problems[failed[kinds == kind]].astype(object))
        for kind in dict.fromkeys(kinds.tolist())
    ]


def _superseded(ids: pd.Series, usable: np.ndarray, rows: _Locations, spec: ModelSpec) -> _Check:
    """Rows whose id a later row (with a usable id) repeats: the later row wins."""
    candidates = np.flatnonzero(usable)
    keyed = pd.Series(candidates, index=pd.Index(ids.to_numpy(dtype=object)[candidates]))
    repeated = keyed.index.duplicated(keep="last")
    last = keyed[~keyed.index.duplicated(keep="last")]
    positions = candidates[repeated]
    winners = last.reindex(keyed.index[repeated]).to_numpy(dtype=np.int64)
    values = ids.to_numpy(dtype=object)
    reasons = [
        f"{spec.entity_id}: {value} is superseded by the later {rows.where(int(winner))}"
        for value, winner in zip(_quoted(values, positions), winners, strict=True)
    ]
    return _Check("superseded by a later row", positions, np.asarray(reasons, dtype=object))


def _joined(checks: list[_Check]) -> tuple[np.ndarray, np.ndarray]:
    """The failing positions, ascending, and for each its reasons joined with '; ' in check order."""
    return join_reasons([check.positions for check in checks], [check.reasons for check in checks])


def judge_labels(raw: pd.DataFrame, spec: ModelSpec) -> JudgedLabels:
    """Split a label drop's raw string rows into accepted labels and rejected rows with every reason that applies."""
    raw = raw.reset_index(drop=True)
    ids, column = raw[spec.entity_id], spec.target.column
    rows = _Locations(raw)
    checks = [*_read_checks(raw), *_id_checks(ids, spec)]
    usable = np.ones(len(raw), dtype=bool)
    for check in checks:
        usable[check.positions] = False
    parsed = parse_labels(raw[column], spec)
    checks.append(_Check("not a label", np.flatnonzero(parsed.failed), parsed.reasons))
    checks.append(_superseded(ids, usable, rows, spec))
    bad, reasons = _joined(checks)
    kept = np.ones(len(raw), dtype=bool)
    kept[bad] = False
    extra = [name for name in (SOURCE_FILE,) if name in raw.columns]
    rejected = raw.iloc[bad][[spec.entity_id, column, *extra]].reset_index(drop=True)
    rejected.insert(2, ROW_NUMBER, rows.numbers[bad])
    rejected.insert(3, REASONS, reasons)
    accepted = pd.DataFrame({spec.entity_id: ids.to_numpy(dtype=object)[kept], column: parsed.values[kept]})
    return JudgedLabels(accepted=accepted, rejected=rejected, kinds=_kinds(checks, rows, ids, raw[column]))


def _kinds(checks: list[_Check], rows: _Locations, ids: pd.Series, labels: pd.Series) -> list[dict[str, Any]]:
    kinds = []
    for check in checks:
        if len(check.positions):
            first = int(check.positions[0])
            value = labels.iloc[first] if check.kind == "not a label" else ids.iloc[first]
            kinds.append(
                {
                    "kind": check.kind,
                    "count": len(check.positions),
                    "row": int(rows.numbers[first]),
                    "where": rows.where(first),
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
