"""SMTP_URL and sending through it: one mail, one connection, each failure sorted into "retry" or "never"."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

if TYPE_CHECKING:
    from storage.mail_outbox import MailRow

log = logging.getLogger(__name__)

# How long one SMTP conversation (connect, TLS, login, the mail) may take before it counts as failed.
SMTP_TIMEOUT = 30.0
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
StartTls = Literal["auto", "required", "off"]


class SmtpUrlError(ValueError):
    """SMTP_URL cannot be used; the message says why and never shows the password."""


class SendError(Exception):
    """A mail that did not go. ``permanent``: the server refused it for good (do not retry);
    ``server``: the server as a whole could not be used (down, TLS, login), so other mails wait too."""

    def __init__(self, reason: str, *, permanent: bool = False, server: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.server = server


@dataclass(frozen=True)
class SmtpTarget:
    """Where mail goes: ``smtp://`` (STARTTLS when the server offers it, or as ``?starttls=`` says) or
    ``smtps://`` (TLS from the first byte), with optional URL-encoded ``user:password@``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False
    starttls: StartTls = "auto"

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Read SMTP_URL, e.g. ``smtp://bot%40zutphen.nl:secret@mail.zutphen.nl:587?starttls=required``."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise SmtpUrlError(
                f"'{_redacted(url)}' is not a valid URL; its port must be a number from 1 to 65535"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise SmtpUrlError(
                f"'{_redacted(url)}' must start with smtp:// (STARTTLS) or smtps:// (TLS), "
                "e.g. smtp://user:password@mail.example.nl:587"
            )
        if not parts.hostname:
            raise SmtpUrlError(f"'{_redacted(url)}' names no server, e.g. smtp://mail.example.nl:587")
        if parts.path not in ("", "/") or parts.fragment:
            raise SmtpUrlError(
                f"'{_redacted(url)}' has a path; SMTP_URL is only smtp[s]://user:password@host:port"
            )
        if port == 0:
            raise SmtpUrlError(f"'{_redacted(url)}': the port must be a number from 1 to 65535")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not username:
            raise SmtpUrlError(f"'{_redacted(url)}' has a password but no user name")
        starttls: StartTls = "auto"
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key != "starttls":
                raise SmtpUrlError(f"'{_redacted(url)}': unknown option '{key}'; only ?starttls=required|off")
            if value not in ("required", "off"):
                raise SmtpUrlError(f"'{_redacted(url)}': starttls is 'required' or 'off', not '{value}'")
            if scheme == "smtps":
                raise SmtpUrlError(f"'{_redacted(url)}': smtps:// is TLS already; starttls is for smtp://")
            starttls = value  # type: ignore[assignment]
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[scheme],
            username=username,
            password=password,
            implicit_tls=scheme == "smtps",
            starttls=starttls,
        )

    def describe(self) -> str:
        """The target for a log line: scheme, user, host and port, never the password."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        tls = "TLS" if self.implicit_tls else _STARTTLS_NAMES[self.starttls]
        return f"{scheme}://{user}{self.host}:{self.port} ({tls})"


_STARTTLS_NAMES = {"auto": "STARTTLS if offered", "required": "STARTTLS required", "off": "no TLS"}


def _redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return url.strip() if "@" not in url else "***"
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{hostport}{slash}{tail}"


Echo = Callable[["MailRow"], None]


class SmtpTransport:
    """Sends each mail in its own SMTP conversation with the target (e-mail is rare: a question, a
    reminder), so no connection is kept open between sweeps."""

    def __init__(
        self,
        target: SmtpTarget,
        *,
        echo: Echo | None = None,
        timeout: float = SMTP_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self.echo = echo
        self._timeout = timeout
        self._tls_context = tls_context  # tests: a context that trusts their own certificate

    async def send(self, mail: MailRow, message: bytes, *, sender: str) -> None:
        """Hand ``message`` to the server for ``mail.to_address``; raises :class:`SendError`."""
        target = self.target
        start_tls = {"auto": None, "required": True, "off": False}[target.starttls]
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[mail.to_address],
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.implicit_tls,
                start_tls=False if target.implicit_tls else start_tls,
                timeout=self._timeout,
                tls_context=self._tls_context,
            )
        except Exception as exc:
            raise failure(exc) from exc
        if self.echo is not None:
            self.echo(mail)


def failure(exc: BaseException) -> SendError:
    """What an aiosmtplib (or socket) error means for the mail: a 5xx refusal of the recipient or of
    the message is for good; everything else (4xx, the server down, a timeout, login) is retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return SendError(f"recipient refused: {text}", permanent=bool(codes) and all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        what = "recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "message"
        return SendError(f"{what} refused: {exc.code} {exc.message}", permanent=exc.code >= 500)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPSenderRefused):
        # The deployment's setup (login, sender address): mails wait until someone fixes it.
        log.error("the SMTP server refused the login or the sender: %s %s", exc.code, exc.message)
        return SendError(f"server refused: {exc.code} {exc.message}", server=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendError(f"server said {exc.code} {exc.message}", server=True)
    if isinstance(exc, aiosmtplib.SMTPException):
        return SendError(f"{type(exc).__name__}: {exc.message}", server=True)
    return SendError(f"{type(exc).__name__}: {exc}", server=True)
