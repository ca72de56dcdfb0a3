"""E-mail to departments, with the Telegram outbox's discipline: queued in the transaction that causes
it, sent after commit, retried through outages (until ``max_age``), never sent twice on a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Protocol, TextIO

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from bot.outbox import backoff
from bot.settings import Settings
from bot.smtp import Echo, SendError, SmtpTarget, SmtpTransport
from flows.municipality import Municipality
from storage import mail_outbox as mail_store
from storage.db import reading
from storage.mail_outbox import MailRow, NewMail

log = logging.getLogger(__name__)

FALLBACK_SENDER = "initiatiefbot@localhost"
# How long a claimed mail is left to the sender that claimed it; longer than one SMTP conversation
# (bot.smtp.SMTP_TIMEOUT), so no other worker takes it over while it is still being sent.
MAIL_LEASE = timedelta(minutes=5)
MAX_AGE = timedelta(days=3)
SWEEP_INTERVAL = 5.0
MIN_SWEEP_INTERVAL = 0.5
# How long a stopping process lets the mail under way finish (and be marked sent).
STOP_TIMEOUT = 15.0
QUEUED = "mail_queued"  # the session.info key that tells the committer to kick the mailer


class MailTransport(Protocol):
    """Where mail goes: an SMTP server (``bot.smtp.SmtpTransport``) or a folder (``EmlTransport``)."""

    async def send(self, mail: MailRow, message: bytes, *, sender: str) -> None:
        """Deliver ``message``; raise :class:`bot.smtp.SendError` when it did not go."""
        ...


@dataclass(frozen=True)
class Sender:
    """The From of every mail: the municipality's ``[mail] from`` and ``from_name``."""

    address: str = FALLBACK_SENDER
    name: str = ""

    @classmethod
    def of(cls, m: Municipality) -> Sender:
        return cls(m.mail_from or FALLBACK_SENDER, m.mail_from_name)


# Headers are written on one line (up to SMTP's 998): Python 3.11 folds a long subject with "é" or
# "—" so that mail clients drop a space ("straat —één"). Subjects are at most 255 characters.
_UNFOLDED = SMTP.clone(max_line_length=998)


def compose(mail: MailRow, sender: Sender) -> bytes:
    """The mail as sent: plain UTF-8 text; Date and Message-ID fixed when queued, so a resend after a
    crash is byte for byte the same mail."""
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((sender.name, sender.address)) if sender.name else sender.address
    message["To"] = formataddr((mail.to_name, mail.to_address)) if mail.to_name else mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at)
    message["Message-ID"] = mail.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    message.set_content(mail.body, charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=_UNFOLDED)


def links(body: str) -> list[str]:
    """The body's lines that hold a link (the shell shows them beside the subject)."""
    return [line.strip() for line in body.splitlines() if "://" in line]


def terminal_echo(out: TextIO = sys.stdout) -> Echo:
    """Prints ``✉ to <address>: <subject>`` and the mail's link lines, for ``initiatiefbot shell``."""

    def echo(mail: MailRow) -> None:
        lines = [f"✉ to {mail.to_address}: {mail.subject}", *(f"   {link}" for link in links(mail.body))]
        print("\n".join(lines), file=out, flush=True)

    return echo


class EmlTransport:
    """Writes each mail to ``<folder>/<created>-<id>.eml`` (the embedded default without SMTP_URL);
    a resend overwrites the same file."""

    def __init__(self, folder: Path, *, echo: Echo | None = None) -> None:
        self.folder = folder
        self.echo = echo

    def path(self, mail: MailRow) -> Path:
        return self.folder / f"{mail.created_at.strftime('%Y%m%dT%H%M%SZ')}-{mail.id}.eml"

    async def send(self, mail: MailRow, message: bytes, *, sender: str) -> None:
        try:
            await asyncio.to_thread(self._write, self.path(mail), message)
        except OSError as exc:
            raise SendError(f"cannot write {self.path(mail)}: {exc}", server=True) from exc
        if self.echo is not None:
            self.echo(mail)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its final name, then renamed: a reader never sees half a mail.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def default_mail_dir(database_url: str) -> Path:
    """Where .eml files go without MAIL_DIR: a ``mail`` folder beside the SQLite file; for an in-memory
    SQLite or PostgreSQL database, ``mail`` in the working directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "mail"
    return Path("mail").resolve()


def mail_transport(settings: Settings, *, echo: Echo | None = None) -> MailTransport:
    """SMTP when SMTP_URL is set, else .eml files in MAIL_DIR (default: :func:`default_mail_dir`)."""
    if settings.smtp_url:
        target = SmtpTarget.parse(settings.smtp_url)
        log.info("e-mail goes out through %s", target.describe())
        return SmtpTransport(target, echo=echo)
    folder = settings.mail_dir or default_mail_dir(settings.database_url)
    log.info("SMTP_URL is not set: e-mail is written as .eml files to %s", folder)
    return EmlTransport(folder, echo=echo)


async def queue(
    session: AsyncSession, mails: Sequence[NewMail], m: Municipality, now: datetime
) -> list[MailRow]:
    """Queue ``mails`` in the session's transaction (sent once it commits) and note it in
    ``session.info``, so whoever commits kicks the mailer."""
    if not mails:
        return []
    domain = m.mail_from.rpartition("@")[2] or "localhost"
    rows = await mail_store.enqueue(session, mails, now=now, domain=domain)
    session.info[QUEUED] = True
    return rows


def queued(session: AsyncSession) -> bool:
    """Whether this session's transaction queued mail."""
    return bool(session.info.get(QUEUED))


# Called in the transaction that gives a mail up for good, to tell the staff member it was for.
Undeliverable = Callable[[AsyncSession, MailRow, str, datetime], Awaitable[None]]


class Mailer:
    """Sends queued mail one at a time: claimed under a lease (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL), sent, and marked sent in its own transaction at once, so a restart never sends a
    mail again; only a crash between the server's "accepted" and that mark repeats one mail, with
    the same Message-ID. A server that cannot be reached pauses sending until the retry is due."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: MailTransport,
        clock: Callable[[], datetime],
        *,
        sender: Sender | None = None,
        lease: timedelta = MAIL_LEASE,
        max_age: timedelta = MAX_AGE,
        undeliverable: Undeliverable | None = None,
    ) -> None:
        self._sessions = sessions
        self._undeliverable = undeliverable
        self.transport = transport
        self._clock = clock
        self._sender = sender or Sender()
        self._lease = lease
        self._max_age = max_age
        self._kicked = asyncio.Event()
        self._paused_until: datetime | None = None  # the server was down: nothing goes before this
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Mail was just committed: send it now, not at the next sweep."""
        self._kicked.set()

    async def flush(self, *, take_leased: bool = False) -> int:
        """Send every mail that is due now, oldest first; how many went. ``take_leased`` also takes
        mails claimed by a sender that has not finished yet: at start-up, when that was this process."""
        sent = 0
        tried: set[int] = set()
        while not self._stopping:
            now = self._clock()
            if self._paused_until is not None and now < self._paused_until:
                break
            due = now + self._lease if take_leased else now
            async with reading(self._sessions) as session:  # most sweeps find nothing: no write then
                first = await mail_store.next_due(session)
            if first is None or first > due:
                break
            async with self._sessions() as session, session.begin():
                # A mail retried soon (a 4xx) waits for the next sweep, not for this one's end.
                rows = await mail_store.claim(session, now=due, limit=1, until=now + self._lease, skip=tried)
            if not rows:
                break
            tried.add(rows[0].id)
            outcome = await self._send(rows[0])
            if outcome is None:
                break  # the server cannot be used now
            sent += outcome
        return sent

    async def _send(self, mail: MailRow) -> int | None:
        """Send one claimed mail and record what happened: 1 sent, 0 refused or deferred, None when
        the server cannot be used (then nothing more is tried until the retry is due)."""
        try:
            await self.transport.send(mail, compose(mail, self._sender), sender=self._sender.address)
        except SendError as exc:
            return await self._failed(mail, exc)
        except Exception as exc:
            log.exception("mail %s could not be sent; retried later", mail.id)
            return await self._failed(mail, SendError(f"{type(exc).__name__}: {exc}", server=True))
        # Marked at once, before the next mail; a database hiccup now would send it again later.
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential(max=4), reraise=True
        ):
            with attempt:
                async with self._sessions() as session, session.begin():
                    await mail_store.mark_sent(session, mail.id, self._clock())
        self._paused_until = None
        log.info("mail %s (%s) sent", mail.id, mail.kind)
        return 1

    async def _failed(self, mail: MailRow, exc: SendError) -> int | None:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if exc.permanent:
                log.error("mail %s (%s) refused for good: %s", mail.id, mail.kind, exc.reason)
                await mail_store.mark_failed(session, mail.id, exc.reason)
                if self._undeliverable is not None:
                    await self._undeliverable(session, mail, exc.reason, now)
                return 0
            if now - mail.created_at >= self._max_age:
                log.error(
                    "mail %s (%s) not sent for %s; given up: %s", mail.id, mail.kind, self._max_age, exc
                )
                await mail_store.mark_failed(session, mail.id, f"gave up after {self._max_age}: {exc.reason}")
                if self._undeliverable is not None:
                    await self._undeliverable(session, mail, exc.reason, now)
                return 0
            until = now + backoff(mail.attempts)
            log.warning("mail %s (%s) not sent (%s); retry at %s", mail.id, mail.kind, exc.reason, until)
            await mail_store.defer(session, mail.id, until=until, error=exc.reason)
        if exc.server:
            self._paused_until = until
            return None
        return 0

    async def next_sweep(self, interval: float) -> float:
        """Seconds until the next sweep: at the next retry or pause's end, at most ``interval``."""
        async with reading(self._sessions) as session:
            due = await mail_store.next_due(session)
        moment = self._paused_until or due  # while paused, due mails wait for the pause's end
        if moment is None:
            return interval
        wait = (moment - self._clock()).total_seconds()
        return min(interval, max(wait, MIN_SWEEP_INTERVAL))

    async def run(self, interval: float = SWEEP_INTERVAL, *, take_leased: bool = False) -> None:
        """Sweep until stopped: at once when kicked, else at the next retry, at least every ``interval`` s."""
        while not self._stopping:
            self._kicked.clear()  # before the sweep, so a kick during it is not missed
            delay = interval
            try:
                await self.flush(take_leased=take_leased)
                take_leased = False
                delay = await self.next_sweep(interval)
            except Exception:
                log.exception("mail sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), timeout=delay)

    def start(self, interval: float = SWEEP_INTERVAL, *, take_leased: bool = False) -> None:
        """Run the sweeper in the background; its first sweep sends what was queued before a restart
        (``take_leased``: also what this process had claimed then, when it is the only sender)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(
                self.run(interval, take_leased=take_leased), name="mail-sweeper"
            )

    async def stop(self, grace: float = STOP_TIMEOUT) -> None:
        """Stop sweeping: the mail under way may finish and be marked sent (for up to ``grace`` s)."""
        self._stopping = True
        self._kicked.set()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            log.warning("a mail is still being sent after %.0f s; stopping anyway", grace)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
