"""What the nightly DAG's `wait_for_drop` checks and says, in words.

Before it waits, a run whose date is outside the model's schedule window is refused with the date, the window and
what to pick instead (a manual Trigger defaults its logical date to now, which is often after a season's end). While
it waits, every poke says which marker it looks for (the store URL of the drop's `_SUCCESS`) and when it gives up.
"""

from __future__ import annotations

import datetime as dt

from nightshift.config import get_spec, settings
from nightshift.stages.ingest import drop_is_ready, drop_prefix
from nightshift.stages.night import night
from nightshift.stores.objects import MARKER, open_store


def window_refusal(model: str, day: dt.date, start: dt.date, end: dt.date | None) -> str | None:
    """Why a run for `day` is refused, or None when `day` is inside the window `start`..`end` (no end: open)."""
    if start <= day and (end is None or day <= end):
        return None
    window = f"{start} to {end}" if end else f"from {start} on"
    side, pick = ("before its first night", start) if day < start else ("after its last night", end)
    return (
        f"logical date {day} is {side}: the {model}_nightly schedule window is {window} (schedule.start_date and "
        f"schedule.end_date in include/models/{model}.yaml, or NIGHTSHIFT_SCHEDULE_START / NIGHTSHIFT_SCHEDULE_END), "
        f"so there is no night to run for it. Trigger again with a logical date inside the window, e.g. {pick} "
        "(the Trigger dialog defaults to now), or widen the window in the spec. Nothing was read or written."
    )


def drop_ready(model: str, day: str) -> bool:
    """Whether the drop of `day` is complete (its `_SUCCESS` marker is there)."""
    current = night(model, day)
    return drop_is_ready(current.store, current.spec, current.dt)


def marker_url(model: str, day: str) -> str:
    """The store URL of the `_SUCCESS` marker that says the drop of `day` is complete."""
    config = settings()
    spec = get_spec(model, config.models_dir)
    return open_store(config.store_uri).url_for(f"{drop_prefix(spec, day)}/{MARKER}")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min" if minutes != 1 else "1 min"
    return f"{seconds / 3600:g} h"


def poke_message(
    marker: str, found: bool, started: dt.datetime, timeout_seconds: float, interval_seconds: float
) -> str:
    """One line for the task log: the marker, whether it is there, and the deadline (first check + timeout)."""
    if found:
        return f"found {marker}: the drop is complete"
    deadline = started + dt.timedelta(seconds=timeout_seconds)
    return (
        f"waiting for {marker}: not there yet; checking again in {_duration(interval_seconds)}, giving up at "
        f"{deadline.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({_duration(timeout_seconds)} after the first check at "
        f"{started.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC), when this task fails with a sensor timeout"
    )
