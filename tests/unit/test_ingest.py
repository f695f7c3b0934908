import pytest

from nightshift.ingest import DropError, read_drop
from nightshift.labels import read_labels
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


def test_drop_marked_complete_without_csv(store, demo_spec):
    land(store, "landing/credit_risk/dt=2026-10-04", "x", name="notes.txt")
    with pytest.raises(DropError, match=r"holds no \.csv file"):
        list(read_drop(store, demo_spec, "2026-10-04"))


def test_labels_reject_bad_targets_and_keep_the_last_duplicate(store, demo_spec):
    land(
        store,
        "landing/credit_risk/labels/dt=2026-10-02",
        "application_id,defaulted\na1,0\na2,yes\n,1\na1,1\n",
        "labels.csv",
    )
    accepted, rejected = read_labels(store, demo_spec, "2026-10-02")
    assert accepted.to_dict("records") == [{"application_id": "a1", "defaulted": 1}]
    reasons = dict(zip(rejected["_row_number"], rejected["_reasons"], strict=True))
    assert reasons[2] == "defaulted: 'yes' is not a label; expected 0 or 1"
    assert reasons[3] == "application_id: missing id"
    assert reasons[1] == "application_id: superseded by a later row"


def test_no_label_drop_is_none(store, demo_spec):
    assert read_labels(store, demo_spec, "2026-10-09") is None
