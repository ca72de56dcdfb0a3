"""Behaviour of the storage layer, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import conversations as conversations_store
from storage import initiatives as initiatives_store
from storage import outbox as outbox_store
from storage import people as people_store
from storage import updates as updates_store
from storage.db import reading, session_factory
from storage.models import Initiative, InitiativeEvent, Person

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def only_on(backend: str) -> pytest.MarkDecorator:
    """Run a test on one database backend only (narrows the ``database_url`` parametrisation)."""
    return pytest.mark.parametrize("database_url", [backend], indirect=True, ids=[backend])


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


def new_initiative(**changes: Any) -> initiatives_store.NewInitiative:
    initiative = initiatives_store.NewInitiative(
        municipality_code="0363",
        prefix="INI",
        resident_user_id=1001,
        resident_chat_id=1001,
        title="Bankjes bij de speeltuin",
        description="Twee bankjes zodat ouders kunnen zitten terwijl de kinderen spelen.",
        theme_code="groen",
        wijk_code="WK036301",
        own_contribution="We schilderen ze zelf.",
        needs=("geld", "vergunning"),
        amount_cents=45_000,
        neighbours=12,
        photo_file_id=None,
        contact_name="Fatima el Amrani",
        contact_phone="0612345678",
        contact_email="fatima@example.org",
        consent_at=NOW,
        language="nl",
    )
    return dataclasses.replace(initiative, **changes)


async def test_an_update_is_processed_only_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        assert await updates_store.claim_update(session, 812_345_678_901, NOW) is True
    async with sessions() as session, session.begin():
        assert await updates_store.claim_update(session, 812_345_678_901, NOW) is False
        assert await updates_store.claim_update(session, 812_345_678_902, NOW) is True


async def test_references_count_per_municipality_and_restart_each_year(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        amsterdam = [
            await initiatives_store.next_reference(session, municipality_code="0363", prefix="INI", year=2026)
            for _ in range(3)
        ]
        utrecht = await initiatives_store.next_reference(
            session, municipality_code="0344", prefix="UTR", year=2026
        )
        next_year = await initiatives_store.next_reference(
            session, municipality_code="0363", prefix="INI", year=2027
        )

    assert amsterdam == [("INI-2026-0001", 1), ("INI-2026-0002", 2), ("INI-2026-0003", 3)]
    assert utrecht == ("UTR-2026-0001", 1)
    assert next_year == ("INI-2027-0001", 1)


def test_reference_numbers_get_longer_after_9999() -> None:
    assert initiatives_store.format_reference("INI", 2026, 42) == "INI-2026-0042"
    assert initiatives_store.format_reference("INI", 2026, 9999) == "INI-2026-9999"
    assert initiatives_store.format_reference("INI", 2026, 10_000) == "INI-2026-10000"


async def test_simultaneous_submissions_get_distinct_references(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = asyncio.Barrier(20)

    async def allocate() -> int:
        async with sessions() as session:
            await start.wait()
            async with session.begin():
                _, seq = await initiatives_store.next_reference(
                    session, municipality_code="0363", prefix="INI", year=2026
                )
                return seq

    numbers = await asyncio.gather(*(allocate() for _ in range(20)))

    assert sorted(numbers) == list(range(1, 21))


async def test_concurrent_submissions_get_every_number_once_in_the_order_taken(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = asyncio.Barrier(15)

    async def submit(n: int) -> initiatives_store.InitiativeRow:
        async with sessions() as session:
            await start.wait()
            async with session.begin():
                created = await initiatives_store.create_initiative(
                    session, new_initiative(title=f"Idee nummer {n}", resident_user_id=n), NOW
                )
                await asyncio.sleep(0)  # routing, rendering and queueing happen here: others go on
                return created

    created = await asyncio.gather(*(submit(n) for n in range(15)))

    assert sorted(c.seq for c in created) == list(range(1, 16))
    assert all(c.reference == f"INI-2026-{c.seq:04d}" for c in created)
    async with sessions() as session:
        stored = [(await initiatives_store.load_initiative(session, c.reference)) for c in created]
    assert stored == created


@only_on("postgresql")
async def test_a_submission_does_not_wait_for_an_earlier_one_to_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():  # the year's first: it makes the sequence
        first = await initiatives_store.create_initiative(session, new_initiative(), NOW)
    async with sessions() as slow, slow.begin():
        second = await initiatives_store.create_initiative(slow, new_initiative(title="Nog bezig"), NOW)

        async def meanwhile() -> initiatives_store.InitiativeRow:
            async with sessions() as session, session.begin():
                return await initiatives_store.create_initiative(session, new_initiative(), NOW)

        # With a counter row locked until commit this would wait for ``slow``, forever.
        third = await asyncio.wait_for(meanwhile(), timeout=10)

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]


async def test_a_failed_submission_never_lets_its_number_be_handed_out_twice(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    async with sessions() as session, session.begin():
        await initiatives_store.create_initiative(session, new_initiative(), NOW)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await initiatives_store.create_initiative(session, new_initiative(), NOW)
            raise RuntimeError("routing failed")
    async with sessions() as session, session.begin():
        after = await initiatives_store.create_initiative(session, new_initiative(), NOW)

    # A PostgreSQL sequence is not rolled back: number 2 stays unused (a gap). SQLite's counter is.
    assert after.reference == ("INI-2026-0003" if database_url.startswith("postgresql") else "INI-2026-0002")


async def test_numbering_goes_on_after_a_counter_from_before(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # As the counter left it before revision 0009, with no sequence yet on PostgreSQL.
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO reference_counters (municipality_code, year, last_seq) VALUES ('0344', 2026, 41)"
            )
        )
    async with sessions() as session, session.begin():
        next_one = await initiatives_store.next_reference(
            session, municipality_code="0344", prefix="UTR", year=2026
        )
    assert next_one == ("UTR-2026-0042", 42)


def test_each_municipality_and_year_has_a_sequence_of_its_own() -> None:
    names = {
        initiatives_store.reference_sequence_name(code, year)
        for code in ("GM0150", "gm0150", "GM-0150", "0363")
        for year in (2026, 2027)
    }
    assert len(names) == 8
    assert initiatives_store.reference_sequence_name("GM0150", 2026).startswith("reference_seq_2026_gm0150_")
    assert all(len(name) <= 63 for name in names)  # PostgreSQL's limit for a name


async def test_conversation_survives_a_round_trip_with_unicode(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    answers = {"title": "Geveltuintjes in de Çelik-straat 🌻", "needs": ["geld"], "amount_cents": 12_50}
    async with sessions() as session, session.begin():
        assert await conversations_store.load_conversation(session, 42) is None
        version = await conversations_store.save_conversation(
            session,
            chat_id=42,
            user_id=7,
            flow="intake",
            step="title",
            data=answers,
            history=["start", "title"],
            now=NOW,
        )
    assert version == 1

    async with sessions() as session, session.begin():
        loaded = await conversations_store.load_conversation(session, 42)
        assert loaded == conversations_store.ConversationRow(
            chat_id=42,
            user_id=7,
            flow="intake",
            step="title",
            data=answers,
            history=("start", "title"),
            updated_at=NOW,
            version=1,
        )
        later = NOW + timedelta(minutes=3)
        version = await conversations_store.save_conversation(
            session,
            chat_id=42,
            user_id=7,
            flow="intake",
            step="description",
            data={**answers, "x": "ë"},
            history=[*loaded.history, "description"],
            now=later,
        )
    assert version == 2

    async with sessions() as session, session.begin():
        loaded = await conversations_store.load_conversation(session, 42)
        assert loaded is not None
        assert (loaded.step, loaded.version, loaded.updated_at) == ("description", 2, later)
        assert loaded.data["x"] == "ë"
        await conversations_store.delete_conversation(session, 42)
        assert await conversations_store.load_conversation(session, 42) is None


async def test_person_keeps_chosen_language_and_becomes_reachable_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        person = await people_store.upsert_person(
            session, user_id=7, chat_id=7, first_name="Sanne", telegram_language="nl", now=NOW
        )
        assert person == people_store.PersonRow(7, 7, "Sanne", "nl", None, None, NOW, NOW)
        await people_store.set_language(session, 7, "en")
        await people_store.mark_unreachable(session, 7, NOW + timedelta(hours=1))
        blocked = await people_store.load_person(session, 7)
        assert blocked is not None
        assert blocked.unreachable_at == NOW + timedelta(hours=1)

    later = NOW + timedelta(days=1)
    async with sessions() as session, session.begin():
        person = await people_store.upsert_person(
            session, user_id=7, chat_id=7, first_name="Sanne", telegram_language=None, now=later
        )
    assert person == people_store.PersonRow(7, 7, "Sanne", "nl", "en", None, NOW, later)


async def test_submitting_an_initiative_starts_its_timeline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new_initiative(), NOW)
        events = await initiatives_store.events_of_initiative(session, created.id)

    assert created.reference == "INI-2026-0001"
    assert (created.year, created.seq, created.status) == (2026, 1, "ingediend")
    assert created.needs == ("geld", "vergunning")
    assert created.status_changed_at == created.created_at == NOW
    assert [(e.kind, e.status, e.actor_role, e.actor_user_id, e.at) for e in events] == [
        ("status", "ingediend", "resident", 1001, NOW)
    ]
    async with sessions() as session:
        assert await initiatives_store.load_initiative(session, "INI-2026-0001") == created


async def test_reference_year_is_the_dutch_calendar_year(sessions: async_sessionmaker[AsyncSession]) -> None:
    # 23:30 UTC on 31 December is already New Year in the Netherlands.
    new_year_in_amsterdam = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    async with sessions() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new_initiative(), new_year_in_amsterdam)
    assert (created.reference, created.year) == ("INI-2027-0001", 2027)


async def test_resident_sees_own_initiatives_newest_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await initiatives_store.create_initiative(session, new_initiative(title="Eerste"), NOW)
        await initiatives_store.create_initiative(
            session, new_initiative(title="Tweede"), NOW + timedelta(days=2)
        )
        await initiatives_store.create_initiative(
            session, new_initiative(title="Van een ander", resident_user_id=5), NOW
        )

    async with sessions() as session:
        mine = await initiatives_store.initiatives_of_resident(session, 1001)
    assert [(i.reference, i.title, i.status) for i in mine] == [
        ("INI-2026-0002", "Tweede", "ingediend"),
        ("INI-2026-0001", "Eerste", "ingediend"),
    ]
    assert mine[0].status_changed_at == NOW + timedelta(days=2)


async def test_removing_an_initiative_removes_its_timeline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new_initiative(), NOW)
    async with sessions() as session, session.begin():
        await session.execute(delete(Initiative).where(Initiative.id == created.id))
    async with sessions() as session:
        assert (await session.execute(select(InitiativeEvent))).all() == []


async def test_outbox_hands_out_due_messages_in_order(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        first = await outbox_store.enqueue(
            session, chat_id=1, method="sendMessage", payload={"text": "één"}, now=NOW
        )
        more = await outbox_store.enqueue_many(
            session,
            [
                outbox_store.NewOutboxMessage(2, "sendMessage", {"text": "twee"}),
                outbox_store.NewOutboxMessage(1, "answerCallbackQuery", {"callback_query_id": "abc"}),
                outbox_store.NewOutboxMessage(3, "sendPhoto", {"photo": "file-id", "caption": "drie"}),
            ],
            now=NOW,
        )
    assert more == sorted(more) and first < more[0]

    async with sessions() as session, session.begin():
        due = await outbox_store.pending(session, now=NOW, limit=10)
        assert [(m.id, m.chat_id, m.method, m.payload) for m in due] == [
            (first, 1, "sendMessage", {"text": "één"}),
            (more[0], 2, "sendMessage", {"text": "twee"}),
            (more[1], 1, "answerCallbackQuery", {"callback_query_id": "abc"}),
            (more[2], 3, "sendPhoto", {"photo": "file-id", "caption": "drie"}),
        ]
        assert all(m.status == "pending" and m.attempts == 0 and m.not_before == NOW for m in due)
        assert [m.id for m in await outbox_store.pending(session, now=NOW, limit=2)] == [first, more[0]]

        await outbox_store.mark_sent(session, [(first, 501), (more[1], None)], NOW + timedelta(seconds=1))
        await outbox_store.defer(
            session, more[0], until=NOW + timedelta(seconds=30), error="429: retry after 30"
        )
        await outbox_store.mark_failed(session, more[2], "403: bot was blocked by the user", now=NOW)

    async with sessions() as session, session.begin():
        assert await outbox_store.pending(session, now=NOW + timedelta(seconds=29), limit=10) == []
        (retry,) = await outbox_store.pending(session, now=NOW + timedelta(seconds=30), limit=10)
        assert (retry.id, retry.attempts, retry.last_error) == (more[0], 1, "429: retry after 30")

        rows = {row.id: row for row in await outbox_store.load_outbox(session, [first, more[1], more[2]])}
    assert (rows[first].status, rows[first].telegram_message_id) == ("sent", 501)
    assert rows[first].sent_at == NOW + timedelta(seconds=1)
    assert (rows[more[1]].status, rows[more[1]].telegram_message_id) == ("sent", None)
    assert (rows[more[2]].status, rows[more[2]].attempts) == ("failed", 1)
    assert rows[more[2]].last_error == "403: bot was blocked by the user"


async def test_enqueue_many_returns_ids_in_the_order_given(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    messages = [outbox_store.NewOutboxMessage(n, "sendMessage", {"text": str(n)}) for n in range(1201)]
    async with sessions() as session, session.begin():
        assert await outbox_store.enqueue_many(session, [], now=NOW) == []
        ids = await outbox_store.enqueue_many(session, messages, now=NOW)
        rows = await outbox_store.load_outbox(session, ids)
    assert [(row.id, row.chat_id, row.payload["text"]) for row in rows] == [
        (row_id, chat_id, str(chat_id)) for row_id, chat_id in zip(ids, range(1201), strict=True)
    ]


async def test_timestamps_come_back_as_aware_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    amsterdam_summer = datetime(2026, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    async with sessions() as session, session.begin():
        await people_store.upsert_person(
            session, user_id=9, chat_id=9, first_name=None, telegram_language=None, now=amsterdam_summer
        )
    async with sessions() as session:
        stored = (await session.execute(select(Person.created_at))).scalar_one()
    assert stored.tzinfo is UTC
    assert stored == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


async def test_naive_timestamps_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(StatementError, match="naive datetime"):
            await updates_store.claim_update(session, 1, datetime(2026, 3, 2, 9, 30))


@only_on("sqlite")
async def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
        # Other processes' locks are waited for in the event loop, not in SQLite's busy handler.
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 0


# SQLite has no row locks; BEGIN IMMEDIATE serialises whole transactions there.
@only_on("postgresql")
async def test_second_update_of_a_chat_waits_for_the_first_on_postgresql(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await conversations_store.save_conversation(
            session, chat_id=42, user_id=7, flow="intake", step="title", data={}, history=[], now=NOW
        )

    async with sessions() as first, first.begin(), sessions() as second, second.begin():
        assert await conversations_store.load_conversation(first, 42) is not None
        await second.execute(text("SET LOCAL lock_timeout = '50ms'"))
        with pytest.raises(DBAPIError, match="lock timeout"):
            await conversations_store.load_conversation(second, 42)


@only_on("postgresql")
async def test_two_outbox_senders_never_get_the_same_message_on_postgresql(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        ids = await outbox_store.enqueue_many(
            session,
            [outbox_store.NewOutboxMessage(n, "sendMessage", {"text": "hoi"}) for n in range(4)],
            now=NOW,
        )

    async with sessions() as first, first.begin(), sessions() as second, second.begin():
        taken_first = [m.id for m in await outbox_store.pending(first, now=NOW, limit=3)]
        taken_second = [m.id for m in await outbox_store.pending(second, now=NOW, limit=3)]
    assert taken_first == ids[:3]
    assert taken_second == ids[3:]


@only_on("sqlite")  # PostgreSQL readers never wait for writers
async def test_a_reader_does_not_queue_behind_a_writer_on_sqlite(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as writer, writer.begin():
        await writer.execute(text("UPDATE people SET language = NULL"))  # holds SQLite's write lock
        async with reading(sessions) as reader:
            # Without the deferred BEGIN this would wait for the writer's commit (busy timeout: 10 s).
            count = await asyncio.wait_for(reader.scalar(select(func.count()).select_from(Person)), 2)
        assert count == 0
