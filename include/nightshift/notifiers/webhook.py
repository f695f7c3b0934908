"""A JSON POST to a webhook (urllib, standard library): Slack-compatible `{"text": ...}` plus structured fields.

The URL comes from the environment variable the channel names (or an Airflow connection's host), never from the
spec. A response outside 2xx raises with its status and the start of its body.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nightshift.notifiers.base import Notification
from nightshift.notifiers.email import plain_text, subject

BODY_EXCERPT = 300


@dataclass(frozen=True)
class WebhookNotifier:
    name: str
    url: str = field(repr=False)
    timeout: float = 10.0

    @classmethod
    def configure(
        cls, name: str, channel: Any, environ: Mapping[str, str], connection: Mapping[str, Any] | None
    ) -> WebhookNotifier | str:
        """The channel from its connection's host or its environment variable, or why it is skipped."""
        url = str((connection or {}).get("host") or environ.get(channel.url_env, "")).strip()
        if not url:
            where = f"connection {channel.connection} or " if channel.connection else ""
            return f"channel {name} (webhook) skipped: no URL ({where}environment variable {channel.url_env} unset)"
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"channel {name} (webhook): the URL from {channel.url_env} must start with http(s)://")
        return cls(name=name, url=url, timeout=channel.timeout_seconds)

    def send(self, notification: Notification) -> None:
        data = json.dumps(payload(notification), default=str).encode()
        request = urllib.request.Request(
            self.url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s) checked
                status = response.status
                body = response.read(BODY_EXCERPT).decode(errors="replace")
        except urllib.error.HTTPError as exc:
            excerpt = exc.read(BODY_EXCERPT).decode(errors="replace")
            raise RuntimeError(f"webhook answered HTTP {exc.code}: {excerpt!r}") from None
        except (OSError, urllib.error.URLError) as exc:
            raise RuntimeError(f"webhook not reachable: {type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            raise RuntimeError(f"webhook answered HTTP {status}: {body!r}")


def payload(notification: Notification) -> dict[str, Any]:
    """The JSON body: `text` for Slack-compatible receivers, then the same facts as fields."""
    return {
        "text": plain_text(notification),
        "subject": subject(notification),
        "event": str(notification.event),
        "severity": str(notification.severity),
        "model": notification.model,
        "night": notification.night,
        "title": notification.title,
        "body": notification.body,
        "links": notification.links,
        "runbook": notification.runbook,
        "run_id": notification.run_id,
        "facts": notification.facts,
    }
