"""The alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.migrate import current_revision, head_revision, is_up_to_date, upgrade
from storage.models import Base


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
