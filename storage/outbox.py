"""The outbox: Bot API calls queued inside the update's transaction and sent after commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.tables import outbox


class OutboxStatus(StrEnum):
    """States of a queued Bot API call."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewOutboxMessage:
    """A Bot API call to queue: the method name and its JSON parameters."""

    chat_id: int
    method: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A row of ``outbox``; ``attempts`` counts the unsuccessful sends."""

    id: int
    chat_id: int
    method: str
    payload: dict[str, Any]
    status: str
    attempts: int
    not_before: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    telegram_message_id: int | None


_OUTBOX_COLUMNS = sql.columns(outbox, OutboxRow)


# Stays well under SQLite's limit of 32766 bound parameters per statement.
_ENQUEUE = outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True)


def _outbox_values(
    chat_id: int, method: str, payload: Mapping[str, Any], now: datetime, not_before: datetime | None = None
) -> dict[str, Any]:
    return {
        "chat_id": chat_id,
        "method": method,
        "payload": dict(payload),
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "not_before": not_before or now,
        "created_at": now,
        "sent_at": None,
        "last_error": None,
        "telegram_message_id": None,
        "payload_cleared_at": None,
        "forget_chat": False,
    }


async def enqueue(
    session: sql.Db,
    *,
    chat_id: int,
    method: str,
    payload: Mapping[str, Any],
    now: datetime,
    not_before: datetime | None = None,
) -> int:
    """Queue one Bot API call and return its id; the sweep may take it from ``not_before`` (default now)."""
    return await _insert(session, _outbox_values(chat_id, method, payload, now, not_before))


async def _insert(session: sql.Db, values: dict[str, Any]) -> int:
    return int((await sql.fetch(session, _ENQUEUE, values, insert=True))[0][0])


async def enqueue_many(
    session: sql.Db,
    messages: Sequence[NewOutboxMessage],
    *,
    now: datetime,
    not_before: datetime | None = None,
) -> list[int]:
    """Queue several Bot API calls in one round trip; the ids come back in the order given."""
    rows = [_outbox_values(m.chat_id, m.method, m.payload, now, not_before) for m in messages]
    if len(rows) <= 1 or sql.dialect_name(session) == "sqlite":
        # One row, or SQLite in the event loop (an INSERT costs microseconds): no round trips to save.
        return [await _insert(session, row) for row in rows]
    conn, _ = await sql.connection(session)
    result = await conn.execute(_ENQUEUE, rows)
    return [int(row_id) for row_id in result.scalars()]


# SKIP LOCKED lets several senders share the queue on PostgreSQL; SQLite leaves the clause out.
_PENDING = (
    select(*_OUTBOX_COLUMNS)
    .where(outbox.c.status == OutboxStatus.PENDING.value, outbox.c.not_before <= bindparam("now"))
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


async def pending(session: AsyncSession, *, now: datetime, limit: int) -> list[OutboxRow]:
    """Claim up to ``limit`` due messages, oldest first."""
    conn = await session.connection()
    result = await conn.execute(_PENDING, {"now": now, "limit": limit})
    return [OutboxRow(*row) for row in result]


async def load_outbox(session: AsyncSession, ids: Sequence[int]) -> list[OutboxRow]:
    """Return the outbox rows with these ids, ordered by id."""
    if not ids:
        return []
    conn = await session.connection()
    result = await conn.execute(select(*_OUTBOX_COLUMNS).where(outbox.c.id.in_(ids)).order_by(outbox.c.id))
    return [OutboxRow(*row) for row in result]


# Rows whose contents must not outlive their delivery: the last message to a person who asked to be
# forgotten (its chat id goes too), and a resident's own data export (a document with all of it).
_WIPED = or_(outbox.c.forget_chat, outbox.c.method == "sendDocument")


def _settled(now: Any) -> dict[str, Any]:
    """What a row's send, or giving up on it, also writes: the wipe of a row that must not linger."""
    return {
        "payload": case((_WIPED, literal({}, outbox.c.payload.type)), else_=outbox.c.payload),
        "payload_cleared_at": case((_WIPED, now), else_=outbox.c.payload_cleared_at),
        "chat_id": case((outbox.c.forget_chat, literal(0, outbox.c.chat_id.type)), else_=outbox.c.chat_id),
    }


_MARK_SENT = (
    update(outbox)
    .where(outbox.c.id == bindparam("outbox_id"))
    .values(
        status=OutboxStatus.SENT.value,
        sent_at=bindparam("sent_now", type_=outbox.c.sent_at.type),
        telegram_message_id=bindparam("message_id", type_=outbox.c.telegram_message_id.type),
        **_settled(bindparam("sent_now", type_=outbox.c.sent_at.type)),
    )
)


async def mark_sent(
    session: sql.Db, ids_and_message_ids: Sequence[tuple[int, int | None]], now: datetime
) -> None:
    """Mark messages as sent, with the message id Telegram gave each (None for calls without one)."""
    if not ids_and_message_ids:
        return
    values = [
        {"outbox_id": outbox_id, "sent_now": now, "message_id": message_id}
        for outbox_id, message_id in ids_and_message_ids
    ]
    await sql.run_many(session, _MARK_SENT, values)


async def mark_failed(session: AsyncSession, id: int, error: str, *, now: datetime) -> None:
    """Give up on a message for good (blocked user, bad request) and keep the reason."""
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == id)
        .values(
            status=OutboxStatus.FAILED.value,
            attempts=outbox.c.attempts + 1,
            last_error=error,
            **_settled(literal(now, outbox.c.payload_cleared_at.type)),
        )
    )


async def defer(session: AsyncSession, id: int, *, until: datetime, error: str) -> None:
    """Retry a message no earlier than ``until`` (rate limit, network trouble), counting the attempt."""
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == id)
        .values(not_before=until, attempts=outbox.c.attempts + 1, last_error=error)
    )


async def hold_chat(session: AsyncSession, chat_id: int, *, after_id: int, until: datetime) -> None:
    """Keep a chat's later pending messages back until ``until``, so they cannot overtake a deferred one."""
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(
            outbox.c.chat_id == chat_id,
            outbox.c.id > after_id,
            outbox.c.status == OutboxStatus.PENDING.value,
            outbox.c.not_before < until,
        )
        .values(not_before=until)
    )


async def fail_chat(session: AsyncSession, chat_id: int, error: str, *, now: datetime) -> None:
    """Give up on every pending message to a chat (the person blocked the bot)."""
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id == chat_id, outbox.c.status == OutboxStatus.PENDING.value)
        .values(
            status=OutboxStatus.FAILED.value,
            last_error=error,
            **_settled(literal(now, outbox.c.payload_cleared_at.type)),
        )
    )


_CHAT_PENDING = (
    select(*_OUTBOX_COLUMNS)
    .where(outbox.c.chat_id == bindparam("chat_id"), outbox.c.status == OutboxStatus.PENDING.value)
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)


async def chat_pending(session: AsyncSession, chat_id: int, *, limit: int) -> list[OutboxRow]:
    """The first ``limit`` pending messages to a chat, oldest first, whether due or not."""
    conn = await session.connection()
    result = await conn.execute(_CHAT_PENDING, {"chat_id": chat_id, "limit": limit})
    return [OutboxRow(*row) for row in result]


_BACKLOGGED = (
    select(literal(1))
    .where(
        outbox.c.status == OutboxStatus.PENDING.value,
        outbox.c.chat_id == bindparam("chat_id"),
        outbox.c.id < bindparam("before_id"),
    )
    .limit(1)
)


async def backlogged(session: sql.Db, firsts: Mapping[int, int]) -> set[int]:
    """Which chats have a pending message older than their first one given (``firsts``: chat id → the
    id of its first new message): one deferred, held, queued by another process or before a restart.
    For the others, the new messages are their whole queue."""
    return {
        chat_id
        for chat_id, first in firsts.items()
        if await sql.fetch(session, _BACKLOGGED, {"chat_id": chat_id, "before_id": first})
    }


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending message becomes due, or None when nothing waits."""
    conn = await session.connection()
    result = await conn.execute(
        select(func.min(outbox.c.not_before)).where(outbox.c.status == OutboxStatus.PENDING.value)
    )
    return result.scalar_one_or_none()


async def lease(session: AsyncSession, ids: Sequence[int], *, until: datetime) -> None:
    """Keep claimed pending messages away from other senders until ``until``."""
    if not ids:
        return
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(list(ids)), outbox.c.status == OutboxStatus.PENDING.value)
        .values(not_before=until)
    )


async def forget_when_settled(session: sql.Db, ids: Sequence[int]) -> None:
    """Mark queued messages as the last ones to a person who asked to be forgotten: once each is sent
    (or given up on), its chat id and payload are wiped."""
    if ids:
        conn, _ = await sql.connection(session)
        await conn.execute(update(outbox).where(outbox.c.id.in_(list(ids))).values(forget_chat=True))
