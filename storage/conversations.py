"""Conversations: where each chat is in a flow, loaded row-locked with the person who writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.people import PERSON_COLUMNS, PersonRow
from storage.tables import conversations, people


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """A row of ``conversations``: where one chat is in a flow."""

    chat_id: int
    user_id: int
    flow: str
    step: str
    data: dict[str, Any]
    history: tuple[str, ...]
    updated_at: datetime
    version: int


_CONVERSATION_COLUMNS = sql.columns(conversations, ConversationRow)


# FOR UPDATE serialises two updates of one chat on PostgreSQL; SQLite leaves it out (BEGIN IMMEDIATE
# already serialises all writers).
_LOAD_CONVERSATION = (
    select(*_CONVERSATION_COLUMNS).where(conversations.c.chat_id == bindparam("chat_id")).with_for_update()
)


async def load_conversation(session: AsyncSession, chat_id: int) -> ConversationRow | None:
    """Load and row-lock the conversation of a chat, or None when the chat has none."""
    conn = await session.connection()
    row = (await conn.execute(_LOAD_CONVERSATION, {"chat_id": chat_id})).first()
    if row is None:
        return None
    (chat, user, flow, step, data, history, updated_at, version) = row
    return ConversationRow(chat, user, flow, step, data, tuple(history), updated_at, version)


# One round trip for the hot path: the chat's conversation (row-locked) with the person who writes.
_LOAD_CHAT = (
    select(*_CONVERSATION_COLUMNS, *PERSON_COLUMNS)
    .select_from(conversations.outerjoin(people, people.c.telegram_user_id == bindparam("user_id")))
    .where(conversations.c.chat_id == bindparam("chat_id"))
    .with_for_update(of=conversations)
)


async def load_chat(
    session: sql.Db, chat_id: int, user_id: int
) -> tuple[ConversationRow | None, PersonRow | None]:
    """Load and row-lock a chat's conversation together with the person; (None, None) for a new chat."""
    rows = await sql.fetch(session, _LOAD_CHAT, {"chat_id": chat_id, "user_id": user_id})
    if not rows:
        return None, None
    row = rows[0]
    (chat, user, flow, step, data, history, updated_at, version, *person) = row
    conversation = ConversationRow(chat, user, flow, step, data, tuple(history), updated_at, version)
    return conversation, (PersonRow(*person) if person[0] is not None else None)


@cache
def _save_conversation_stmt(dialect: str) -> Any:
    stmt = sql.insert(dialect, conversations)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["chat_id"],
        set_={
            "user_id": excluded.user_id,
            "flow": excluded.flow,
            "step": excluded.step,
            "data": excluded.data,
            "history": excluded.history,
            "updated_at": excluded.updated_at,
            "version": conversations.c.version + 1,
            # Any update of the chat answers the retention sweep's reminder of an untouched draft.
            "draft_reminded_at": None,
        },
    ).returning(conversations.c.version)


async def save_conversation(
    session: sql.Db,
    *,
    chat_id: int,
    user_id: int,
    flow: str,
    step: str,
    data: Mapping[str, Any],
    history: Sequence[str],
    now: datetime,
) -> int:
    """Insert or update the chat's conversation and return its new version (1 for a new one)."""
    values = {
        "chat_id": chat_id,
        "user_id": user_id,
        "flow": flow,
        "step": step,
        "data": dict(data),
        "history": list(history),
        "updated_at": now,
        "version": 1,
    }
    statement = _save_conversation_stmt(sql.dialect_name(session))
    return int((await sql.fetch(session, statement, values, insert=True))[0][0])


async def delete_conversation(session: AsyncSession, chat_id: int) -> None:
    """Forget the chat's conversation (the flow ended or was cancelled)."""
    conn = await session.connection()
    await conn.execute(delete(conversations).where(conversations.c.chat_id == chat_id))
