"""A real SMTP server for the tests (aiosmtpd, on 127.0.0.1 and a free port) that keeps what it receives
and can refuse recipients, be stopped ("down") and started again on the same port."""

from __future__ import annotations

import contextlib
import email
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One mail as the server got it: the envelope and the parsed message."""

    sender: str
    recipients: list[str]
    data: bytes
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Inbox:
    """The server's handler: what arrived, and how to answer recipients (``refuse``: address → reply,
    e.g. "550 no such user"; ``busy``: address → how many more times to answer "451")."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)  # user → password, when AUTH is on
    arrived: threading.Event = field(default_factory=threading.Event)  # set by each mail

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.busy.get(address, 0) > 0:
            self.busy[address] -= 1
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.login.decode() if session.authenticated and session.auth_data else None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login))
        self.arrived.set()
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self.logins.get(data.login.decode()) == data.password.decode():
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]


class SmtpServer:
    """An aiosmtpd server in its own thread; ``stop()`` takes it down, ``start()`` brings it back."""

    def __init__(self, inbox: Inbox, *, auth: bool = False) -> None:
        self.inbox = inbox
        self.port = free_port()
        self._auth = auth
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self._auth:
            options = {
                "authenticator": self.inbox.authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextlib.contextmanager
def running(inbox: Inbox | None = None, *, auth: bool = False) -> Iterator[SmtpServer]:
    """An SMTP server on a free port for the ``with`` block."""
    server = SmtpServer(inbox or Inbox(), auth=auth)
    server.start()
    try:
        yield server
    finally:
        server.stop()
