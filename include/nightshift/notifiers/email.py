"""Email through SMTP (the standard library's smtplib): a plain-text part and an HTML part from a template.

The server, port and credentials come from the environment variables the channel names (or an Airflow connection's
fields, handed in as a dict): never from the spec. STARTTLS or implicit TLS (`ssl`) are optional; every network step
has the channel's timeout.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from nightshift.notifiers.base import Notification

HEADERS = email.policy.default.clone(max_line_length=998)
"""Headers folded only past RFC 5322's limit: a subject stays on one line for the receivers that show it raw."""


@dataclass(frozen=True)
class EmailNotifier:
    name: str
    host: str
    port: int
    to: list[str]
    sender: str
    security: str = "none"
    timeout: float = 10.0
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def configure(
        cls, name: str, channel: Any, environ: Mapping[str, str], connection: Mapping[str, Any] | None
    ) -> EmailNotifier | str:
        """The channel from its connection's fields or its environment variables, or why it is skipped."""
        fields = dict(connection or {})
        host = fields.get("host") or environ.get(channel.host_env, "").strip()
        if not host:
            where = f"connection {channel.connection} or " if channel.connection else ""
            return (
                f"channel {name} (email) skipped: no SMTP host ({where}environment variable {channel.host_env} unset)"
            )
        default_port = 465 if channel.security == "ssl" else 25
        raw_port = fields.get("port") or environ.get(channel.port_env, "").strip() or default_port
        try:
            port = int(raw_port)
        except ValueError:
            raise ValueError(f"channel {name} (email): {channel.port_env}={raw_port!r} is not a port number") from None
        return cls(
            name=name,
            host=str(host),
            port=port,
            to=list(channel.to),
            sender=channel.sender,
            security=channel.security,
            timeout=channel.timeout_seconds,
            user=fields.get("login") or environ.get(channel.user_env) or None,
            password=fields.get("password") or environ.get(channel.password_env) or None,
        )

    def send(self, notification: Notification) -> None:
        message = build_message(notification, self.sender, self.to)
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                refused = smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise RuntimeError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise RuntimeError(f"SMTP {self.host}:{self.port} refused recipients: {sorted(refused)}")

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


def subject(notification: Notification) -> str:
    night = f" {notification.night}" if notification.night else ""
    return f"[{notification.severity.upper()}] {notification.model}{night}: {notification.title}"


def plain_text(notification: Notification) -> str:
    """The message as text: what happened, the links, the runbook section."""
    lines = [subject(notification), "", notification.body, ""]
    lines += [f"{label}: {url}" for label, url in notification.links.items()]
    if notification.runbook:
        lines.append(f"Runbook: {notification.runbook}")
    if notification.run_id:
        lines.append(f"Run: {notification.run_id}")
    return "\n".join(lines) + "\n"


def build_message(notification: Notification, sender: str, to: list[str]) -> EmailMessage:
    """A multipart/alternative message: the plain-text part first, the HTML page (from its template) second."""
    from nightshift.pages import render

    message = EmailMessage(policy=HEADERS)
    message["Subject"] = subject(notification)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["X-Nightshift-Event"] = str(notification.event)
    message["X-Nightshift-Severity"] = str(notification.severity)
    message["X-Nightshift-Model"] = notification.model
    message.set_content(plain_text(notification))
    paragraphs = notification.body.split("\n")
    html = render("alert_email.html.j2", title=subject(notification), note=notification, paragraphs=paragraphs)
    message.add_alternative(html, subtype="html")
    return message
