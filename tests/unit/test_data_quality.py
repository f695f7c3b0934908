"""Data quality per feature against the champion's reference: known answers counted by hand on small frames."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nightshift.config import ModelSpec
from nightshift.pages.report import empty_report, with_header
from nightshift.stages.drift.measure import latest_pointer, render_index
from nightshift.stages.drift.quality import data_quality

ROWS = 100
NO_FLAGS = {"missing_share_increase": 0.05, "out_of_range_share": 0.01, "unseen_category_share": 0.01}


def car_loans(**data_quality_limits: float) -> ModelSpec:
    """A car-loan book: a nullable salary, an age, a region (five allowed, three in the reference) and a bool."""
    return ModelSpec.model_validate(
        {
            "name": "car_loans",
            "entity_id": "loan_id",
            "timestamp": "applied_at",
            "schedule": {"start_date": "2026-10-01"},
            "features": {
                "salary": {"type": "float", "nullable": True},
                "age": {"type": "int", "nullable": True},
                "region": {"type": "category", "categories": ["north", "south", "east", "west", "islands"]},
                "has_car": {"type": "bool"},
            },
            "target": {"column": "defaulted", "label_delay_days": 1},
            "promotion": {"floor": 0.6},
            "drift": {"data_quality": data_quality_limits},
        }
    )


def reference_frame() -> pd.DataFrame:
    """100 rows: salary 30,000..119,000 with 10 missing (10%), age 20..69, regions north/south/east, has_car."""
    salary = [30_000.0 + 1000 * i for i in range(90)] + [np.nan] * 10
    return pd.DataFrame(
        {
            "loan_id": range(ROWS),
            "salary": salary,
            "age": [20 + i % 50 for i in range(ROWS)],
            "region": [("north", "south", "east")[i % 3] for i in range(ROWS)],
            "has_car": [i % 2 == 0 for i in range(ROWS)],
        }
    )


def night_frame(missing_salaries: int = 10, **columns: list[Any]) -> pd.DataFrame:
    """A night like the reference, with `missing_salaries` of its 100 salaries missing and any column replaced."""
    frame = reference_frame()
    frame["salary"] = [40_000.0] * (ROWS - missing_salaries) + [np.nan] * missing_salaries
    for name, values in columns.items():
        frame[name] = values
    return frame


def by_feature(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["feature"]: item for item in result["features"]}


def test_a_missing_share_rising_from_10_to_23_percent_is_flagged_with_its_reason() -> None:
    result = data_quality(night_frame(missing_salaries=23), reference_frame(), None, car_loans())
    salary = by_feature(result)["salary"]
    assert salary["missing_share"] == pytest.approx(0.23)
    assert salary["reference_missing_share"] == pytest.approx(0.10)
    assert salary["flagged"] is True
    assert salary["reasons"] == [
        "salary: 23.0% missing vs 10.0% in the reference "
        "(more than +5.0 points, drift.data_quality.missing_share_increase)"
    ]
    assert result["flagged"] == ["salary"]
    assert result["rows"] == ROWS


def test_a_rise_of_exactly_the_threshold_is_not_flagged_and_the_threshold_comes_from_the_spec() -> None:
    night, reference = night_frame(missing_salaries=15), reference_frame()
    assert by_feature(data_quality(night, reference, None, car_loans()))["salary"]["flagged"] is False
    stricter = data_quality(night, reference, None, car_loans(missing_share_increase=0.04))
    assert stricter["flagged"] == ["salary"]
    assert (
        "(more than +4.0 points, drift.data_quality.missing_share_increase)"
        in by_feature(stricter)["salary"]["reasons"][0]
    )
    assert stricter["thresholds"] == {**NO_FLAGS, "missing_share_increase": 0.04}


def test_numbers_outside_the_references_range_are_a_share_of_the_values_present() -> None:
    ages: list[Any] = [15, 75] + [30] * 78 + [None] * 20
    result = data_quality(night_frame(age=ages), reference_frame(), None, car_loans())
    age = by_feature(result)["age"]
    assert age["out_of_range_share"] == pytest.approx(2 / 80)
    assert age["missing_share"] == pytest.approx(0.20) and age["reference_missing_share"] == 0.0
    assert age["unseen_category_share"] is None
    assert age["reasons"] == [
        "age: 20.0% missing vs 0.0% in the reference (more than +5.0 points, drift.data_quality.missing_share_increase)",
        "age: 2.5% of values lie outside the reference's range [20, 69] (as low as 15; as high as 75) "
        "(more than 1.0%, drift.data_quality.out_of_range_share)",
    ]
    one_above = data_quality(night_frame(age=[70] + [30] * 99), reference_frame(), None, car_loans())
    assert by_feature(one_above)["age"]["out_of_range_share"] == pytest.approx(0.01)
    assert one_above["flagged"] == []


def test_categories_the_reference_never_saw_are_flagged_most_frequent_first() -> None:
    regions: list[Any] = ["west"] * 6 + ["islands"] * 3 + ["north"] * 181 + [None] * 10
    night = night_frame(region=regions[:ROWS])
    night = pd.concat([night, night_frame(region=regions[ROWS:])], ignore_index=True)
    region = by_feature(data_quality(night, reference_frame(), None, car_loans()))["region"]
    assert region["unseen_category_share"] == pytest.approx(9 / 190)
    assert region["out_of_range_share"] is None
    assert region["missing_share"] == pytest.approx(10 / 200)
    assert region["reasons"] == [
        "region: 4.7% of values are categories the reference never saw ('west', 'islands') "
        "(more than 1.0%, drift.data_quality.unseen_category_share)"
    ]


def test_an_unshifted_copy_flags_nothing() -> None:
    reference = reference_frame()
    result = data_quality(reference.copy(), reference, None, car_loans())
    assert result["flagged"] == []
    for item in result["features"]:
        assert item["missing_share"] == item["reference_missing_share"]
        assert item["flagged"] is False and item["reasons"] == []
    features = by_feature(result)
    assert features["salary"]["out_of_range_share"] == 0.0 and features["age"]["out_of_range_share"] == 0.0
    assert features["region"]["unseen_category_share"] == 0.0
    assert features["has_car"]["out_of_range_share"] is None and features["has_car"]["unseen_category_share"] is None
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_statistics_stand_in_for_a_feature_the_reference_frame_lacks() -> None:
    statistics = {
        "features": {
            "salary": {"type": "float", "min": 50_000.0, "max": 60_000.0, "null_share": 0.1},
            "region": {"type": "category", "shares": {"north": 0.8, "nan": 0.2}},
        }
    }
    reference = reference_frame().drop(columns=["salary", "region"])
    night = night_frame(missing_salaries=23, region=["south"] * 5 + ["north"] * 95)
    features = by_feature(data_quality(night, reference, statistics, car_loans()))
    assert features["salary"]["reference_missing_share"] == pytest.approx(0.1)
    assert features["salary"]["out_of_range_share"] == 1.0
    assert features["region"]["reference_missing_share"] == pytest.approx(0.2)
    assert features["region"]["unseen_category_share"] == pytest.approx(0.05)
    alone = by_feature(data_quality(night, reference, None, car_loans()))["salary"]
    assert alone["reference_missing_share"] is None and alone["out_of_range_share"] is None
    assert alone["flagged"] is False


def test_a_sample_without_a_feature_is_refused() -> None:
    with pytest.raises(ValueError, match="salary"):
        data_quality(reference_frame().drop(columns=["salary"]), reference_frame(), None, car_loans())


def quality_night(dt: str, quality: dict[str, Any] | None, **overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "model": "car_loans",
        "dt": dt,
        "model_version": "3",
        "reference_rows": 100,
        "current_rows": 100,
        "sample": {"size": 20000, "seed": 7, "reference_sampled": 100, "current_sampled": 100},
        "features": [{"feature": name} for name in ("salary", "age", "region", "has_car")],
        "prediction": None,
        "drifted_features": [],
        "drift_share": 0.0,
        "dataset_drift": False,
        "critical_drifted": [],
        "report_html": f"dt={dt}/report.html",
        "report_json": f"dt={dt}/report.json",
        **overrides,
    }
    if quality is not None:
        summary["data_quality"] = quality
    return summary


@pytest.fixture(scope="module")
def flagged_quality() -> dict[str, Any]:
    return data_quality(night_frame(missing_salaries=23), reference_frame(), None, car_loans())


def test_the_index_shows_the_data_quality_column_and_counts_it_apart(flagged_quality: dict[str, Any]) -> None:
    clean = data_quality(reference_frame(), reference_frame(), None, car_loans())
    page = render_index(
        [
            quality_night("2026-10-01", None),
            quality_night("2026-10-02", clean),
            quality_night("2026-10-03", flagged_quality),
            quality_night("2026-10-04", clean, dataset_drift=True, drift_share=0.5, drifted_features=["age", "region"]),
        ],
        "car_loans",
    )
    assert "<th" in page and ">Data quality</th>" in page
    assert "4 night(s); 1 flagged" in page and "; 1 with a data-quality flag" in page
    rows = {day: row for row, day in re.findall(r"(<tr[^>]*><td>(\d{4}-\d\d-\d\d).*?</tr>)", page, re.S)}
    assert sorted(rows) == ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
    reason = flagged_quality["features"][0]["reasons"][0]
    assert f'<span class="warn" title="{reason}">salary</span>' in rows["2026-10-03"]
    assert rows["2026-10-03"].startswith("<tr><td>") and rows["2026-10-04"].startswith('<tr class="drifted">')
    assert '<span class="ok">ok</span>' in rows["2026-10-02"] and '<span class="ok">ok</span>' in rows["2026-10-04"]
    assert '<span class="muted" title="not measured for data quality">—</span>' in rows["2026-10-01"]
    assert all(len(re.findall(r"<td", row)) == 10 for row in rows.values())


def test_summaries_written_before_data_quality_still_render() -> None:
    old = quality_night("2026-09-30", None)
    skipped = {"model": "car_loans", "dt": "2026-09-29", "skipped": "no champion", "unscored": None}
    page = render_index([old, skipped], "car_loans")
    assert "2 night(s); 0 flagged" in page and "; 0 with a data-quality flag" in page
    banner = with_header("<html><head></head><body></body></html>", old)
    assert "Data quality" not in banner and "<details" not in banner
    assert "Data quality" not in empty_report(old)
    assert latest_pointer([old], "car_loans")["data_quality_flagged"] is None


def test_the_report_banner_holds_the_data_quality_table(flagged_quality: dict[str, Any]) -> None:
    summary = quality_night("2026-10-03", flagged_quality)
    for page in (with_header("<html><head></head><body></body></html>", summary), empty_report(summary)):
        assert '<details class="quality" open>' in page
        assert "Data quality of the 100 sampled rows: 1 feature(s) flagged: salary</summary>" in page
        assert (
            '<tr class="flagged"><td>salary</td><td class="num">23.0%</td><td class="num">10.0%</td>'
            '<td class="num">0.0%</td><td class="num">—</td><td>salary: 23.0% missing' in page
        )
        assert '<tr><td>region</td><td class="num">0.0%</td><td class="num">0.0%</td><td class="num">—</td>' in page
        assert "rises more than 5.0 points above the reference&#x27;s" in page
    clean = data_quality(reference_frame(), reference_frame(), None, car_loans())
    quiet = with_header("<html><head></head><body></body></html>", quality_night("2026-10-02", clean))
    assert '<details class="quality">' in quiet and "nothing flagged</summary>" in quiet


def test_latest_json_carries_the_newest_nights_flagged_features(flagged_quality: dict[str, Any]) -> None:
    clean = data_quality(reference_frame(), reference_frame(), None, car_loans())
    pointer = latest_pointer([quality_night("2026-10-04", clean), quality_night("2026-10-05", flagged_quality)], "m")
    assert pointer["data_quality_flagged"] == [
        {"feature": "salary", "reasons": flagged_quality["features"][0]["reasons"]}
    ]
    assert latest_pointer([quality_night("2026-10-04", clean)], "m")["data_quality_flagged"] == []
