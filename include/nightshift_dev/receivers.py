"""Local alert receivers for the demo and the tests: an SMTP server (aiosmtpd) and an HTTP webhook endpoint.

Both listen on 127.0.0.1 on a free port, in a thread of the calling process, and keep what they received, so the
demo can say which alerts arrived and a test can read them.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """What the receivers got, in arrival order."""

    mails: list[EmailMessage] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_mail(self, message: EmailMessage) -> None:
        with self.lock:
            self.mails.append(message)

    def add_post(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.posts.append(body)


class _MailHandler:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.add_mail(message)  # type: ignore[arg-type]  # policy.default parses to EmailMessage
        return "250 Message accepted for delivery"


@contextmanager
def smtp_receiver(received: Received) -> Iterator[tuple[str, int]]:
    """An SMTP server on 127.0.0.1 keeping every message in `received`; yields (host, port)."""
    from aiosmtpd.controller import Controller

    port = _free_port()
    controller = Controller(_MailHandler(received), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


def _free_port() -> int:
    """A port free on 127.0.0.1 now (aiosmtpd checks its server by connecting to the port it was given, so not 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _webhook_handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            received.add_post(body if isinstance(body, dict) else {"body": body})
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def webhook_receiver(received: Received) -> Iterator[str]:
    """An HTTP endpoint on 127.0.0.1 keeping every JSON body POSTed to it in `received`; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _webhook_handler(received))
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
