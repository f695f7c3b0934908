import io
import re

import pandas as pd
import pytest

from nightshift.readers import Dialect
from nightshift.stages.ingest import (
    READ_KIND,
    READ_PROBLEM,
    DropError,
    frame_to_csv_bytes,
    read_drop,
    read_source_chunks,
)
from nightshift.stores.objects import flat_partition_writer, open_store


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def land(store, key_prefix: str, text: str, name: str = "part-00000.csv") -> None:
    with flat_partition_writer(store, key_prefix, {}) as folder:
        (folder / name).write_text(text)


HEADER = "application_id,application_ts,age,annual_income,loan_amount,loan_term_months,credit_score,debt_to_income,employment_years,open_accounts,home_ownership,purpose"


def test_drop_is_read_as_strings_with_empty_cells_missing(store, demo_spec):
    land(
        store,
        "landing/credit_risk/dt=2026-10-01",
        HEADER + "\na1,2026-10-01T00:00:00Z,30,50000,1000,12,700,0.3,,2,RENT,car\n",
    )
    [(key, frame)] = list(read_drop(store, demo_spec, "2026-10-01"))
    assert key.endswith("part-00000.csv")
    assert frame.loc[0, "age"] == "30"
    assert frame["employment_years"].isna().all()
    assert list(frame.columns) == demo_spec.raw_columns


def test_missing_columns_name_the_file_and_the_expected_header(store, demo_spec):
    land(store, "landing/credit_risk/dt=2026-10-02", "application_id,age,colour\na1,30,red\n")
    with pytest.raises(DropError) as caught:
        list(read_drop(store, demo_spec, "2026-10-02"))
    message = str(caught.value)
    assert "dt=2026-10-02/part-00000.csv" in message
    assert "missing columns ['application_ts', 'annual_income'" in message
    assert "unexpected columns ['colour']" in message
    assert "Expected the header: " + HEADER in message


def test_empty_file_is_a_clear_error(store, demo_spec):
    land(store, "landing/credit_risk/dt=2026-10-03", "")
    with pytest.raises(DropError, match=r"dt=2026-10-03/part-00000.csv: the file is empty"):
        list(read_drop(store, demo_spec, "2026-10-03"))


def test_a_file_the_format_cannot_read_fails_naming_it_instead_of_being_skipped(store, demo_spec):
    land(store, "landing/credit_risk/dt=2026-10-04", "x", name="notes.txt")
    with pytest.raises(DropError, match=r"dt=2026-10-04: 1 file of the drop cannot be read: notes\.txt is a text"):
        list(read_drop(store, demo_spec, "2026-10-04"))


def test_a_drop_marked_complete_with_no_data_file(store, demo_spec):
    with flat_partition_writer(store, "landing/credit_risk/dt=2026-10-05", {}):
        pass
    with pytest.raises(DropError, match=r"dt=2026-10-05: the drop is marked complete \(_SUCCESS\) but holds no data"):
        list(read_drop(store, demo_spec, "2026-10-05"))


def test_a_row_the_reader_cannot_read_fails_naming_file_line_and_offset_unless_rows_are_kept(store):
    key = "landing/credit_risk/labels/dt=2026-10-06"
    land(store, key, "application_id,defaulted\na1,0\na2,1,surplus\n", "labels.csv")
    with pytest.raises(DropError) as caught:
        list(read_source_chunks(store, f"{key}/labels.csv", ["application_id", "defaulted"]))
    assert str(caught.value) == (
        f"{store.url_for(key)}/labels.csv: line 3 (from byte offset 30): 3 fields where the header has 2 "
        "(extra values 'surplus')"
    )

    [frame] = list(read_source_chunks(store, f"{key}/labels.csv", ["application_id", "defaulted"], row_problems=True))
    assert frame["application_id"].tolist() == ["a1", "a2"]
    assert frame[READ_PROBLEM].tolist() == [None, "line 3: 3 fields where the header has 2 (extra values 'surplus')"]
    assert frame[READ_KIND].tolist() == [None, "row with the wrong number of fields"]


def test_the_dialect_is_the_specs_encoding_and_delimiter(store):
    key = "landing/credit_risk/dt=2026-10-07"
    with flat_partition_writer(store, key, {}) as folder:
        (folder / "part.csv").write_bytes("id;name\n1;Zoë\n2;\n".encode("latin-1"))
    [frame] = list(read_source_chunks(store, f"{key}/part.csv", ["id", "name"], dialect=Dialect("latin-1", ";")))
    assert frame.to_dict("list") == {"id": ["1", "2"], "name": ["Zoë", None]}


def test_arrow_and_the_exact_reader_read_a_valid_file_alike(tmp_path):
    """The fast path hands over to the exact reader by row count, so both must see the same rows and values."""
    from nightshift.readers import csv as csv_reader

    path = tmp_path / "odd.csv"
    path.write_bytes(b'a,b,c\r\n1,"x, y",""\r\n\r\n2,"say ""hi""",z\r\n3,a"b,\r\n"4",  ,"multi\r\nline"\r\n5,,\r\n')
    dialect = Dialect()
    header = ["a", "b", "c"]
    scan = csv_reader._Scan(nul=False, breaks=())
    fast = pd.concat(
        [table.to_pandas() for table in csv_reader._arrow_chunks(path, header, header, dialect, 100, scan)],
        ignore_index=True,
    )
    exact = pd.concat(
        [
            table.to_pandas()
            for table in csv_reader._exact_chunks(path, "odd.csv", header, header, dialect, 2, 0, False)
        ],
        ignore_index=True,
    )
    assert fast.to_dict("records") == exact.to_dict("records")
    assert exact["b"].tolist() == ["x, y", 'say "hi"', 'a"b', "  ", None]
    assert exact["c"].tolist() == [None, "z", None, "multi\r\nline", None]


def test_the_spec_names_a_bad_encoding_or_delimiter(tmp_path):
    from nightshift.config import PROJECT_ROOT, SpecError, load_spec

    demo = (PROJECT_ROOT / "include" / "models" / "credit_risk.yaml").read_text()
    assert load_spec(PROJECT_ROOT / "include" / "models" / "credit_risk.yaml").sources.drop.encoding == "utf-8"
    for setting, message in (
        ("encoding: utf-9", "sources.drop.encoding: 'utf-9' is not an encoding Python knows"),
        ("encoding: utf-16", "sources.drop.encoding: 'utf-16' is not ASCII-compatible"),
        ("delimiter: ';;'", "sources.drop.delimiter: must be one character"),
    ):
        path = tmp_path / "credit_risk.yaml"
        path.write_text(demo.replace("format: csv}", f"format: csv, {setting}}}", 1))
        with pytest.raises(SpecError, match=re.escape(message)):
            load_spec(path)


def test_rejected_csv_cells_that_would_run_as_formulas_get_a_leading_quote():
    frame = pd.DataFrame(
        {
            "value": ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "'quoted", "-5.5", "+1e3", "plain", None],
            "_row_number": range(11),
        }
    )
    written = pd.read_csv(io.BytesIO(frame_to_csv_bytes(frame)), dtype=str, keep_default_na=False)
    assert written["value"].tolist() == [
        "'=1+1",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "'\rx",
        "''quoted",
        "-5.5",
        "+1e3",
        "plain",
        "",
    ]
    back = written["value"].where(~written["value"].str.startswith("'"), written["value"].str[1:])
    assert back.tolist()[:9] == ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "'quoted", "-5.5", "+1e3"]
    assert frame["value"].iloc[0] == "=1+1"


def test_formula_cells_are_found_alike_by_arrow_and_by_pythons_regular_expressions() -> None:
    """Arrow's expressions stand in for Python's: the same cells are quoted, Unicode digits included."""
    from nightshift.stages import ingest

    cases: list[str | None] = [
        "=SUM(A1)",
        "+1",
        "-5",
        "-5.",
        "-.5",
        "+1.5e3",
        "-1e",
        "-\u0663",
        "+\u0661\u0662.\u0665",
        "@x",
        "\tx",
    ]
    cases += ["\rx", "'x", "x", "", None, "-5\n", "- 5", "-5 ", "+-5", "-0x1", "==", "-", "+", ".5", "-1E+10"]
    cases += ["-1e-3x", "-\u0661e\u0663", "ç", "-5\r", "="]
    values = pd.Series(cases, dtype=object)
    by_python = values.str.startswith(ingest._FORMULA_START, na=False) & ~values.str.fullmatch(
        ingest._PLAIN_NUMBER, na=False
    )
    found = ingest._risky_cells(values)
    assert found is not None and found.tolist() == by_python.tolist()
    assert found.sum() == 17
    mixed = ingest._risky_cells(pd.Series(["=a", 5, None], dtype=object))
    assert mixed is not None and mixed.tolist() == [True, False, False]
