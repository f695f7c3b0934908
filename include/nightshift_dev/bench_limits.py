"""The validation stage's limit and its peer, both bench tooling the product never imports.

The limit is what validating a night costs with nothing but vectorised work: read the drop's files with pyarrow in
the spec's column types, run the spec's blocking row checks (types, nulls, ranges, value sets, unique ids) with
pyarrow.compute and NumPy, and write the accepted rows to Parquet. It words no reasons and writes no quarantine.

The peer is pandera, the library a team would otherwise pick: pandas reads the night, a `DataFrameSchema` built from
the spec runs the same checks with `lazy=True`, so every failing row is a failure case (it writes nothing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "category": pa.string()}
_PATTERNS = {
    "int": r"^\s*[+-]?\d+\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$",
    "bool": r"^\s*(?i:true|false)\s*$",
    "timestamp": r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?\s*$",
}
_BAD_COLUMN = re.compile(r"In CSV column #(\d+)")


def column_types(spec: Any) -> dict[str, pa.DataType]:
    """The Arrow type of every column of the drop: the id as text, the timestamp in UTC, the features by the spec."""
    types = {spec.entity_id: pa.string(), spec.timestamp: pa.timestamp("ns", "UTC")}
    types.update({name: _ARROW_TYPES[feature.type] for name, feature in spec.features.items()})
    return types


def _kind(spec: Any, column: str) -> str:
    if column == spec.timestamp:
        return "timestamp"
    return "str" if column == spec.entity_id else str(spec.features[column].type)


def read_typed(path: Path, spec: Any) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """One file in the spec's types, and per column the mask of values present but not of its type.

    pyarrow converts a whole column or refuses it; a refused column (its error names it) is read again as text
    and cast where its values look like the type, the rest counting as type failures.
    """
    types = column_types(spec)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=list(types))
        return table, {}
    import pyarrow.csv as csv

    source = spec.sources.drop
    as_text: list[str] = []
    header: list[str] = []
    while True:
        wanted = {name: (pa.string() if name in as_text else kind) for name, kind in types.items()}
        try:
            table = csv.read_csv(
                path,
                read_options=csv.ReadOptions(encoding=source.encoding),
                parse_options=csv.ParseOptions(delimiter=source.delimiter),
                convert_options=csv.ConvertOptions(
                    column_types=wanted, include_columns=list(types), strings_can_be_null=True
                ),
            )
            break
        except pa.ArrowInvalid as exc:
            found = _BAD_COLUMN.search(str(exc))
            header = header or _header(path, source)
            refused = header[int(found.group(1))] if found and int(found.group(1)) < len(header) else None
            if refused not in types or refused in as_text:
                raise
            as_text.append(refused)
    unparsed: dict[str, np.ndarray] = {}
    for name in as_text:
        text = table[name].combine_chunks()
        looks = pc.fill_null(pc.match_substring_regex(text, _PATTERNS[_kind(spec, name)]), False)
        typed = pc.cast(pc.if_else(looks, pc.utf8_trim_whitespace(text), pa.scalar(None, pa.string())), types[name])
        unparsed[name] = np.asarray(pc.and_(pc.is_valid(text), pc.invert(looks)))
        table = table.set_column(table.schema.get_field_index(name), name, typed)
    return table, unparsed


def _header(path: Path, source: Any) -> list[str]:
    """The file's column names, in file order (what pyarrow's conversion errors number)."""
    import csv as text_csv
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    encoding = "utf-8-sig" if source.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else source.encoding
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        return next(text_csv.reader(handle, delimiter=source.delimiter), [])


def limit_checks(table: pa.Table, unparsed: dict[str, np.ndarray], spec: Any) -> tuple[np.ndarray, dict[str, int]]:
    """Which rows fail a blocking check of the spec, and how many rows each check fails."""
    checks = spec.validation.checks
    rows = table.num_rows
    bad = np.zeros(rows, dtype=bool)
    counts: dict[str, int] = {}

    def fail(name: str, mask: Any) -> None:
        failed = np.asarray(mask, dtype=bool)
        if failed.any():
            counts[name] = int(failed.sum())
            np.logical_or(bad, failed, out=bad)

    if checks.types == "block":
        for name, mask in unparsed.items():
            fail(f"types:{name}", mask)
    not_null = [spec.entity_id, spec.timestamp, *(n for n, f in spec.features.items() if not f.nullable)]
    if checks.nulls == "block":
        for name in not_null:
            missing = np.asarray(table[name].is_null())
            fail(f"nulls:{name}", missing & ~unparsed[name] if name in unparsed else missing)
    for name, mask in _feature_failures(table, spec):
        fail(name, mask)
    if checks.unique_ids == "block":
        fail(f"unique_ids:{spec.entity_id}", repeated(table[spec.entity_id]))
    return bad, counts


def _feature_failures(table: pa.Table, spec: Any) -> Iterator[tuple[str, Any]]:
    """Per feature with a blocking range or value set: the check's name and the mask of rows outside it."""
    checks = spec.validation.checks
    for name, feature in spec.features.items():
        column = table[name]
        if checks.ranges == "block" and (feature.min is not None or feature.max is not None):
            low = pc.less(column, feature.min) if feature.min is not None else None
            high = pc.greater(column, feature.max) if feature.max is not None else None
            outside = low if high is None else (high if low is None else pc.or_(low, high))
            yield f"ranges:{name}", pc.fill_null(outside, False)
        if checks.categories == "block" and feature.categories:
            known = pc.is_in(column, value_set=pa.array(feature.categories, type=pa.string()))
            yield f"categories:{name}", pc.and_(pc.is_valid(column), pc.invert(known))


def repeated(ids: pa.ChunkedArray) -> np.ndarray:
    """Per row, whether its id appeared on an earlier row (the first copy is kept).

    Dictionary codes number the ids in order of first appearance, so a row is a first copy exactly when its code
    is above every code before it: one hash pass and one running maximum, no sort.
    """
    codes = np.asarray(pc.dictionary_encode(ids.combine_chunks()).indices.fill_null(-1), dtype=np.int64)
    before = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]])) if len(codes) else codes
    return (codes <= before) & (codes >= 0)


def validation_limit(paths: list[Path], spec: Any, out: Path) -> dict[str, Any]:
    """Read every file of the night typed, check it vectorised, write the accepted rows: seconds of each part."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    read = [read_typed(path, spec) for path in paths]
    table = pa.concat_tables([item[0] for item in read]) if len(read) > 1 else read[0][0]
    unparsed: dict[str, np.ndarray] = {}
    for name in {name for _, masks in read for name in masks}:
        unparsed[name] = np.concatenate([masks.get(name, np.zeros(part.num_rows, dtype=bool)) for part, masks in read])
    read_seconds = time.perf_counter() - started
    mark = time.perf_counter()
    bad, counts = limit_checks(table, unparsed, spec)
    rows, bad_rows = table.num_rows, int(bad.sum())
    whole = spec.validation.min_rows <= rows <= spec.validation.max_rows
    share_ok = bad_rows <= spec.validation.max_bad_row_share * rows
    check_seconds = time.perf_counter() - mark
    mark = time.perf_counter()
    accepted = table.filter(pa.array(~bad))
    pq.write_table(accepted, out)
    write_seconds = time.perf_counter() - mark
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read_seconds,
        "check_seconds": check_seconds,
        "write_seconds": write_seconds,
        "rows": rows,
        "accepted": accepted.num_rows,
        "bad_rows": bad_rows,
        "failed_rows_per_check": counts,
        "columns_read_as_text": sorted(unparsed),
        "passed": bool(whole and share_ok),
    }


def pandera_schema(spec: Any) -> Any:
    """The spec's checks as a pandera DataFrameSchema: types (coerced), nulls, ranges, value sets, unique ids."""
    import pandera.pandas as pa_schema

    blocking = spec.validation.checks
    dtypes = {"int": "Int64", "float": "float64", "bool": "boolean", "category": str}
    columns = {
        spec.entity_id: pa_schema.Column(
            str,
            nullable=blocking.nulls != "block",
            unique=blocking.unique_ids == "block",
            report_duplicates="exclude_first",
        ),
        spec.timestamp: pa_schema.Column("datetime64[ns, UTC]", nullable=blocking.nulls != "block", coerce=True),
    }
    for name, feature in spec.features.items():
        checks = []
        if blocking.ranges == "block" and (feature.min is not None or feature.max is not None):
            checks.append(pa_schema.Check.in_range(feature.min, feature.max))
        if blocking.categories == "block" and feature.categories:
            checks.append(pa_schema.Check.isin(list(feature.categories)))
        columns[name] = pa_schema.Column(
            dtypes[feature.type],
            checks,
            nullable=feature.nullable or blocking.nulls != "block",
            coerce=blocking.types == "block" and feature.type != "category",
        )
    return pa_schema.DataFrameSchema(columns)


def pandera_peer(paths: list[Path], spec: Any) -> dict[str, Any]:
    """pandas reads the night, pandera validates it lazily: seconds of each part and the rows it finds bad."""
    import pandas as pd
    from pandera.errors import SchemaErrors

    schema = pandera_schema(spec)
    text = {name: str for name in (spec.entity_id, *(n for n, f in spec.features.items() if f.type == "category"))}
    source = spec.sources.drop
    started = time.perf_counter()
    frames = [
        pd.read_parquet(path, columns=spec.raw_columns)
        if path.suffix == ".parquet"
        else pd.read_csv(path, usecols=spec.raw_columns, dtype=text, encoding=source.encoding, sep=source.delimiter)
        for path in paths
    ]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    del frames
    read_seconds = time.perf_counter() - started
    mark = time.perf_counter()
    try:
        schema.validate(frame, lazy=True)
        cases = None
    except SchemaErrors as exc:
        cases = exc.failure_cases
    validate_seconds = time.perf_counter() - mark
    per_check: dict[str, int] = {}
    bad_rows = 0
    if cases is not None:
        located = cases[cases["index"].notna()]
        bad_rows = int(located["index"].nunique())
        grouped = located.groupby(["column", "check"], dropna=False).size()
        per_check = {f"{column}: {check}": int(count) for (column, check), count in grouped.items()}
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read_seconds,
        "validate_seconds": validate_seconds,
        "rows": len(frame),
        "bad_rows": bad_rows,
        "failure_cases": 0 if cases is None else len(cases),
        "failure_cases_per_check": per_check,
    }


def head_file(path: Path, folder: Path, rows: int = 1000) -> Path:
    """The file's first rows as a file of the same format in `folder`: what the warm-ups read."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        head = folder / "head.parquet"
        pq.write_table(pa.Table.from_batches([next(pq.ParquetFile(path).iter_batches(batch_size=rows))]), head)
        return head
    import gzip
    import itertools

    head = folder / "head.csv"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as source, head.open("wb") as target:
        target.writelines(itertools.islice(source, rows + 1))
    return head


def warm_up(path: Path, spec: Any, folder: Path) -> None:
    """The limit once on the file's first rows, so its timing leaves out first-call costs."""
    validation_limit([head_file(path, folder)], spec, folder / "head-accepted.parquet")


def warm_up_pandera(path: Path, spec: Any, folder: Path) -> None:
    """The peer once on the file's first rows, so its timing leaves out pandera's first-call costs."""
    pandera_peer([head_file(path, folder)], spec)
