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

from storage import send_gates as send_gates_store

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

    def take_now(self, tat: float, now: float) -> tuple[float, float]:
        """Take a slot at ``now`` if the budget has one: (0, the budget time after it); else (seconds
        until it has one, ``tat`` unchanged). Nothing is reserved ahead, so a late waker takes nothing."""
        allowed = tat - self.tolerance
        if allowed <= now:
            return 0.0, max(tat, now) + self.interval
        return allowed - now, tat


UNPACED = Pace(math.inf)


def chat_pace(per_second: float) -> Pace:
    """Telegram's FAQ: "avoid sending more than one message per second" to a chat; short bursts pass,
    so a reply of a few messages goes at once. 0: no limit."""
    return Pace(per_second, burst=4) if per_second > 0 else UNPACED


def global_pace(per_second: float, *, slack: float = 0.0) -> Pace:
    """At most ``per_second`` messages in any second (5/6 of it steadily, 1/6 as a burst), also when each
    goes up to ``slack`` seconds after its slot was taken (the round trip that took it). 0: no limit."""
    if per_second <= 0:
        return UNPACED
    burst = max(1, int(per_second / 6))
    # Slots taken within any 1 + slack seconds are all the messages that can arrive in one second.
    return Pace(max(per_second - burst, per_second / 6) / (1 + slack), burst=burst)


# Calls that are no chat message and do not count against the budget.
UNBUDGETED_METHODS = frozenset({"answerCallbackQuery", "setMyCommands", "deleteMyCommands"})


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
    # A slot of the bot's budget is used only this soon after it was taken (see ``global_pace``).
    late: float
    # Whether this process is the bot's only sender: then no other process sends from the queue.
    alone: bool

    def turn(
        self, chat_id: int, *, now: float, wait: float
    ) -> contextlib.AbstractAsyncContextManager[ChatTurn | None]:
        """Hold the chat's turn inside the block; None when another sender keeps it: at once when it is
        a sender in this process (it reads the chat's queue again before it lets go), else after asking
        another process's claim for up to ``wait`` seconds."""
        ...

    def busy(self, chat_id: int) -> bool:
        """Whether a sender of this process has the chat's turn now."""
        ...

    async def record(self, session: AsyncSession, turn: ChatTurn) -> None:
        """Store the chat's budget time and end the turn inside the caller's transaction."""
        ...

    async def keep(self, turn: ChatTurn, *, until: float) -> bool:
        """Make sure the turn lasts well beyond ``until`` (a send may start then); False if it was lost
        (only a database claim can be)."""
        ...

    async def take_global(self, now: float) -> float:
        """Take a slot of the bot's whole budget at ``now`` (wall clock): 0.0 when taken, else how many
        seconds until there is one (nothing taken)."""
        ...


class LocalGate:
    """Turns and budgets in this process's memory: right for one process (the SQLite default)."""

    MAX_REMEMBERED = 10_000
    alone = True

    def __init__(self, chat_pace: Pace = UNPACED, global_pace: Pace = UNPACED) -> None:
        self.chat_pace = chat_pace
        self.late = math.inf  # a slot is taken right before the send, with nothing to wait for between
        self._global_pace = global_pace
        self._global_tat = 0.0
        self._tats: dict[int, float] = {}
        self._holding: set[int] = set()  # chats a sender of this process has the turn on

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, *, now: float, wait: float = 0.0) -> AsyncIterator[ChatTurn | None]:
        # Never waited for: the holder sends what is queued meanwhile too, so a waiter would only keep
        # a task (and whatever it holds) busy for nothing.
        if chat_id in self._holding:
            yield None
            return
        self._holding.add(chat_id)
        try:
            turn = ChatTurn(chat_id, self._tats.get(chat_id, 0.0))
            yield turn
            self._remember(chat_id, turn.tat, now)
        finally:
            self._holding.discard(chat_id)

    def busy(self, chat_id: int) -> bool:
        return chat_id in self._holding

    def _remember(self, chat_id: int, tat: float, now: float) -> None:
        self._tats[chat_id] = tat
        if len(self._tats) > self.MAX_REMEMBERED:  # budgets in the past hold nothing back: drop them
            self._tats = {chat: t for chat, t in self._tats.items() if t > now}

    async def record(self, session: AsyncSession, turn: ChatTurn) -> None:
        turn.recorded = True

    async def keep(self, turn: ChatTurn, *, until: float) -> bool:
        return True

    async def take_global(self, now: float) -> float:
        wait, self._global_tat = self._global_pace.take_now(self._global_tat, now)
        return wait


class DatabaseGate:
    """Turns and budgets in the ``send_gates`` table, shared by every process on the database.

    A turn is a claim on the chat's row that runs out ``claim_seconds`` after the longest Bot API call
    (``call_seconds``) could end, so a crashed holder blocks the chat no longer than that; within one
    process only one sender asks for a chat's turn at a time.
    """

    FIRST_RETRY = 0.025  # then twice as long each time: a held chat is asked a few times, not polled
    alone = False

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        chat_pace: Pace = UNPACED,
        global_pace: Pace = UNPACED,
        claim_seconds: float = 30.0,
        wall: Callable[[], float] = time.time,
        holder: str | None = None,
        late: float = 0.1,
        call_seconds: float = 30.0,
    ) -> None:
        self.chat_pace = chat_pace
        self.late = late
        self._global_pace = global_pace
        self._sessions = sessions
        self._claim_seconds = claim_seconds
        self._call_seconds = call_seconds  # the longest one Bot API call can take before it times out
        self._wall = wall  # claims are compared across processes: always the wall clock
        self._local = LocalGate()
        # Unique per process, unless the caller names a role only one process has at a time: then a
        # restarted process takes its predecessor's claims back at once instead of waiting them out.
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[-80:]

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, *, now: float, wait: float = 0.0) -> AsyncIterator[ChatTurn | None]:
        # This process's own sender of the chat sends what is queued meanwhile too: never wait for it.
        async with self._local.turn(chat_id, now=now) as local:
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

    def busy(self, chat_id: int) -> bool:
        return self._local.busy(chat_id)

    async def _claim(self, chat_id: int, wait: float) -> ChatTurn | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        pause = self.FIRST_RETRY
        while True:
            now = self._wall()
            until = now + self._call_seconds + self._claim_seconds
            async with self._sessions() as session, session.begin():
                tat = await send_gates_store.claim_chat(
                    session, chat_id, holder=self.holder, now=now, until=until
                )
            if tat is not None:
                return ChatTurn(chat_id, tat, held_until=until)
            if loop.time() + pause > deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def record(self, session: AsyncSession, turn: ChatTurn) -> None:
        await send_gates_store.release_chat(session, turn.chat_id, holder=self.holder, tat=turn.tat)
        turn.recorded = True

    async def keep(self, turn: ChatTurn, *, until: float) -> bool:
        # Room for one whole Bot API call after ``until``: a claim that ran out during a send would let
        # another worker send the same message again.
        if turn.held_until - until > self._call_seconds + self._claim_seconds / 2:
            return True
        wall = self._wall()
        if turn.held_until < wall:
            log.warning(
                "a claim on a chat ran out %.1f s ago while this worker sent to it", wall - turn.held_until
            )
        held_until = max(until, wall) + self._call_seconds + self._claim_seconds
        async with self._sessions() as session, session.begin():
            kept = await send_gates_store.extend_claim(
                session, turn.chat_id, holder=self.holder, until=held_until
            )
        if kept:
            turn.held_until = held_until
        else:
            log.warning("another worker took over a chat this worker was sending to")
        return kept

    async def take_global(self, now: float) -> float:
        if self._global_pace is UNPACED:
            return 0.0
        pace = self._global_pace
        async with self._sessions() as session:
            # Every message of every worker takes its slot from this one row: on PostgreSQL the single
            # statement commits by itself, so the row is locked for the statement, not a round trip.
            if session.get_bind().dialect.name == "postgresql":
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            wait = await send_gates_store.take_budget(
                session,
                send_gates_store.GLOBAL_GATE_KEY,
                now=now,
                interval=pace.interval,
                tolerance=pace.tolerance,
                token=secrets.token_hex(8),
            )
            await session.commit()
        return wait
