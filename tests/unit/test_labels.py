"""Label drops are judged like data drops: parsed by the target's kind, every rejected row with its reasons."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from nightshift.config import PROJECT_ROOT, settings
from nightshift.kinds import KINDS, parse_labels
from nightshift.runs import RunInfo
from nightshift.stages.labels import tasks as label_tasks
from nightshift.stages.labels.parse import (
    LabelDropRejected,
    accepted_label_count,
    id_length_limit,
    judge_labels,
    read_labels,
)
from nightshift.stores import warehouse
from nightshift.stores.objects import flat_partition_writer, open_store, partition_file, partition_writer, read_manifest
from tests.manifests import published_manifest

MODEL = "credit_risk"
DAY = "2026-10-02"
RUN = RunInfo("manual__labels", "manual")
HEADER = "application_id,defaulted"
EXPECTED = "expected 0 or 1 (also 0.0/1.0 or true/false, any case)"


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def land(store, text: str, day: str = DAY, name: str = "labels.csv") -> None:
    with flat_partition_writer(store, f"landing/{MODEL}/labels/dt={day}", {}) as folder:
        (folder / name).write_bytes(text.encode())


def good_rows(count: int, prefix: str = "g") -> str:
    return "".join(f"{prefix}{index},{index % 2}\n" for index in range(count))


def frame(ids: list, labels: list) -> pd.DataFrame:
    return pd.DataFrame({"application_id": ids, "defaulted": labels}, dtype=object)


def reasons_by_row(rejected: pd.DataFrame) -> dict[int, str]:
    return dict(zip(rejected["_row_number"], rejected["_reasons"], strict=True))


def quarantined(home_store) -> pd.DataFrame:
    path = home_store.local_path(f"quarantine/{MODEL}/labels/dt={DAY}/rejected.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def test_labels_reject_bad_targets_and_keep_the_last_duplicate(store, demo_spec):
    land(store, HEADER + "\na1,0\na2,yes\n,1\na1,1\n")
    judged = read_labels(store, demo_spec, DAY)
    assert judged is not None
    assert judged.accepted.to_dict("records") == [{"application_id": "a1", "defaulted": 1}]
    reasons = reasons_by_row(judged.rejected)
    assert reasons[2] == f"defaulted: 'yes' is not a label; {EXPECTED}"
    assert reasons[3] == "application_id: missing id"
    assert reasons[1] == "application_id: 'a1' is superseded by the later labels.csv row 4"
    assert judged.received == 4 and judged.rejected_share == 0.75


def test_no_label_drop_is_none(store, demo_spec):
    assert read_labels(store, demo_spec, "2026-10-09") is None


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("0", 0),
        ("1", 1),
        ("0.0", 0),
        ("1.0", 1),
        ("true", 1),
        ("False", 0),
        ("TRUE", 1),
        (" 1 ", 1),
        ("\tfalse ", 0),
    ],
)
def test_binary_spellings_parse_to_0_and_1(demo_spec, text, label):
    judged = judge_labels(frame(["a1"], [text]), demo_spec)
    assert judged.rejected.empty
    assert judged.accepted["defaulted"].tolist() == [label]
    assert str(judged.accepted["defaulted"].dtype) == "int8"


@pytest.mark.parametrize("text", ["2", "-1", "yes", "1.00", "01", "0.5", "nan", "1e0", "t"])
def test_other_values_are_rejected_naming_the_value_and_what_is_valid(demo_spec, text):
    judged = judge_labels(frame(["a1"], [text]), demo_spec)
    assert judged.accepted.empty
    assert reasons_by_row(judged.rejected) == {1: f"defaulted: {text!r} is not a label; {EXPECTED}"}


def test_missing_or_blank_label_is_rejected(demo_spec):
    judged = judge_labels(frame(["a1", "a2"], [None, "  "]), demo_spec)
    assert set(reasons_by_row(judged.rejected).values()) == {f"defaulted: the label is missing; {EXPECTED}"}
    assert judged.rejected["defaulted"].tolist()[1] == "  "


def test_the_specs_positive_label_is_accepted_as_1(demo_spec):
    spec = demo_spec.model_copy(update={"target": demo_spec.target.model_copy(update={"positive_label": 7})})
    judged = judge_labels(frame(["a1", "a2", "a3"], ["7", "0", "8"]), spec)
    assert judged.accepted.to_dict("records") == [
        {"application_id": "a1", "defaulted": 1},
        {"application_id": "a2", "defaulted": 0},
    ]
    assert reasons_by_row(judged.rejected)[3] == (
        "defaulted: '8' is not a label; expected 0 or 1 (also 0.0/1.0 or true/false, any case, or the positive label '7')"
    )


def test_parsers_are_chosen_by_target_kind(demo_spec):
    assert set(KINDS) == {"binary", "multiclass", "regression"}
    regression = demo_spec.model_copy(update={"task": "regression"})
    numbers = parse_labels(pd.Series(["1.5", "x"], dtype=object), regression)
    assert numbers.values.tolist()[0] == 1.5 and numbers.failed.tolist() == [False, True]
    parsed = parse_labels(pd.Series(["1", "x"], dtype=object), demo_spec)
    assert parsed.values.tolist()[0] == 1 and parsed.failed.tolist() == [False, True]
    assert parsed.reasons.tolist() == [f"defaulted: 'x' is not a label; {EXPECTED}"]


def test_blank_and_too_long_ids_are_rejected_with_the_warehouse_limit(demo_spec):
    limit = id_length_limit()
    entity_id = warehouse.predictions.c.entity_id.type
    assert isinstance(entity_id, sa.String) and limit == entity_id.length
    longest, too_long = "a" * limit, "b" * (limit + 1)
    judged = judge_labels(frame(["   ", longest, too_long, "\t"], ["1", "0", "1", "0"]), demo_spec)
    assert judged.accepted["application_id"].tolist() == [longest]
    reasons = reasons_by_row(judged.rejected)
    assert reasons[1] == "application_id: '   ' is blank after trimming spaces; an id needs a visible character"
    assert reasons[3] == (
        f"application_id: '{'b' * 59}…' is {limit + 1} characters long; the warehouse holds at most {limit}"
    )
    assert "blank after trimming" in reasons[4]
    nul = judge_labels(frame(["a\x00b"], ["1"]), demo_spec)
    assert reasons_by_row(nul.rejected) == {
        1: "application_id: 'a\\x00b' holds a NUL character, which the warehouse cannot store"
    }


def test_every_reason_of_a_row_is_given_and_unusable_ids_do_not_supersede(demo_spec):
    judged = judge_labels(frame([None, "a1", "a1", " "], ["x", "1", "maybe", "0"]), demo_spec)
    reasons = reasons_by_row(judged.rejected)
    assert reasons[1] == f"application_id: missing id; defaulted: 'x' is not a label; {EXPECTED}"
    assert reasons[2] == "application_id: 'a1' is superseded by the later row 3"
    assert reasons[3] == f"defaulted: 'maybe' is not a label; {EXPECTED}"
    assert judged.accepted.empty and len(judged.rejected) == 4


def test_ids_are_kept_as_received(demo_spec):
    judged = judge_labels(frame([" a1", "a1"], ["1", "0"]), demo_spec)
    assert judged.accepted["application_id"].tolist() == [" a1", "a1"]


def test_row_numbers_and_files_given_by_the_reader_are_kept(demo_spec):
    raw = frame(["a1", "a2", "a1"], ["1", "yes", "0"]).assign(
        _row_number=[1, 1, 2], _source_file=["x/labels-0.csv", "x/labels-1.csv", "x/labels-1.csv"]
    )
    judged = judge_labels(raw, demo_spec)
    rows = judged.rejected.to_dict("records")
    assert rows[0]["_source_file"] == "x/labels-0.csv" and rows[0]["_row_number"] == 1
    assert rows[0]["_reasons"] == "application_id: 'a1' is superseded by the later labels-1.csv row 2"
    assert rows[1]["_row_number"] == 1 and "'yes' is not a label" in rows[1]["_reasons"]
    where = {kind["kind"]: kind["where"] for kind in judged.kinds}
    assert where == {"superseded by a later row": "labels-0.csv row 1", "not a label": "labels-1.csv row 1"}


def test_rows_the_reader_could_not_read_are_rejected_with_its_reason(demo_spec):
    raw = frame(["a1", "a2", "a2"], ["1", None, "0"]).assign(
        _read_problem=[None, "line 3: 3 fields where the header has 2", None],
        _read_kind=[None, "row with the wrong number of fields", None],
    )
    judged = judge_labels(raw, demo_spec)
    assert list(judged.rejected.columns) == ["application_id", "defaulted", "_row_number", "_reasons"]
    assert reasons_by_row(judged.rejected) == {
        2: f"line 3: 3 fields where the header has 2; defaulted: the label is missing; {EXPECTED}"
    }
    assert judged.accepted.to_dict("records") == [
        {"application_id": "a1", "defaulted": 1},
        {"application_id": "a2", "defaulted": 0},
    ]
    assert judged.kinds[0]["kind"] == "row with the wrong number of fields"


# --- the task: quarantine first, then curate or fail -------------------------------------------------------------


@pytest.fixture
def home_store(home):
    return open_store(settings().store_uri)


def test_labels_written_by_pandas_are_accepted(home_store):
    labels = pd.DataFrame({"application_id": ["a1", "a2", "a3"], "defaulted": [1.0, 0.0, 1.0]})
    land(home_store, labels.to_csv(index=False))
    outcome = label_tasks.ingest_labels(MODEL, DAY, RUN)
    assert (outcome["received"], outcome["accepted"], outcome["rejected"]) == (3, 3, 0)
    land(home_store, labels.assign(defaulted=[True, False, True]).to_csv(index=False))
    assert label_tasks.ingest_labels(MODEL, DAY, RUN)["accepted"] == 3
    curated = pd.read_parquet(
        home_store.local_path(partition_file(home_store, f"curated/{MODEL}/labels/dt={DAY}", "labels.parquet"))
    )
    assert curated["defaulted"].tolist() == [1, 0, 1]


def test_a_drop_within_the_limit_is_curated_and_its_rejects_quarantined(home_store):
    land(home_store, HEADER + "\n" + good_rows(95) + "b1,yes\nb2,2\n,1\nb3,\ng1,1\n")
    outcome = label_tasks.ingest_labels(MODEL, DAY, RUN)
    assert (outcome["received"], outcome["accepted"], outcome["rejected"]) == (100, 95, 5)
    assert outcome["received"] == outcome["accepted"] + outcome["rejected"]
    assert outcome["rejected_share"] == pytest.approx(0.05)
    assert published_manifest(home_store, f"curated/{MODEL}/labels/dt={DAY}")["rows"] == 95
    rejected = quarantined(home_store)
    assert list(rejected.columns) == ["application_id", "defaulted", "_row_number", "_reasons", "_source_file"]
    assert rejected["_row_number"].tolist() == ["2", "96", "97", "98", "99"]
    assert rejected["defaulted"].tolist()[:2] == ["1", "yes"]


def test_a_drop_over_the_limit_fails_after_its_quarantine_and_keeps_the_earlier_labels(home_store):
    land(home_store, HEADER + "\n" + good_rows(20))
    label_tasks.ingest_labels(MODEL, DAY, RUN)
    before = home_store.read_bytes(partition_file(home_store, f"curated/{MODEL}/labels/dt={DAY}", "labels.parquet"))
    land(home_store, HEADER + "\n" + good_rows(14) + "".join(f"p{i},1.0000\n" for i in range(4)) + ",1\n,0\n")
    with pytest.raises(LabelDropRejected) as caught:
        label_tasks.ingest_labels(MODEL, DAY, RUN)
    message = str(caught.value)
    source = home_store.url_for(f"landing/{MODEL}/labels/dt={DAY}")
    assert message.startswith(
        f"{source}: 6 of 20 label rows (30.0%) were rejected, above the limit of 5.0% (validation.max_bad_row_share). "
        "Most common: not a label (4 rows, e.g. labels.csv row 15: '1.0000'); missing id (2 rows, e.g. labels.csv row 19: empty)."
    )
    assert home_store.url_for(f"quarantine/{MODEL}/labels/dt={DAY}") + "/rejected.csv" in message
    assert (
        home_store.read_bytes(partition_file(home_store, f"curated/{MODEL}/labels/dt={DAY}", "labels.parquet"))
        == before
    )
    assert published_manifest(home_store, f"curated/{MODEL}/labels/dt={DAY}")["rows"] == 20
    assert len(quarantined(home_store)) == 6
    result = json.loads(home_store.read_bytes(f"quarantine/{MODEL}/labels/dt={DAY}/result.json"))
    assert (result["received"], result["accepted"], result["rejected"], result["passed"]) == (20, 14, 6, False)


def test_a_failed_first_drop_publishes_no_curated_labels(home_store):
    land(home_store, HEADER + "\na1,1.0000\na2,0\n")
    with pytest.raises(LabelDropRejected, match=r"1 of 2 label rows \(50\.0%\)"):
        label_tasks.ingest_labels(MODEL, DAY, RUN)
    assert read_manifest(home_store, f"curated/{MODEL}/labels/dt={DAY}") is None
    assert published_manifest(home_store, f"quarantine/{MODEL}/labels/dt={DAY}")["rows"] == 1


def test_formula_cells_are_neutralised_in_the_label_quarantine(home_store):
    land(home_store, HEADER + "\n" + good_rows(40) + "b1,=1+1\n")
    assert label_tasks.ingest_labels(MODEL, DAY, RUN)["rejected"] == 1
    row = quarantined(home_store).iloc[0]
    assert row["defaulted"] == "'=1+1" and row["_reasons"].startswith("defaulted: '=1+1' is not a label")


def test_the_limit_is_the_specs_validation_max_bad_row_share(home, monkeypatch, tmp_path):
    spec = yaml.safe_load((PROJECT_ROOT / "include" / "models" / f"{MODEL}.yaml").read_text())
    spec["validation"]["max_bad_row_share"] = 0.5
    models = tmp_path / "models"
    models.mkdir()
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("NIGHTSHIFT_MODELS_DIR", str(models))
    store = open_store(settings().store_uri)
    land(store, HEADER + "\na1,1\na2,x\n")
    assert label_tasks.ingest_labels(MODEL, DAY, RUN)["rejected"] == 1
    land(store, HEADER + "\na1,1\na2,x\na3,y\n")
    with pytest.raises(LabelDropRejected, match=r"above the limit of 50\.0%"):
        label_tasks.ingest_labels(MODEL, DAY, RUN)


def test_an_empty_label_drop_is_curated_empty_and_counts_no_labels(home_store, demo_spec):
    land(home_store, HEADER + "\n")
    outcome = label_tasks.ingest_labels(MODEL, DAY, RUN)
    assert (outcome["received"], outcome["accepted"], outcome["rejected"]) == (0, 0, 0)
    assert published_manifest(home_store, f"curated/{MODEL}/labels/dt={DAY}")["rows"] == 0
    assert accepted_label_count(home_store, demo_spec, dt.date.fromisoformat(DAY)) == 0


def test_no_label_drop_says_so(home_store):
    outcome = label_tasks.ingest_labels(MODEL, DAY, RUN)
    assert (outcome["received"], outcome["accepted"], outcome["rejected"]) == (0, 0, 0)
    assert "no label drop" in outcome["note"]


def test_accepted_label_count_reads_parquet_when_the_manifest_has_no_rows(store, demo_spec):
    with partition_writer(store, f"curated/{MODEL}/labels/dt={DAY}", {}) as folder:
        frame(["a1", "a2"], [1, 0]).to_parquet(folder / "labels.parquet")
    assert accepted_label_count(store, demo_spec, dt.date.fromisoformat(DAY)) == 2
    assert accepted_label_count(store, demo_spec, dt.date(2026, 10, 3)) == 0


# --- a corpus of label drops, each with its outcome; every row is accounted for -----------------------------------

GOOD = good_rows(40)
CORPUS: list[tuple[str, str, int | None, list[str] | None]] = [
    # name, rows after the header (besides 40 good rows), rejected rows, kinds of rejection (None: the drop fails)
    ("clean", "", 0, []),
    ("pandas floats", "f1,1.0\nf2,0.0\n", 0, []),
    ("pandas booleans", "f1,True\nf2,False\n", 0, []),
    ("upper-case booleans", "f1,TRUE\nf2,FALSE\n", 0, []),
    ("padded values", "f1, 1 \nf2,\t0\n", 0, []),
    ("word label", "b1,yes\n", 1, ["not a label"]),
    ("out of range", "b1,2\n", 1, ["not a label"]),
    ("negative", "b1,-1\n", 1, ["not a label"]),
    ("fraction", "b1,0.5\n", 1, ["not a label"]),
    ("empty label", "b1,\n", 1, ["not a label"]),
    ("blank label", "b1,   \n", 1, ["not a label"]),
    ("missing id", ",1\n", 1, ["missing id"]),
    ("blank id", "   ,1\n", 1, ["blank id"]),
    ("id of 129 characters", "x" * 129 + ",1\n", 1, ["id too long"]),
    ("id of 128 characters", "x" * 128 + ",1\n", 0, []),
    ("repeated id", "g3,1\n", 1, ["superseded by a later row"]),
    ("two problems in one row", ",yes\n", 1, ["missing id", "not a label"]),
    ("repeat of a bad row", "b1,maybe\nb1,1\n", 1, ["not a label", "superseded by a later row"]),
    ("quoted values", '"q1","1"\n"q,2","0"\n', 0, []),
    ("many words", "b1,yes\nb2,no\nb3,true-ish\n", None, None),
    ("all pandas-written wrongly", "".join(f"p{i},1.00\n" for i in range(40)), None, None),
    ("many missing ids", ",1\n,0\n,1\n", None, None),
]


@pytest.mark.parametrize(("name", "rows", "rejected", "kinds"), CORPUS, ids=[case[0] for case in CORPUS])
def test_label_corpus(home_store, name, rows, rejected, kinds):
    land(home_store, HEADER + "\n" + GOOD + rows)
    received = 40 + len(pd.read_csv(io.StringIO(HEADER + "\n" + rows), dtype=str))
    if kinds is None:
        with pytest.raises(LabelDropRejected, match=r"label rows .* were rejected, above the limit"):
            label_tasks.ingest_labels(MODEL, DAY, RUN)
        result = json.loads(home_store.read_bytes(f"quarantine/{MODEL}/labels/dt={DAY}/result.json"))
        assert not result["passed"] and read_manifest(home_store, f"curated/{MODEL}/labels/dt={DAY}") is None
    else:
        result = label_tasks.ingest_labels(MODEL, DAY, RUN)
        assert result["rejected"] == rejected
        assert published_manifest(home_store, f"curated/{MODEL}/labels/dt={DAY}")["rows"] == result["accepted"]
        stored = json.loads(home_store.read_bytes(f"quarantine/{MODEL}/labels/dt={DAY}/result.json"))
        assert sorted(kind["kind"] for kind in stored["kinds"]) == sorted(kinds)
    assert result["received"] == received == result["accepted"] + result["rejected"]
    assert len(quarantined(home_store)) == result["rejected"]
    assert quarantined(home_store)["_reasons"].notna().all()


def test_every_file_of_a_label_drop_is_read_whatever_the_case_of_its_name(store, demo_spec):
    with flat_partition_writer(store, f"landing/{MODEL}/labels/dt={DAY}", {}) as folder:
        (folder / "part-0.csv").write_bytes(f"{HEADER}\na1,0\n".encode())
        (folder / "part-1.CSV").write_bytes(f"{HEADER}\na2,1\n".encode())
    judged = read_labels(store, demo_spec, DAY)
    assert judged is not None
    assert sorted(judged.accepted["application_id"]) == ["a1", "a2"]


def test_a_label_file_the_format_cannot_read_fails_naming_it(store, demo_spec):
    from nightshift.stages.ingest import DropError

    with flat_partition_writer(store, f"landing/{MODEL}/labels/dt={DAY}", {}) as folder:
        (folder / "part-0.csv").write_bytes(f"{HEADER}\na1,0\n".encode())
        (folder / "part-1.csv.gz").write_bytes(b"\x1f\x8b\x08\x00")
    with pytest.raises(DropError, match=r"part-1\.csv\.gz") as caught:
        read_labels(store, demo_spec, DAY)
    assert "cannot be read" in str(caught.value)


def test_a_label_row_with_the_wrong_number_of_fields_is_rejected_with_its_reason(store, demo_spec):
    land(store, f"{HEADER}\na1,0\na2,1,extra\na3,1\n")
    judged = read_labels(store, demo_spec, DAY)
    assert judged is not None
    assert sorted(judged.accepted["application_id"]) == ["a1", "a3"]
    reasons = reasons_by_row(judged.rejected)
    assert list(reasons) == [2] and "field" in reasons[2], reasons
