"""SQL helpers the storage modules share: row columns, the session's connection, dialect upserts.

Every storage function works inside the caller's transaction and never commits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def columns(table: Table, row_type: type) -> list[Any]:
    """The table's columns in the order of the dataclass fields, so rows map positionally."""
    return [table.c[field.name] for field in dataclasses.fields(row_type)]


async def connection(session: AsyncSession) -> tuple[AsyncConnection, str]:
    """The session's connection and the name of its dialect."""
    conn = await session.connection()
    return conn, conn.dialect.name


def insert(dialect: str, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT for the given dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert support for {dialect}")


def statuses(statuses: Collection[str]) -> list[str]:
    """Statuses as a list for an expanding IN parameter; a lone string is refused, not read as letters."""
    if isinstance(statuses, str):
        raise TypeError(f"expected a collection of statuses, not the string {statuses!r}")
    return [str(status) for status in statuses]
