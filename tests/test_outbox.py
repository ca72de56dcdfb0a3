"""The outbox sends each queued message once, in order per chat, and copes with Telegram's errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.dispatcher import Dispatcher
from bot.i18n import Translator
from bot.outbox import SEND_LEASE, Outbox
from bot.settings import load_municipality, resolve_config_path
from flows.events import Event, EventKind
from storage.db import session_factory
from storage.models import OutboxMessage, Person

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Transport:
    """Records deliveries; ``failures`` maps a chat to the errors its next sends raise."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[int, list[Exception]] = {}
        self._ids = 0

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        queued = self.failures.get(int(payload.get("chat_id", 0)))
        if queued:
            raise queued.pop(0)
        self.delivered.append((method, payload))
        self._ids += 1
        return self._ids

    def texts(self, chat_id: int) -> list[str]:
        return [p["text"] for m, p in self.delivered if m == "sendMessage" and p["chat_id"] == chat_id]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def parts(engine: AsyncEngine, clock: Clock) -> tuple[Dispatcher, Outbox, Transport]:
    sessions = session_factory(engine)
    municipality = load_municipality(resolve_config_path("zutphen"))
    dispatcher = Dispatcher(sessions, municipality, Translator(("nl", "en")), clock)
    transport = Transport()
    return dispatcher, Outbox(sessions, transport, clock), transport


def command(chat_id: int, name: str) -> Event:
    return Event(kind=EventKind.COMMAND, command=name, user_id=chat_id, chat_id=chat_id, language_code="en")


async def statuses(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(OutboxMessage.status).order_by(OutboxMessage.id))).scalars())


async def test_the_sweep_leaves_fresh_messages_to_the_sender_so_none_goes_twice(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine
) -> None:
    dispatcher, outbox, transport = parts
    handled = await dispatcher.handle(command(1, "start"), update_id=1)
    assert await outbox.flush() == 0  # committed but not yet sent: the sweep must not take it
    await outbox.send(handled.outbox)
    assert await outbox.flush() == 0
    assert len(transport.texts(1)) == 1
    assert await statuses(engine) == ["sent"]


async def test_messages_left_by_a_crash_are_sent_by_the_sweep(
    parts: tuple[Dispatcher, Outbox, Transport], clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    await dispatcher.handle(command(1, "start"), update_id=1)  # then the process died before sending
    clock.now += SEND_LEASE + timedelta(seconds=1)
    assert await outbox.flush() == 1
    assert len(transport.texts(1)) == 1
    assert await outbox.flush() == 0


async def test_a_flood_wait_holds_that_chat_in_order_while_others_go_on(
    parts: tuple[Dispatcher, Outbox, Transport], clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [RetryAfter(timedelta(seconds=30))]
    first = await dispatcher.handle(command(1, "start"), update_id=1)
    second = await dispatcher.handle(command(1, "help"), update_id=2)
    other = await dispatcher.handle(command(2, "start"), update_id=3)
    await outbox.send(first.outbox)
    await outbox.send(second.outbox)
    await outbox.send(other.outbox)
    assert transport.texts(1) == []
    assert len(transport.texts(2)) == 1
    clock.now += timedelta(seconds=29)
    assert await outbox.flush() == 0  # still waiting, the help must not overtake the greeting
    clock.now += timedelta(seconds=2)
    await outbox.flush()
    greeting, help_text = transport.texts(1)
    assert "What do you want to do?" in greeting and "/nieuw" in help_text


async def test_a_blocked_user_is_marked_unreachable_and_never_retried(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine, clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [Forbidden("Forbidden: bot was blocked by the user")]
    await outbox.send((await dispatcher.handle(command(1, "start"), update_id=1)).outbox)
    clock.now += timedelta(hours=1)
    assert await outbox.flush() == 0
    assert transport.delivered == []
    assert await statuses(engine) == ["failed"]
    async with engine.connect() as conn:
        unreachable = (await conn.execute(select(Person.unreachable_at))).scalar_one()
    assert unreachable is not None


@pytest.mark.parametrize(
    "error", ["Message is not modified: specified new message content", "Message to edit not found"]
)
async def test_harmless_bad_requests_count_as_sent(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine, error: str
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [BadRequest(error)]
    await outbox.send((await dispatcher.handle(command(1, "start"), update_id=1)).outbox)
    assert await statuses(engine) == ["sent"]


@pytest.mark.parametrize("make_error", [lambda: TimedOut(), lambda: NetworkError("Bad Gateway")])
async def test_network_trouble_is_retried_with_backoff(
    parts: tuple[Dispatcher, Outbox, Transport], clock: Clock, make_error: Callable[[], Exception]
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [make_error(), make_error()]
    await outbox.send((await dispatcher.handle(command(1, "start"), update_id=1)).outbox)
    clock.now += timedelta(seconds=1)
    await outbox.flush()  # second failure: waits longer now
    assert transport.texts(1) == []
    clock.now += timedelta(seconds=1)
    assert await outbox.flush() == 0
    clock.now += timedelta(seconds=5)
    await outbox.flush()
    assert len(transport.texts(1)) == 1


async def test_a_duplicate_update_queues_nothing(parts: tuple[Dispatcher, Outbox, Transport]) -> None:
    dispatcher, _, _ = parts
    assert (await dispatcher.handle(command(1, "start"), update_id=7)).outbox
    again = await dispatcher.handle(command(1, "start"), update_id=7)
    assert again.duplicate and again.outbox == ()


async def test_after_a_restart_leftovers_go_out_before_anything_new(
    parts: tuple[Dispatcher, Outbox, Transport],
) -> None:
    dispatcher, outbox, transport = parts
    await dispatcher.handle(command(1, "start"), update_id=1)  # the process died before sending
    assert await outbox.flush(take_leased=True) == 1  # start-up of the next process
    await outbox.send((await dispatcher.handle(command(1, "help"), update_id=2)).outbox)
    greeting, help_text = transport.texts(1)
    assert "What do you want to do?" in greeting and "/nieuw" in help_text
