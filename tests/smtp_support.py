"""A real SMTP server for the tests (aiosmtpd, on 127.0.0.1 and a free port) that keeps what it receives
and can refuse recipients, be stopped ("down") and started again on the same port."""

from __future__ import annotations

import contextlib
import email
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
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

    def __init__(
        self,
        inbox: Inbox,
        *,
        auth: bool = False,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.inbox = inbox
        self.port = free_port()
        self._auth = auth
        self._tls = tls  # STARTTLS (required, and AUTH only after it), or TLS from the start
        self._implicit_tls = implicit_tls
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self._auth:
            options = {
                "authenticator": self.inbox.authenticate,
                # Without TLS: plain localhost, on purpose. aiosmtpd sees only STARTTLS as TLS.
                "auth_require_tls": self._tls is not None and not self._implicit_tls,
                "auth_required": True,
            }
        if self._tls is not None and self._implicit_tls:
            options["ssl_context"] = self._tls
        elif self._tls is not None:
            options |= {"tls_context": self._tls, "require_starttls": True}
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def self_signed(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A certificate for 127.0.0.1 made with openssl: the server's context and a client's that trusts it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


@contextlib.contextmanager
def running(
    inbox: Inbox | None = None,
    *,
    auth: bool = False,
    tls: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
) -> Iterator[SmtpServer]:
    """An SMTP server on a free port for the ``with`` block."""
    server = SmtpServer(inbox or Inbox(), auth=auth, tls=tls, implicit_tls=implicit_tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
