"""Someone who floods the bot gets one gentle 'slow down'; the rest is dropped without work. Staff never."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.dispatcher import Dispatcher
from bot.flood import FloodGuard
from bot.i18n import Translator
from bot.settings import load_municipality, resolve_config_path
from flows.events import Event, EventKind
from flows.flood import FloodRule, Verdict, Window, decide
from storage import outbox as outbox_store
from storage import staff as staff_store
from storage.db import session_factory
from storage.models import Conversation, ProcessedUpdate

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
RULE = FloodRule(limit=20, window=timedelta(seconds=10))
SLOW_DOWN = "Slow down a little, please."


# --- the pure decision -------------------------------------------------------------------------------


def run(gaps_ms: list[int], rule: FloodRule = RULE) -> list[tuple[datetime, Verdict]]:
    window, now, out = Window(), T0, []
    for gap in gaps_ms:
        now += timedelta(milliseconds=gap)
        verdict, window = decide(window, now, rule)
        out.append((now, verdict))
    return out


def test_fifty_messages_in_ten_seconds_allow_twenty_and_notify_once() -> None:
    verdicts = [v for _, v in run([200] * 50)]
    assert verdicts[:20] == [Verdict.ALLOW] * 20
    assert verdicts.count(Verdict.NOTIFY) == 1 and verdicts[20] is Verdict.NOTIFY
    assert verdicts.count(Verdict.ALLOW) == 20  # the window had not moved on yet


def test_after_a_quiet_window_everything_is_allowed_again() -> None:
    first = run([0] * 25)
    window = Window()
    for moment, _ in first:
        _, window = decide(window, moment, RULE)
    later = T0 + RULE.window + timedelta(milliseconds=1)
    assert decide(window, later, RULE)[0] is Verdict.ALLOW


def test_a_steady_flood_keeps_getting_limit_per_window_but_only_one_notice() -> None:
    verdicts = [v for _, v in run([100] * 1000)]  # 100 seconds of ten a second
    assert verdicts.count(Verdict.NOTIFY) == 1
    assert 20 * 10 <= verdicts.count(Verdict.ALLOW) <= 20 * 11


@given(st.lists(st.integers(min_value=0, max_value=3000), max_size=300), st.integers(1, 30))
def test_never_more_than_the_limit_in_any_window_and_one_notice_per_burst(
    gaps: list[int], limit: int
) -> None:
    rule = FloodRule(limit=limit, window=timedelta(seconds=10))
    decided = run(gaps, rule)
    allowed = [moment for moment, v in decided if v is Verdict.ALLOW]
    for i, start in enumerate(allowed):
        assert sum(1 for m in allowed[i:] if m - start < rule.window) <= limit
    dropped = [(m, v) for m, v in decided if v is not Verdict.ALLOW]
    for (before, _), (moment, verdict) in itertools.pairwise(dropped):
        # A burst ends after a whole window without drops; each burst starts with the one notice.
        assert (verdict is Verdict.NOTIFY) == (moment - before >= rule.window)
    if dropped:
        assert dropped[0][1] is Verdict.NOTIFY
    # Nobody under the limit is ever refused.
    for i, (moment, verdict) in enumerate(decided):
        recent = [m for m, v in decided[:i] if v is Verdict.ALLOW and moment - m < rule.window]
        assert (verdict is Verdict.ALLOW) == (len(recent) < limit)


def test_the_guard_forgets_the_least_recently_seen_beyond_its_bound() -> None:
    guard = FloodGuard(FloodRule(limit=1), max_people=3)
    for user in (1, 2, 3, 1, 4):
        guard.check(user, T0)
    assert len(guard) == 3
    assert guard.check(1, T0) is not Verdict.ALLOW  # 1 was seen recently, so remembered
    assert guard.check(2, T0) is Verdict.ALLOW  # 2 was forgotten: a fresh window


# --- through the dispatcher, on both databases --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def dispatcher_on(engine: AsyncEngine, clock: Clock) -> Dispatcher:
    municipality = load_municipality(resolve_config_path("zutphen"))
    return Dispatcher(
        session_factory(engine), municipality, Translator(("nl", "en")), clock, FloodGuard(RULE)
    )


def events(user_id: int) -> list[Event]:
    """Nineteen requests for help, /nieuw as the twentieth, then thirty ideas that must not land."""
    base = {"user_id": user_id, "chat_id": user_id, "language_code": "en"}
    help_ = [Event(kind=EventKind.COMMAND, command="help", text="/help", **base)] * 19  # type: ignore[arg-type]
    new = Event(kind=EventKind.COMMAND, command="nieuw", text="/nieuw", **base)  # type: ignore[arg-type]
    ideas = [
        Event(kind=EventKind.TEXT, text=f"Drie bankjes in het park, plan {i}.", **base) for i in range(30)
    ]  # type: ignore[arg-type]
    return [*help_, new, *ideas]


def texts(rows: list[outbox_store.OutboxRow]) -> list[str]:
    return [str(r.payload.get("text", "")) for r in rows if r.method == "sendMessage"]


async def conversation(engine: AsyncEngine, chat_id: int) -> tuple[object, ...]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(Conversation.flow, Conversation.step, Conversation.data).where(
                    Conversation.chat_id == chat_id
                )
            )
        ).one()
    return tuple(row)


async def test_fifty_messages_in_ten_seconds_get_one_slow_down_and_the_rest_does_nothing(
    engine: AsyncEngine, clock: Clock
) -> None:
    dispatcher = dispatcher_on(engine, clock)
    sent: list[str] = []
    for update_id, event in enumerate(events(1), start=1):
        clock.now = T0 + timedelta(milliseconds=200 * update_id)
        sent.extend(texts(list((await dispatcher.handle(event, update_id)).outbox)))
    assert sum(SLOW_DOWN in text for text in sent) == 1
    assert not any("Is that right?" in text for text in sent)

    # The draft is what the twenty allowed updates made of it: a new intake, no idea yet.
    reference = dispatcher_on(engine, clock)
    for event in events(2)[:20]:
        await reference.handle(event)
    assert await conversation(engine, 1) == await conversation(engine, 2)
    flow, step, _ = await conversation(engine, 1)
    assert (flow, step) == ("intake", "idea")

    # Every dropped update was claimed, so Telegram's redelivery is skipped.
    async with engine.connect() as conn:
        claimed = set((await conn.execute(select(ProcessedUpdate.update_id))).scalars())
    assert claimed == set(range(1, 51))
    again = await dispatcher.handle(events(1)[-1], 50)
    assert again.duplicate

    # A window later the resident is heard again, and the idea lands.
    clock.now += RULE.window
    handled = await dispatcher.handle(events(1)[-1], 51)
    assert not any(SLOW_DOWN in text for text in texts(list(handled.outbox)))
    flow, step, _ = await conversation(engine, 1)
    assert step != "idea"


async def test_staff_are_not_limited(engine: AsyncEngine, clock: Clock) -> None:
    async with session_factory(engine)() as session, session.begin():
        await staff_store.add_staff(
            session, telegram_user_id=3, name="Bea Bakker", role="broker", wijken=[], themes=[], now=T0
        )
    dispatcher = dispatcher_on(engine, clock)
    sent: list[list[str]] = []
    for update_id, event in enumerate(events(3), start=1):
        clock.now = T0 + timedelta(milliseconds=200 * update_id)
        sent.append(texts(list((await dispatcher.handle(event, update_id)).outbox)))
    assert all(sent), "every update of a staff member was answered"
    assert not any(SLOW_DOWN in text for batch in sent for text in batch)
