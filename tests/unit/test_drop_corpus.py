"""A corpus of bad and odd data drops, each run through the night's validation as the DAG runs it.

Every case says what must come out: how many rows are curated and which are quarantined with which reason, or
that the night fails, with what its message must name. For every case the accounting holds: rows received =
rows curated + rows quarantined (a failed night curates nothing and holds its clean rows back), and the files
written agree with the result.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from nightshift.config import settings
from nightshift.readers import csv as csv_reader
from nightshift.runs import RunInfo
from nightshift.stages.night import Night
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stores.objects import MARKER, flat_partition_writer, open_store, partition_files

MODEL = "credit_risk"
DAY = dt.date(2026, 10, 1)
RUN = RunInfo("manual__corpus", "manual")
COLUMNS = [
    "application_id",
    "application_ts",
    "age",
    "annual_income",
    "loan_amount",
    "loan_term_months",
    "credit_score",
    "debt_to_income",
    "employment_years",
    "open_accounts",
    "home_ownership",
    "purpose",
]
HEADER = ",".join(COLUMNS)
ROWS = 120


def values(index: int, prefix: str = "A", **changes: str) -> list[str]:
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
    return list(row.values())


def text(
    rows: int = ROWS,
    *,
    prefix: str = "A",
    changes: dict[int, dict[str, str]] | None = None,
    lines: dict[int, str] | None = None,
    header: str = HEADER,
    delimiter: str = ",",
    newline: str = "\n",
) -> str:
    """A drop file's text: `rows` good rows; `changes` alters values of data row i (1-based); `lines` replaces it."""
    changes, lines = changes or {}, lines or {}
    body = [
        lines[index] if index in lines else delimiter.join(values(index, prefix, **changes.get(index, {})))
        for index in range(1, rows + 1)
    ]
    return newline.join([header.replace(",", delimiter), *body]) + newline


def good(rows: int = ROWS, prefix: str = "A") -> bytes:
    return text(rows, prefix=prefix).encode()


def line(index: int, **changes: str) -> str:
    return ",".join(values(index, **changes))


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, bytes]
    curated: int | None = None
    """Rows curated; None when the night must fail."""
    quarantined: dict[Any, str] = field(default_factory=dict)
    """Row number (or (file, row number)) -> a phrase its reason must hold; exactly these rows are quarantined."""
    received: int | None = None
    """Rows received as the result counts them (default: curated + quarantined)."""
    message: tuple[str, ...] = ()
    """Phrases the failure message must hold (it always names a file or the drop)."""
    absent: tuple[str, ...] = ()
    """Phrases the failure message must not hold."""
    source: dict[str, str | list[str]] = field(default_factory=dict)
    """Overrides of sources.drop (encoding, delimiter)."""
    marker: bool = True
    chunk_rows: int = validate_tasks.CHUNK_ROWS
    cells: dict[tuple[int, str], str] = field(default_factory=dict)
    """(row number, column) -> the cell as written in rejected.csv."""


def bad_share(rows: int, bad: int) -> Case:
    lines = {index: line(index) + ",surplus" for index in range(3, 3 + bad)}
    return Case(
        "wrong_field_counts_over_the_bad_row_share",
        {"part-00000.csv": text(rows, lines=lines).encode()},
        received=rows,
        message=(
            f"{bad} of {rows} rows",
            "above the limit of 5.0% (validation.max_bad_row_share)",
            "row with the wrong number of fields",
            "line 4: 13 fields where the header has 12",
        ),
    )


def utf16_without_bom() -> bytes:
    return good().decode().encode("utf-16-le")


NO_DATA = "no data rows"
LONG_ID = "L" * 129
EXACT_ID = "E" * 128
CASES = [
    Case("clean_drop", {"part-00000.csv": good()}, curated=ROWS),
    Case(
        "upper_case_extension_is_read",
        {"part-00000.csv": good(), "part-00001.CSV": good(prefix="B")},
        curated=2 * ROWS,
    ),
    Case(
        "gzip_file_beside_csv_files_fails_naming_it",
        {"part-00000.csv": good(), "part-00001.CSV": good(prefix="B"), "part-00002.csv.gz": gzip.compress(good())},
        message=(
            "part-00002.csv.gz is a gzip-compressed file: set sources.drop.format to include 'csv.gz'",
            "reads files whose names end in .csv, in any case",
        ),
        absent=("part-00000.csv", "part-00001.CSV"),
    ),
    Case(
        "gzip_file_beside_csv_files_is_read_when_the_format_allows_it",
        {
            "part-00000.csv": good(),
            "part-00001.csv.gz": gzip.compress(
                text(prefix="G", lines={5: ",".join(values(5, "G")) + ",surplus"}).encode()
            ),
        },
        curated=2 * ROWS - 1,
        quarantined={("part-00001.csv.gz", 5): "line 6: 13 fields where the header has 12"},
        source={"format": ["csv", "csv.gz"]},
    ),
    Case(
        "truncated_gzip_fails_naming_it",
        {"part-00000.csv.gz": gzip.compress(good())[:-40]},
        source={"format": "csv.gz"},
        message=("part-00000.csv.gz: the gzip data ends early", "truncated"),
    ),
    Case(
        "text_file_in_the_drop_fails_naming_it",
        {"part-00000.csv": good(), "notes.txt": b"exported by job 42\n"},
        message=("notes.txt is a text file named otherwise", "Every file of a drop is read or the night fails"),
    ),
    Case(
        "every_unreadable_file_is_named",
        {"a.parquet": b"PAR1", "b.xlsx": b"PK\x03\x04", "c": b"x", "d.csv": good()},
        message=("3 files of the drop cannot be read", "a.parquet is a Parquet file", "b.xlsx is an Excel", "c is"),
    ),
    Case(
        "spark_side_files_are_not_skipped",
        {"part-00000.csv": good(), "_committed_5512": b"{}"},
        message=("_committed_5512",),
    ),
    Case(
        "drop_without_success_marker_is_not_complete",
        {"part-00000.csv": good()},
        marker=False,
        message=("has no _SUCCESS marker, so it is not complete", "1 file(s) are there so far"),
        absent=("marked complete",),
    ),
    Case("marker_alone_holds_no_data_file", {}, message=("marked complete (_SUCCESS) but holds no data file",)),
    Case(
        "file_in_a_subfolder_is_read",
        {"part-00000.csv": good(), "region=eu/part-00000.csv": good(prefix="E")},
        curated=2 * ROWS,
    ),
    Case(
        "thirteenth_field_is_quarantined_not_dropped",
        {"part-00000.csv": text(lines={7: line(7) + ",surplus"}).encode()},
        curated=ROWS - 1,
        quarantined={7: "line 8: 13 fields where the header has 12 (extra values 'surplus')"},
    ),
    Case(
        "missing_field_is_quarantined_not_padded",
        {"part-00000.csv": text(lines={9: line(9).rsplit(",", 1)[0]}).encode()},
        curated=ROWS - 1,
        quarantined={9: "line 10: 11 fields where the header has 12 (no value for purpose)"},
    ),
    Case(
        "nul_byte_is_quarantined_not_removed",
        {"part-00000.csv": text(changes={4: {"home_ownership": "RE\x00NT"}}).encode()},
        curated=ROWS - 1,
        quarantined={4: "line 5: a NUL byte (0x00) at byte offset"},
        cells={(4, "home_ownership"): "RE\\x00NT"},
    ),
    Case(
        "undecodable_byte_is_quarantined_with_its_offset",
        {"part-00000.csv": text(changes={6: {"application_id": "A\udce9"}}).encode("utf-8", "surrogateescape")},
        curated=ROWS - 1,
        quarantined={6: "line 7: byte 0xe9 at byte offset"},
        cells={(6, "application_id"): "A\\xe9"},
    ),
    Case(
        "latin1_rows_read_as_utf8_are_quarantined",
        {
            "part-00000.csv": text(changes={2: {"application_id": "Zoë1"}, 3: {"application_id": "Zoë2"}}).encode(
                "latin-1"
            )
        },
        curated=ROWS - 2,
        quarantined={2: "is not valid utf-8 (sources.drop.encoding)", 3: "line 4: byte 0xeb"},
    ),
    Case(
        "latin1_drop_with_latin1_encoding",
        {"part-00000.csv": text(changes={2: {"application_id": "Zoë1"}}).encode("latin-1")},
        curated=ROWS,
        source={"encoding": "latin-1"},
    ),
    Case(
        "cp1252_drop_with_cp1252_encoding",
        {"part-00000.csv": text(changes={5: {"application_id": "€5"}}).encode("cp1252")},
        curated=ROWS,
        source={"encoding": "cp1252"},
    ),
    Case(
        "latin1_header_read_as_utf8_fails_with_a_hint",
        {"part-00000.csv": text(header=HEADER + ",région").replace("car\n", "car,x\n").encode("latin-1")},
        message=("part-00000.csv: line 1 (the header), byte 0xe9 at offset", "Is the file Windows-1252 (cp1252)?"),
    ),
    Case(
        "gzip_named_csv_says_it_looks_like_gzip",
        {"part-00000.csv": gzip.compress(good())},
        message=("part-00000.csv: byte 0x8b at offset 1: this looks like gzip",),
        absent=(NO_DATA, "UnicodeDecodeError"),
    ),
    Case(
        "xlsx_named_csv_says_it_is_a_zip",
        {"part-00000.csv": b"PK\x03\x04" + bytes(range(256))},
        message=("part-00000.csv: the bytes 0x50 0x4b 0x03 0x04 at offset 0: this looks like a ZIP archive",),
    ),
    Case(
        "utf16_with_bom_says_utf16",
        {"part-00000.csv": good().decode().encode("utf-16")},
        message=("part-00000.csv: the bytes 0xff 0xfe at offset 0 are a UTF-16 byte-order mark", "Export it as UTF-8"),
        absent=(NO_DATA,),
    ),
    Case(
        "utf16_without_bom_says_utf16",
        {"part-00000.csv": utf16_without_bom()},
        message=("part-00000.csv: line 1, byte 0x00 at offset 1", "UTF-16 text without a byte-order mark"),
    ),
    Case(
        "binary_file_says_binary",
        {"part-00000.csv": bytes([7, 0, 200, 1, 2, 3, 0, 0, 9]) * 40},
        message=("part-00000.csv: line 1, byte 0x00 at offset 1", "this looks like a binary file"),
    ),
    Case("utf8_bom_is_accepted", {"part-00000.csv": codecs.BOM_UTF8 + good()}, curated=ROWS),
    Case(
        "utf8_bom_with_latin1_encoding_asks_if_the_file_is_utf8",
        {"part-00000.csv": codecs.BOM_UTF8 + good()},
        source={"encoding": "latin-1"},
        message=("starts with the UTF-8 byte-order mark", "is 'latin-1': is the file UTF-8?"),
    ),
    Case(
        "semicolon_drop_with_comma_delimiter_asks_about_the_delimiter",
        {"part-00000.csv": text(delimiter=";").encode()},
        message=("part-00000.csv: the header has one column", "is the delimiter ';'?"),
        absent=(NO_DATA, "missing columns"),
    ),
    Case(
        "semicolon_drop_with_semicolon_delimiter",
        {"part-00000.csv": text(delimiter=";", changes={1: {"annual_income": "55000,5"}}).encode()},
        curated=ROWS - 1,
        quarantined={1: "annual_income: '55000,5' is not a number"},
        source={"delimiter": ";"},
    ),
    Case(
        "tab_drop_with_tab_delimiter",
        {"part-00000.csv": text(delimiter="\t").encode()},
        curated=ROWS,
        source={"delimiter": "\t"},
    ),
    Case(
        "missing_column_is_named_before_any_row_count",
        {"part-00000.csv": text(header=HEADER.replace(",credit_score", "")).replace(",700,", ",").encode()},
        message=("part-00000.csv: missing columns ['credit_score']",),
        absent=(NO_DATA, "minimum of 100"),
    ),
    Case(
        "column_in_the_wrong_case_is_pointed_out",
        {"part-00000.csv": text(header=HEADER.replace(",age,", ",Age,")).encode()},
        message=("missing columns ['age']", "found 'Age' for 'age'"),
    ),
    Case(
        "duplicated_column_fails",
        {"part-00000.csv": text(header=HEADER + ",purpose").replace("car\n", "car,car\n").encode()},
        message=("duplicated columns ['purpose']",),
    ),
    Case("header_only_has_no_data_rows", {"part-00000.csv": (HEADER + "\n").encode()}, message=(NO_DATA,), received=0),
    Case("empty_file_is_named", {"part-00000.csv": b""}, message=("part-00000.csv: the file is empty",)),
    Case(
        "blank_id_is_a_missing_id",
        {"part-00000.csv": text(changes={3: {"application_id": "   "}, 8: {"application_id": "   "}}).encode()},
        curated=ROWS - 2,
        quarantined={3: "application_id: '   ' is blank", 8: "is blank (only spaces); every row needs an id"},
    ),
    Case(
        "id_longer_than_the_warehouse_holds_is_quarantined",
        {"part-00000.csv": text(changes={5: {"application_id": LONG_ID}, 6: {"application_id": EXACT_ID}}).encode()},
        curated=ROWS - 1,
        quarantined={5: "is 129 characters long; the warehouse holds ids of at most 128"},
    ),
    Case("crlf_line_endings", {"part-00000.csv": text(newline="\r\n").encode()}, curated=ROWS),
    Case("old_mac_line_endings", {"part-00000.csv": text(newline="\r").encode()}, curated=ROWS),
    Case("blank_lines_are_not_rows", {"part-00000.csv": good() + b"\n\n\n"}, curated=ROWS),
    Case(
        "every_value_quoted",
        {"part-00000.csv": "\n".join('"' + row.replace(",", '","') + '"' for row in text().splitlines()).encode()},
        curated=ROWS,
    ),
    Case(
        "line_break_inside_a_quoted_extra_column",
        {"part-00000.csv": text(header=HEADER + ",note").replace("car\n", 'car,"two\nlines"\n').encode()},
        curated=ROWS,
    ),
    Case(
        "line_break_inside_a_category_is_quarantined_and_later_lines_stay_right",
        {"part-00000.csv": text(lines={2: line(2, home_ownership='"RE\nNT"'), 3: line(3) + ",surplus"}).encode()},
        curated=ROWS - 2,
        quarantined={2: "home_ownership: 'RE\nNT' is not one of", 3: "line 5: 13 fields"},
    ),
    Case(
        "carriage_return_inside_a_quoted_category_stays_in_its_row",
        {"part-00000.csv": text(lines={6: line(6, home_ownership='"RE\rNT"')}).encode()},
        curated=ROWS - 1,
        quarantined={6: "home_ownership: 'RE\rNT' is not one of"},
        cells={(6, "home_ownership"): "RE\rNT"},
    ),
    Case(
        "quote_never_closed_fails_naming_the_line",
        {"part-00000.csv": text(lines={110: line(110, purpose='"car')}).encode()},
        message=("part-00000.csv: line 111 (byte offset", "a quoted value opens here and is never closed", "11 lines"),
        absent=(NO_DATA,),
    ),
    Case(
        "formula_cells_are_neutralised_in_rejected_csv",
        {
            "part-00000.csv": text(
                changes={
                    2: {"home_ownership": '=HYPERLINK("http://x";"y")'},
                    3: {"purpose": "@SUM(A1)", "annual_income": "-5"},
                    4: {"home_ownership": "+1+1"},
                    5: {"purpose": "-2+3"},
                }
            ).encode()
        },
        curated=ROWS - 4,
        quarantined={2: "home_ownership", 3: "purpose", 4: "home_ownership", 5: "purpose"},
        cells={
            (2, "home_ownership"): '\'=HYPERLINK("http://x";"y")',
            (3, "purpose"): "'@SUM(A1)",
            (3, "annual_income"): "-5",
            (4, "home_ownership"): "'+1+1",
            (5, "purpose"): "'-2+3",
        },
    ),
    bad_share(ROWS, 20),
    Case(
        "problem_after_the_first_chunk_keeps_row_numbers",
        {"part-00000.csv": text(400, lines={350: line(350) + ",surplus"}).encode()},
        curated=399,
        quarantined={350: "line 351: 13 fields"},
        chunk_rows=100,
    ),
    Case(
        "problems_in_two_files_name_their_files",
        {
            "a.csv": text(lines={2: line(2) + ",surplus"}).encode(),
            "b.CSV": text(prefix="B", changes={4: {"application_id": "  "}}).encode(),
        },
        curated=2 * ROWS - 2,
        quarantined={("a.csv", 2): "line 3: 13 fields", ("b.CSV", 4): "is blank"},
    ),
]


def land(store: Any, case: Case) -> None:
    prefix = f"landing/{MODEL}/dt={DAY}"
    with flat_partition_writer(store, prefix, {}) as folder:
        for name, data in case.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
    if not case.marker:
        store.delete_prefix(f"{prefix}/{MARKER}")


def rejected(store: Any) -> pd.DataFrame:
    path = store.local_path(f"quarantine/{MODEL}/dt={DAY}/rejected.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else pd.DataFrame()


def curated_rows(store: Any) -> int:
    keys = partition_files(store, f"curated/{MODEL}/dt={DAY}", ".parquet")
    return sum(len(pd.read_parquet(store.local_path(key))) for key in keys)


def test_the_corpus_is_large_enough_and_named_uniquely() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_drop(case: Case, home: Any, demo_spec: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "ARROW_BLOCK_BYTES", 4096)
    spec = demo_spec.model_copy(
        update={
            "sources": demo_spec.sources.model_copy(
                update={"drop": demo_spec.sources.drop.model_copy(update=case.source)}
            )
        }
    )
    store = open_store(settings().store_uri)
    monkeypatch.setattr(validate_tasks, "night", lambda model, day: Night(spec, DAY, settings(), store))
    land(store, case)

    failure: str | None = None
    try:
        validate_tasks.validate(MODEL, DAY.isoformat(), RUN, chunk_rows=case.chunk_rows)
    except validate_tasks.ValidationFailed as exc:
        failure = str(exc)
    result = json.loads(store.read_bytes(f"validation/{MODEL}/dt={DAY}/result.json"))
    bad = rejected(store)

    assert result["rows"] == result["clean_rows"] + result["quarantined_rows"], result
    assert len(bad) == result["quarantined_rows"]
    assert curated_rows(store) == result["accepted_rows"]
    if case.curated is None:
        assert failure is not None, "the night passed"
        assert result["passed"] is False and result["accepted_rows"] == 0
        assert not store.exists(f"curated/{MODEL}/dt={DAY}/{MARKER}")
        assert "Traceback" not in failure and "Error:" not in failure
        assert store.url_for(f"landing/{MODEL}/dt={DAY}") in failure
        for phrase in case.message:
            assert phrase.lower() in failure.lower(), failure
        for phrase in case.absent:
            assert phrase.lower() not in failure.split("\n")[0].lower(), failure
        if case.received is not None:
            assert result["rows"] == case.received
        return

    assert failure is None, failure
    assert result["passed"] is True
    assert result["rows"] == result["accepted_rows"] + result["quarantined_rows"]
    assert result["accepted_rows"] == case.curated
    assert result["rows"] == (case.received if case.received is not None else case.curated + len(case.quarantined))
    several = "_source_file" in bad.columns
    found = {
        ((row["_source_file"].rsplit("/", 1)[1], int(row["_row_number"])) if several else int(row["_row_number"])): row
        for _, row in bad.iterrows()
    }
    assert set(found) == set(case.quarantined)
    for where, phrase in case.quarantined.items():
        assert phrase in found[where]["_reasons"], found[where]["_reasons"]
    for (row_number, column), cell in case.cells.items():
        assert found[row_number][column] == cell
