"""What a notifier is told and how it is called: one `Notification` per event, one `Notifier` per channel.

A channel (email, Slack, a pager) is one module in this package holding a class with `send`; `notify` hands each
notification to every configured channel and reports the channels that failed without losing the others.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Severity(enum.StrEnum):
    """How urgent: `page` wakes someone, `ticket` is for the next working day, `info` is for the record."""

    PAGE = "page"
    TICKET = "ticket"
    INFO = "info"


class Event(enum.StrEnum):
    TASK_FAILED = "task_failed"
    DRIFT = "drift"
    DATA_QUALITY = "data_quality"
    PERFORMANCE_DEGRADED = "performance_degraded"
    RETRAIN_REQUESTED = "retrain_requested"
    PROMOTED = "promoted"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Notification:
    event: Event
    severity: Severity
    model: str
    title: str
    body: str
    night: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    """Label -> address (report, validation page, run in the Airflow UI)."""
    runbook: str | None = None
    """Where the on-call engineer reads what to do."""
    run_id: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    """The figures behind the message (drifted features and scores, shares, versions), for structured channels."""
    key: str = ""
    """What tells two notifications of one event and run apart (a failed task's id and try), '' for a night's."""


class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> None:
        """Deliver one notification; raise with a message naming the channel and the cause when it cannot."""


class NotifyFailed(RuntimeError):
    """Some channels could not deliver; the message names each channel, the notification and the cause."""

    def __init__(self, failures: Sequence[tuple[str, Notification, str]]) -> None:
        self.failures = list(failures)
        lines = [f"{channel}: {note.event} for {note.model}: {cause}" for channel, note, cause in self.failures]
        super().__init__(f"{len(lines)} notification(s) not delivered:\n" + "\n".join(lines))


def notify(notifications: Iterable[Notification], notifiers: Sequence[Notifier]) -> int:
    """Send every notification through every channel; return how many deliveries succeeded.

    A channel that fails does not stop the others; the failures are raised together at the end.
    """
    delivered, failures = 0, []
    for notification in notifications:
        for notifier in notifiers:
            try:
                notifier.send(notification)
            except Exception as exc:
                failures.append((notifier.name, notification, str(exc) or type(exc).__name__))
            else:
                delivered += 1
    if failures:
        raise NotifyFailed(failures)
    return delivered
