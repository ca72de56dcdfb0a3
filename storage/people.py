"""People who wrote to the bot: their chat, language and whether the bot can still reach them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.tables import people


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A row of ``people``."""

    telegram_user_id: int
    chat_id: int
    first_name: str | None
    telegram_language: str | None
    language: str | None
    unreachable_at: datetime | None
    created_at: datetime
    last_seen_at: datetime


PERSON_COLUMNS = sql.columns(people, PersonRow)


@cache
def _upsert_person_stmt(dialect: str) -> Any:
    stmt = sql.insert(dialect, people)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["telegram_user_id"],
        set_={
            "chat_id": excluded.chat_id,
            "first_name": excluded.first_name,
            # Telegram leaves language_code out on some updates; keep the last one we saw.
            "telegram_language": func.coalesce(excluded.telegram_language, people.c.telegram_language),
            "last_seen_at": excluded.last_seen_at,
            # A person who writes to the bot has not blocked it (any more), so we can reach them again.
            "unreachable_at": None,
        },
    ).returning(*PERSON_COLUMNS)


async def upsert_person(
    session: AsyncSession,
    *,
    user_id: int,
    chat_id: int,
    first_name: str | None,
    telegram_language: str | None,
    now: datetime,
) -> PersonRow:
    """Create or refresh the person behind an update and return the stored row."""
    conn, dialect = await sql.connection(session)
    result = await conn.execute(
        _upsert_person_stmt(dialect),
        {
            "telegram_user_id": user_id,
            "chat_id": chat_id,
            "first_name": first_name,
            "telegram_language": telegram_language,
            "language": None,
            "unreachable_at": None,
            "created_at": now,
            "last_seen_at": now,
        },
    )
    return PersonRow(*result.one())


async def load_person(session: AsyncSession, user_id: int) -> PersonRow | None:
    """Return the person with this Telegram user id, if they ever wrote to the bot."""
    conn = await session.connection()
    result = await conn.execute(select(*PERSON_COLUMNS).where(people.c.telegram_user_id == user_id))
    row = result.first()
    return None if row is None else PersonRow(*row)


async def load_people(session: AsyncSession, user_ids: Collection[int]) -> dict[int, PersonRow]:
    """The people with these Telegram user ids who ever wrote to the bot, by user id."""
    if not user_ids:
        return {}
    conn = await session.connection()
    result = await conn.execute(
        select(*PERSON_COLUMNS).where(people.c.telegram_user_id.in_(bindparam("ids", expanding=True))),
        {"ids": sorted(set(user_ids))},
    )
    return {row[0]: PersonRow(*row) for row in result}


async def set_language(session: AsyncSession, user_id: int, language: str | None) -> None:
    """Store the language chosen with /taal; None goes back to following Telegram."""
    conn = await session.connection()
    await conn.execute(update(people).where(people.c.telegram_user_id == user_id).values(language=language))


async def mark_unreachable(session: AsyncSession, chat_id: int, now: datetime) -> None:
    """Remember that the person in this chat blocked the bot (the first time it was noticed)."""
    conn = await session.connection()
    await conn.execute(
        update(people)
        .where(people.c.chat_id == chat_id, people.c.unreachable_at.is_(None))
        .values(unreachable_at=now)
    )


async def is_reachable(session: AsyncSession, telegram_user_id: int) -> bool:
    """Whether the bot can write to this person: they opened it once and have not blocked it since."""
    conn = await session.connection()
    found = await conn.execute(
        select(people.c.telegram_user_id).where(
            people.c.telegram_user_id == telegram_user_id, people.c.unreachable_at.is_(None)
        )
    )
    return found.first() is not None
