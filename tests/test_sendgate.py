"""Telegram's budgets: per chat and for the whole bot, in one process and shared by several workers.

The pacing tests run on an injected clock whose ``sleep`` moves time on; the tests with two workers on
one database use the real clock (they check order and exactly-once, and only upper bounds on rates).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram.error import RetryAfter

from bot.app import default_send_coordination
from bot.notifications import enqueue_calls
from bot.outbox import Outbox
from bot.sendgate import UNPACED, DatabaseGate, LocalGate, Pace, SendGate, chat_pace, global_pace
from bot.telegram_io import ApiCall
from storage import send_gates as send_gates_store
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage
from storage.outbox import OutboxRow

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` within any span of ``window`` seconds (end excluded)."""
    times = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- the pace itself -----------------------------------------------------------------------------------


def send_all(pace: Pace, requests: list[float]) -> list[float]:
    """When each request goes out if every sender waits for its slot (requests sorted)."""
    tat = 0.0
    sent = []
    for now in requests:
        allowed, tat = pace.take(tat, now)
        sent.append(max(allowed, now))
    return sent


def test_a_chat_gets_a_short_burst_then_one_message_per_second() -> None:
    sent = send_all(chat_pace(1), [100.0] * 7)
    assert sent == [100.0, 100.0, 100.0, 100.0, 101.0, 102.0, 103.0]


def test_the_bot_never_sends_more_than_its_limit_in_any_second() -> None:
    sent = send_all(global_pace(30), [50.0] * 200)
    assert most_in_any_window(sent, 1.0) <= 30
    assert sent[-1] - sent[0] < 200 / 25 + 0.01  # and it does not fall far below it either


@given(
    per_second=st.sampled_from([1.0, 5.0, 30.0, 60.0]),
    gaps=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=150),
)
def test_no_arrival_pattern_gets_more_through_than_the_limit(per_second: float, gaps: list[float]) -> None:
    requests = []
    now = 1000.0
    for gap in gaps:
        now += gap
        requests.append(now)
    sent = send_all(global_pace(per_second), requests)
    assert most_in_any_window(sent, 1.0) <= per_second
    assert all(s >= r for s, r in zip(sent, requests, strict=True))  # nothing goes before it was asked


@pytest.mark.parametrize(
    ("database_url", "sender", "expected"),
    [
        ("sqlite+aiosqlite:///bot.db", None, "local"),  # one process
        ("sqlite+aiosqlite:///bot.db", "run", "local"),
        ("postgresql+asyncpg://bot@db/bot", "run", "local"),  # the one poller: the only sender
        ("postgresql+asyncpg://bot@db/bot", None, "database"),  # webhook workers, one-off commands
    ],
)
def test_budgets_are_shared_through_the_database_only_where_several_processes_send(
    database_url: str, sender: str | None, expected: str
) -> None:
    assert default_send_coordination(database_url, sender=sender) == expected


def test_unpaced_lets_everything_through_at_once() -> None:
    assert send_all(UNPACED, [5.0] * 100) == [5.0] * 100


def test_a_pace_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError):
        Pace(0)
    with pytest.raises(ValueError):
        Pace(1, burst=0)


# --- one process: the outbox paces with a local gate --------------------------------------------------


class Clock:
    """A clock whose ``sleep`` moves it on, so pacing is tested without waiting."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Recorder:
    """A transport that notes when (by ``clock``) each message arrives; ``failures`` by chat."""

    def __init__(self, clock: Any, *, sent: Callable[[], None] = lambda: None) -> None:
        self.clock = clock
        self.sent = sent
        self.delivered: list[tuple[float, int, str]] = []
        self.failures: dict[int, list[Exception]] = {}

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        chat_id = int(payload["chat_id"])
        queued = self.failures.get(chat_id)
        if queued:
            raise queued.pop(0)
        self.delivered.append((self.clock(), chat_id, payload.get("text", method)))
        self.sent()
        return len(self.delivered)

    def texts(self, chat_id: int) -> list[str]:
        return [text for _, chat, text in self.delivered if chat == chat_id]

    def times(self) -> list[float]:
        return [moment for moment, _, _ in self.delivered]


def clocked_outbox(
    sessions: async_sessionmaker[AsyncSession], transport: Recorder, clock: Clock, gate: SendGate
) -> Outbox:
    """An outbox whose pacing runs on ``clock``: its waits move the clock on instead of sleeping."""
    return Outbox(
        sessions, transport, clock, gate=gate, wall=lambda: clock.now.timestamp(), sleep=clock.sleep
    )


async def queue(engine: AsyncEngine, chat_id: int, *texts: str, now: datetime) -> list[OutboxRow]:
    """Commit messages to a chat as an update would (leased to the caller for 30 s)."""
    calls = [(chat_id, ApiCall("sendMessage", {"chat_id": chat_id, "text": text})) for text in texts]
    async with session_factory(engine)() as session, session.begin():
        return await enqueue_calls(session, calls, now)


async def statuses(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OutboxMessage.status))).scalars()
        counts: dict[str, int] = {}
        for status in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts


async def test_a_long_reply_reaches_the_chat_at_telegrams_pace(engine: AsyncEngine) -> None:
    clock = Clock()
    transport = Recorder(lambda: clock.now.timestamp())
    gate = LocalGate(chat_pace(1), global_pace(30))
    outbox = clocked_outbox(session_factory(engine), transport, clock, gate)
    rows = await queue(engine, 7, *(f"deel {i}" for i in range(8)), now=clock.now)
    await outbox.send(rows)
    assert transport.texts(7) == [f"deel {i}" for i in range(8)]
    offsets = [moment - T0.timestamp() for moment in transport.times()]
    assert offsets == pytest.approx([0, 0, 0, 0, 1, 2, 3, 4])


async def test_many_chats_share_the_bots_budget(engine: AsyncEngine) -> None:
    clock = Clock()
    transport = Recorder(lambda: clock.now.timestamp())
    outbox = clocked_outbox(
        session_factory(engine), transport, clock, LocalGate(chat_pace(1), global_pace(30))
    )
    rows = [row for chat in range(1, 91) for row in await queue(engine, chat, "Hallo", now=clock.now)]
    await outbox.send(rows)
    assert len(transport.delivered) == 90
    assert most_in_any_window(transport.times(), 1.0) <= 30


async def test_a_chat_that_must_wait_long_is_left_to_the_sweep_and_keeps_its_order(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    transport = Recorder(lambda: clock.now.timestamp())
    transport.failures[7] = [RetryAfter(timedelta(seconds=40))]
    outbox = clocked_outbox(session_factory(engine), transport, clock, LocalGate(chat_pace(1), UNPACED))
    await outbox.send(await queue(engine, 7, "eerste", now=clock.now))
    await outbox.send(await queue(engine, 7, "tweede", now=clock.now))
    await outbox.send(await queue(engine, 8, "ander gesprek", now=clock.now))
    assert transport.texts(7) == [] and transport.texts(8) == ["ander gesprek"]
    clock.now += timedelta(seconds=39)
    assert await outbox.flush() == 0
    clock.now += timedelta(seconds=2)
    assert await outbox.flush() == 2
    assert transport.texts(7) == ["eerste", "tweede"]
    assert await statuses(engine) == {"sent": 3}


async def test_a_process_about_to_exit_waits_until_its_held_messages_are_out(engine: AsyncEngine) -> None:
    clock = Clock()
    transport = Recorder(lambda: clock.now.timestamp())
    transport.failures[7] = [RetryAfter(timedelta(seconds=20))]
    outbox = clocked_outbox(session_factory(engine), transport, clock, LocalGate(chat_pace(1), UNPACED))
    await outbox.send(await queue(engine, 7, *(f"herinnering {i}" for i in range(6)), now=clock.now))
    assert transport.texts(7) == []  # Telegram said: wait 20 s
    assert await outbox.settle(within=5) is False  # too long to wait: left to the running bot's sweep
    assert await outbox.settle(within=60) is True  # as `watchdog --once` does before it exits
    assert transport.texts(7) == [f"herinnering {i}" for i in range(6)]
    offsets = [moment - T0.timestamp() for moment in transport.times()]
    assert offsets[0] >= 20 and offsets[-1] - offsets[0] == pytest.approx(2, abs=0.1)  # burst 4, then 1/s
    assert await statuses(engine) == {"sent": 6}


async def test_a_resident_at_the_flood_limit_never_delays_another_residents_reply(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    transport = Recorder(lambda: clock.now.timestamp())
    paced = asyncio.Event()  # a chat's wait for its pace lasts until the test lets it end

    async def sleep(seconds: float) -> None:
        await paced.wait()
        clock.now += timedelta(seconds=seconds)

    outbox = Outbox(
        session_factory(engine),
        transport,
        clock,
        gate=LocalGate(chat_pace(1), UNPACED),
        wall=lambda: clock.now.timestamp(),
        sleep=sleep,
        concurrent_chats=2,
    )
    # Resident 7 sends 20 messages (the flood limit); each update's reply goes out as it commits.
    flooding = [
        asyncio.create_task(outbox.send(await queue(engine, 7, f"antwoord {i}", now=clock.now)))
        for i in range(20)
    ]
    for _ in range(500):
        if len(transport.texts(7)) == 4:
            break
        await asyncio.sleep(0.01)
    assert transport.texts(7) == [f"antwoord {i}" for i in range(4)]  # a burst, then one a second
    # Resident 8's greeting goes at once, while resident 7's chat waits for its pace.
    await asyncio.wait_for(outbox.send(await queue(engine, 8, "Welkom!", now=clock.now)), timeout=30)
    assert transport.delivered[-1] == (T0.timestamp(), 8, "Welkom!")
    paced.set()
    await asyncio.gather(*flooding)
    for _ in range(60):
        clock.now += timedelta(seconds=1)
        await outbox.flush()
    assert transport.texts(7) == [f"antwoord {i}" for i in range(20)]
    assert await statuses(engine) == {"sent": 21}


# --- several workers on one database: the database gate ---------------------------------------------------


class Worker:
    """One worker process as far as sending goes: its own engine, gate and outbox."""

    def __init__(
        self, url: str, transport: Recorder, *, chat: Pace = UNPACED, overall: Pace = UNPACED
    ) -> None:
        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)
        self.gate = DatabaseGate(self.sessions, chat_pace=chat, global_pace=overall, claim_seconds=30)
        self.outbox = Outbox(self.sessions, transport, lambda: datetime.now(UTC), gate=self.gate)

    async def close(self) -> None:
        await self.engine.dispose()


@pytest_asyncio.fixture
async def url(engine: AsyncEngine) -> AsyncIterator[str]:
    yield engine.url.render_as_string(hide_password=False)


async def test_two_workers_sending_to_one_chat_keep_its_order_and_send_each_once(
    engine: AsyncEngine, url: str
) -> None:
    transport = Recorder(time.monotonic)
    slow = asyncio.Event()

    async def deliver(method: str, payload: dict[str, Any]) -> int | None:
        if payload["text"] == "0":
            await slow.wait()  # the first message is slow to go, as over a bad network
        return await Recorder.deliver(transport, method, payload)

    transport.deliver = deliver  # type: ignore[method-assign]
    first, second = Worker(url, transport), Worker(url, transport)
    try:
        now = datetime.now(UTC)
        batches = [await queue(engine, 5, str(i), now=now) for i in range(6)]
        sending = [
            asyncio.create_task((first if i % 2 == 0 else second).outbox.send(rows))
            for i, rows in enumerate(batches)
        ]
        await asyncio.sleep(0.3)
        assert transport.texts(5) == []  # nobody overtook the slow first message
        slow.set()
        await asyncio.gather(*sending)
        await first.outbox.flush()
        await second.outbox.flush()
        assert transport.texts(5) == [str(i) for i in range(6)]
        assert await statuses(engine) == {"sent": 6}
    finally:
        await first.close()
        await second.close()


async def test_a_flood_wait_one_worker_got_holds_the_chat_for_every_worker(
    engine: AsyncEngine, url: str
) -> None:
    transport = Recorder(time.monotonic)
    transport.failures[5] = [RetryAfter(timedelta(seconds=2))]
    first, second = Worker(url, transport), Worker(url, transport)
    try:
        await first.outbox.send(await queue(engine, 5, "eerste", now=datetime.now(UTC)))
        held_at = time.monotonic()
        later = asyncio.create_task(
            second.outbox.send(await queue(engine, 5, "tweede", now=datetime.now(UTC)))
        )
        await second.outbox.send(await queue(engine, 6, "ander gesprek", now=datetime.now(UTC)))
        assert transport.texts(6) == ["ander gesprek"]  # other chats go on
        await asyncio.sleep(0.5)
        assert transport.texts(5) == []  # the second worker waits as well
        await later  # it waits out the flood wait under the chat's turn, then sends both in order
        assert transport.texts(5) == ["eerste", "tweede"]
        assert min(m for m, chat, _ in transport.delivered if chat == 5) >= held_at + 1.9
        assert await statuses(engine) == {"sent": 3}
    finally:
        await first.close()
        await second.close()


class BusyClock(Clock):
    """Virtual time for concurrent senders in a process that stalls now and then (a busy machine).

    A sleeper wakes when the clock reaches its time; sometimes the process stalls first, for up to
    ``stall`` seconds, and then everyone whose time passed meanwhile wakes at once. The clock moves on
    only when the woken sender has gone back to sleep or sent (or after a real second), one at a time.
    """

    def __init__(self, stall: float, seed: int) -> None:
        super().__init__()
        self.stall = stall
        self.random = random.Random(seed)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._count = 0
        self._moved = asyncio.Event()  # a sender went to sleep or sent something

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._sleepers, (self.now + timedelta(seconds=seconds), self._count, future))
        self._moved.set()
        await future

    def sent(self) -> None:
        self._moved.set()

    async def run(self) -> None:
        while True:
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), timeout=1.0)
            await asyncio.sleep(0.001)
            if not self._sleepers:
                continue
            wake = self._sleepers[0][0]
            if self.random.random() < 0.3:
                wake += timedelta(seconds=self.random.uniform(0, self.stall))
            self.now = max(self.now, wake)
            while self._sleepers and self._sleepers[0][0] <= self.now:
                _, _, future = heapq.heappop(self._sleepers)
                future.set_result(None)


@pytest.mark.parametrize("seed", [1, 7])  # both overshoot with slots reserved ahead
async def test_two_workers_on_a_busy_machine_share_one_budget_for_the_whole_bot_exactly(
    engine: AsyncEngine, seed: int
) -> None:
    """Late wakers take their slot when they wake, so they never crowd a second others have filled."""
    clock = BusyClock(stall=0.3, seed=seed)
    transport = Recorder(lambda: clock.now.timestamp(), sent=clock.sent)
    limit = global_pace(20)
    workers = []
    for _ in range(2):
        sessions = session_factory(engine)
        gate = DatabaseGate(
            sessions, global_pace=limit, claim_seconds=30, wall=lambda: clock.now.timestamp(), late=0.0
        )
        workers.append(clocked_outbox(sessions, transport, clock, gate))
    batches = [await queue(engine, chat, "Hallo", now=clock.now) for chat in range(100, 160)]
    ticking = asyncio.create_task(clock.run())
    try:
        await asyncio.gather(*(workers[i % 2].send(rows) for i, rows in enumerate(batches)))
        for worker in workers:
            await worker.flush()
    finally:
        ticking.cancel()
    assert sorted(chat for _, chat, _ in transport.delivered) == list(range(100, 160))  # each once
    # Each worker alone would allow 20 a second; together they send no more than 20 in any second.
    assert most_in_any_window(transport.times(), 1.0) <= 20


@pytest.mark.parametrize("seed", range(5))
async def test_the_database_budget_holds_exactly_whichever_worker_asks_when(
    engine: AsyncEngine, seed: int
) -> None:
    rng = random.Random(seed)
    now = 1_000.0
    gates = [
        DatabaseGate(session_factory(engine), global_pace=global_pace(10), wall=lambda: now) for _ in range(3)
    ]
    taken, expected, tat = [], [], 0.0
    for _ in range(150):
        now += rng.choice([0.0, 0.0, 0.001, 0.02, 0.1, 0.4])
        if await rng.choice(gates).take_global(now) == 0.0:
            taken.append(now)
        wait, tat = global_pace(10).take_now(tat, now)
        if not wait:
            expected.append(now)
    assert most_in_any_window(taken, 1.0) <= 10
    assert taken == expected  # the shared row grants exactly what one budget in memory would


def deliveries(pace: Pace, requests: list[float], oversleep: list[float], lag: list[float]) -> list[float]:
    """When messages arrive if each sender asks at its request time, sleeps (oversleeping) while the
    budget has no slot, and its message arrives ``lag`` after the slot was taken."""
    tat = 0.0
    pending = [(moment, i) for i, moment in enumerate(requests)]
    heapq.heapify(pending)
    arrived = []
    while pending:
        moment, i = heapq.heappop(pending)
        wait, tat = pace.take_now(tat, moment)
        if wait:
            heapq.heappush(pending, (moment + wait + oversleep[i], i))
        else:
            arrived.append(moment + lag[i])
    return arrived


@given(
    per_second=st.sampled_from([1.0, 5.0, 30.0, 60.0]),
    senders=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=3, allow_nan=False),
            st.floats(min_value=0, max_value=0.5, allow_nan=False),
            st.floats(min_value=0, max_value=0.1, allow_nan=False),
        ),
        min_size=1,
        max_size=120,
    ),
)
def test_late_wakers_and_slow_round_trips_never_get_more_through_than_the_limit(
    per_second: float, senders: list[tuple[float, float, float]]
) -> None:
    requests = [1000.0 + start for start, _, _ in senders]
    arrived = deliveries(
        global_pace(per_second, slack=0.1), requests, [o for _, o, _ in senders], [lag for *_, lag in senders]
    )
    assert len(arrived) == len(senders)
    assert most_in_any_window(arrived, 1.0) <= per_second


async def test_a_crashed_workers_turn_on_a_chat_runs_out(engine: AsyncEngine) -> None:
    clock = Clock()
    transport = Recorder(lambda: clock.now.timestamp())
    sessions = session_factory(engine)
    gate = DatabaseGate(sessions, claim_seconds=30, wall=lambda: clock.now.timestamp())
    outbox = clocked_outbox(sessions, transport, clock, gate)
    now = clock.now.timestamp()
    async with sessions() as session, session.begin():
        # A worker that died while sending to chat 5: its claim runs 30 s more.
        assert (
            await send_gates_store.claim_chat(session, 5, holder="dead", now=now, until=now + 30) is not None
        )
    await outbox.send(await queue(engine, 5, "Hallo", now=clock.now))
    assert transport.texts(5) == []  # the chat is someone else's turn: left to the sweep
    clock.now += timedelta(seconds=29)
    assert await outbox.flush() == 0
    clock.now += timedelta(seconds=2)
    assert await outbox.flush() == 1  # the dead worker's claim ran out
    assert transport.texts(5) == ["Hallo"]
