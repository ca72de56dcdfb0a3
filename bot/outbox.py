"""Delivers queued messages after commit: in order per chat, retried through outages of hours (until a
message is older than ``max_age``), never forever to a blocked user."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.warnings import PTBDeprecationWarning

from bot.sendgate import UNBUDGETED_METHODS, ChatTurn, LocalGate, SendGate
from storage import outbox as outbox_store
from storage import people as people_store
from storage.db import reading, transaction
from storage.outbox import OutboxRow

log = logging.getLogger(__name__)

# A message that could not be delivered this long (Telegram down, the network gone) is given up on and
# reported to the staff member who can reach the person another way.
MAX_AGE = timedelta(days=3)
# Retries wait twice as long each time, up to this.
MAX_BACKOFF = 300
# A new message whose send timed out may have reached Telegram all the same: it is tried again no sooner.
TIMED_OUT_PAUSE = timedelta(seconds=60)
# How long the sweep leaves freshly queued messages to the process that queued them (it sends them
# right after commit); only if that process died or failed does the sweep take them over.
SEND_LEASE = timedelta(seconds=30)
# A chat whose budget allows its next message only later than this is left to the sweep meanwhile.
MAX_PACE_WAIT = 5.0
# How long a fresh message's sender asks for another worker's turn on the chat; that worker reads the
# chat's queue again before it lets go, so it usually sends these too, else the sweep does.
CLAIM_WAIT = 0.5
# The sweep looks again at most this often, also when due messages wait for another worker's turn.
MIN_SWEEP_INTERVAL = 0.5
# Messages sent within this many seconds of each other are marked sent in one transaction (or sooner,
# once this many wait).
SENT_BATCH_WINDOW = 0.002
SENT_BATCH_MAX = 200
# Calls that change nothing when made twice (Telegram answers "not modified" or "query is too old"):
# one of these need not be recorded before the next call, a new message must.
IDEMPOTENT_METHODS = frozenset(
    {"answerCallbackQuery", "editMessageText", "editMessageReplyMarkup", "setMyCommands", "deleteMyCommands"}
)
# Bad requests that mean the wanted state is already there (or can no longer matter).
HARMLESS = ("message is not modified", "message to edit not found", "query is too old", "query id is invalid")


class Transport(Protocol):
    """Where messages go: the Telegram Bot API, or the terminal in ``initiatiefbot shell``."""

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        """Carry out one Bot API call; return the id of the message it created or edited, if any."""
        ...


def backoff(attempts: int) -> timedelta:
    """1 s after the first failure, then twice as long each time, at most ``MAX_BACKOFF`` seconds."""
    return timedelta(seconds=min(2 ** min(max(attempts, 0), 16), MAX_BACKOFF))


# Called in the transaction that gives up on messages, to tell someone who can reach the person.
Undelivered = Callable[[AsyncSession, Sequence[OutboxRow], datetime], Awaitable[None]]
# Called in the transaction that marks a chat unreachable (Telegram answered 403).
Unreachable = Callable[[AsyncSession, int, datetime], Awaitable[None]]


class _SenderSlot:
    """One of the process's sender slots, held while a chat sends and given back while it waits."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def take(self) -> None:
        await self._slots.acquire()
        self._held = True

    def give(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


def _retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta; both are handled
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass
class _Outcome:
    """What happened to a chat's messages in one pass, recorded in one transaction afterwards."""

    sent: list[tuple[int, int | None]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    blocked: bool = False
    deferred: tuple[OutboxRow, datetime, str] | None = None
    held: tuple[int, datetime] | None = None  # (after this row id, until): the rest waits
    lost_turn: bool = False
    expired: list[OutboxRow] = field(default_factory=list)  # given up on: too old to deliver
    recorded: int = 0  # how many of ``sent`` are already marked sent in the database
    unrecorded_new: bool = False  # one of the unrecorded ones would show twice if sent again

    @property
    def stopped(self) -> bool:
        return self.blocked or self.deferred is not None or self.held is not None or self.lost_turn

    @property
    def clean(self) -> bool:
        """Everything went: nothing failed, waits or has to be reported."""
        return not self.stopped and not self.failed and not self.expired


class _SentLog:
    """Marks messages sent, in one transaction for every chat that asks within ``SENT_BATCH_WINDOW``.

    A caller waits until its messages are marked, so a chat's next call still goes out only after the
    previous new message is recorded (a crash then repeats at most that one message per chat). The
    wait costs no one a reply: it ends a turn that already delivered its messages."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._clock = clock
        self._batch: list[tuple[int, int | None]] = []
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def record(self, sent: Sequence[tuple[int, int | None]]) -> None:
        if not sent:
            return
        self._batch.extend(sent)
        done = self._done
        if done is None:
            loop = asyncio.get_running_loop()
            done = self._done = loop.create_future()
            self._timer = loop.call_later(SENT_BATCH_WINDOW, self._start)
        elif len(self._batch) >= SENT_BATCH_MAX:
            self._start()
        await asyncio.shield(done)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        batch, done = self._batch, self._done
        self._batch, self._done, self._timer = [], None, None
        if done is not None:
            asyncio.get_running_loop().create_task(self._write(batch, done))

    async def _write(self, batch: list[tuple[int, int | None]], done: asyncio.Future[None]) -> None:
        try:
            async with transaction(self._sessions) as (tx, _):
                await outbox_store.mark_sent(tx, batch, self._clock())
        except BaseException as exc:
            done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            done.set_result(None)


class Outbox:
    """Sends outbox rows through a transport and records what happened to each.

    Messages go out chat by chat: a turn on the chat (see ``bot.sendgate``) makes this the chat's only
    sender, its pending messages are read again under the turn and sent oldest first, paced by the
    chat's and the bot's budget. A message is sent only under its chat's turn and only while pending,
    so two senders (the sweep, another worker) never both send it.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: Transport,
        clock: Callable[[], datetime],
        *,
        batch_size: int = 100,
        lease: timedelta = SEND_LEASE,
        gate: SendGate | None = None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        concurrent_chats: int = 16,
        max_age: timedelta = MAX_AGE,
        undelivered: Undelivered | None = None,
        unreachable: Unreachable | None = None,
    ) -> None:
        self._sessions = sessions
        self._transport = transport
        self._clock = clock
        self._batch_size = batch_size
        self._lease = lease
        self._gate: SendGate = gate if gate is not None else LocalGate()
        # Telegram's budgets run on the wall clock (shared with other workers), not on ``clock``, which
        # tests may stop or move; ``sleep`` waits on the wall clock.
        self._wall = wall
        self._sleep = sleep
        self._max_age = max_age
        self._undelivered = undelivered
        self._unreachable = unreachable
        self._deferred = asyncio.Event()  # wakes the sweeper to plan a retry it did not know of
        # Chats this process sends to at once: enough to keep Telegram's budget busy, few enough to
        # leave database connections to the updates themselves. A chat that waits holds none.
        self._senders = asyncio.Semaphore(concurrent_chats)
        # Chats whose queue grew while this process's sender had their turn: it looks once more.
        self._again: set[int] = set()
        self._sent_log = _SentLog(sessions, clock)

    async def send(self, rows: Sequence[OutboxRow], *, alone: Collection[int] = ()) -> None:
        """Send rows that were just committed (and leased to this process), with anything queued
        before them for the same chats; failures stay in the table for the sweep.

        ``alone``: chats for which these rows were the whole queue when they were committed. Where
        this process is the only sender (``gate.alone``) they are sent as they are, without reading
        the chat's queue again."""
        chats: dict[int, list[OutboxRow]] = {}
        for row in rows:
            chats.setdefault(row.chat_id, []).append(row)
        if not chats:
            return
        from_memory = alone if self._gate.alone else ()
        results = await asyncio.gather(
            *(
                self._drain(chat, wait=CLAIM_WAIT, fresh=chat_rows if chat in from_memory else None)
                for chat, chat_rows in chats.items()
            ),
            return_exceptions=True,
        )
        unsent: list[int] = []
        for chat_rows, result in zip(chats.values(), results, strict=True):
            if isinstance(result, BaseException):
                log.error("sending to a chat failed; the sweep retries", exc_info=result)
            elif result is None:
                unsent.extend(row.id for row in chat_rows)  # another worker keeps the chat's turn
        if unsent:
            async with self._sessions() as session, session.begin():
                await outbox_store.lease(session, unsent, until=self._clock())
            self._deferred.set()  # the sweep looks soon, in case that worker had just let go

    async def flush(self, *, take_leased: bool = False) -> int:
        """Send everything that is due now, e.g. waiting for a retry or left over from a crash.

        ``take_leased`` also takes messages still leased to their sender: right after start-up, when
        that sender was this process before it stopped, so they go out before anything new.
        """
        sent = 0
        while True:
            now = self._clock()
            due = now + (self._lease if take_leased else timedelta(0))
            async with reading(self._sessions) as session:
                rows = await outbox_store.pending(session, now=due, limit=self._batch_size)
            chats = list(dict.fromkeys(row.chat_id for row in rows))
            results = await asyncio.gather(
                *(self._drain(chat, wait=0) for chat in chats), return_exceptions=True
            )
            progress = 0
            for result in results:
                if isinstance(result, BaseException):
                    log.error("sending to a chat failed; the sweep retries", exc_info=result)
                elif result is not None:
                    progress += result
            sent += progress
            if len(rows) < self._batch_size or not progress:
                return sent

    async def settle(self, *, within: float = 60.0) -> bool:
        """Send until nothing is pending, waiting out pacing and retries for up to ``within`` seconds
        (for a process that exits afterwards); False if messages are left for the running bot's sweep."""
        deadline = self._wall() + within
        while True:
            await self.flush(take_leased=True)
            async with reading(self._sessions) as session:
                due = await outbox_store.next_due(session)
            if due is None:
                return True
            # Due messages can wait for another worker's turn on their chat: look again, don't spin.
            wait = max((due - self._clock()).total_seconds(), MIN_SWEEP_INTERVAL)
            if self._wall() + wait > deadline:
                return False
            await self._sleep(wait)

    async def run(self, interval: float = 5.0) -> None:
        """Sweep for due messages until cancelled: at the next retry time, at least every ``interval`` s."""
        while True:
            delay = interval
            self._deferred.clear()  # before the sweep, so a deferral during it is not missed
            try:
                await self.flush()
                async with reading(self._sessions) as session:
                    due = await outbox_store.next_due(session)
                if due is not None:
                    delay = min(interval, max((due - self._clock()).total_seconds(), MIN_SWEEP_INTERVAL))
            except Exception:
                log.exception("outbox sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deferred.wait(), timeout=delay)

    async def _drain(
        self, chat_id: int, *, wait: float, fresh: Sequence[OutboxRow] | None = None
    ) -> int | None:
        """Send the chat's pending messages under its turn; how many went, None without a turn.

        A chat this process already sends to is not waited for: its sender looks at the chat's queue
        again when its turn ends, so whatever was queued meanwhile goes with it.
        """
        if self._gate.busy(chat_id):
            self._again.add(chat_id)  # checked by that sender as soon as its turn ends
            return 0
        total: int | None = None
        while True:
            sent = await self._drain_turn(chat_id, wait=wait, fresh=fresh)
            if sent is None:  # another process has the chat's turn
                return total
            total = (total or 0) + sent
            if chat_id not in self._again:
                return total
            self._again.discard(chat_id)
            wait, fresh = 0.0, None

    async def _drain_turn(
        self, chat_id: int, *, wait: float, fresh: Sequence[OutboxRow] | None = None
    ) -> int | None:
        """One turn on the chat: its queue (``fresh``, when that is known to be the whole queue, else
        read under the turn) sent oldest first, and what happened recorded."""
        sent = 0
        # The slot is held while asking for the turn (a database round trip, and up to ``wait`` while
        # another process holds the chat), then given back whenever the chat waits for its pace.
        slot = _SenderSlot(self._senders)
        await slot.take()
        try:
            async with self._gate.turn(chat_id, now=self._wall(), wait=wait) as turn:
                if turn is None:
                    return None
                if fresh is not None:
                    rows = list(fresh)
                else:
                    async with reading(self._sessions) as session:
                        rows = await outbox_store.chat_pending(session, chat_id, limit=self._batch_size)
                while rows:
                    outcome = await self._send_chat(turn, rows, slot)
                    sent += len(outcome.sent)
                    if fresh is not None and outcome.clean and chat_id not in self._again:
                        # All went and nothing else can be queued for the chat: "sent" is recorded
                        # together with other chats' in one transaction, and the queue is not read again.
                        await self._sent_log.record(outcome.sent[outcome.recorded :])
                        turn.recorded = True
                        break
                    fresh = None
                    async with self._sessions() as session, session.begin():
                        await self._record(session, chat_id, outcome)
                        rows = []
                        if not outcome.stopped:  # what was queued meanwhile goes in the same turn
                            rows = await outbox_store.chat_pending(session, chat_id, limit=self._batch_size)
                        if not rows and not outcome.lost_turn:
                            await self._gate.record(session, turn)
                    if outcome.stopped or outcome.expired:  # a retry to plan, or news for staff to send
                        self._deferred.set()
        finally:
            slot.give()
        return sent

    async def _send_chat(self, turn: ChatTurn, rows: Sequence[OutboxRow], slot: _SenderSlot) -> _Outcome:
        out = _Outcome()
        pace = self._gate.chat_pace
        for row in rows:
            # A new message that went out is recorded before the next call: if this process dies
            # during it, that message is not sent again after the restart.
            if out.unrecorded_new:
                await self._record_sent(out)
            budgeted = row.method not in UNBUDGETED_METHODS  # no chat message: it uses no budget
            now, wall = self._clock(), self._wall()
            start = wall
            if row.attempts and row.not_before > now:
                # A retry that is not due yet keeps its place: nothing after it may overtake it.
                start = wall + (row.not_before - now).total_seconds()
            allowed = pace.take(turn.tat, start)[0] if budgeted else start
            if allowed - wall > MAX_PACE_WAIT:
                out.held = (row.id - 1, now + timedelta(seconds=allowed - wall))
                return out
            moment = await self._moment_to_send(turn, allowed, budgeted, slot)
            if moment is None:
                out.lost_turn = True  # the claim ran out and another worker took the chat over
                return out
            if budgeted:
                turn.tat = pace.take(turn.tat, moment)[1]
            try:
                message_id = await self._transport.deliver(row.method, dict(row.payload))
            except RetryAfter as exc:
                seconds = _retry_seconds(exc)
                # The row stays first in its chat's queue, so the whole chat waits, in every worker.
                out.deferred = (row, self._clock() + timedelta(seconds=seconds), f"flood wait {seconds:.0f}s")
                return out
            except Forbidden as exc:
                log.info("a chat is unreachable: %s", exc.message)
                out.blocked = True
                out.failed.append((row.id, f"forbidden: {exc.message}"))
                return out
            except BadRequest as exc:
                if any(h in exc.message.lower() for h in HARMLESS):
                    out.sent.append((row.id, None))
                else:
                    log.error("outbox %s %s refused: %s", row.id, row.method, exc.message)
                    out.failed.append((row.id, f"bad request: {exc.message}"))
            except (NetworkError, TelegramError, OSError) as exc:  # timeouts and 5xx included
                now = self._clock()
                if now - row.created_at >= self._max_age:
                    log.error("outbox %s %s undelivered for %s; given up", row.id, row.method, self._max_age)
                    out.failed.append((row.id, f"gave up after {self._max_age}: {exc}"))
                    out.expired.append(row)
                    continue
                delay = backoff(row.attempts)
                if isinstance(exc, TimedOut) and row.method not in IDEMPOTENT_METHODS:
                    # Telegram may have shown it already: a retry at once would most likely show it
                    # twice (or time out again); give the outage time to pass first.
                    delay = max(delay, TIMED_OUT_PAUSE)
                log.warning("outbox %s %s failed (%s); retry in %s", row.id, row.method, exc, delay)
                out.deferred = (row, now + delay, f"network: {exc}")
                return out
            else:
                out.sent.append((row.id, message_id))
                out.unrecorded_new |= row.method not in IDEMPOTENT_METHODS
        return out

    async def _moment_to_send(
        self, turn: ChatTurn, allowed: float, budgeted: bool, slot: _SenderSlot
    ) -> float | None:
        """Wait until ``allowed``, then take a slot of the bot's budget at the moment of sending: the
        moment (wall clock), or None when the turn on the chat was lost meanwhile.

        A slot is used only if it is still its moment after taking it (``gate.late``): a process that
        was slow to get the answer lets it go unused and takes another, so no late waker crowds a
        second that other workers have filled.
        """
        while True:
            if (wait := allowed - self._wall()) > 0:
                # At least a millisecond: a clock that cannot show a shorter wait would not move on.
                await self._pause(slot, max(wait, 0.001))
            # The turn must outlast the send, however long waiting took.
            if not await self._gate.keep(turn, until=self._wall()):
                return None
            moment = self._wall()
            if not budgeted:
                return moment
            wait = await self._gate.take_global(moment)
            if wait == 0.0:
                if self._wall() - moment <= self._gate.late:
                    return moment
                log.debug("a slot of the bot's budget came too late to use; taking another")
                allowed = self._wall()
            else:
                allowed = moment + wait

    async def _pause(self, slot: _SenderSlot, seconds: float) -> None:
        """Wait without keeping a sender slot: other chats send meanwhile."""
        slot.give()
        await self._sleep(seconds)
        await slot.take()

    async def _record_sent(self, out: _Outcome) -> None:
        await self._sent_log.record(out.sent[out.recorded :])
        out.recorded = len(out.sent)
        out.unrecorded_new = False

    async def _record(self, session: AsyncSession, chat_id: int, out: _Outcome) -> None:
        now = self._clock()
        await outbox_store.mark_sent(session, out.sent[out.recorded :], now)
        for row_id, error in out.failed:
            await outbox_store.mark_failed(session, row_id, error, now=now)
        if out.expired and self._undelivered is not None:
            await self._undelivered(session, out.expired, now)
        if out.blocked:
            await people_store.mark_unreachable(session, chat_id, now)
            await outbox_store.fail_chat(session, chat_id, "forbidden: chat unreachable", now=now)
            if self._unreachable is not None:  # e.g. a broker's cases go back to the coordinators
                await self._unreachable(session, chat_id, now)
        if out.deferred is not None:
            row, until, error = out.deferred
            await outbox_store.defer(session, row.id, until=until, error=error)
            await outbox_store.hold_chat(session, chat_id, after_id=row.id, until=until)
        if out.held is not None:
            after_id, until = out.held
            await outbox_store.hold_chat(session, chat_id, after_id=after_id, until=until)
