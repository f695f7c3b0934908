"""Every kind of bad value, through validate_frame and through the night's tasks, against a recorded result.

The recorded result (golden/validation_every_bad_value.json) was written by the validation stage before it kept
chunks in Arrow and took the rows of its own checks from vectorised masks: per-row reasons, accounting, the
quarantine file, the result and the curated rows must stay exactly as they were. Rewrite it only for an intended
change in behaviour: `python -m tests.unit.test_validate_equivalence` (with PYTHONPATH pointing at the code).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from nightshift.config import PROJECT_ROOT, load_spec, settings
from nightshift.runs import RunInfo
from nightshift.stages.validate import tasks as validate_tasks
from nightshift.stages.validate.checks import validate_frame
from nightshift.stores.objects import MARKER, open_store, partition_files

GOLDEN = Path(__file__).parent / "golden" / "validation_every_bad_value.json"
MODEL = "credit_risk"
DAY = dt.date(2026, 10, 1)
RUN = RunInfo("manual__equivalence", "manual")
SOURCE = "landing/credit_risk/dt=2026-10-01/part-0.csv"
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
BAD: list[dict[str, str | None]] = [
    {"age": "abc"},
    {"age": " 42 ", "annual_income": " 1e3"},
    {"age": "42.0", "credit_score": "700.0"},
    {"age": "42.5"},
    {"age": "1e1"},
    {"age": None},
    {"age": "  "},
    {"age": "101", "credit_score": "9999", "home_ownership": "CASTLE"},
    {"annual_income": "-5"},
    {"annual_income": "1e9"},
    {"annual_income": "nan"},
    {"annual_income": "inf"},
    {"annual_income": "5,000"},
    {"loan_amount": "300000"},
    {"loan_amount": "600"},
    {"loan_amount": "100"},
    {"credit_score": "299"},
    {"debt_to_income": "5.5"},
    {"employment_years": "70"},
    {"employment_years": "-0.5"},
    {"open_accounts": "-1"},
    {"loan_term_months": "12.5"},
    {"home_ownership": " RENT"},
    {"home_ownership": None},
    {"home_ownership": "rent"},
    {"home_ownership": "=SUM(A1)"},
    {"purpose": "car "},
    {"purpose": "ç" * 70},
    {"purpose": "-5"},
    {"application_ts": "2026-10-01"},
    {"application_ts": "2026-10-01T10:00:00+02:00"},
    {"application_ts": "not a date"},
    {"application_ts": "2026-13-01T00:00:00Z"},
    {"application_ts": " 2026-10-01T10:00:00Z "},
    {"application_ts": None},
    {"application_id": "   "},
    {"application_id": "x" * 129},
    {"application_id": None},
    {"application_id": "A00003"},
    {"application_id": "A00003"},
    {"application_id": "A00040"},
    {"application_id": " A00099 "},
]
ROWS = 130


def row(index: int) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        "application_id": f"A{index:05d}",
        "application_ts": "2026-10-01T10:00:00Z",
        "age": str(20 + index % 60),
        "annual_income": f"{55000 + index}.5",
        "loan_amount": "12000",
        "loan_term_months": "36",
        "credit_score": str(600 + index),
        "debt_to_income": "0.3",
        "employment_years": None if index % 3 else "4.5",
        "open_accounts": "4",
        "home_ownership": ("RENT", "OWN", "MORTGAGE")[index % 3],
        "purpose": "car",
    }
    if 2 <= index < 2 + len(BAD):
        values.update(BAD[index - 2])
    return values


def frame() -> pd.DataFrame:
    return pd.DataFrame([row(index) for index in range(ROWS)], columns=COLUMNS, dtype=object)


def csv_text(rows: range, odd: dict[int, str] | None = None) -> str:
    """The rows as a CSV file; `odd` replaces a data row (0-based within the file) by a line as written."""
    buffer = io.StringIO()
    frame().iloc[list(rows)].to_csv(buffer, index=False, lineterminator="\n")
    lines = buffer.getvalue().splitlines()
    for position, line in (odd or {}).items():
        lines[1 + position] = line
    return "\n".join(lines) + "\n"


def relaxed_models(folder: Path) -> Path:
    """A models folder whose credit_risk spec tolerates 90% bad rows, so that this drop passes and curates rows."""
    text = (PROJECT_ROOT / "include" / "models" / "credit_risk.yaml").read_text()
    assert "max_bad_row_share: 0.05" in text
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "credit_risk.yaml").write_text(text.replace("max_bad_row_share: 0.05", "max_bad_row_share: 0.9"))
    return folder


def frame_snapshot(spec: Any) -> dict[str, Any]:
    """validate_frame on the whole frame: its result, quarantined rows and accepted rows."""
    outcome = validate_frame(frame(), spec, SOURCE)
    quarantined = outcome.quarantined.astype(object).where(outcome.quarantined.notna(), None)
    accepted = outcome.accepted
    return {
        "result": json.loads(json.dumps(outcome.result, default=str, sort_keys=True)),
        "quarantined": quarantined.to_dict("records"),
        "accepted_dtypes": {column: str(dtype) for column, dtype in accepted.dtypes.items()},
        "accepted": accepted.astype(str).to_dict("records"),
    }


def night_snapshot(spec: Any) -> dict[str, Any]:
    """The night's tasks on two files in chunks of 16 rows: quarantine file, result and curated rows."""
    store = open_store(settings().store_uri)
    prefix = f"landing/{MODEL}/dt={DAY}"
    first = csv_text(range(0, 60), odd={20: "A09999,2026-10-01T10:00:00Z,40,1,2,3"})
    second = csv_text(range(60, ROWS)).replace("A00060,", "A00\x0060,")
    second = second.replace("A00070,", "A00001,")
    store.write_bytes(f"{prefix}/part-00000.csv", first.encode())
    store.write_bytes(f"{prefix}/part-00001.csv", second.encode())
    store.write_bytes(f"{prefix}/{MARKER}", b"")
    validate_tasks.validate(MODEL, str(DAY), RUN, chunk_rows=16)
    root = store.url_for("")
    result = json.loads(store.read_bytes(f"validation/{MODEL}/dt={DAY}/result.json").decode().replace(root, "<store>/"))
    rejected = store.read_bytes(f"quarantine/{MODEL}/dt={DAY}/rejected.csv").decode().replace(root, "<store>/")
    curated = []
    for key in partition_files(store, f"curated/{MODEL}/dt={DAY}", ".parquet"):
        table = pq.read_table(io.BytesIO(store.read_bytes(key)))
        rows = table.to_pandas()
        curated.append(
            {
                "name": Path(key).name,
                "schema": str(table.schema.remove_metadata()),
                "pandas": _pandas_metadata(table),
                "dtypes": {column: str(dtype) for column, dtype in rows.dtypes.items()},
                "rows": rows.astype(str).to_dict("records"),
            }
        )
    return {"result": result, "rejected": rejected, "curated": curated}


def _pandas_metadata(table: Any) -> dict[str, Any]:
    described = json.loads(table.schema.metadata[b"pandas"])
    described.pop("pandas_version", None)
    described.pop("creator", None)
    return described


def snapshot() -> dict[str, Any]:
    spec = load_spec(settings().models_dir / "credit_risk.yaml")
    return {"frame": frame_snapshot(spec), "night": night_snapshot(spec)}


@pytest.fixture
def relaxed(home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NIGHTSHIFT_MODELS_DIR", str(relaxed_models(home / "models")))
    return load_spec(settings().models_dir / "credit_risk.yaml")


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def test_validate_frame_gives_the_recorded_reasons_accounting_and_rows(relaxed, golden, caplog) -> None:
    from nightshift.stages.validate import gx_run

    with caplog.at_level(logging.WARNING, logger=gx_run.__name__):
        found = frame_snapshot(relaxed)
    expected = golden["frame"]

    assert "taking the rows Great Expectations finds" not in caplog.text

    assert found["quarantined"] == expected["quarantined"]
    assert found["result"] == expected["result"]
    assert found["accepted_dtypes"] == expected["accepted_dtypes"]
    assert found["accepted"] == expected["accepted"]
    result = found["result"]
    assert result["rows"] == ROWS == result["clean_rows"] + result["quarantined_rows"]


@pytest.mark.parametrize("quarantine_batch", [100_000, 5])
def test_the_nights_tasks_write_the_recorded_quarantine_result_and_curated_rows(
    relaxed, golden, monkeypatch, quarantine_batch
) -> None:
    monkeypatch.setattr(validate_tasks, "QUARANTINE_BATCH", quarantine_batch, raising=False)
    found = night_snapshot(relaxed)
    expected = golden["night"]

    assert found["rejected"] == expected["rejected"]
    assert found["result"] == expected["result"]
    assert found["curated"] == expected["curated"]
    result = found["result"]
    assert result["rows"] == ROWS == result["accepted_rows"] + result["quarantined_rows"]


def test_gx_finds_the_same_rows_as_the_masks_for_every_check_they_give(demo_spec) -> None:
    """Each check whose rows the masks give, run again by GX in the COMPLETE format: the same rows."""
    import pyarrow as pa

    from nightshift.stages.validate import checks as checks_module
    from nightshift.stages.validate import gx_run
    from nightshift.stages.validate.coerce import coerce_table, column_kinds, strings_table

    raw = strings_table(frame())
    typed = coerce_table(raw, column_kinds(demo_spec))
    checks = [*checks_module._spec_checks(demo_spec), *checks_module._extra_checks(demo_spec)]
    known = {check.name: rows for check in checks if (rows := gx_run.known_rows(check, typed)) is not None}
    assert {name.split(":")[0] for name in known} == {"nulls", "ranges", "categories", "unique_ids", "extra"}
    assert sum(len(rows) for rows in known.values()) > 30
    for check in checks:
        if check.name not in known:
            continue
        definition = gx_run._gx_batch_definition()
        frame_for_gx = gx_run._gx_frame(typed, gx_run._needed_columns(check, list(typed.kinds)), "objects")
        again = checks_module._spec_checks(demo_spec) + checks_module._extra_checks(demo_spec)
        fresh = next(item for item in again if item.name == check.name)
        gx_run._run_gx_group(definition, f"complete_{check.name}", frame_for_gx, [fresh], raw, typed)
        found = np.sort(np.concatenate([failure.positions for failure in fresh.failures] or [np.zeros(0, int)]))
        assert found.tolist() == known[check.name].tolist(), check.name
    assert isinstance(raw, pa.Table)


def test_when_gx_counts_otherwise_than_the_mask_its_own_rows_are_taken(demo_spec, monkeypatch, caplog) -> None:
    from nightshift.stages.validate import gx_run

    expected = validate_frame(frame(), demo_spec, SOURCE)
    real = gx_run.known_rows

    def wrong(check: Any, typed: Any) -> Any:
        rows = real(check, typed)
        return rows[1:] if rows is not None and check.name == "ranges:credit_score" else rows

    monkeypatch.setattr(gx_run, "known_rows", wrong)
    with caplog.at_level(logging.WARNING, logger=gx_run.__name__):
        found = validate_frame(frame(), demo_spec, SOURCE)

    assert found.quarantined.equals(expected.quarantined)
    assert found.result == expected.result
    assert "ranges:credit_score" in caplog.text and "taking the rows Great Expectations finds" in caplog.text


def test_id_hashes_agree_for_pandas_and_arrow_and_for_fixed_and_mixed_widths() -> None:
    import pyarrow as pa

    from nightshift.stages.validate.outcome import id_hashes

    fixed = [f"20261001-{index:09d}" for index in range(5000)]
    mixed = ["x", *fixed[1:], "", "ü" * 300]
    whole = id_hashes(pa.array(mixed))
    assert (whole[1:5000] == id_hashes(pa.array(fixed))[1:]).all()
    assert (id_hashes(pd.Series(mixed)) == whole).all()
    assert (id_hashes(pa.chunked_array([mixed[:10], mixed[10:]])) == whole).all()
    assert (id_hashes(pa.array(mixed).slice(3, 7)) == whole[3:10]).all()
    assert len(np.unique(whole)) == len(mixed)
    assert id_hashes(pa.array(["a", None, "a"]))[0] == id_hashes(pa.array(["a"]))[0]


def write_golden() -> None:
    """Record the current behaviour as the golden result (see the module's docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ.update(
            NIGHTSHIFT_HOME=str(home),
            NIGHTSHIFT_WAREHOUSE_URL=f"sqlite:///{home / 'warehouse.db'}",
            MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        )
        os.environ.pop("NIGHTSHIFT_STORE_URI", None)
        os.environ["NIGHTSHIFT_MODELS_DIR"] = str(relaxed_models(home / "models"))
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(snapshot(), indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_golden()
