"""The `alerts` section of a model spec: its channels, which severities go to which channel, and severity overrides.

Light (standard library and pydantic), imported by `nightshift.config`. Addresses and secrets are never written in a
spec: a channel names the environment variables (or the Airflow connection) that hold them, and a channel whose
variable is unset is skipped with a log line. See the README's "Alerts" section and docs/runbook.md.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nightshift.notifiers.base import Event, Severity

DEFAULT_SEVERITIES: dict[Event, Severity] = {
    Event.TASK_FAILED: Severity.PAGE,
    Event.PERFORMANCE_DEGRADED: Severity.PAGE,
    Event.ROLLED_BACK: Severity.PAGE,
    Event.DRIFT: Severity.TICKET,
    Event.DATA_QUALITY: Severity.TICKET,
    Event.REFUSED: Severity.TICKET,
    Event.RETRAIN_REQUESTED: Severity.INFO,
    Event.PROMOTED: Severity.INFO,
}
"""Each event's severity unless the spec's `alerts.severities` overrides it."""

REPLAYED_EVENTS = frozenset({Event.DRIFT, Event.DATA_QUALITY, Event.PERFORMANCE_DEGRADED})
"""What a backfill run measures about a past night: sent as `info`, never paging anyone for history."""

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
EnvName = Annotated[str, Field(pattern=ENV_NAME.pattern)]
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailChannel(_Strict):
    """SMTP through the standard library; the server comes from the environment (or an Airflow connection)."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    sender: str = "nightshift@localhost"
    host_env: EnvName = "NIGHTSHIFT_SMTP_HOST"
    port_env: EnvName = "NIGHTSHIFT_SMTP_PORT"
    user_env: EnvName = "NIGHTSHIFT_SMTP_USER"
    password_env: EnvName = "NIGHTSHIFT_SMTP_PASSWORD"
    connection: str | None = None
    """An Airflow connection (host, port, login, password) that wins over the variables when it exists."""
    security: Literal["none", "starttls", "ssl"] = "none"
    timeout_seconds: float = Field(10.0, gt=0, le=300)

    @field_validator("to", "sender")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if "@" not in address or address.strip() != address or " " in address:
                raise ValueError(f"{address!r} is not an email address (name@domain)")
        return value


class WebhookChannel(_Strict):
    """A JSON POST (Slack-compatible `{"text": ...}` plus structured fields); the URL comes from the environment."""

    type: Literal["webhook"]
    url_env: EnvName = "NIGHTSHIFT_ALERT_WEBHOOK_URL"
    connection: str | None = None
    """An Airflow connection whose host (a full http(s) URL) wins over the variable when it exists."""
    timeout_seconds: float = Field(10.0, gt=0, le=300)


Channel = Annotated[EmailChannel | WebhookChannel, Field(discriminator="type")]


class Alerts(_Strict):
    """Who is told what: channels by name, the channels each severity goes to, and per-event severity overrides."""

    channels: dict[ChannelName, Channel] = Field(min_length=1)
    routes: dict[Severity, list[ChannelName]]
    severities: dict[Event, Severity] = {}
    quarantine_share: float = Field(0.02, ge=0, le=1)
    """A night quarantining more than this share of its rows raises a data-quality alert, though within the
    validation limit; a smaller share is routine and only shows on the pages (features flagged by
    `drift.data_quality` always raise one)."""

    @model_validator(mode="after")
    def _routes_known(self) -> Alerts:
        known = sorted(self.channels)
        for severity, names in self.routes.items():
            for name in names:
                if name not in self.channels:
                    raise ValueError(f"alerts.routes.{severity}: unknown channel {name!r}; valid: {known}")
        unused = [name for name in known if not any(name in names for names in self.routes.values())]
        if unused:
            raise ValueError(f"alerts.channels: {unused} receive no severity; route them in alerts.routes")
        return self

    def severity(self, event: Event, is_backfill: bool = False) -> Severity:
        """The event's severity: the spec's override or the default; `info` for a backfill's replayed measurements."""
        if is_backfill and event in REPLAYED_EVENTS:
            return Severity.INFO
        return self.severities.get(event, DEFAULT_SEVERITIES[event])

    def channels_for(self, severity: Severity) -> list[str]:
        return list(self.routes.get(severity, []))
