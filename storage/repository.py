"""Queries the dispatcher, outbox and watchdog use; plain frozen dataclasses in and out.

Every function works inside the caller's transaction and never commits. The hot paths (one or more per
Telegram update) are single Core statements executed on the session's connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import (
    Conversation,
    Initiative,
    InitiativeEvent,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    ReferenceCounter,
)

people: Table = Person.__table__  # type: ignore[assignment]
conversations: Table = Conversation.__table__  # type: ignore[assignment]
reference_counters: Table = ReferenceCounter.__table__  # type: ignore[assignment]
initiatives: Table = Initiative.__table__  # type: ignore[assignment]
initiative_events: Table = InitiativeEvent.__table__  # type: ignore[assignment]
processed_updates: Table = ProcessedUpdate.__table__  # type: ignore[assignment]
outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]

SUBMITTED_STATUS = "ingediend"
# Reference numbers follow the Dutch calendar year, also for a submission at 00:30 on 1 January.
REFERENCE_TIMEZONE = ZoneInfo("Europe/Amsterdam")


class OutboxStatus(StrEnum):
    """States of a queued Bot API call."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


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


@dataclass(frozen=True, slots=True)
class NewInitiative:
    """What a resident submits; the reference, status and timestamps are added on creation."""

    municipality_code: str
    prefix: str
    resident_user_id: int
    resident_chat_id: int
    title: str
    description: str
    theme_code: str
    wijk_code: str | None
    own_contribution: str | None
    needs: tuple[str, ...]
    amount_cents: int | None
    neighbours: int | None
    photo_file_id: str | None
    contact_name: str
    contact_phone: str | None
    contact_email: str | None
    consent_at: datetime
    language: str


@dataclass(frozen=True, slots=True)
class InitiativeRow:
    """A row of ``initiatives``."""

    id: int
    municipality_code: str
    reference: str
    year: int
    seq: int
    resident_user_id: int
    resident_chat_id: int
    title: str
    description: str
    theme_code: str
    wijk_code: str | None
    own_contribution: str | None
    needs: tuple[str, ...]
    amount_cents: int | None
    neighbours: int | None
    photo_file_id: str | None
    contact_name: str
    contact_phone: str | None
    contact_email: str | None
    consent_at: datetime
    language: str
    status: str
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class InitiativeSummary:
    """One line of a resident's "my initiatives" list."""

    id: int
    reference: str
    title: str
    status: str
    status_changed_at: datetime


@dataclass(frozen=True, slots=True)
class EventRow:
    """A row of ``initiative_events``: one entry on an initiative's timeline."""

    id: int
    initiative_id: int
    at: datetime
    kind: str
    status: str | None
    actor_user_id: int | None
    actor_role: str
    note: str | None
    department: str | None


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


def _columns(table: Table, row_type: type) -> list[Any]:
    """The table's columns in the order of the dataclass fields, so rows map positionally."""
    return [table.c[field.name] for field in dataclasses.fields(row_type)]


_PERSON_COLUMNS = _columns(people, PersonRow)
_CONVERSATION_COLUMNS = _columns(conversations, ConversationRow)
_INITIATIVE_COLUMNS = _columns(initiatives, InitiativeRow)
_EVENT_COLUMNS = _columns(initiative_events, EventRow)
_OUTBOX_COLUMNS = _columns(outbox, OutboxRow)


async def _connection(session: AsyncSession) -> tuple[AsyncConnection, str]:
    conn = await session.connection()
    return conn, conn.dialect.name


def _insert(dialect: str, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT for the given dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert support for {dialect}")


# --- processed updates -------------------------------------------------------------------------


@cache
def _claim_update_stmt(dialect: str) -> Any:
    stmt = _insert(dialect, processed_updates)
    return stmt.on_conflict_do_nothing(index_elements=["update_id"]).returning(processed_updates.c.update_id)


async def claim_update(session: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record ``update_id`` as processed; False if it already was (a redelivery to skip)."""
    conn, dialect = await _connection(session)
    result = await conn.execute(_claim_update_stmt(dialect), {"update_id": update_id, "processed_at": now})
    return result.first() is not None


# --- people ------------------------------------------------------------------------------------


@cache
def _upsert_person_stmt(dialect: str) -> Any:
    stmt = _insert(dialect, people)
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
    ).returning(*_PERSON_COLUMNS)


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
    conn, dialect = await _connection(session)
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
    result = await conn.execute(select(*_PERSON_COLUMNS).where(people.c.telegram_user_id == user_id))
    row = result.first()
    return None if row is None else PersonRow(*row)


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


# --- conversations -----------------------------------------------------------------------------

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
    select(*_CONVERSATION_COLUMNS, *_PERSON_COLUMNS)
    .select_from(conversations.outerjoin(people, people.c.telegram_user_id == bindparam("user_id")))
    .where(conversations.c.chat_id == bindparam("chat_id"))
    .with_for_update(of=conversations)
)


async def load_chat(
    session: AsyncSession, chat_id: int, user_id: int
) -> tuple[ConversationRow | None, PersonRow | None]:
    """Load and row-lock a chat's conversation together with the person; (None, None) for a new chat."""
    conn = await session.connection()
    row = (await conn.execute(_LOAD_CHAT, {"chat_id": chat_id, "user_id": user_id})).first()
    if row is None:
        return None, None
    (chat, user, flow, step, data, history, updated_at, version, *person) = row
    conversation = ConversationRow(chat, user, flow, step, data, tuple(history), updated_at, version)
    return conversation, (PersonRow(*person) if person[0] is not None else None)


@cache
def _save_conversation_stmt(dialect: str) -> Any:
    stmt = _insert(dialect, conversations)
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
        },
    ).returning(conversations.c.version)


async def save_conversation(
    session: AsyncSession,
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
    conn, dialect = await _connection(session)
    result = await conn.execute(
        _save_conversation_stmt(dialect),
        {
            "chat_id": chat_id,
            "user_id": user_id,
            "flow": flow,
            "step": step,
            "data": dict(data),
            "history": list(history),
            "updated_at": now,
            "version": 1,
        },
    )
    return int(result.scalar_one())


async def delete_conversation(session: AsyncSession, chat_id: int) -> None:
    """Forget the chat's conversation (the flow ended or was cancelled)."""
    conn = await session.connection()
    await conn.execute(delete(conversations).where(conversations.c.chat_id == chat_id))


# --- references and initiatives ----------------------------------------------------------------


@cache
def _next_reference_stmt(dialect: str) -> Any:
    stmt = _insert(dialect, reference_counters)
    return stmt.on_conflict_do_update(
        index_elements=["municipality_code", "year"],
        set_={"last_seq": reference_counters.c.last_seq + 1},
    ).returning(reference_counters.c.last_seq)


def format_reference(prefix: str, year: int, seq: int) -> str:
    """Format a reference such as ``INI-2026-0042``; past 9999 the number simply gets longer."""
    return f"{prefix}-{year}-{seq:04d}"


async def next_reference(
    session: AsyncSession, *, municipality_code: str, prefix: str, year: int
) -> tuple[str, int]:
    """Hand out the next reference of a municipality in a year, atomically; returns (reference, seq)."""
    conn, dialect = await _connection(session)
    result = await conn.execute(
        _next_reference_stmt(dialect),
        {"municipality_code": municipality_code, "year": year, "last_seq": 1},
    )
    seq = int(result.scalar_one())
    return format_reference(prefix, year, seq), seq


async def create_initiative(
    session: AsyncSession, new: NewInitiative, now: datetime, *, year: int | None = None
) -> InitiativeRow:
    """Store a submitted initiative with a fresh reference, status "ingediend" and its first event.

    ``year`` defaults to the Dutch calendar year of ``now``.
    """
    if year is None:
        year = now.astimezone(REFERENCE_TIMEZONE).year
    reference, seq = await next_reference(
        session, municipality_code=new.municipality_code, prefix=new.prefix, year=year
    )
    conn = await session.connection()
    values = {
        field.name: getattr(new, field.name) for field in dataclasses.fields(new) if field.name != "prefix"
    }
    values.update(
        reference=reference,
        year=year,
        seq=seq,
        needs=list(new.needs),
        status=SUBMITTED_STATUS,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
    )
    row = (await conn.execute(initiatives.insert().returning(*_INITIATIVE_COLUMNS), values)).one()
    created = _initiative_row(row)
    await conn.execute(
        initiative_events.insert(),
        {
            "initiative_id": created.id,
            "at": now,
            "kind": "status",
            "status": SUBMITTED_STATUS,
            "actor_user_id": new.resident_user_id,
            "actor_role": "resident",
            "note": None,
            "department": None,
        },
    )
    return created


_NEEDS_INDEX = [field.name for field in dataclasses.fields(InitiativeRow)].index("needs")


def _initiative_row(row: Sequence[Any]) -> InitiativeRow:
    values = list(row)
    values[_NEEDS_INDEX] = tuple(values[_NEEDS_INDEX] or ())
    return InitiativeRow(*values)


async def load_initiative(session: AsyncSession, reference: str) -> InitiativeRow | None:
    """Return the initiative with this reference, if any."""
    conn = await session.connection()
    result = await conn.execute(select(*_INITIATIVE_COLUMNS).where(initiatives.c.reference == reference))
    row = result.first()
    return None if row is None else _initiative_row(row)


async def initiatives_of_resident(session: AsyncSession, user_id: int) -> list[InitiativeSummary]:
    """List the initiatives a resident submitted, newest first."""
    conn = await session.connection()
    result = await conn.execute(
        select(
            initiatives.c.id,
            initiatives.c.reference,
            initiatives.c.title,
            initiatives.c.status,
            initiatives.c.status_changed_at,
        )
        .where(initiatives.c.resident_user_id == user_id)
        .order_by(initiatives.c.created_at.desc(), initiatives.c.id.desc())
    )
    return [InitiativeSummary(*row) for row in result]


async def events_of_initiative(session: AsyncSession, initiative_id: int) -> list[EventRow]:
    """Return an initiative's timeline, oldest first."""
    conn = await session.connection()
    result = await conn.execute(
        select(*_EVENT_COLUMNS)
        .where(initiative_events.c.initiative_id == initiative_id)
        .order_by(initiative_events.c.at, initiative_events.c.id)
    )
    return [EventRow(*row) for row in result]


# --- outbox ------------------------------------------------------------------------------------

# Stays well under SQLite's limit of 32766 bound parameters per statement.
_SQLITE_ROWS_PER_INSERT = 500
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
    }


async def enqueue(
    session: AsyncSession,
    *,
    chat_id: int,
    method: str,
    payload: Mapping[str, Any],
    now: datetime,
    not_before: datetime | None = None,
) -> int:
    """Queue one Bot API call and return its id; the sweep may take it from ``not_before`` (default now)."""
    conn = await session.connection()
    result = await conn.execute(_ENQUEUE, _outbox_values(chat_id, method, payload, now, not_before))
    return int(result.scalar_one())


async def enqueue_many(
    session: AsyncSession,
    messages: Sequence[NewOutboxMessage],
    *,
    now: datetime,
    not_before: datetime | None = None,
) -> list[int]:
    """Queue several Bot API calls in one round trip; the ids come back in the order given."""
    if not messages:
        return []
    if len(messages) == 1:
        (one,) = messages
        return [
            await enqueue(
                session,
                chat_id=one.chat_id,
                method=one.method,
                payload=one.payload,
                now=now,
                not_before=not_before,
            )
        ]
    conn, dialect = await _connection(session)
    rows = [_outbox_values(m.chat_id, m.method, m.payload, now, not_before) for m in messages]
    if dialect == "sqlite":
        # SQLAlchemy would send one INSERT per row here. SQLite numbers the rows of one multi-row INSERT
        # in VALUES order (max rowid + 1 each), but RETURNING may list them in any order: so sort.
        ids: list[int] = []
        for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
            chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
            result = await conn.execute(outbox.insert().values(chunk).returning(outbox.c.id))
            ids.extend(sorted(int(row_id) for row_id in result.scalars()))
        return ids
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


_MARK_SENT = (
    update(outbox)
    .where(outbox.c.id == bindparam("outbox_id"))
    .values(
        status=OutboxStatus.SENT.value,
        sent_at=bindparam("sent_now", type_=outbox.c.sent_at.type),
        telegram_message_id=bindparam("message_id", type_=outbox.c.telegram_message_id.type),
    )
)


async def mark_sent(
    session: AsyncSession, ids_and_message_ids: Sequence[tuple[int, int | None]], now: datetime
) -> None:
    """Mark messages as sent, with the message id Telegram gave each (None for calls without one)."""
    if not ids_and_message_ids:
        return
    conn = await session.connection()
    await conn.execute(
        _MARK_SENT,
        [
            {"outbox_id": outbox_id, "sent_now": now, "message_id": message_id}
            for outbox_id, message_id in ids_and_message_ids
        ],
    )


async def mark_failed(session: AsyncSession, id: int, error: str) -> None:
    """Give up on a message for good (blocked user, bad request) and keep the reason."""
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == id)
        .values(status=OutboxStatus.FAILED.value, attempts=outbox.c.attempts + 1, last_error=error)
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


async def fail_chat(session: AsyncSession, chat_id: int, error: str) -> None:
    """Give up on every pending message to a chat (the person blocked the bot)."""
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id == chat_id, outbox.c.status == OutboxStatus.PENDING.value)
        .values(status=OutboxStatus.FAILED.value, last_error=error)
    )


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending message becomes due, or None when nothing waits."""
    conn = await session.connection()
    result = await conn.execute(
        select(func.min(outbox.c.not_before)).where(outbox.c.status == OutboxStatus.PENDING.value)
    )
    return result.scalar_one_or_none()
