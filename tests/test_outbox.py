"""The outbox sends each queued message once, in order per chat, and copes with Telegram's errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.dispatcher import Dispatcher, Handled
from bot.i18n import Translator
from bot.notifications import enqueue_calls
from bot.outbox import SEND_LEASE, TIMED_OUT_PAUSE, Outbox
from bot.settings import load_municipality, resolve_config_path
from bot.telegram_io import ApiCall
from bot.undelivered import report_undelivered
from flows.events import Event, EventKind
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.db import session_factory
from storage.models import OutboxMessage, Person
from tests.factories import new_initiative

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
        self.arrived: list[tuple[datetime, int]] = []  # (test clock, chat) where an outage is simulated
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


# Both ways a fresh reply is sent: read from the chat's queue under its turn, or (this process being the
# bot's only sender and nothing older waiting for the chat) as committed, from memory.
@pytest.fixture(params=[False, True], ids=["queue", "memory"])
def parts(
    engine: AsyncEngine, clock: Clock, request: pytest.FixtureRequest
) -> tuple[Dispatcher, Outbox, Transport]:
    sessions = session_factory(engine)
    municipality = load_municipality(resolve_config_path("zutphen"))
    dispatcher = Dispatcher(
        sessions, municipality, Translator(("nl", "en")), clock, sends_alone=request.param
    )
    transport = Transport()
    return dispatcher, Outbox(sessions, transport, clock), transport


async def send(outbox: Outbox, handled: Handled) -> None:
    await outbox.send(handled.outbox, alone=handled.alone)


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
    await send(outbox, handled)
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
    await send(outbox, first)
    await send(outbox, second)
    await send(outbox, other)
    assert transport.texts(1) == []
    assert len(transport.texts(2)) == 1
    clock.now += timedelta(seconds=29)
    assert await outbox.flush() == 0  # still waiting, the help must not overtake the greeting
    clock.now += timedelta(seconds=2)
    await outbox.flush()
    greeting, help_text = transport.texts(1)
    assert "What do you want to do?" in greeting and "/new" in help_text


async def test_a_blocked_user_is_marked_unreachable_and_never_retried(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine, clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [Forbidden("Forbidden: bot was blocked by the user")]
    await send(outbox, await dispatcher.handle(command(1, "start"), update_id=1))
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
    await send(outbox, await dispatcher.handle(command(1, "start"), update_id=1))
    assert await statuses(engine) == ["sent"]


@pytest.mark.parametrize("make_error", [lambda: NetworkError("Bad Gateway"), lambda: OSError("reset")])
async def test_network_trouble_is_retried_with_backoff(
    parts: tuple[Dispatcher, Outbox, Transport], clock: Clock, make_error: Callable[[], Exception]
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [make_error(), make_error()]
    await send(outbox, await dispatcher.handle(command(1, "start"), update_id=1))
    clock.now += timedelta(seconds=1)
    await outbox.flush()  # second failure: waits longer now
    assert transport.texts(1) == []
    clock.now += timedelta(seconds=1)
    assert await outbox.flush() == 0
    clock.now += timedelta(seconds=5)
    await outbox.flush()
    assert len(transport.texts(1)) == 1


async def test_a_send_that_timed_out_is_not_tried_again_at_once(
    parts: tuple[Dispatcher, Outbox, Transport], clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [TimedOut()]  # Telegram may have shown it: a quick retry would show it twice
    await send(outbox, await dispatcher.handle(command(1, "start"), update_id=1))
    for _ in range(5):
        clock.now += timedelta(seconds=10)
        assert await outbox.flush() == 0
    clock.now += TIMED_OUT_PAUSE
    assert await outbox.flush() == 1
    assert len(transport.texts(1)) == 1


def go_down(transport: Transport, clock: Clock, *, until: datetime, chats: set[int] | None = None) -> None:
    """Telegram cannot be reached (for ``chats``, else for all) until ``until`` on the test clock."""
    deliver = transport.deliver

    async def down(method: str, payload: dict[str, Any]) -> int | None:
        if clock.now < until and (chats is None or int(payload["chat_id"]) in chats):
            raise NetworkError("Bad Gateway")
        transport.arrived.append((clock.now, int(payload["chat_id"])))
        return await deliver(method, payload)

    transport.deliver = down  # type: ignore[method-assign]


async def test_a_telegram_outage_of_half_an_hour_delays_every_message_in_order_and_loses_none(
    parts: tuple[Dispatcher, Outbox, Transport], clock: Clock, engine: AsyncEngine
) -> None:
    dispatcher, outbox, transport = parts
    back = T0 + timedelta(minutes=30)
    go_down(transport, clock, until=back)
    await send(outbox, await dispatcher.handle(command(1, "start"), update_id=1))
    await send(outbox, await dispatcher.handle(command(2, "start"), update_id=2))
    update_id = 3
    while clock.now < back + timedelta(minutes=10):  # the sweep looks every 10 s
        clock.now += timedelta(seconds=10)
        if clock.now == T0 + timedelta(minutes=15):  # a resident asks for help halfway the outage
            await send(outbox, await dispatcher.handle(command(1, "help"), update_id=update_id))
            update_id += 1
        await outbox.flush()
    greeting, help_text = transport.texts(1)
    assert "What do you want to do?" in greeting and "/new" in help_text
    assert len(transport.texts(2)) == 1
    assert await statuses(engine) == ["sent"] * 3
    # Retries never wait more than five minutes: everything is out soon after Telegram is back.
    assert all(back <= at <= back + timedelta(minutes=5) for at, _ in transport.arrived)


async def test_a_message_undelivered_for_days_is_given_up_and_the_broker_told_who_missed_what(
    engine: AsyncEngine, clock: Clock
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        dirk = await staff_store.add_staff(
            session, telegram_user_id=2001, name="Dirk", role="broker", wijken=(), themes=(), now=T0
        )
        initiative = await initiatives_store.create_initiative(session, new_initiative(), T0)
        await initiatives_store.assign(
            session, initiative.id, broker_id=dirk.id, by_staff_id=None, note=None, now=T0
        )
        await people_store.upsert_person(
            session, user_id=2001, chat_id=2001, first_name="Dirk", telegram_language="nl", now=T0
        )
        rows = await enqueue_calls(
            session, [(1001, ApiCall("sendMessage", {"chat_id": 1001, "text": "Dirk belt je morgen."}))], T0
        )
    transport = Transport()
    go_down(transport, clock, until=T0 + timedelta(days=30), chats={1001})
    max_age = timedelta(days=3)
    outbox = Outbox(
        sessions,
        transport,
        clock,
        max_age=max_age,
        undelivered=partial(report_undelivered, tr=Translator(("nl", "en")), max_age=max_age),
    )
    await outbox.send(rows)
    while clock.now < T0 + max_age + timedelta(minutes=10):
        clock.now += timedelta(minutes=5)
        await outbox.flush()
    assert transport.texts(1001) == []
    async with engine.connect() as conn:
        status, error = (await conn.execute(select(OutboxMessage.status, OutboxMessage.last_error))).first()
    assert status == "failed" and "gave up" in error
    (report,) = transport.texts(2001)
    assert "Fatima el Amrani" in report and initiative.reference in report
    assert "Dirk belt je morgen." in report and "72 uur lang niet aan" in report


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
    await send(outbox, await dispatcher.handle(command(1, "help"), update_id=2))
    greeting, help_text = transport.texts(1)
    assert "What do you want to do?" in greeting and "/new" in help_text


# ---- documents (a resident's data export): sent like any message, their payload cleared once done ----


def fail_documents(transport: Transport, *errors: Exception) -> None:
    """The next sendDocument calls raise ``errors``, one each; everything else goes through."""
    queued = list(errors)
    deliver = transport.deliver

    async def failing(method: str, payload: dict[str, Any]) -> int | None:
        if method == "sendDocument" and queued:
            raise queued.pop(0)
        return await deliver(method, payload)

    transport.deliver = failing  # type: ignore[method-assign]


async def outbox_rows(engine: AsyncEngine) -> list[tuple[str, str, dict[str, Any], datetime | None]]:
    """(method, status, payload, payload_cleared_at) of every queued call, oldest first."""
    async with engine.connect() as conn:
        found = await conn.execute(
            select(
                OutboxMessage.method,
                OutboxMessage.status,
                OutboxMessage.payload,
                OutboxMessage.payload_cleared_at,
            ).order_by(OutboxMessage.id)
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


async def test_a_data_export_is_retried_after_a_network_failure_and_its_payload_cleared_once_sent(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine, clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    fail_documents(transport, NetworkError("Bad Gateway"))
    await send(outbox, await dispatcher.handle(command(1, "mijngegevens"), update_id=1))

    (summary, document) = await outbox_rows(engine)
    assert summary[:2] == ("sendMessage", "sent") and document[:2] == ("sendDocument", "pending")
    assert '"telegram_user_id": 1' in document[2]["document"]["content"]  # kept for the retry
    assert document[3] is None

    clock.now += timedelta(seconds=1)
    assert await outbox.flush() == 1
    (method, payload) = transport.delivered[-1]
    assert method == "sendDocument" and payload["document"]["file_name"].endswith(".json")
    assert '"telegram_user_id": 1' in payload["document"]["content"]
    (summary, document) = await outbox_rows(engine)
    assert document == ("sendDocument", "sent", {}, clock.now)
    assert summary[2]["text"] and summary[3] is None  # other messages keep theirs (the sweep clears them)


async def test_a_data_export_refused_for_good_loses_its_payload_too(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine, clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    fail_documents(transport, BadRequest("Request entity too large"))
    await send(outbox, await dispatcher.handle(command(1, "mijngegevens"), update_id=1))

    (_, document) = await outbox_rows(engine)
    assert document == ("sendDocument", "failed", {}, clock.now)


async def test_a_data_export_to_someone_who_blocked_the_bot_is_not_kept(
    parts: tuple[Dispatcher, Outbox, Transport], engine: AsyncEngine, clock: Clock
) -> None:
    dispatcher, outbox, transport = parts
    transport.failures[1] = [Forbidden("Forbidden: bot was blocked by the user")]  # at the summary
    await send(outbox, await dispatcher.handle(command(1, "mijngegevens"), update_id=1))

    assert transport.delivered == []
    (summary, document) = await outbox_rows(engine)
    assert summary[1] == "failed" and summary[3] is None
    assert document == ("sendDocument", "failed", {}, clock.now)
