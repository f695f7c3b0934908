"""The nightly schedule: a night's logical date is its midnight (UTC), whatever time of day the cron runs it.

So a date names a night everywhere: in the partitions (`dt=YYYY-MM-DD`), in the UI, and in date-only backfill
bounds (`airflow backfill create --from-date 2026-10-05 --to-date 2026-10-08` takes both nights, because Airflow
includes a run whose logical date is not later than the bound, and `2026-10-08` means its midnight).
"""

from __future__ import annotations

import datetime as dt


def night_offset(cron: str) -> dt.timedelta:
    """How long after midnight the cron runs a night (its `interval`), when minute and hour are fixed; else zero."""
    minute, hour = cron.split()[:2]
    if minute.isdigit() and hour.isdigit():
        return dt.timedelta(hours=int(hour), minutes=int(minute))
    return dt.timedelta()


def window_nights(cron: str, start: dt.date, end: dt.date) -> list[dt.datetime]:
    """The midnight (UTC) of every day from `start` to `end` on which the cron runs."""
    from croniter import croniter_range

    first = dt.datetime.combine(start, dt.time(), dt.UTC)
    last = dt.datetime.combine(end, dt.time(23, 59, 59), dt.UTC)
    days = sorted({tick.date() for tick in croniter_range(first, last, cron)})
    return [dt.datetime.combine(day, dt.time(), dt.UTC) for day in days]
