"""The alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import alerts as alerts_store
from storage import initiatives as initiatives_store
from storage import staff as staff_store
from storage.db import create_engine, session_factory
from storage.migrate import current_revision, head_revision, is_up_to_date, upgrade
from storage.models import Base
from tests.factories import new_initiative
from tests.test_storage_staff import downgrade


@pytest_asyncio.fixture
async def empty_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_empty_database_is_not_up_to_date(empty_engine: AsyncEngine) -> None:
    assert await current_revision(empty_engine) is None
    assert not await is_up_to_date(empty_engine)


async def test_upgrade_from_empty_reaches_head_with_every_table(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)

    assert await current_revision(empty_engine) == head_revision()
    assert await is_up_to_date(empty_engine)
    async with empty_engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert tables == {*Base.metadata.tables, "alembic_version"}


async def test_migrated_schema_matches_the_models(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)

    async with empty_engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == []


async def test_upgrade_twice_changes_nothing(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    await upgrade(empty_engine)

    assert await is_up_to_date(empty_engine)
    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_0006_hands_back_the_open_cases_of_brokers_removed_before(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    now, removed = datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 5, 16, 30, tzinfo=UTC)
    sessions = session_factory(empty_engine)
    async with sessions() as session, session.begin():
        gone, stays = [
            await staff_store.add_staff(
                session,
                telegram_user_id=user,
                name=name,
                role="broker",
                wijken=["WK036301"],
                themes=[],
                now=now,
            )
            for user, name in ((1, "Anna"), (2, "Bram"))
        ]
        cases = [
            await initiatives_store.create_initiative(session, new_initiative(title=f"Idee {n}"), now)
            for n in range(3)
        ]
        for case, broker in zip(cases, (gone, gone, stays), strict=True):
            await initiatives_store.assign(
                session, case.id, broker_id=broker.id, by_staff_id=None, note=None, now=now
            )
        await initiatives_store.change_status(
            session,
            cases[1].id,
            status="gerealiseerd",
            now=now,
            actor_role="broker",
            actor_user_id=1,
            staff_id=gone.id,
            note=None,
            department=None,
        )
        # Removed as before 0006: her open case kept her.
        await staff_store.remove_staff(session, staff_id=gone.id, now=removed)
    await downgrade(empty_engine, "0005")

    await upgrade(empty_engine)

    async with sessions() as session, session.begin():
        brokers = [(await initiatives_store.load_case_by_id(session, c.id)).broker_id for c in cases]  # type: ignore[union-attr]
        last = (await initiatives_store.timeline(session, cases[0].id, resident_view=False))[-1]
        due = {c.id: c.next_alert_at for c in await alerts_store.due_cases(session, now=removed, limit=10)}
    assert brokers == [None, gone.id, stays.id]  # open: unassigned; done, or someone else's: untouched
    assert (last.kind, last.note, last.staff_id, last.at, last.visible_to_resident) == (
        "unassigned",
        "removed",
        gone.id,
        removed,
        False,
    )
    assert due[cases[0].id] == removed  # the watchdog looks at it again


async def test_0009_keeps_the_reference_numbers_going_down_and_up(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    sessions = session_factory(empty_engine)
    for n in range(3):
        async with sessions() as session, session.begin():
            await initiatives_store.create_initiative(session, new_initiative(title=f"Idee {n}"), now)
    await downgrade(empty_engine, "0008")
    async with sessions() as session, session.begin():
        counter = (await session.execute(text("SELECT last_seq FROM reference_counters"))).scalar_one()
    assert counter == 3

    await upgrade(empty_engine)

    async with sessions() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new_initiative(), now)
    assert created.reference == "INI-2026-0004"
