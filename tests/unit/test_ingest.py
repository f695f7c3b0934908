import pytest

from nightshift.ingest import DropError, read_drop
from nightshift.storage import open_store, partition_writer


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def land(store, key_prefix: str, text: str, name: str = "part-00000.csv") -> None:
    with partition_writer(store, key_prefix, {}) as folder:
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
    with partition_writer(store, "landing/credit_risk/dt=2026-10-05", {}):
        pass
    with pytest.raises(DropError, match=r"dt=2026-10-05: the drop is marked complete \(_SUCCESS\) but holds no data"):
        list(read_drop(store, demo_spec, "2026-10-05"))
