"""Delivers queued messages after commit: in order per chat, with retries, never forever to a blocked user."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from storage import repository
from storage.repository import OutboxRow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# How long the sweep leaves freshly queued messages to the process that queued them (it sends them
# right after commit); only if that process died or failed does the sweep take them over.
SEND_LEASE = timedelta(seconds=30)
# Bad requests that mean the wanted state is already there (or can no longer matter).
HARMLESS = ("message is not modified", "message to edit not found", "query is too old", "query id is invalid")


class Transport(Protocol):
    """Where messages go: the Telegram Bot API, or the terminal in ``initiatiefbot shell``."""

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        """Carry out one Bot API call; return the id of the message it created or edited, if any."""
        ...


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** max(attempts, 0), 300))


def _retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta; both are handled
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Outbox:
    """Sends outbox rows through a transport and records what happened to each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: Transport,
        clock: Callable[[], datetime],
        *,
        batch_size: int = 100,
        lease: timedelta = SEND_LEASE,
    ) -> None:
        self._sessions = sessions
        self._transport = transport
        self._clock = clock
        self._batch_size = batch_size
        self._lease = lease
        # One lock per chat, so chats send in parallel while each chat's messages keep their order.
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._chat_users: dict[int, int] = {}
        self._in_flight: set[int] = set()  # rows this process is about to send: the sweep leaves them
        self._deferred = asyncio.Event()  # wakes the sweeper to plan a retry it did not know of
        self._held: dict[int, datetime] = {}  # chat -> until when its deferred message blocks the rest

    async def send(self, rows: Sequence[OutboxRow]) -> None:
        """Send rows that were just committed (in id order); failures stay in the table for the sweep."""
        if not rows:
            return
        self._in_flight.update(row.id for row in rows)
        try:
            async with self._chats({row.chat_id for row in rows}):
                await self._send(rows)
        finally:
            self._in_flight.difference_update(row.id for row in rows)

    @contextlib.asynccontextmanager
    async def _chats(self, chat_ids: set[int]) -> AsyncIterator[None]:
        """Hold the locks of these chats (in a fixed order, so two batches never wait on each other)."""
        ordered = sorted(chat_ids)
        locks = []
        for chat in ordered:
            self._chat_users[chat] = self._chat_users.get(chat, 0) + 1
            locks.append(self._chat_locks.setdefault(chat, asyncio.Lock()))
        acquired: list[asyncio.Lock] = []
        try:
            for lock in locks:
                await lock.acquire()
                acquired.append(lock)
            yield
        finally:
            for lock in acquired:
                lock.release()
            for chat in ordered:
                self._chat_users[chat] -= 1
                if not self._chat_users[chat]:  # nobody else wants this chat: forget its lock
                    del self._chat_users[chat], self._chat_locks[chat]

    async def flush(self, *, take_leased: bool = False) -> int:
        """Send everything that is due now, e.g. waiting for a retry or left over from a crash.

        ``take_leased`` also takes messages still leased to their sender: right after start-up, when
        that sender was this process before it stopped, so they go out before anything new.
        """
        sent = 0
        while True:
            now = self._clock()
            due = now + (self._lease if take_leased else timedelta(0))
            async with self._sessions() as session, session.begin():
                rows = await repository.pending(session, now=due, limit=self._batch_size)
                rows = [row for row in rows if row.id not in self._in_flight]
                # Leased to this process before the row locks go: another worker's sweep skips them,
                # and takes them over only if this one dies before marking them sent.
                await repository.lease(session, [row.id for row in rows], until=now + self._lease)
            if not rows:
                return sent
            async with self._chats({row.chat_id for row in rows}):
                await self._send(rows)
            sent += len(rows)
            if len(rows) < self._batch_size:
                return sent

    async def run(self, interval: float = 5.0) -> None:
        """Sweep for due messages until cancelled: at the next retry time, at least every ``interval`` s."""
        while True:
            delay = interval
            self._deferred.clear()  # before the sweep, so a deferral during it is not missed
            try:
                await self.flush()
                async with self._sessions() as session, session.begin():
                    due = await repository.next_due(session)
                if due is not None:
                    delay = min(interval, max((due - self._clock()).total_seconds(), 0.05))
            except Exception:
                log.exception("outbox sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deferred.wait(), timeout=delay)

    async def _send(self, rows: Sequence[OutboxRow]) -> None:
        sent: list[tuple[int, int | None]] = []
        held: set[int] = set()  # chats whose earlier message must go first
        blocked: set[int] = set()
        failed: list[tuple[int, str]] = []
        deferred: list[tuple[OutboxRow, datetime, str]] = []
        postponed: dict[int, tuple[int, datetime]] = {}  # chat -> (first row id, until)
        now = self._clock()
        self._held = {chat: until for chat, until in self._held.items() if until > now}
        for row in sorted(rows, key=lambda r: r.id):
            if row.chat_id in held or row.chat_id in blocked:
                continue
            if row.chat_id in self._held:
                # An earlier message to this chat waits for a retry: this one may not overtake it.
                postponed.setdefault(row.chat_id, (row.id, self._held[row.chat_id]))
                continue
            try:
                message_id = await self._transport.deliver(row.method, dict(row.payload))
            except RetryAfter as exc:
                until = self._clock() + timedelta(seconds=_retry_seconds(exc))
                deferred.append((row, until, f"flood wait {_retry_seconds(exc):.0f}s"))
                held.add(row.chat_id)
            except Forbidden as exc:
                log.info("chat %s is unreachable: %s", row.chat_id, exc.message)
                blocked.add(row.chat_id)
                failed.append((row.id, f"forbidden: {exc.message}"))
            except BadRequest as exc:
                if any(h in exc.message.lower() for h in HARMLESS):
                    sent.append((row.id, None))
                else:
                    log.error("outbox %s %s refused: %s", row.id, row.method, exc.message)
                    failed.append((row.id, f"bad request: {exc.message}"))
            except (NetworkError, TelegramError, OSError) as exc:  # timeouts and 5xx included
                if row.attempts + 1 >= MAX_ATTEMPTS:
                    failed.append((row.id, f"gave up: {exc}"))
                else:
                    deferred.append((row, self._clock() + backoff(row.attempts), f"network: {exc}"))
                    held.add(row.chat_id)
            else:
                sent.append((row.id, message_id))
        async with self._sessions() as session, session.begin():
            now = self._clock()
            if sent:
                await repository.mark_sent(session, sent, now)
            for row_id, error in failed:
                await repository.mark_failed(session, row_id, error)
            for chat_id in blocked:
                await repository.mark_unreachable(session, chat_id, now)
                await repository.fail_chat(session, chat_id, "forbidden: chat unreachable")
            for row, until, error in deferred:
                await repository.defer(session, row.id, until=until, error=error)
                await repository.hold_chat(session, row.chat_id, after_id=row.id, until=until)
                self._held[row.chat_id] = until
            for chat_id, (first_id, until) in postponed.items():
                await repository.hold_chat(session, chat_id, after_id=first_id - 1, until=until)
        if deferred or postponed:
            self._deferred.set()
