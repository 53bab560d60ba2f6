"""A real SMTP server (aiosmtpd) on a free localhost port that keeps every message it receives."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from retrain.local.processes import WaitTimeoutError, free_port, wait_until


@dataclass
class SmtpServer:
    """Where the server listens and what it received (parsed, with envelope recipients)."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: keep the parsed message."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    @property
    def env(self) -> dict[str, str]:
        """RETRAIN_* settings that send retrain's email here."""
        return {"RETRAIN_SMTP_HOST": self.host, "RETRAIN_SMTP_PORT": str(self.port)}

    def subjects(self) -> list[str]:
        """Subjects received so far, in order."""
        return [str(m["Subject"]) for m in self.messages]

    def clear(self) -> None:
        """Forget what was received."""
        self.messages.clear()
        self.recipients.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived (delivery runs on the server's thread); what
        arrived by then, so the caller's assertion says how many were missing."""
        with contextlib.suppress(WaitTimeoutError):
            wait_until(lambda: len(self.messages) >= count, timeout, f"{count} email(s)", interval=0.05)
        return list(self.messages)


def html_body(message: EmailMessage) -> str:
    """The HTML part of a message (empty when there is none)."""
    part = message.get_body(preferencelist=("html",))
    return "" if part is None else str(part.get_content())


def attachment_names(message: EmailMessage) -> list[str]:
    """File names of a message's attachments."""
    return [str(part.get_filename()) for part in message.iter_attachments()]


@contextmanager
def smtp_server(host: str = "127.0.0.1") -> Iterator[SmtpServer]:
    """Start an SMTP server on a free port, yield it, stop it."""
    server = SmtpServer(host, free_port())
    controller = Controller(server, hostname=host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
