"""Secrets one deployment shares: made by whichever worker starts first, read by all the others."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.models import DeploymentSecret

secrets_table = DeploymentSecret.__table__


async def shared_secret(engine: AsyncEngine, name: str, make: Callable[[], str]) -> str:
    """The secret called ``name``; stored from ``make()`` when there is none yet. Workers starting at
    once all get the one that was stored first."""
    async with engine.begin() as conn:
        return await _secret(conn, name, make)


async def secret_in(session: AsyncSession, name: str, make: Callable[[], str]) -> str:
    """``shared_secret`` inside an open transaction (for code that holds a session, not the engine)."""
    return await _secret(await session.connection(), name, make)


async def _secret(conn: AsyncConnection, name: str, make: Callable[[], str]) -> str:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        insert(secrets_table)
        .values(name=name, value=make(), created_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = await conn.execute(select(secrets_table.c.value).where(secrets_table.c.name == name))
    return str(result.scalar_one())
