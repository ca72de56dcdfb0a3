"""What the outbox does after Telegram refuses a message to a broker (403): their cases go back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot import handback
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.db import session_factory
from storage.models import OutboxMessage
from tests.test_staff_cli import initiative

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BROKER, COORDINATOR, RESIDENT = 42, 43, 701


async def world(session: AsyncSession) -> tuple[int, str]:
    """A broker and a coordinator who both opened the bot, and one case of the broker's."""
    for user, name, role in ((BROKER, "Bea", "broker"), (COORDINATOR, "Cor", "coordinator")):
        await people_store.upsert_person(
            session, user_id=user, chat_id=user, first_name=name, telegram_language="en", now=NOW
        )
        row = await staff_store.add_staff(
            session, telegram_user_id=user, name=name, role=role, wijken=["WK030101"], themes=[], now=NOW
        )
        if role == "broker":
            broker_id = row.id
    case = await initiatives_store.create_initiative(session, initiative(RESIDENT, "WK030101"), NOW)
    await initiatives_store.assign(
        session, case.id, broker_id=broker_id, by_staff_id=None, note=None, now=NOW
    )
    return broker_id, case.reference


async def queued(session: AsyncSession) -> dict[int, list[str]]:
    rows = await session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.payload).order_by(OutboxMessage.id)
    )
    out: dict[int, list[str]] = {}
    for chat, payload in rows:
        out.setdefault(chat, []).append(str(payload["text"]))
    return out


async def test_a_403_from_a_broker_hands_their_cases_back_and_tells_the_coordinator_why(
    engine: AsyncEngine,
) -> None:
    async with session_factory(engine)() as session, session.begin():
        _, reference = await world(session)
        await people_store.mark_unreachable(session, BROKER, NOW)  # as the outbox does first
        await handback.broker_unreachable(session, BROKER, NOW)

        case = await initiatives_store.load_case(session, reference)
        assert case is not None and case.broker_id is None
        sent = await queued(session)
    assert sorted(sent) == [COORDINATOR, RESIDENT]
    (told,) = sent[COORDINATOR]
    assert "The bot cannot reach Bea: they have not opened the bot yet, or they blocked it." in told
    assert reference in told
    (heard,) = sent[RESIDENT]
    assert "krijgt snel een nieuwe initiatiefmakelaar" in heard  # the resident never wrote: Dutch


async def test_a_403_from_a_resident_or_a_coordinator_changes_no_case(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session, session.begin():
        broker_id, reference = await world(session)
        await handback.broker_unreachable(session, RESIDENT, NOW)
        await handback.broker_unreachable(session, COORDINATOR, NOW)
        case = await initiatives_store.load_case(session, reference)
        assert case is not None and case.broker_id == broker_id
        assert await queued(session) == {}


async def test_a_failing_hand_back_leaves_the_outboxs_own_records_alone(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(initiatives_store, "hand_back_cases", broken)
    async with session_factory(engine)() as session, session.begin():
        await world(session)
        await people_store.mark_unreachable(session, BROKER, NOW)
        await handback.broker_unreachable(session, BROKER, NOW)  # logged, not raised
    async with session_factory(engine)() as session:
        person = await people_store.load_person(session, BROKER)
        assert person is not None and person.unreachable_at == NOW  # committed with the transaction
