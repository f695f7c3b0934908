from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from nightshift.config import PROJECT_ROOT, ExtraCheck, Feature, ModelSpec, load_spec
from nightshift.stages.validate.checks import validate_frame
from nightshift.stages.validate.outcome import ValidationOutcome, render_validation_page

DEMO = PROJECT_ROOT / "include" / "models" / "credit_risk.yaml"
SOURCE = "landing/credit_risk/dt=2026-10-05/part-0.csv"


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(DEMO)


def good_row(index: int) -> dict[str, Any]:
    return {
        "application_id": f"A{index:05d}",
        "application_ts": "2026-10-05T10:00:00Z",
        "age": str(20 + index % 60),
        "annual_income": "55000.5",
        "loan_amount": "12000",
        "loan_term_months": "36",
        "credit_score": "700",
        "debt_to_income": "0.3",
        "employment_years": None,
        "open_accounts": "4",
        "home_ownership": "RENT",
        "purpose": "car",
    }


def drop(rows: int = 200, **changes: dict[str, Any]) -> pd.DataFrame:
    """A drop of good rows read as strings; `changes` maps 'row<i>' to column overrides for data row i (1-based)."""
    records = [good_row(index) for index in range(rows)]
    for key, override in changes.items():
        records[int(key.removeprefix("row")) - 1].update(override)
    frame = pd.DataFrame(records, dtype=object)
    return frame.where(frame.notna(), np.nan)


def with_validation(spec: ModelSpec, **changes: Any) -> ModelSpec:
    return spec.model_copy(update={"validation": spec.validation.model_copy(update=changes)})


def check(outcome: ValidationOutcome, name: str) -> dict[str, Any]:
    return next(entry for entry in outcome.result["checks"] if entry["check"] == name)


def reasons_of(outcome: ValidationOutcome, row_number: int) -> str:
    rows = outcome.quarantined.loc[outcome.quarantined["_row_number"] == row_number, "_reasons"]
    assert len(rows) == 1, f"row {row_number} is not quarantined"
    return str(rows.iloc[0])


def test_clean_drop_is_accepted_with_typed_columns_in_order(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(150), spec, SOURCE)

    assert outcome.passed and outcome.failure_message is None
    assert len(outcome.accepted) == 150 and outcome.quarantined.empty
    accepted = outcome.accepted
    assert list(accepted.columns) == spec.raw_columns
    assert isinstance(accepted.index, pd.RangeIndex)
    assert accepted["application_id"].tolist()[:3] == ["A00000", "A00001", "A00002"]
    assert str(accepted["age"].dtype) == "Int64"
    assert accepted["annual_income"].dtype == np.float64
    assert str(accepted["application_ts"].dtype) == "datetime64[ns]"
    assert accepted["home_ownership"].dtype == object
    assert accepted["employment_years"].isna().all()
    assert accepted.loc[0, "application_ts"] == pd.Timestamp("2026-10-05 10:00:00")


def test_timestamps_with_offsets_become_naive_utc(spec: ModelSpec) -> None:
    raw = drop(row1={"application_ts": "2026-10-05T10:00:00+02:00"}, row2={"application_ts": "2026-10-05"})
    accepted = validate_frame(raw, spec, SOURCE).accepted

    assert accepted.loc[0, "application_ts"] == pd.Timestamp("2026-10-05 08:00:00")
    assert accepted.loc[1, "application_ts"] == pd.Timestamp("2026-10-05 00:00:00")


def test_out_of_range_row_is_quarantined_with_column_and_limit(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(row3={"annual_income": "1e9"}, row4={"annual_income": "-5.0"}), spec, SOURCE)

    assert outcome.passed
    assert reasons_of(outcome, 3) == "annual_income: 1e9 is above the maximum 5000000"
    assert reasons_of(outcome, 4) == "annual_income: -5.0 is below the minimum 0"
    assert len(outcome.accepted) == 198
    assert "A00002" not in set(outcome.accepted["application_id"])
    ranges = check(outcome, "ranges:annual_income")
    assert ranges["success"] is False and ranges["unexpected_count"] == 2
    assert ranges["expectation"] == "ExpectColumnValuesToBeBetween"
    assert ranges["examples"] == [{"row": 3, "value": "1e9"}, {"row": 4, "value": "-5.0"}]


def test_quarantine_keeps_raw_strings_and_row_numbers(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(row7={"age": "abc", "credit_score": "9000"}), spec, SOURCE)

    quarantined = outcome.quarantined
    assert list(quarantined.columns) == [*spec.raw_columns, "_row_number", "_reasons"]
    assert quarantined.loc[0, "_row_number"] == 7
    assert quarantined.loc[0, "age"] == "abc"
    assert quarantined.loc[0, "credit_score"] == "9000"
    assert quarantined.loc[0, "_reasons"] == (
        "age: 'abc' is not an integer; credit_score: 9000 is above the maximum 850"
    )


def test_unparseable_value_gets_a_type_reason_and_is_not_also_called_missing(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(row2={"age": "abc"}, row5={"credit_score": None}), spec, SOURCE)

    assert reasons_of(outcome, 2) == "age: 'abc' is not an integer"
    assert reasons_of(outcome, 5) == "credit_score: value is missing (the column is not nullable)"
    assert check(outcome, "types:age")["unexpected_count"] == 1
    assert check(outcome, "nulls:age")["unexpected_count"] == 0
    assert check(outcome, "nulls:credit_score")["unexpected_count"] == 1


@pytest.mark.parametrize(
    ("value", "ok"), [("42", True), ("42.0", True), (" 42 ", True), ("42.5", False), ("4e1", True)]
)
def test_integers_accept_whole_numbers_only(spec: ModelSpec, value: str, ok: bool) -> None:
    outcome = validate_frame(drop(row1={"age": value}), spec, SOURCE)

    assert (len(outcome.quarantined) == 0) is ok
    if ok:
        assert outcome.accepted.loc[0, "age"] == int(float(value))


def test_bad_timestamp_and_category_reasons(spec: ModelSpec) -> None:
    outcome = validate_frame(
        drop(row9={"application_ts": "yesterday", "home_ownership": "CONDO"}, row10={"purpose": None}), spec, SOURCE
    )

    assert reasons_of(outcome, 9) == (
        "application_ts: 'yesterday' is not a timestamp; home_ownership: 'CONDO' is not one of RENT, OWN, MORTGAGE"
    )
    assert reasons_of(outcome, 10) == "purpose: value is missing (the column is not nullable)"


def test_duplicate_ids_keep_the_first_occurrence(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(row8={"application_id": "A00002"}, row9={"application_id": "A00002"}), spec, SOURCE)

    assert outcome.quarantined["_row_number"].tolist() == [8, 9]
    assert reasons_of(outcome, 8) == "application_id: 'A00002' repeats the id of row 3"
    assert reasons_of(outcome, 9) == "application_id: 'A00002' repeats the id of row 3"
    assert (outcome.accepted["application_id"] == "A00002").sum() == 1
    assert outcome.accepted.loc[2, "application_id"] == "A00002"
    assert check(outcome, "unique_ids:application_id")["unexpected_count"] == 2


def test_warn_only_extra_check_keeps_the_row_but_counts_it(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(row4={"loan_amount": "300000"}, row6={"loan_amount": "250000"}), spec, SOURCE)

    assert outcome.passed and outcome.quarantined.empty and len(outcome.accepted) == 200
    extra = check(outcome, "extra:ExpectColumnValuesToBeBetween:loan_amount")
    assert extra["severity"] == "warn"
    assert extra["success"] is False
    assert extra["unexpected_count"] == 1
    assert extra["examples"] == [{"row": 4, "value": "300000"}]


def test_blocking_extra_row_check_quarantines(spec: ModelSpec) -> None:
    blocking = ExtraCheck(
        expectation="ExpectColumnValuesToBeBetween",
        kwargs={"column": "loan_amount", "min_value": 1000, "max_value": 250000},
        severity="block",
    )
    outcome = validate_frame(
        drop(row4={"loan_amount": "300000"}), with_validation(spec, extra_checks=[blocking]), SOURCE
    )

    assert reasons_of(outcome, 4) == (
        "loan_amount: 300000 failed ExpectColumnValuesToBeBetween(min_value=1000, max_value=250000)"
    )


def test_blocking_batch_level_extra_check_fails_the_drop(spec: ModelSpec) -> None:
    mean = ExtraCheck(
        expectation="ExpectColumnMeanToBeBetween",
        kwargs={"column": "credit_score", "min_value": 750, "max_value": 850},
        severity="block",
    )
    outcome = validate_frame(drop(), with_validation(spec, extra_checks=[mean]), SOURCE)

    assert not outcome.passed
    assert outcome.accepted.empty
    entry = check(outcome, "extra:ExpectColumnMeanToBeBetween:credit_score")
    assert entry["success"] is False and entry["observed_value"] == 700
    message = outcome.failure_message or ""
    assert message.startswith(SOURCE)
    assert "extra:ExpectColumnMeanToBeBetween:credit_score" in message and "validation.extra_checks[0]" in message


def test_extra_check_gx_cannot_run_is_a_failure_not_a_traceback(spec: ModelSpec) -> None:
    impossible = ExtraCheck(
        expectation="ExpectColumnValuesToBeDecreasing", kwargs={"column": "home_ownership"}, severity="block"
    )
    outcome = validate_frame(drop(), with_validation(spec, extra_checks=[impossible]), SOURCE)

    assert not outcome.passed
    entry = check(outcome, "extra:ExpectColumnValuesToBeDecreasing:home_ownership")
    assert entry["success"] is False and entry["error"]
    assert "could not run" in (outcome.failure_message or "")
    assert "Traceback" not in json.dumps(outcome.result)


def test_multi_column_extra_check_names_both_columns(spec: ModelSpec) -> None:
    pair = ExtraCheck(
        expectation="ExpectColumnPairValuesAToBeGreaterThanB",
        kwargs={"column_A": "annual_income", "column_B": "loan_amount"},
        severity="block",
    )
    outcome = validate_frame(drop(row5={"loan_amount": "600000"}), with_validation(spec, extra_checks=[pair]), SOURCE)

    assert outcome.quarantined["_row_number"].tolist() == [5]
    assert "annual_income=55000.5, loan_amount=600000" in reasons_of(outcome, 5)


def test_bool_features_accept_common_spellings(spec: ModelSpec) -> None:
    features = {**spec.features, "is_repeat": Feature(type="bool")}
    with_bool = spec.model_copy(update={"features": features})
    raw = drop()
    raw["is_repeat"] = ["yes", "False", " TRUE ", "0"] * 50
    raw.loc[3, "is_repeat"] = "maybe"
    outcome = validate_frame(raw, with_bool, SOURCE)

    assert reasons_of(outcome, 4) == "is_repeat: 'maybe' is not true/false"
    assert str(outcome.accepted["is_repeat"].dtype) == "boolean"
    assert outcome.accepted["is_repeat"].tolist()[:3] == [True, False, True]


def test_bad_share_over_the_limit_fails_and_accepts_nothing(spec: ModelSpec) -> None:
    changes = {f"row{index}": {"annual_income": "-5.0"} for index in range(3, 23)}
    outcome = validate_frame(drop(200, **changes), spec, SOURCE)

    assert not outcome.passed
    assert outcome.accepted.empty
    assert list(outcome.accepted.columns) == spec.raw_columns
    assert len(outcome.quarantined) == 20
    assert outcome.result["bad_row_share"] == pytest.approx(0.1)
    assert outcome.result["accepted_rows"] == 0 and outcome.result["quarantined_rows"] == 20
    message = outcome.failure_message or ""
    assert message == outcome.result["failure_message"]
    assert message.startswith(f"{SOURCE}: 20 of 200 rows (10.0%) failed blocking checks")
    assert "above the limit of 5.0% (validation.max_bad_row_share)" in message
    assert "annual_income below minimum 0 (20 rows, e.g. row 3: -5.0)" in message


def test_bad_share_at_the_limit_passes(spec: ModelSpec) -> None:
    changes = {f"row{index}": {"annual_income": "-5.0"} for index in range(1, 11)}
    outcome = validate_frame(drop(200, **changes), spec, SOURCE)

    assert outcome.passed and len(outcome.accepted) == 190


def test_empty_drop_fails_row_count_clearly(spec: ModelSpec) -> None:
    outcome = validate_frame(pd.DataFrame(columns=spec.raw_columns, dtype=object), spec, SOURCE)

    assert not outcome.passed
    assert outcome.accepted.empty and outcome.quarantined.empty
    assert outcome.failure_message is not None
    assert outcome.failure_message.startswith(SOURCE)
    assert "0 rows" in outcome.failure_message and "minimum of 100 (validation.min_rows)" in outcome.failure_message
    assert check(outcome, "row_count")["success"] is False
    json.dumps(outcome.result, allow_nan=False)


def test_too_few_rows_fails_row_count(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(40), spec, SOURCE)

    assert not outcome.passed and outcome.accepted.empty
    assert "Only 40 rows, below the minimum of 100 (validation.min_rows)" in (outcome.failure_message or "")


def test_off_checks_do_not_run(spec: ModelSpec) -> None:
    relaxed = with_validation(
        spec, checks=spec.validation.checks.model_copy(update={"ranges": "off", "row_count": "off"})
    )
    outcome = validate_frame(drop(10, row1={"annual_income": "-5.0"}), relaxed, SOURCE)

    assert outcome.passed and len(outcome.accepted) == 10
    names = {entry["check"] for entry in outcome.result["checks"]}
    assert not any(name.startswith(("ranges:", "row_count")) for name in names)


def test_warn_types_keep_the_row_with_a_missing_value(spec: ModelSpec) -> None:
    lenient = with_validation(spec, checks=spec.validation.checks.model_copy(update={"types": "warn"}))
    outcome = validate_frame(drop(row2={"age": "abc"}), lenient, SOURCE)

    assert outcome.quarantined.empty
    assert pd.isna(outcome.accepted.loc[1, "age"])
    assert check(outcome, "types:age")["unexpected_count"] == 1


def test_result_is_json_serialisable(spec: ModelSpec) -> None:
    outcome = validate_frame(
        drop(row1={"age": "abc", "employment_years": "NaN-ish"}, row2={"credit_score": None}), spec, SOURCE
    )

    text = json.dumps(outcome.result, allow_nan=False)
    loaded = json.loads(text)
    assert loaded["source"] == SOURCE and loaded["model"] == "credit_risk"
    assert loaded["rows"] == 200 and loaded["quarantined_rows"] == 2
    assert loaded["gx_version"]
    assert {"check", "expectation", "column", "severity", "success", "unexpected_count", "examples"} <= set(
        loaded["checks"][0]
    )
    assert check(outcome, "nulls:credit_score")["examples"] == [{"row": 2, "value": None}]


def test_unknown_extra_check_names_the_spec_field(spec: ModelSpec) -> None:
    typo = ExtraCheck(expectation="ExpectColumnValuesToBeBetwen", kwargs={"column": "age"})
    with pytest.raises(ValueError) as caught:
        validate_frame(drop(), with_validation(spec, extra_checks=[typo]), SOURCE)

    message = str(caught.value)
    assert "validation.extra_checks[0].expectation" in message
    assert "ExpectColumnValuesToBeBetwen" in message
    assert "ExpectColumnValuesToBeBetween" in message


def test_extra_check_on_unknown_column_names_the_spec_field(spec: ModelSpec) -> None:
    wrong = ExtraCheck(expectation="ExpectColumnValuesToNotBeNull", kwargs={"column": "salary"})
    with pytest.raises(ValueError, match=r"validation\.extra_checks\[0\]\.kwargs\.column: 'salary'"):
        validate_frame(drop(), with_validation(spec, extra_checks=[wrong]), SOURCE)


def test_missing_column_fails_without_a_traceback(spec: ModelSpec) -> None:
    outcome = validate_frame(drop().drop(columns=["purpose"]), spec, SOURCE)

    assert not outcome.passed and outcome.accepted.empty
    assert "purpose" in (outcome.failure_message or "")
    json.dumps(outcome.result, allow_nan=False)


def test_page_renders_and_escapes_html(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(row3={"home_ownership": "<script>alert(1)</script>"}), spec, "<b>drop</b>.csv")
    page = render_validation_page(outcome.result)

    assert page.startswith("<!DOCTYPE html>")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;b&gt;drop&lt;/b&gt;.csv" in page
    assert "categories:home_ownership" in page
    assert "PASSED" in page


def test_page_shows_the_failure_message(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(20), spec, SOURCE)
    page = render_validation_page(outcome.result)

    assert "FAILED" in page
    assert "validation.min_rows" in page


def test_shared_hash_positions_names_every_row_whose_hash_repeats_in_any_part():
    from nightshift.stages.validate.outcome import id_hashes, shared_hash_positions

    parts = [np.array([1, 2, 3], dtype=np.uint64), np.array([4, 2, 2], dtype=np.uint64), np.array([3], dtype=np.uint64)]
    found = shared_hash_positions(parts)
    assert {index: positions.tolist() for index, positions in found.items()} == {0: [1, 2], 1: [1, 2], 2: [0]}
    assert shared_hash_positions([np.array([5, 6], dtype=np.uint64)]) == {}
    assert shared_hash_positions([]) == {}
    hashes = id_hashes(pd.Series(["a", "b", "a"]))
    assert hashes.dtype == np.uint64 and hashes[0] == hashes[2] != hashes[1]


def test_rows_the_reader_could_not_read_are_quarantined_with_the_readers_reason_only(spec: ModelSpec) -> None:
    from nightshift.readers import READ_KIND, READ_PROBLEM

    raw = drop(row4={"age": "surplus"}, row9={"home_ownership": "RE\\x00NT"})
    raw[READ_PROBLEM] = None
    raw[READ_KIND] = None
    raw.loc[3, [READ_PROBLEM, READ_KIND]] = ["line 5: 13 fields where the header has 12", "row with the wrong number"]
    raw.loc[8, [READ_PROBLEM, READ_KIND]] = ["line 10: a NUL byte (0x00) at byte offset 900", "row with a NUL byte"]
    lenient = with_validation(spec, checks=spec.validation.checks.model_copy(update={"types": "off"}))
    outcome = validate_frame(raw, lenient, SOURCE)

    assert outcome.passed and len(outcome.accepted) == 198
    assert reasons_of(outcome, 4) == "line 5: 13 fields where the header has 12"
    assert reasons_of(outcome, 9) == "line 10: a NUL byte (0x00) at byte offset 900"
    assert READ_PROBLEM not in outcome.quarantined.columns and READ_PROBLEM not in outcome.accepted.columns
    assert check(outcome, "read")["unexpected_count"] == 2
    assert check(outcome, "categories:home_ownership")["unexpected_count"] == 0
    labels = {kind["label"] for kind in outcome.result["failure_kinds"]}
    assert labels == {"row with the wrong number", "row with a NUL byte"}


def test_ids_later_steps_cannot_use_are_quarantined(spec: ModelSpec) -> None:
    from nightshift.stages.validate.checks import MAX_ID_LENGTH
    from nightshift.stores.warehouse import predictions

    entity_id = predictions.c.entity_id.type
    assert isinstance(entity_id, sa.String) and MAX_ID_LENGTH == entity_id.length == 128
    outcome = validate_frame(
        drop(
            row2={"application_id": "   "},
            row3={"application_id": "   "},
            row4={"application_id": "x" * 129},
            row5={"application_id": "y" * 128},
            row6={"application_id": "A\x00B"},
            row7={"application_id": " A00099 "},
        ),
        spec,
        SOURCE,
    )

    assert outcome.passed and len(outcome.accepted) == 196
    assert reasons_of(outcome, 2) == "application_id: '   ' is blank (only spaces); every row needs an id"
    assert reasons_of(outcome, 3) == "application_id: '   ' is blank (only spaces); every row needs an id"
    assert reasons_of(outcome, 4) == (
        f"application_id: '{'x' * 59}…' is 129 characters long; the warehouse holds ids of at most 128"
    )
    assert reasons_of(outcome, 6) == "application_id: 'A\x00B' holds a NUL character, which the warehouse cannot store"
    assert outcome.accepted["application_id"].tolist()[1:3] == ["y" * 128, " A00099 "]
    assert check(outcome, "ids:application_id")["severity"] == "block"
    assert check(outcome, "unique_ids:application_id")["unexpected_count"] == 0


def test_a_frame_without_a_column_quarantines_every_row_so_all_are_accounted_for(spec: ModelSpec) -> None:
    outcome = validate_frame(drop(30).drop(columns=["purpose"]), spec, SOURCE)

    result = outcome.result
    assert result["rows"] == 30 == result["clean_rows"] + result["quarantined_rows"]
    assert set(outcome.quarantined["_reasons"]) == {"the drop lacks the column(s) purpose"}
    assert outcome.quarantined["_row_number"].tolist() == list(range(1, 31))


def test_a_night_with_an_unreadable_file_says_why_before_any_row_count(spec: ModelSpec) -> None:
    from nightshift.stages.validate.outcome import night_result

    unreadable = {
        "source": "s3://b/landing/x/part-1.csv",
        "model": "credit_risk",
        "rows": 0,
        "accepted_rows": 0,
        "clean_rows": 0,
        "quarantined_rows": 0,
        "bad_row_share": 0.0,
        "max_bad_row_share": 0.05,
        "passed": False,
        "failure_message": "s3://b/landing/x/part-1.csv: missing columns ['age']",
        "checks": [
            {
                "check": "file",
                "expectation": None,
                "column": None,
                "severity": "block",
                "success": False,
                "unexpected_count": 0,
                "examples": [],
                "row_level": False,
                "spec_field": "sources.drop",
                "problem": "s3://b/landing/x/part-1.csv: missing columns ['age']",
            }
        ],
        "failure_kinds": [],
    }
    result = night_result([unreadable], spec, "s3://b/landing/x/part-1.csv")

    assert result["failure_message"] == "s3://b/landing/x/part-1.csv: Missing columns ['age']."
    assert "no data rows" not in json.dumps(result)
    assert check_record(result, "row_count")["problem"].startswith("not judged: a file of the drop could not be read")


def check_record(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in result["checks"] if entry["check"] == name)
