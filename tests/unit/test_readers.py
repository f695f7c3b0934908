"""The drop readers behind the reader seam: gzipped CSV and Parquet read as the CSV reader reads, row for row.

Every file here is written by the real gzip module or by pyarrow; every frame is checked by what the validation
then makes of it, so a format cannot change which rows are curated or why one is quarantined.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshift.config import PROJECT_ROOT, Feature, ModelSpec, Source, SpecError, load_spec, settings
from nightshift.readers import READ_KIND, READ_PROBLEM, READERS, Dialect, DropError, reader_for, reader_for_file
from nightshift.runs import RunInfo
from nightshift.stages.ingest import drop_files, read_drop, read_source_chunks
from nightshift.stages.labels.parse import read_labels
from nightshift.stages.night import Night
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stages.validate.checks import validate_frame
from nightshift.stores.objects import ObjectStore, flat_partition_writer, open_store, partition_files
from tests.unit.test_drop_corpus import COLUMNS, HEADER

MODEL = "credit_risk"
DAY = dt.date(2026, 10, 1)
LABEL = "file:///drop/part.csv.gz"
NOT_UTF8 = "row with bytes that are not valid utf-8"


def csv_row(index: int, prefix: str = "A", **changes: str) -> str:
    row = {
        "application_id": f"{prefix}{index:05d}",
        "application_ts": "2026-10-01T10:00:00Z",
        "age": str(20 + index % 60),
        "annual_income": "55000.5",
        "loan_amount": "12000",
        "loan_term_months": "36",
        "credit_score": "700",
        "debt_to_income": "0.3",
        "employment_years": "",
        "open_accounts": "4",
        "home_ownership": "RENT",
        "purpose": "car",
    }
    row.update(changes)
    return ",".join(row.values())


def csv_text(rows: int, prefix: str = "A", lines: dict[int, str] | None = None) -> bytes:
    """`rows` good data rows; `lines` replaces data row i (1-based) with the given line."""
    lines = lines or {}
    body = [lines.get(index, csv_row(index, prefix)) for index in range(1, rows + 1)]
    return ("\n".join([HEADER, *body]) + "\n").encode("utf-8", "surrogateescape")


def read(
    path: Path, file_format: str, columns: list[str], chunk_rows: int = 1000, **options: Any
) -> list[pd.DataFrame]:
    dialect = options.pop("dialect", Dialect())
    return list(
        reader_for(file_format).chunks(
            path, options.pop("label", LABEL), columns, dialect, chunk_rows=chunk_rows, row_problems=True, **options
        )
    )


def whole(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


# gzip-compressed CSV


def test_reader_for_file_picks_the_allowed_reader_by_name():
    assert reader_for_file("part.CSV.GZ", ("csv", "csv.gz")) is READERS["csv.gz"]
    assert reader_for_file("part.gz", ("csv.gz",)) is READERS["csv.gz"]
    assert reader_for_file("part.csv", ("csv.gz", "csv")) is READERS["csv"]
    assert reader_for_file("part.PQ", ("parquet",)) is READERS["parquet"]
    assert reader_for_file("part.parquet", ("csv", "csv.gz")) is None
    assert reader_for_file("part.csv.gzip", tuple(READERS)) is None


def test_gzip_csv_reads_exactly_as_the_plain_csv(tmp_path):
    text = b'id;name;note\r\n1;Zo\xeb;\r\n2;"a;b";"two\r\nlines"\r\n\r\n3;;x\r\n' + b"".join(
        f"{index};n{index};\r\n".encode() for index in range(4, 40)
    )
    (tmp_path / "part.csv").write_bytes(text)
    (tmp_path / "part.csv.gz").write_bytes(gzip.compress(text))
    dialect = Dialect("latin-1", ";")
    plain = read(tmp_path / "part.csv", "csv", ["id", "name", "note"], 7, dialect=dialect)
    packed = read(tmp_path / "part.csv.gz", "csv.gz", ["id", "name", "note"], 7, dialect=dialect)
    assert [len(frame) for frame in packed] == [len(frame) for frame in plain] == [7, 7, 7, 7, 7, 4]
    pd.testing.assert_frame_equal(whole(packed), whole(plain))
    assert whole(packed)["name"].tolist()[:3] == ["Zoë", "a;b", None]
    assert whole(packed)["note"].tolist()[1] == "two\r\nlines"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["part.csv", "part.csv.gz"]


def test_gzip_of_several_members_is_read_whole(tmp_path):
    text = csv_text(30)
    (tmp_path / "part.gz").write_bytes(gzip.compress(text[:500]) + gzip.compress(text[500:]))
    frame = whole(read(tmp_path / "part.gz", "csv.gz", COLUMNS))
    assert frame["application_id"].tolist() == [f"A{index:05d}" for index in range(1, 31)]


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda data: data[: len(data) // 2], "the gzip data ends early, after "),
        (lambda data: data[:30] + bytes([data[30] ^ 0xFF]) + data[31:], "the gzip data is corrupt after "),
        (lambda data: data[:-8] + bytes(8), "the gzip data is corrupt after "),
        (lambda data: csv_text(3), "not a gzip file: it starts with 0x61 0x70, not the gzip signature 0x1f 0x8b"),
        (lambda data: b"", "the file is empty (0 bytes); expected gzip-compressed CSV"),
        (lambda data: gzip.compress(b""), "decompresses to nothing (0 bytes)"),
        (lambda data: gzip.compress(data), "decompresses to gzip data again: it was compressed twice"),
    ],
    ids=["truncated", "flipped_byte", "bad_checksum", "not_gzip", "empty", "empty_text", "twice"],
)
def test_damaged_gzip_fails_naming_the_file_and_what_happened(tmp_path, damage, phrase):
    (tmp_path / "part.csv.gz").write_bytes(damage(gzip.compress(csv_text(2000))))
    with pytest.raises(DropError) as caught:
        read(tmp_path / "part.csv.gz", "csv.gz", COLUMNS)
    assert str(caught.value).startswith(f"{LABEL}: "), caught.value
    assert phrase in str(caught.value)
    assert [path.name for path in tmp_path.iterdir()] == ["part.csv.gz"]


def test_gzip_rows_that_cannot_be_read_keep_their_reasons(tmp_path):
    data = csv_text(5, lines={2: csv_row(2) + ",surplus", 4: csv_row(4, application_id="A\udce9")})
    (tmp_path / "part.csv.gz").write_bytes(gzip.compress(data))
    [frame] = read(tmp_path / "part.csv.gz", "csv.gz", COLUMNS)
    assert frame[READ_PROBLEM].tolist()[0] is None
    assert frame[READ_PROBLEM][1] == "line 3: 13 fields where the header has 12 (extra values 'surplus')"
    offset = data.index(b"A\xe9") + 1
    assert frame[READ_PROBLEM][3] == (
        f"line 5: byte 0xe9 at byte offset {offset} is not valid utf-8 (sources.drop.encoding), shown as \\xe9 "
        "(in the decompressed text)"
    )
    assert frame[READ_KIND].tolist()[1:4] == ["row with the wrong number of fields", None, NOT_UTF8]
    assert frame["application_id"][3] == "A\\xe9"

    with pytest.raises(DropError) as caught:
        list(
            READERS["csv.gz"].chunks(
                tmp_path / "part.csv.gz", LABEL, COLUMNS, Dialect(), chunk_rows=9, row_problems=False
            )
        )
    assert str(caught.value).startswith(f"{LABEL}: line 3 (from byte offset ")
    assert str(caught.value).endswith("Line numbers and byte offsets count in the decompressed text")


def test_a_csv_file_that_is_gzip_points_to_the_csv_gz_format(tmp_path):
    (tmp_path / "part.csv").write_bytes(gzip.compress(csv_text(3)))
    with pytest.raises(DropError) as caught:
        read(tmp_path / "part.csv", "csv", COLUMNS, label="file:///drop/part.csv")
    assert "file:///drop/part.csv: byte 0x8b at offset 1: this looks like gzip" in str(caught.value)
    assert "name the file .csv.gz and include 'csv.gz' in sources.drop.format" in str(caught.value)


# Parquet


def with_bool_feature(spec: ModelSpec) -> ModelSpec:
    features = {**spec.features, "first_loan": Feature(type="bool")}
    return spec.model_copy(update={"features": features})


def typed_table(rows: int) -> pa.Table:
    """Demo rows in the Arrow types a Parquet export gives them; rows 3-6 (when there are 6) break one rule each."""
    index = np.arange(1, rows + 1)
    age = (20 + index % 60).astype(np.int64)
    credit = np.full(rows, 700.0)
    home = ["RENT"] * rows
    purpose: list[str | None] = ["car"] * rows
    if rows >= 6:
        age[2], credit[3], home[4], purpose[5] = 150, 700.5, "CASTLE", None
    employment = [None if position % 3 else 2.5 for position in range(rows)]
    return pa.table(
        {
            "application_id": pa.array([f"A{value:05d}" for value in index]).dictionary_encode(),
            "application_ts": pa.array([dt.datetime(2026, 10, 1, 10)] * rows, pa.timestamp("us", "UTC")),
            "age": pa.array(age, pa.int64()),
            "annual_income": pa.array(np.full(rows, 55000.5), pa.float64()),
            "loan_amount": pa.array(np.full(rows, 12000.0), pa.float64()),
            "loan_term_months": pa.array(np.full(rows, 36), pa.int32()),
            "credit_score": pa.array(credit, pa.float64()),
            "debt_to_income": pa.array(np.full(rows, 0.3), pa.float32()),
            "employment_years": pa.array(employment, pa.float64()),
            "open_accounts": pa.array(np.full(rows, 4), pa.int16()),
            "home_ownership": pa.array(home).dictionary_encode(),
            "purpose": pa.array(purpose, pa.string()),
            "first_loan": pa.array([position % 2 == 0 for position in range(rows)], pa.bool_()),
            "unused": pa.array([[1, 2]] * rows),
        }
    )


def csv_of(table: pa.Table) -> bytes:
    """The table as an exporting job would write it as CSV: the values as people write them, nulls empty."""
    names = [name for name in table.column_names if name != "unused"]
    lines = [",".join(names)]
    for row in table.select(names).to_pylist():
        cells = []
        for name, value in row.items():
            if value is None:
                cells.append("")
            elif isinstance(value, dt.datetime):
                cells.append(value.strftime("%Y-%m-%dT%H:%M:%SZ"))
            elif isinstance(value, bool):
                cells.append(str(value).lower())
            elif name == "debt_to_income":
                cells.append("0.3")
            elif isinstance(value, float) and value.is_integer():
                cells.append(str(int(value)))
            else:
                cells.append(str(value))
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def test_parquet_types_read_as_the_text_a_csv_holds_and_validate_alike(tmp_path, demo_spec):
    spec = with_bool_feature(demo_spec)
    table = typed_table(40)
    pq.write_table(table, tmp_path / "part.parquet", row_group_size=16)
    (tmp_path / "part.csv").write_bytes(csv_of(table))
    from_parquet = whole(read(tmp_path / "part.parquet", "parquet", spec.raw_columns, 15))
    from_csv = whole(read(tmp_path / "part.csv", "csv", spec.raw_columns, 15))
    assert from_parquet.dtypes.eq(object).all() and READ_PROBLEM not in from_parquet.columns
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    assert from_parquet.iloc[0].to_dict() == {
        "application_id": "A00001",
        "application_ts": "2026-10-01T10:00:00Z",
        "age": "21",
        "annual_income": "55000.5",
        "loan_amount": "12000",
        "loan_term_months": "36",
        "credit_score": "700",
        "debt_to_income": "0.3",
        "employment_years": "2.5",
        "open_accounts": "4",
        "home_ownership": "RENT",
        "purpose": "car",
        "first_loan": "true",
    }
    parquet_outcome = validate_frame(from_parquet, spec, "part.parquet", whole_batch=False)
    csv_outcome = validate_frame(from_csv, spec, "part.csv", whole_batch=False)
    pd.testing.assert_frame_equal(parquet_outcome.accepted, csv_outcome.accepted)
    pd.testing.assert_frame_equal(parquet_outcome.quarantined, csv_outcome.quarantined)
    reasons = dict(
        zip(parquet_outcome.quarantined["_row_number"], parquet_outcome.quarantined["_reasons"], strict=True)
    )
    assert sorted(reasons) == [3, 4, 5, 6]
    assert "age" in reasons[3] and "credit_score" in reasons[4] and "CASTLE" in reasons[5] and "purpose" in reasons[6]
    assert parquet_outcome.accepted["credit_score"].dtype == "Int64"
    assert parquet_outcome.accepted["first_loan"].tolist()[:2] == [True, False]


PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("stamps", "text", "stamp"),
    [
        (pa.array([dt.datetime(2026, 10, 1, 10, 30)], pa.timestamp("ms")), "2026-10-01T10:30:00", "2026-10-01 10:30"),
        (
            pa.array([dt.datetime(2026, 10, 1, 12, 30, tzinfo=PLUS_TWO)], pa.timestamp("s", "Europe/Paris")),
            "2026-10-01T10:30:00Z",
            "2026-10-01 10:30",
        ),
        (
            pa.array([dt.datetime(2026, 10, 1, 10, 30, 0, 250, tzinfo=dt.UTC)], pa.timestamp("ns", "UTC")),
            "2026-10-01T10:30:00.000250000Z",
            "2026-10-01 10:30:00.000250",
        ),
        (pa.array([dt.date(2026, 10, 1)], pa.date32()), "2026-10-01", "2026-10-01"),
    ],
    ids=["naive_ms", "paris", "ns_fraction", "date"],
)
def test_parquet_timestamps_and_dates_are_iso_text_the_validation_reads(tmp_path, demo_spec, stamps, text, stamp):
    table = typed_table(1).drop_columns(["first_loan", "unused"]).set_column(1, "application_ts", stamps)
    pq.write_table(table, tmp_path / "part.pq")
    frame = whole(read(tmp_path / "part.pq", "parquet", demo_spec.raw_columns))
    assert frame["application_ts"].tolist() == [text]
    outcome = validate_frame(frame, demo_spec, "part.pq", whole_batch=False)
    assert len(outcome.quarantined) == 0, outcome.quarantined["_reasons"].tolist()
    assert outcome.accepted["application_ts"][0] == pd.Timestamp(stamp)


def test_parquet_nulls_are_missing_and_the_nulls_check_quarantines_them(tmp_path, demo_spec):
    table = typed_table(8).drop_columns(["unused"])
    table = table.set_column(2, "age", pa.array([30, None, 32, None, 34, 35, 36, 37], pa.int64()))
    pq.write_table(table, tmp_path / "part.parquet")
    (tmp_path / "part.csv").write_bytes(csv_of(table))
    frame = whole(read(tmp_path / "part.parquet", "parquet", demo_spec.raw_columns))
    assert frame["age"].tolist()[:4] == ["30", None, "32", None]
    assert frame["employment_years"].tolist()[:4] == ["2.5", None, None, "2.5"]
    outcome = validate_frame(frame, demo_spec, "x", whole_batch=False)
    expected = validate_frame(whole(read(tmp_path / "part.csv", "csv", demo_spec.raw_columns)), demo_spec, "x")
    pd.testing.assert_frame_equal(outcome.quarantined, expected.quarantined)
    assert outcome.quarantined["_row_number"].tolist() == [2, 4, 5, 6]
    assert outcome.quarantined["_reasons"][0].startswith("age: "), outcome.quarantined["_reasons"][0]


def test_a_list_column_keeps_its_rows_with_the_reason(tmp_path, demo_spec):
    table = typed_table(6).drop_columns(["first_loan"])
    purposes = pa.array([["car"], None, ["car", "home"], [], ["car"], ["car"]], pa.list_(pa.string()))
    pq.write_table(table.set_column(11, "purpose", purposes), tmp_path / "part.parquet")
    label = "file:///drop/part.parquet"
    [frame] = read(tmp_path / "part.parquet", "parquet", demo_spec.raw_columns, label=label)
    assert frame["purpose"].tolist() == ['["car"]', None, '["car", "home"]', "[]", '["car"]', '["car"]']
    assert frame[READ_PROBLEM][2] == (
        "row 3: purpose holds list<element: string> values (a Parquet list column) in part.parquet, not one value per "
        "cell; Parquet columns nightshift reads hold integers, floats, decimals, booleans, strings, UTF-8 binary, "
        "dates and timestamps (or nulls)"
    )
    assert frame[READ_PROBLEM].isna().tolist() == [False, True, False, False, False, False]
    assert set(frame[READ_KIND].dropna()) == {"row with a list, struct or map value"}
    outcome = validate_frame(frame, demo_spec, label, whole_batch=False)
    reasons = dict(zip(outcome.quarantined["_row_number"], outcome.quarantined["_reasons"], strict=True))
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert reasons[3] == frame[READ_PROBLEM][2]
    assert "purpose" in reasons[2] and "row 2" not in reasons[2]

    with pytest.raises(DropError) as caught:
        list(
            READERS["parquet"].chunks(
                tmp_path / "part.parquet", label, demo_spec.raw_columns, Dialect(), chunk_rows=4, row_problems=False
            )
        )
    assert str(caught.value).startswith(f"{label}: row 1: purpose holds list<element: string> values")


def test_struct_and_binary_columns(tmp_path):
    table = pa.table(
        {
            "id": pa.array([b"a1", b"a\xff", None, b"a4"], pa.binary()),
            "s": pa.array([{"x": 1}, None, {"x": 3}, {"x": 4}]),
            "d": pa.array([dt.timedelta(seconds=1)] * 4),
        }
    )
    pq.write_table(table, tmp_path / "part.parquet")
    [frame] = read(tmp_path / "part.parquet", "parquet", ["id", "s", "d"], label="file:///drop/part.parquet")
    assert frame["id"].tolist() == ["a1", "a\\xff", None, "a4"]
    assert frame["s"].tolist() == ['{"x": 1}', None, '{"x": 3}', '{"x": 4}']
    assert frame[READ_PROBLEM][1] == (
        "row 2: id: byte 0xff at byte 1 of the value is not valid UTF-8 (a Parquet binary column in part.parquet), "
        "shown as \\xff; binary columns must hold UTF-8 text"
    )
    assert frame[READ_PROBLEM][0].startswith("row 1: s holds struct<x: int64> values (a Parquet struct column)")
    assert frame[READ_KIND].tolist() == [
        "row with a list, struct or map value",
        NOT_UTF8,
        "row with a list, struct or map value",
        "row with a list, struct or map value",
    ]


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (lambda good: b"application_id,age\na1,30\n", "not a Parquet file: it starts with 0x61 0x70 0x70 0x6c"),
        (lambda good: good[: len(good) - 20], "not a Parquet file: it starts like one but does not end with"),
        (lambda good: b"PAR1", "so it is truncated (4 bytes"),
        (lambda good: b"", "not a Parquet file: it is empty (0 bytes)"),
        (lambda good: good[:4] + bytes(len(good) - 8) + good[-4:], "not a Parquet file: its footer cannot be read"),
    ],
    ids=["csv_text", "truncated", "magic_only", "empty", "zeroed"],
)
def test_a_file_that_is_not_parquet_fails_naming_it(tmp_path, data, phrase):
    pq.write_table(pa.table({"application_id": ["a1"], "age": [30]}), tmp_path / "good.parquet")
    (tmp_path / "part.parquet").write_bytes(data((tmp_path / "good.parquet").read_bytes()))
    with pytest.raises(DropError) as caught:
        read(tmp_path / "part.parquet", "parquet", ["application_id", "age"], label="file:///drop/part.parquet")
    assert str(caught.value).startswith("file:///drop/part.parquet: ")
    assert phrase in str(caught.value)


def test_missing_parquet_columns_are_named_like_a_csv_header(tmp_path, demo_spec):
    pq.write_table(
        typed_table(3).drop_columns(["age"]).rename_columns([*COLUMNS[:2], *COLUMNS[3:], "x", "y"]), tmp_path / "p.pq"
    )
    with pytest.raises(DropError, match=r"missing columns \['age'\]; unexpected columns \['x', 'y'\]"):
        read(tmp_path / "p.pq", "parquet", demo_spec.raw_columns)


def test_parquet_chunks_are_bounded_and_every_row_is_read_once(tmp_path):
    rows = 1000
    ids = [f"r{index}" for index in range(1, rows + 1)]
    raw = [value.encode() for value in ids]
    raw[776] = b"r\xfe777"
    pq.write_table(pa.table({"id": ids, "v": pa.array(raw, pa.binary())}), tmp_path / "p.parquet", row_group_size=7)
    assert pq.ParquetFile(tmp_path / "p.parquet").num_row_groups == 143
    frames = read(tmp_path / "p.parquet", "parquet", ["v", "id"], chunk_rows=50)
    assert [len(frame) for frame in frames] == [50] * 20
    frame = whole(frames)
    assert frame["id"].tolist() == ids and list(frame.columns[:2]) == ["v", "id"]
    [problem] = frame[READ_PROBLEM].dropna().tolist()
    assert problem.startswith("row 777: v: byte 0xfe at byte 1 of the value")
    assert len(read(tmp_path / "p.parquet", "parquet", ["id"], chunk_rows=300)) == 4


# Drops mixing formats, and the spec's format setting


def test_the_spec_accepts_one_format_or_a_list_and_names_the_valid_ones(tmp_path):
    assert Source(path="x/{dt}").formats == ("csv",)
    assert Source(path="x/{dt}", format=["parquet", "csv.gz"]).formats == ("parquet", "csv.gz")
    demo = (PROJECT_ROOT / "include" / "models" / "credit_risk.yaml").read_text()
    for setting, message in (
        (
            "format: csv.bz2",
            "sources.drop.format: 'csv.bz2' is not a drop format; use one of 'csv', 'csv.gz', 'parquet'",
        ),
        ("format: [csv, json]", "sources.drop.format: 'json' is not a drop format"),
        ("format: []", "sources.drop.format: list at least one format: 'csv', 'csv.gz', 'parquet'"),
        ("format: [csv, csv]", "sources.drop.format: 'csv' is listed twice"),
    ):
        path = tmp_path / "credit_risk.yaml"
        path.write_text(demo.replace("format: csv}", f"{setting}}}", 1))
        with pytest.raises(SpecError) as caught:
            load_spec(path)
        assert message in str(caught.value)
    path.write_text(demo.replace("format: csv}", "format: [csv, parquet, csv.gz]}", 1))
    assert load_spec(path).sources.drop.formats == ("csv", "parquet", "csv.gz")


def spec_with_formats(spec: ModelSpec, formats: Any, *, labels: bool = False) -> ModelSpec:
    field = "labels" if labels else "drop"
    source = getattr(spec.sources, field).model_copy(update={"format": formats})
    return spec.model_copy(update={"sources": spec.sources.model_copy(update={field: source})})


def land(store: ObjectStore, prefix: str, files: dict[str, bytes]) -> None:
    with flat_partition_writer(store, prefix, {}) as folder:
        for name, data in files.items():
            (folder / name).write_bytes(data)


def parquet_bytes(table: pa.Table, tmp_path: Path) -> bytes:
    pq.write_table(table, tmp_path / "scratch.parquet", row_group_size=25)
    return (tmp_path / "scratch.parquet").read_bytes()


def test_a_mixed_drop_is_validated_file_by_file_with_every_row_accounted_for(home, demo_spec, monkeypatch, tmp_path):
    spec = spec_with_formats(demo_spec, ["csv", "parquet", "csv.gz"])
    store = open_store(settings().store_uri)
    monkeypatch.setattr(validate_tasks, "night", lambda model, day: Night(spec, DAY, settings(), store))
    table = typed_table(90).drop_columns(["first_loan", "unused"])
    table = table.set_column(0, "application_id", pa.array([f"P{index:05d}" for index in range(1, 91)]))
    files = {
        "a.csv": csv_text(100, "C"),
        "b.parquet": parquet_bytes(table, tmp_path),
        "c.csv.gz": gzip.compress(csv_text(80, "G", lines={11: csv_row(11, "G") + ",surplus"})),
    }
    land(store, f"landing/{MODEL}/dt={DAY}", files)
    assert [Path(key).name for key in drop_files(store, spec, DAY.isoformat())] == list(files)
    assert [len(frame) for _, frame in read_drop(store, spec, DAY.isoformat())] == [100, 90, 80]

    validate_tasks.validate(MODEL, DAY.isoformat(), RunInfo("manual__mixed", "manual"), chunk_rows=40)
    result = json.loads(store.read_bytes(f"validation/{MODEL}/dt={DAY}/result.json"))
    rejected = pd.read_csv(io.BytesIO(store.read_bytes(f"quarantine/{MODEL}/dt={DAY}/rejected.csv")), dtype=str)
    curated = sum(
        pq.read_metadata(pa.BufferReader(store.read_bytes(key))).num_rows
        for key in partition_files(store, f"curated/{MODEL}/dt={DAY}", ".parquet")
    )
    assert result["passed"] is True
    assert result["rows"] == 270 == result["accepted_rows"] + result["quarantined_rows"]
    assert curated == result["accepted_rows"] == 270 - 5
    found = {
        (name.rsplit("/", 1)[1], int(row)): reason
        for name, row, reason in rejected[["_source_file", "_row_number", "_reasons"]].itertuples(index=False)
    }
    assert sorted(found) == [("b.parquet", row) for row in (3, 4, 5, 6)] + [("c.csv.gz", 11)]
    assert found[("c.csv.gz", 11)] == "line 12: 13 fields where the header has 12 (extra values 'surplus')"
    assert "credit_score" in found[("b.parquet", 4)] and "CASTLE" in found[("b.parquet", 5)]


def test_a_parquet_file_in_a_csv_drop_fails_naming_it_and_the_format_to_add(demo_spec, tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    table = typed_table(5).drop_columns(["first_loan", "unused"])
    land(
        store,
        f"landing/{MODEL}/dt={DAY}",
        {"a.csv": csv_text(5), "b.parquet": parquet_bytes(table, tmp_path), "c.GZ": b""},
    )
    with pytest.raises(DropError) as caught:
        drop_files(store, demo_spec, DAY.isoformat())
    message = str(caught.value)
    assert (
        "2 files of the drop cannot be read: b.parquet is a Parquet file: set sources.drop.format to include "
        in message
    )
    assert "'parquet'; c.GZ is a gzip-compressed file: set sources.drop.format to include 'csv.gz'" in message
    assert "Format 'csv' (sources.drop.format) reads files whose names end in .csv, in any case." in message
    assert "a.csv" not in message

    only_parquet = spec_with_formats(demo_spec, ["parquet", "csv.gz"])
    with pytest.raises(DropError) as caught:
        drop_files(store, only_parquet, DAY.isoformat())
    assert "a.csv is a CSV file: set sources.drop.format to include 'csv'" in str(caught.value)
    assert "Format [parquet, csv.gz] (sources.drop.format) reads files whose names end in .parquet or .pq" in str(
        caught.value
    )
    with pytest.raises(DropError, match=r"b\.parquet: Format 'csv' \(sources\.drop\.format\) reads files whose"):
        list(read_source_chunks(store, f"landing/{MODEL}/dt={DAY}/b.parquet", COLUMNS))


def test_labels_may_land_as_parquet(demo_spec, tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    spec = spec_with_formats(demo_spec, "parquet", labels=True)
    labels = pa.table({"application_id": ["a1", "a2", "a3", None], "defaulted": pa.array([1, 0, 7, 1], pa.int8())})
    land(store, f"landing/{MODEL}/labels/dt={DAY}", {"labels.parquet": parquet_bytes(labels, tmp_path)})
    judged = read_labels(store, spec, DAY.isoformat())
    assert judged is not None
    assert judged.accepted.to_dict("list") == {"application_id": ["a1", "a2"], "defaulted": [1, 0]}
    assert dict(zip(judged.rejected["_row_number"], judged.rejected["_reasons"], strict=True)) == {
        3: "defaulted: '7' is not a label; expected 0 or 1 (also 0.0/1.0 or true/false, any case)",
        4: "application_id: missing id",
    }
