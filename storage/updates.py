"""Processed Telegram updates: each update_id is handled once, also when Telegram delivers it again."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from storage import sql
from storage.tables import processed_updates


@cache
def _claim_update_stmt(dialect: str) -> Any:
    stmt = sql.insert(dialect, processed_updates)
    return stmt.on_conflict_do_nothing(index_elements=["update_id"]).returning(processed_updates.c.update_id)


async def claim_update(session: sql.Db, update_id: int, now: datetime) -> bool:
    """Record ``update_id`` as processed; False if it already was (a redelivery to skip)."""
    conn, dialect = await sql.connection(session)
    values = {"update_id": update_id, "processed_at": now}
    return bool(await sql.fetch(conn, _claim_update_stmt(dialect), values, insert=True))
