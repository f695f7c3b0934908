"""What wait_for_drop says: refusals outside the schedule window, and on every poke the marker and the deadline."""

from __future__ import annotations

import datetime as dt

from nightshift.stages import waiting

START, END = dt.date(2026, 10, 1), dt.date(2026, 10, 21)


def test_a_date_inside_the_window_is_not_refused():
    for day in (START, dt.date(2026, 10, 9), END):
        assert waiting.window_refusal("credit_risk", day, START, END) is None
    assert waiting.window_refusal("credit_risk", dt.date(2031, 1, 1), START, None) is None


def test_a_date_after_the_end_is_refused_naming_the_date_the_window_and_what_to_pick():
    message = waiting.window_refusal("credit_risk", dt.date(2026, 12, 3), START, END)
    assert message is not None
    assert message.startswith("logical date 2026-12-03 is after its last night")
    assert "the credit_risk_nightly schedule window is 2026-10-01 to 2026-10-21" in message
    assert "include/models/credit_risk.yaml" in message and "NIGHTSHIFT_SCHEDULE_END" in message
    assert "e.g. 2026-10-21" in message and "defaults to now" in message


def test_a_date_before_the_start_is_refused_pointing_at_the_first_night():
    message = waiting.window_refusal("credit_risk", dt.date(2026, 9, 30), START, None)
    assert message is not None
    assert "before its first night" in message and "window is from 2026-10-01 on" in message
    assert "e.g. 2026-10-01" in message


def test_every_poke_names_the_marker_and_when_the_sensor_gives_up():
    marker = "file:///data/store/landing/credit_risk/dt=2026-10-05/_SUCCESS"
    started = dt.datetime(2026, 10, 5, 2, 0, 30, tzinfo=dt.UTC)
    message = waiting.poke_message(marker, False, started, 12 * 3600, 60)
    assert message == (
        f"waiting for {marker}: not there yet; checking again in 1 min, giving up at 2026-10-05 14:00 UTC "
        "(12 h after the first check at 2026-10-05 02:00 UTC), when this task fails with a sensor timeout"
    )
    assert waiting.poke_message(marker, True, started, 12 * 3600, 60) == f"found {marker}: the drop is complete"
    assert "checking again in 5 min" in waiting.poke_message(marker, False, started, 1800, 300)
    assert "30 min after the first check" in waiting.poke_message(marker, False, started, 1800, 300)


def test_the_marker_is_the_store_url_of_the_drops_success_file(home):
    store = (home / "store").as_uri()
    assert waiting.marker_url("credit_risk", "2026-10-05") == f"{store}/landing/credit_risk/dt=2026-10-05/_SUCCESS"
