"""Notifiers: one module per channel behind `nightshift.notifiers.base.Notifier`, listed in `CHANNELS` by name.

No channel ships yet; the alerting issue adds them (and the spec's routing of events to channels).
"""

from __future__ import annotations

from nightshift.notifiers.base import Event, Notification, Notifier, NotifyFailed, Severity, notify

CHANNELS: dict[str, type[Notifier]] = {}

__all__ = ["CHANNELS", "Event", "Notification", "Notifier", "NotifyFailed", "Severity", "notify"]
