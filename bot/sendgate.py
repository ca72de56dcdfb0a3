"""Telegram's send budget and the right to send to a chat: kept in this process, or in the database.

Telegram lets a bot send about one message per second to a chat (short bursts pass) and about 30 per
second in all; beyond that it answers 429 with a flood wait. The outbox asks a gate for a *turn* on a
chat before it sends there (one sender per chat, so the chat's messages keep their order) and for
slots of the bot's whole budget for the messages it is about to send. ``LocalGate`` keeps both in
memory (one process, the SQLite default); ``DatabaseGate`` keeps them in ``send_gates`` so every worker
on one PostgreSQL database shares them, flood waits included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pace:
    """At most ``burst`` messages at once, then ``per_second`` on average (the GCRA algorithm).

    The state is one number, the budget time ``tat``: a message may go at ``tat - tolerance``.
    """

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError(f"a pace needs a positive rate and a burst of at least 1, not {self}")

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval

    def take(self, tat: float, now: float) -> tuple[float, float]:
        """When the next message may go, and the budget time after it."""
        start = max(tat, now)
        return max(start - self.tolerance, now), start + self.interval


UNPACED = Pace(math.inf)


def chat_pace(per_second: float) -> Pace:
    """Telegram's FAQ: "avoid sending more than one message per second" to a chat; short bursts pass,
    so a reply of a few messages goes at once. 0: no limit."""
    return Pace(per_second, burst=4) if per_second > 0 else UNPACED


def global_pace(per_second: float) -> Pace:
    """At most ``per_second`` messages in any second (5/6 of it steadily, 1/6 as a burst). 0: no limit."""
    if per_second <= 0:
        return UNPACED
    burst = max(1, int(per_second / 6))
    return Pace(max(per_second - burst, per_second / 6), burst=burst)


# Calls that are no chat message and do not count against the budget.
UNBUDGETED_METHODS = frozenset({"answerCallbackQuery"})


@dataclass
class ChatTurn:
    """The right to send to one chat now; ``tat`` is the chat's budget time while the turn runs."""

    chat_id: int
    tat: float
    held_until: float = math.inf  # when a database claim runs out (never, for a local turn)
    recorded: bool = False


class SendGate(Protocol):
    """Where turns and budgets live."""

    chat_pace: Pace

    def turn(
        self, chat_id: int, *, now: float, wait: float | None
    ) -> contextlib.AbstractAsyncContextManager[ChatTurn | None]:
        """Hold the chat's turn inside the block; None when another sender keeps it: at once for
        ``wait == 0``, else after up to ``wait`` seconds (None: as long as it takes)."""
        ...

    async def record(self, session: AsyncSession, turn: ChatTurn) -> None:
        """Store the chat's budget time and end the turn inside the caller's transaction."""
        ...

    async def keep(self, turn: ChatTurn, *, until: float) -> bool:
        """Make sure the turn lasts well beyond ``until`` (a send may start then); False if it was lost
        (only a database claim can be)."""
        ...

    async def global_slots(self, now: float, count: int) -> list[float]:
        """Take the next ``count`` slots of the bot's whole budget; when each starts (wall clock)."""
        ...


class LocalGate:
    """Turns and budgets in this process's memory: right for one process (the SQLite default)."""

    MAX_REMEMBERED = 10_000

    def __init__(self, chat_pace: Pace = UNPACED, global_pace: Pace = UNPACED) -> None:
        self.chat_pace = chat_pace
        self._global_pace = global_pace
        self._global_tat = 0.0
        self._tats: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, *, now: float, wait: float | None) -> AsyncIterator[ChatTurn | None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        try:
            if not await _acquire(lock, wait):
                yield None
                return
            try:
                turn = ChatTurn(chat_id, self._tats.get(chat_id, 0.0))
                yield turn
                self._remember(chat_id, turn.tat, now)
            finally:
                lock.release()
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:  # nobody else wants this chat: forget its lock
                del self._users[chat_id], self._locks[chat_id]

    def _remember(self, chat_id: int, tat: float, now: float) -> None:
        self._tats[chat_id] = tat
        if len(self._tats) > self.MAX_REMEMBERED:  # budgets in the past hold nothing back: drop them
            self._tats = {chat: t for chat, t in self._tats.items() if t > now}

    async def record(self, session: AsyncSession, turn: ChatTurn) -> None:
        turn.recorded = True

    async def keep(self, turn: ChatTurn, *, until: float) -> bool:
        return True

    async def global_slots(self, now: float, count: int) -> list[float]:
        if self._global_pace is UNPACED:
            return [now] * count
        slots = []
        for _ in range(count):
            allowed, self._global_tat = self._global_pace.take(self._global_tat, now)
            slots.append(allowed)
        return slots


class DatabaseGate:
    """Turns and budgets in the ``send_gates`` table, shared by every process on the database.

    A turn is a claim on the chat's row that runs out after ``claim_seconds`` (a crashed holder blocks
    the chat no longer than that); within one process a lock per chat keeps it from racing itself.
    """

    FIRST_RETRY = 0.025  # then twice as long each time: a held chat is asked a few times, not polled

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        chat_pace: Pace = UNPACED,
        global_pace: Pace = UNPACED,
        claim_seconds: float = 30.0,
        wall: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self.chat_pace = chat_pace
        self._global_pace = global_pace
        self._sessions = sessions
        self._claim_seconds = claim_seconds
        self._wall = wall  # claims are compared across processes: always the wall clock
        self._local = LocalGate()
        # Unique per process, unless the caller names a role only one process has at a time: then a
        # restarted process takes its predecessor's claims back at once instead of waiting them out.
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[-80:]

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, *, now: float, wait: float | None) -> AsyncIterator[ChatTurn | None]:
        # Within this process, wait for this process's own sender of the chat (it finishes soon).
        async with self._local.turn(chat_id, now=now, wait=None if wait else 0) as local:
            if local is None:
                yield None
                return
            turn = await self._claim(chat_id, wait)
            if turn is None:
                yield None
                return
            try:
                yield turn
            finally:
                if not turn.recorded:  # the block failed before recording: give the chat back
                    with contextlib.suppress(Exception):
                        async with self._sessions() as session, session.begin():
                            await self.record(session, turn)

    async def _claim(self, chat_id: int, wait: float | None) -> ChatTurn | None:
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        pause = self.FIRST_RETRY
        while True:
            now = self._wall()
            until = now + self._claim_seconds
            async with self._sessions() as session, session.begin():
                tat = await repository.claim_chat(session, chat_id, holder=self.holder, now=now, until=until)
            if tat is not None:
                return ChatTurn(chat_id, tat, held_until=until)
            if deadline is not None and loop.time() + pause > deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def record(self, session: AsyncSession, turn: ChatTurn) -> None:
        await repository.release_chat(session, turn.chat_id, holder=self.holder, tat=turn.tat)
        turn.recorded = True

    async def keep(self, turn: ChatTurn, *, until: float) -> bool:
        # Room for one Bot API call (PTB gives up after about 20 s) between ``until`` and the end.
        if turn.held_until - until > self._claim_seconds / 2:
            return True
        wall = self._wall()
        if turn.held_until < wall:
            log.warning(
                "a claim on a chat ran out %.1f s ago while this worker sent to it", wall - turn.held_until
            )
        held_until = max(until, wall) + self._claim_seconds
        async with self._sessions() as session, session.begin():
            kept = await repository.extend_claim(session, turn.chat_id, holder=self.holder, until=held_until)
        if kept:
            turn.held_until = held_until
        else:
            log.warning("another worker took over a chat this worker was sending to")
        return kept

    async def global_slots(self, now: float, count: int) -> list[float]:
        if self._global_pace is UNPACED or count == 0:
            return [now] * count
        pace = self._global_pace
        async with self._sessions() as session:
            # Every message of every worker takes its slot from this one row: on PostgreSQL the single
            # statement commits by itself, so the row is locked for the statement, not a round trip.
            if session.get_bind().dialect.name == "postgresql":
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            tat = await repository.reserve_budget(
                session, repository.GLOBAL_GATE_KEY, now=now, interval=count * pace.interval
            )
            await session.commit()
        # The budget time moved on by ``count`` intervals; the slots are the last ``count`` of them.
        first = tat - count * pace.interval - pace.tolerance
        return [max(first + i * pace.interval, now) for i in range(count)]


async def _acquire(lock: asyncio.Lock, wait: float | None) -> bool:
    """Take the lock; with ``wait == 0`` only if it is free. Other waits wait as long as it takes: within
    one process the holder is sending and finishes soon."""
    if wait is not None and wait <= 0 and lock.locked():
        return False
    await lock.acquire()
    return True
