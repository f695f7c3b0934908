"""Notifiers: one module per channel behind `nightshift.notifiers.base.Notifier`, listed in `CHANNELS` by the spec's
channel `type`.

Each channel class has `configure(name, channel_spec, environ, connection_fields)`, returning the notifier or the
reason it is skipped (its address variable unset), and `send(notification)`. They are plain standard-library clients
(smtplib, urllib), so alerting runs and is tested without Airflow's providers.
"""

from __future__ import annotations

from typing import Any

from nightshift.notifiers.base import Event, Notification, Notifier, NotifyFailed, Severity, notify
from nightshift.notifiers.email import EmailNotifier
from nightshift.notifiers.webhook import WebhookNotifier

CHANNELS: dict[str, Any] = {"email": EmailNotifier, "webhook": WebhookNotifier}

__all__ = [
    "CHANNELS",
    "EmailNotifier",
    "Event",
    "Notification",
    "Notifier",
    "NotifyFailed",
    "Severity",
    "WebhookNotifier",
    "notify",
]
