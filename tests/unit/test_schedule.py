"""A night's logical date is its midnight, so date-only bounds name nights."""

from __future__ import annotations

import datetime as dt

from nightshift.schedule import night_offset, window_nights


def test_the_offset_is_the_cron_time_of_day_when_it_is_fixed():
    assert night_offset("0 2 * * *") == dt.timedelta(hours=2)
    assert night_offset("30 5 * * 1-5") == dt.timedelta(hours=5, minutes=30)
    assert night_offset("*/15 * * * *") == dt.timedelta()


def test_a_window_lists_the_midnight_of_each_night_the_cron_runs():
    nights = window_nights("0 2 * * *", dt.date(2026, 10, 1), dt.date(2026, 10, 3))
    assert nights == [dt.datetime(2026, 10, day, tzinfo=dt.UTC) for day in (1, 2, 3)]
    weekdays = window_nights("0 2 * * 1-5", dt.date(2026, 10, 2), dt.date(2026, 10, 5))  # Fri .. Mon
    assert [night.date().isoformat() for night in weekdays] == ["2026-10-02", "2026-10-05"]
