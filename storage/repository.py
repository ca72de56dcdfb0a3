"""Queries the dispatcher, outbox and watchdog use; plain frozen dataclasses in and out.

Every function works inside the caller's transaction and never commits. The hot paths (one or more per
Telegram update) are single Core statements executed on the session's connection.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Double,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import (
    Conversation,
    CoordinatorDigest,
    Initiative,
    InitiativeEvent,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    ReferenceCounter,
    SendGate,
    Staff,
    StaffInvite,
    StallAlert,
)

people: Table = Person.__table__  # type: ignore[assignment]
conversations: Table = Conversation.__table__  # type: ignore[assignment]
reference_counters: Table = ReferenceCounter.__table__  # type: ignore[assignment]
initiatives: Table = Initiative.__table__  # type: ignore[assignment]
initiative_events: Table = InitiativeEvent.__table__  # type: ignore[assignment]
processed_updates: Table = ProcessedUpdate.__table__  # type: ignore[assignment]
outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
staff: Table = Staff.__table__  # type: ignore[assignment]
staff_invites: Table = StaffInvite.__table__  # type: ignore[assignment]
coordinator_digests: Table = CoordinatorDigest.__table__  # type: ignore[assignment]
stall_alerts: Table = StallAlert.__table__  # type: ignore[assignment]
send_gates: Table = SendGate.__table__  # type: ignore[assignment]

SUBMITTED_STATUS = "ingediend"
# The status in which a case waits on a department of the municipality (initiatives.department).
AT_MUNICIPALITY_STATUS = "bij_gemeente"
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


async def load_people(session: AsyncSession, user_ids: Collection[int]) -> dict[int, PersonRow]:
    """The people with these Telegram user ids who ever wrote to the bot, by user id."""
    if not user_ids:
        return {}
    conn = await session.connection()
    result = await conn.execute(
        select(*_PERSON_COLUMNS).where(people.c.telegram_user_id.in_(bindparam("ids", expanding=True))),
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
        # "Recheck me": the watchdog works out when the first step of the ladder is due.
        next_alert_at=now,
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


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending message becomes due, or None when nothing waits."""
    conn = await session.connection()
    result = await conn.execute(
        select(func.min(outbox.c.not_before)).where(outbox.c.status == OutboxStatus.PENDING.value)
    )
    return result.scalar_one_or_none()


# --- staff -------------------------------------------------------------------------------------


class StaffRole(StrEnum):
    """What a staff member does; the database refuses any other value."""

    BROKER = "broker"
    COORDINATOR = "coordinator"


@dataclass(frozen=True, slots=True)
class StaffRow:
    """A row of ``staff``; empty ``wijken`` or ``themes`` mean all of them."""

    id: int
    telegram_user_id: int
    name: str
    role: str
    wijken: tuple[str, ...]
    themes: tuple[str, ...]
    absent_until: date | None
    created_at: datetime
    removed_at: datetime | None

    @property
    def active(self) -> bool:
        """False once the person has been removed as staff."""
        return self.removed_at is None


_STAFF_COLUMNS = _columns(staff, StaffRow)


def _staff_row(row: Sequence[Any]) -> StaffRow:
    (staff_id, user_id, name, role, wijken, themes, absent_until, created_at, removed_at) = row
    return StaffRow(
        staff_id, user_id, name, role, tuple(wijken), tuple(themes), absent_until, created_at, removed_at
    )


def _codes(values: Collection[str]) -> list[str]:
    """Wijk or theme codes as stored: a JSON list in the given order, without repeats."""
    if isinstance(values, str):
        raise TypeError(f"expected a collection of codes, not the string {values!r}")
    return list(dict.fromkeys(str(value) for value in values))


@cache
def _add_staff_stmt(dialect: str) -> Any:
    stmt = _insert(dialect, staff)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["telegram_user_id"],
        set_={
            "name": excluded.name,
            "role": excluded.role,
            "wijken": excluded.wijken,
            "themes": excluded.themes,
            # Someone added again after removal starts present; an active person keeps a planned absence.
            "absent_until": case((staff.c.removed_at.is_(None), staff.c.absent_until)),
            "removed_at": None,
        },
    ).returning(*_STAFF_COLUMNS)


async def add_staff(
    session: AsyncSession,
    *,
    telegram_user_id: int,
    name: str,
    role: str,
    wijken: Collection[str],
    themes: Collection[str],
    now: datetime,
) -> StaffRow:
    """Make someone a staff member; a removed or existing one is reactivated with these details.

    A reactivated row keeps its id and ``created_at``, so the timeline keeps pointing at the same person.
    """
    conn, dialect = await _connection(session)
    result = await conn.execute(
        _add_staff_stmt(dialect),
        {
            "telegram_user_id": telegram_user_id,
            "name": name,
            "role": StaffRole(role).value,
            "wijken": _codes(wijken),
            "themes": _codes(themes),
            "absent_until": None,
            "created_at": now,
            "removed_at": None,
        },
    )
    return _staff_row(result.one())


_LOAD_ACTIVE_STAFF = select(*_STAFF_COLUMNS).where(
    staff.c.telegram_user_id == bindparam("user_id"), staff.c.removed_at.is_(None)
)


async def load_staff(session: AsyncSession, telegram_user_id: int) -> StaffRow | None:
    """Return the active staff member with this Telegram user id, or None (also for removed staff)."""
    conn = await session.connection()
    row = (await conn.execute(_LOAD_ACTIVE_STAFF, {"user_id": telegram_user_id})).first()
    return None if row is None else _staff_row(row)


async def staff_by_id(session: AsyncSession, staff_id: int) -> StaffRow | None:
    """Return the staff member with this id, removed or not (see ``StaffRow.active``)."""
    conn = await session.connection()
    row = (await conn.execute(select(*_STAFF_COLUMNS).where(staff.c.id == staff_id))).first()
    return None if row is None else _staff_row(row)


async def list_staff(session: AsyncSession, *, role: str | None = None) -> list[StaffRow]:
    """List the active staff, ordered by role and name; only one role when ``role`` is given."""
    stmt = select(*_STAFF_COLUMNS).where(staff.c.removed_at.is_(None))
    if role is not None:
        stmt = stmt.where(staff.c.role == StaffRole(role).value)
    conn = await session.connection()
    result = await conn.execute(stmt.order_by(staff.c.role, staff.c.name, staff.c.id))
    return [_staff_row(row) for row in result]


async def remove_staff(
    session: AsyncSession,
    *,
    staff_id: int | None = None,
    telegram_user_id: int | None = None,
    now: datetime,
) -> bool:
    """Remove an active staff member, found by id or by Telegram user id; False if there was none.

    The row stays (soft delete), so their timeline entries keep their name; their open cases are left to
    the caller (see ``hand_back_cases``).
    """
    if (staff_id is None) == (telegram_user_id is None):
        raise TypeError("give exactly one of staff_id and telegram_user_id")
    key = staff.c.id == staff_id if staff_id is not None else staff.c.telegram_user_id == telegram_user_id
    conn = await session.connection()
    result = await conn.execute(
        update(staff).where(key, staff.c.removed_at.is_(None)).values(removed_at=now).returning(staff.c.id)
    )
    return result.first() is not None


async def set_absent(session: AsyncSession, staff_id: int, until: date | None) -> None:
    """Record the last day of someone's absence; None means they are present again."""
    conn = await session.connection()
    await conn.execute(update(staff).where(staff.c.id == staff_id).values(absent_until=until))


# --- staff invites -----------------------------------------------------------------------------

INVITE_VALIDITY = timedelta(days=7)
# secrets.token_urlsafe(24) gives 32 characters from A-Z a-z 0-9 _ -, as a deep-link payload allows.
_INVITE_BYTES = 24


@dataclass(frozen=True, slots=True)
class InviteRow:
    """A row of ``staff_invites``: who the code makes staff member, and whether it was used."""

    code: str
    role: str
    name: str
    wijken: tuple[str, ...]
    themes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_user_id: int | None


_INVITE_COLUMNS = _columns(staff_invites, InviteRow)


def _invite_row(row: Sequence[Any]) -> InviteRow:
    (code, role, name, wijken, themes, created_at, expires_at, used_at, used_by) = row
    return InviteRow(code, role, name, tuple(wijken), tuple(themes), created_at, expires_at, used_at, used_by)


async def create_invite(
    session: AsyncSession,
    *,
    role: str,
    name: str,
    wijken: Collection[str],
    themes: Collection[str],
    now: datetime,
    valid: timedelta = INVITE_VALIDITY,
) -> InviteRow:
    """Store a new one-time invite with a random code that can be redeemed until ``now + valid``."""
    if valid <= timedelta(0):
        raise ValueError(f"an invite must be valid for some time, not {valid}")
    conn = await session.connection()
    result = await conn.execute(
        staff_invites.insert().returning(*_INVITE_COLUMNS),
        {
            "code": secrets.token_urlsafe(_INVITE_BYTES),
            "role": StaffRole(role).value,
            "name": name,
            "wijken": _codes(wijken),
            "themes": _codes(themes),
            "created_at": now,
            "expires_at": now + valid,
            "used_at": None,
            "used_by_user_id": None,
        },
    )
    return _invite_row(result.one())


async def load_invite(session: AsyncSession, code: str) -> InviteRow | None:
    """Return the invite with this code, used or expired or not, so the bot can say which."""
    conn = await session.connection()
    row = (await conn.execute(select(*_INVITE_COLUMNS).where(staff_invites.c.code == code))).first()
    return None if row is None else _invite_row(row)


# The WHERE clause makes redeeming atomic: on PostgreSQL a second transaction waits for the first's row
# lock, then re-checks used_at and updates nothing; SQLite's BEGIN IMMEDIATE runs them one after another.
_REDEEM_INVITE = (
    update(staff_invites)
    .where(
        staff_invites.c.code == bindparam("invite_code"),
        staff_invites.c.used_at.is_(None),
        staff_invites.c.expires_at > bindparam("now"),
    )
    .values(
        used_at=bindparam("used_now", type_=staff_invites.c.used_at.type),
        used_by_user_id=bindparam("user_id", type_=staff_invites.c.used_by_user_id.type),
    )
    .returning(staff_invites.c.role, staff_invites.c.name, staff_invites.c.wijken, staff_invites.c.themes)
)


async def redeem_invite(
    session: AsyncSession, code: str, *, telegram_user_id: int, now: datetime
) -> StaffRow | None:
    """Use an invite: the person becomes staff as the invite says; None if unknown, used or expired."""
    conn = await session.connection()
    result = await conn.execute(
        _REDEEM_INVITE, {"invite_code": code, "now": now, "used_now": now, "user_id": telegram_user_id}
    )
    row = result.first()
    if row is None:
        return None
    role, name, wijken, themes = row
    return await add_staff(
        session,
        telegram_user_id=telegram_user_id,
        name=name,
        role=role,
        wijken=wijken,
        themes=themes,
        now=now,
    )


# --- routing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerLoadRow:
    """An active broker with how busy they are: open cases and when they last got one."""

    staff_id: int
    name: str
    wijken: tuple[str, ...]
    themes: tuple[str, ...]
    open_cases: int
    last_assigned_at: datetime | None
    absent_until: date | None
    reachable: bool  # the bot can write to them: they sent it something and did not block it since


# A staff member the bot can write to: Telegram lets a bot message only people who opened it (any update
# makes a ``people`` row), and a 403 since then sets ``unreachable_at`` until they write again.
_REACHABLE = (
    exists()
    .where(people.c.telegram_user_id == staff.c.telegram_user_id, people.c.unreachable_at.is_(None))
    .correlate(staff)
)

# One row per active broker. The open cases are counted in the aggregate rather than in the join, so
# last_assigned_at covers all of a broker's cases: a broker with only finished cases still got one lately.
_BROKER_LOADS = (
    select(
        staff.c.id,
        staff.c.name,
        staff.c.wijken,
        staff.c.themes,
        func.count(
            case((initiatives.c.status.in_(bindparam("open_statuses", expanding=True)), initiatives.c.id))
        ),
        func.max(initiatives.c.assigned_at),
        staff.c.absent_until,
        _REACHABLE,
    )
    .select_from(staff.outerjoin(initiatives, initiatives.c.broker_id == staff.c.id))
    .where(staff.c.role == StaffRole.BROKER.value, staff.c.removed_at.is_(None))
    # Grouping by the primary key is enough: the other staff columns depend on it.
    .group_by(staff.c.id)
    .order_by(staff.c.name, staff.c.id)
)


def _statuses(statuses: Collection[str]) -> list[str]:
    if isinstance(statuses, str):
        raise TypeError(f"expected a collection of statuses, not the string {statuses!r}")
    return [str(status) for status in statuses]


async def broker_loads(session: AsyncSession, *, open_statuses: Collection[str]) -> list[BrokerLoadRow]:
    """Every active broker with their number of cases in ``open_statuses`` and their last assignment."""
    conn = await session.connection()
    result = await conn.execute(_BROKER_LOADS, {"open_statuses": _statuses(open_statuses)})
    return [
        BrokerLoadRow(
            staff_id,
            name,
            tuple(wijken),
            tuple(themes),
            int(count),
            last_assigned_at,
            absent_until,
            bool(reachable),
        )
        for (staff_id, name, wijken, themes, count, last_assigned_at, absent_until, reachable) in result
    ]


async def is_reachable(session: AsyncSession, telegram_user_id: int) -> bool:
    """Whether the bot can write to this person: they opened it once and have not blocked it since."""
    conn = await session.connection()
    found = await conn.execute(
        select(people.c.telegram_user_id).where(
            people.c.telegram_user_id == telegram_user_id, people.c.unreachable_at.is_(None)
        )
    )
    return found.first() is not None


async def all_coordinators(session: AsyncSession) -> list[StaffRow]:
    """The active coordinators, ordered by name."""
    return await list_staff(session, role=StaffRole.COORDINATOR)


async def coordinators_for_wijk(session: AsyncSession, wijk_code: str | None) -> list[StaffRow]:
    """The coordinators who cover ``wijk_code`` (it is in their wijken, or their wijken are empty).

    All coordinators when the wijk is None or nobody covers it, so an alert always reaches someone.
    """
    return covering_coordinators(await all_coordinators(session), wijk_code)


def covering_coordinators(coordinators: Sequence[StaffRow], wijk_code: str | None) -> list[StaffRow]:
    """Those of ``coordinators`` who cover ``wijk_code``; all when the wijk is None or nobody does."""
    if wijk_code is None:
        return list(coordinators)
    covering = [c for c in coordinators if not c.wijken or wijk_code in c.wijken]
    return covering or list(coordinators)


# --- cases: assignment, status and the timeline ------------------------------------------------


class TimelineKind(StrEnum):
    """Kinds of ``initiative_events`` rows."""

    STATUS = "status"
    ASSIGNED = "assigned"
    HANDOVER = "handover"
    # The broker dropped out (removed, or the bot cannot reach them): the case waits for a new one.
    UNASSIGNED = "unassigned"
    # Internal: between staff, never shown to the resident.
    NOTE = "note"
    MESSAGE_TO_RESIDENT = "message_to_resident"
    MESSAGE_FROM_RESIDENT = "message_from_resident"


_INTERNAL_KINDS = frozenset({TimelineKind.NOTE.value, TimelineKind.UNASSIGNED.value})


@dataclass(frozen=True, slots=True)
class CaseRow(InitiativeRow):
    """An initiative as staff handle it: the row of ``initiatives`` with its broker and department."""

    broker_id: int | None
    assigned_at: datetime | None
    last_broker_action_at: datetime | None
    department: str | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One entry on an initiative's timeline, with the names of the staff involved."""

    id: int
    initiative_id: int
    at: datetime
    kind: str
    status: str | None
    actor_role: str
    actor_user_id: int | None
    staff_id: int | None
    staff_name: str | None
    to_staff_id: int | None
    to_staff_name: str | None
    note: str | None
    department: str | None
    visible_to_resident: bool


_CASE_COLUMNS = _columns(initiatives, CaseRow)


def _case_row(row: Sequence[Any]) -> CaseRow:
    values = list(row)
    values[_NEEDS_INDEX] = tuple(values[_NEEDS_INDEX] or ())
    return CaseRow(*values)


_LOAD_CASE = select(*_CASE_COLUMNS).where(initiatives.c.reference == bindparam("reference"))
_LOAD_CASE_LOCKED = _LOAD_CASE.with_for_update()
_LOAD_CASE_BY_ID = select(*_CASE_COLUMNS).where(initiatives.c.id == bindparam("initiative_id"))
_LOAD_CASE_BY_ID_LOCKED = _LOAD_CASE_BY_ID.with_for_update()


async def load_case(session: AsyncSession, reference: str, *, lock: bool = False) -> CaseRow | None:
    """Return the initiative with this reference as a case; ``lock`` row-locks it on PostgreSQL."""
    conn = await session.connection()
    stmt = _LOAD_CASE_LOCKED if lock else _LOAD_CASE
    row = (await conn.execute(stmt, {"reference": reference})).first()
    return None if row is None else _case_row(row)


async def load_case_by_id(session: AsyncSession, id: int, *, lock: bool = False) -> CaseRow | None:
    """Return the initiative with this id as a case; ``lock`` row-locks it on PostgreSQL."""
    conn = await session.connection()
    stmt = _LOAD_CASE_BY_ID_LOCKED if lock else _LOAD_CASE_BY_ID
    row = (await conn.execute(stmt, {"initiative_id": id})).first()
    return None if row is None else _case_row(row)


def _staff_role_of(staff_id: int) -> Any:
    """The role of a staff member as a scalar subquery, so an event needs no extra round trip."""
    return select(staff.c.role).where(staff.c.id == staff_id).scalar_subquery()


def _staff_user_of(staff_id: int) -> Any:
    return select(staff.c.telegram_user_id).where(staff.c.id == staff_id).scalar_subquery()


async def _update_initiative(conn: AsyncConnection, initiative_id: int, values: Mapping[str, Any]) -> None:
    result = await conn.execute(
        update(initiatives)
        .where(initiatives.c.id == initiative_id)
        .values(**values)
        .returning(initiatives.c.id)
    )
    if result.first() is None:
        raise LookupError(f"there is no initiative with id {initiative_id}")


async def assign(
    session: AsyncSession,
    initiative_id: int,
    *,
    broker_id: int,
    by_staff_id: int | None,
    note: str | None,
    kind: str = TimelineKind.ASSIGNED,
    now: datetime,
    visible_to_resident: bool = True,
) -> None:
    """Give the case to ``broker_id`` and record it on the timeline; the status is left to the caller.

    ``by_staff_id`` None means the system (routing) assigned it; otherwise the event carries that staff
    member's role and Telegram id. ``kind`` is "assigned" or "handover".
    """
    conn = await session.connection()
    await _update_initiative(
        conn,
        initiative_id,
        {"broker_id": broker_id, "assigned_at": now, "updated_at": now, "next_alert_at": now},
    )
    if by_staff_id is None:
        actor_role: Any = "system"
        actor_user_id: Any = None
    else:
        actor_role = func.coalesce(_staff_role_of(by_staff_id), "system")
        actor_user_id = _staff_user_of(by_staff_id)
    await conn.execute(
        initiative_events.insert().values(
            initiative_id=initiative_id,
            at=now,
            kind=str(kind),
            status=None,
            actor_user_id=actor_user_id,
            actor_role=actor_role,
            note=note,
            department=None,
            staff_id=by_staff_id,
            to_staff_id=broker_id,
            visible_to_resident=visible_to_resident,
        )
    )


async def hand_back_cases(
    session: AsyncSession, broker_id: int, *, open_statuses: Collection[str], reason: str, now: datetime
) -> list[CaseRow]:
    """Take the broker's open cases off them, so they count as unassigned until someone is assigned, and
    note ``reason`` on each internal timeline; returns the cases as they were, oldest first."""
    conn = await session.connection()
    result = await conn.execute(
        _CASES_OF_BROKER.order_by(None).order_by(initiatives.c.id).with_for_update(),
        {"staff_id": broker_id, "open_statuses": _statuses(open_statuses)},
    )
    cases = [_case_row(row) for row in result]
    if not cases:
        return []
    await conn.execute(
        update(initiatives)
        .where(initiatives.c.id.in_([c.id for c in cases]))
        # "Recheck me": without a broker the watchdog's reminders go to the coordinators.
        .values(broker_id=None, updated_at=now, next_alert_at=now)
    )
    await conn.execute(
        initiative_events.insert(),
        [
            {
                "initiative_id": c.id,
                "at": now,
                "kind": TimelineKind.UNASSIGNED.value,
                "status": None,
                "actor_user_id": None,
                "actor_role": "system",
                "note": reason,
                "department": None,
                "staff_id": broker_id,
                "to_staff_id": None,
                "visible_to_resident": False,
            }
            for c in cases
        ],
    )
    return cases


async def change_status(
    session: AsyncSession,
    initiative_id: int,
    *,
    status: str,
    now: datetime,
    actor_role: str,
    actor_user_id: int | None,
    staff_id: int | None,
    note: str | None,
    department: str | None,
) -> None:
    """Move the case to ``status`` and record it on the timeline; whether that is allowed is the caller's.

    ``department`` is kept only for bij_gemeente and cleared otherwise. A change made by a broker
    (``staff_id`` of a broker) counts as their last action on the case.
    """
    status = str(status)
    department = department if status == AT_MUNICIPALITY_STATUS else None
    values: dict[str, Any] = {
        "status": status,
        "status_changed_at": now,
        "updated_at": now,
        "department": department,
        "next_alert_at": now,
    }
    if staff_id is not None:
        by_broker = exists().where(staff.c.id == staff_id, staff.c.role == StaffRole.BROKER.value)
        values["last_broker_action_at"] = case(
            (by_broker, literal(now, initiatives.c.last_broker_action_at.type)),
            else_=initiatives.c.last_broker_action_at,
        )
    conn = await session.connection()
    await _update_initiative(conn, initiative_id, values)
    await conn.execute(
        initiative_events.insert(),
        {
            "initiative_id": initiative_id,
            "at": now,
            "kind": TimelineKind.STATUS.value,
            "status": status,
            "actor_user_id": actor_user_id,
            "actor_role": str(actor_role),
            "note": note,
            "department": department,
            "staff_id": staff_id,
            "to_staff_id": None,
            "visible_to_resident": True,
        },
    )


_ADD_EVENT = initiative_events.insert().returning(initiative_events.c.id)


async def add_event(
    session: AsyncSession,
    initiative_id: int,
    *,
    kind: str,
    now: datetime,
    actor_role: str,
    actor_user_id: int | None = None,
    staff_id: int | None = None,
    note: str | None = None,
    visible_to_resident: bool | None = None,
    touch_broker_action: bool = False,
) -> int:
    """Add an entry (a note, a message) to the timeline and return its id.

    ``visible_to_resident`` None means: hidden for internal kinds ("note"), visible for the others.
    ``touch_broker_action`` records ``now`` as the broker's last action on the case.
    """
    kind = str(kind)
    if visible_to_resident is None:
        visible_to_resident = kind not in _INTERNAL_KINDS
    conn = await session.connection()
    if touch_broker_action:
        await _update_initiative(
            conn, initiative_id, {"last_broker_action_at": now, "updated_at": now, "next_alert_at": now}
        )
    result = await conn.execute(
        _ADD_EVENT,
        {
            "initiative_id": initiative_id,
            "at": now,
            "kind": kind,
            "status": None,
            "actor_user_id": actor_user_id,
            "actor_role": str(actor_role),
            "note": note,
            "department": None,
            "staff_id": staff_id,
            "to_staff_id": None,
            "visible_to_resident": visible_to_resident,
        },
    )
    return int(result.scalar_one())


_ACTOR = staff.alias("actor")
_TARGET = staff.alias("target")
_TIMELINE = (
    select(
        initiative_events.c.id,
        initiative_events.c.initiative_id,
        initiative_events.c.at,
        initiative_events.c.kind,
        initiative_events.c.status,
        initiative_events.c.actor_role,
        initiative_events.c.actor_user_id,
        initiative_events.c.staff_id,
        _ACTOR.c.name,
        initiative_events.c.to_staff_id,
        _TARGET.c.name,
        initiative_events.c.note,
        initiative_events.c.department,
        initiative_events.c.visible_to_resident,
    )
    .select_from(
        initiative_events.outerjoin(_ACTOR, _ACTOR.c.id == initiative_events.c.staff_id).outerjoin(
            _TARGET, _TARGET.c.id == initiative_events.c.to_staff_id
        )
    )
    .where(initiative_events.c.initiative_id == bindparam("initiative_id"))
    .order_by(initiative_events.c.at, initiative_events.c.id)
)
_RESIDENT_TIMELINE = _TIMELINE.where(initiative_events.c.visible_to_resident)


async def timeline(session: AsyncSession, initiative_id: int, *, resident_view: bool) -> list[TimelineEntry]:
    """An initiative's timeline, oldest first; ``resident_view`` leaves out internal entries."""
    conn = await session.connection()
    stmt = _RESIDENT_TIMELINE if resident_view else _TIMELINE
    result = await conn.execute(stmt, {"initiative_id": initiative_id})
    return [TimelineEntry(*row) for row in result]


_CASES_OF_BROKER = (
    select(*_CASE_COLUMNS)
    .where(
        initiatives.c.broker_id == bindparam("staff_id"),
        initiatives.c.status.in_(bindparam("open_statuses", expanding=True)),
    )
    .order_by(initiatives.c.status_changed_at, initiatives.c.id)
)
_UNASSIGNED_CASES = (
    select(*_CASE_COLUMNS)
    .where(
        initiatives.c.broker_id.is_(None),
        initiatives.c.status.in_(bindparam("open_statuses", expanding=True)),
    )
    .order_by(initiatives.c.created_at, initiatives.c.id)
)


async def cases_of_broker(
    session: AsyncSession, staff_id: int, *, open_statuses: Collection[str]
) -> list[CaseRow]:
    """The broker's cases in ``open_statuses``, longest in their status first."""
    conn = await session.connection()
    result = await conn.execute(
        _CASES_OF_BROKER, {"staff_id": staff_id, "open_statuses": _statuses(open_statuses)}
    )
    return [_case_row(row) for row in result]


async def unassigned_cases(session: AsyncSession, *, open_statuses: Collection[str]) -> list[CaseRow]:
    """Cases in ``open_statuses`` without a broker, oldest first."""
    conn = await session.connection()
    result = await conn.execute(_UNASSIGNED_CASES, {"open_statuses": _statuses(open_statuses)})
    return [_case_row(row) for row in result]


# --- stall alerts: the watchdog's queue and the escalation steps that happened ------------------

# (track, clock started at, level): the same shape as flows.stalls.AlertKey.
AlertKey = tuple[str, datetime, int]


@dataclass(frozen=True, slots=True)
class DueCaseRow(CaseRow):
    """A case whose ``next_alert_at`` has come: the watchdog should look at it."""

    next_alert_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewStallAlert:
    """A step of the escalation ladder to record."""

    initiative_id: int
    track: str
    started_at: datetime
    level: int
    skipped: bool


_DUE_CASE_COLUMNS = _columns(initiatives, DueCaseRow)
# Served by ix_initiatives_next_alert_at (next_alert_at, id): a range scan over the due rows only, in
# order, so a batch reads no more than its own rows; the row comparison pages on from the last batch.
_DUE_CASES = (
    select(*_DUE_CASE_COLUMNS)
    .where(initiatives.c.next_alert_at <= bindparam("now"))
    .order_by(initiatives.c.next_alert_at, initiatives.c.id)
    .limit(bindparam("limit"))
)
_DUE_CASES_AFTER = _DUE_CASES.where(
    tuple_(initiatives.c.next_alert_at, initiatives.c.id)
    > tuple_(
        bindparam("after_at", type_=initiatives.c.next_alert_at.type),
        bindparam("after_id", type_=initiatives.c.id.type),
    )
)
# SKIP LOCKED: several watchdogs on PostgreSQL take different cases, and a case a user is changing right
# now waits for the next sweep. SQLite leaves the clause out (BEGIN IMMEDIATE serialises writers).
_DUE_CASES_LOCKED = _DUE_CASES.with_for_update(skip_locked=True)
_DUE_CASES_AFTER_LOCKED = _DUE_CASES_AFTER.with_for_update(skip_locked=True)


def _due_case_row(row: Sequence[Any]) -> DueCaseRow:
    values = list(row)
    values[_NEEDS_INDEX] = tuple(values[_NEEDS_INDEX] or ())
    return DueCaseRow(*values)


def due_cases_statement(*, after: bool = False, lock: bool = True) -> Any:
    """The statement behind :func:`due_cases`, for EXPLAIN in tests and the benchmark."""
    if after:
        return _DUE_CASES_AFTER_LOCKED if lock else _DUE_CASES_AFTER
    return _DUE_CASES_LOCKED if lock else _DUE_CASES


async def due_cases(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
    lock: bool = True,
) -> list[DueCaseRow]:
    """Up to ``limit`` cases with ``next_alert_at <= now``, earliest first, row-locked (SKIP LOCKED).

    ``after`` is the (next_alert_at, id) of the last case of the previous batch, to page on.
    """
    conn = await session.connection()
    params: dict[str, Any] = {"now": now, "limit": limit}
    if after is not None:
        params.update(after_at=after[0], after_id=after[1])
    result = await conn.execute(due_cases_statement(after=after is not None, lock=lock), params)
    return [_due_case_row(row) for row in result]


_SENT_ALERTS = select(
    stall_alerts.c.initiative_id, stall_alerts.c.track, stall_alerts.c.clock_started_at, stall_alerts.c.level
).where(stall_alerts.c.initiative_id.in_(bindparam("ids", expanding=True)))


async def sent_alerts(session: AsyncSession, initiative_ids: Collection[int]) -> dict[int, set[AlertKey]]:
    """The recorded ladder steps (sent or skipped) of these initiatives; every id given is a key."""
    out: dict[int, set[AlertKey]] = {initiative_id: set() for initiative_id in initiative_ids}
    if not out:
        return out
    conn = await session.connection()
    result = await conn.execute(_SENT_ALERTS, {"ids": sorted(out)})
    for initiative_id, track, started_at, level in result:
        out[initiative_id].add((track, started_at, int(level)))
    return out


@cache
def _record_alert_stmt(dialect: str) -> Any:
    stmt = _insert(dialect, stall_alerts)
    return stmt.on_conflict_do_nothing(
        index_elements=["initiative_id", "track", "clock_started_at", "level"]
    ).returning(
        stall_alerts.c.initiative_id,
        stall_alerts.c.track,
        stall_alerts.c.clock_started_at,
        stall_alerts.c.level,
    )


def _alert_values(alert: NewStallAlert, now: datetime) -> dict[str, Any]:
    return {
        "initiative_id": alert.initiative_id,
        "track": str(alert.track),
        "clock_started_at": alert.started_at,
        "level": int(alert.level),
        "skipped": alert.skipped,
        "created_at": now,
    }


async def record_alert(
    session: AsyncSession,
    *,
    initiative_id: int,
    track: str,
    started_at: datetime,
    level: int,
    skipped: bool,
    now: datetime,
) -> bool:
    """Record one ladder step; True only for the transaction that inserted it (the one that sends it).

    On PostgreSQL a second transaction inserting the same step waits for the first and then gets False.
    """
    recorded = await record_alerts(
        session, [NewStallAlert(initiative_id, track, started_at, level, skipped)], now=now
    )
    return bool(recorded)


async def record_alerts(
    session: AsyncSession, alerts: Sequence[NewStallAlert], *, now: datetime
) -> set[tuple[int, AlertKey]]:
    """Record several ladder steps in one round trip; returns (initiative id, key) of those inserted here."""
    if not alerts:
        return set()
    conn, dialect = await _connection(session)
    result = await conn.execute(_record_alert_stmt(dialect), [_alert_values(a, now) for a in alerts])
    return {
        (initiative_id, (track, started_at, int(level))) for initiative_id, track, started_at, level in result
    }


_SET_NEXT_ALERT = (
    update(initiatives)
    .where(initiatives.c.id == bindparam("initiative_id"))
    .values(next_alert_at=bindparam("at", type_=initiatives.c.next_alert_at.type))
)


async def set_next_alert(session: AsyncSession, initiative_id: int, at: datetime | None) -> None:
    """When the watchdog should look at the case again; None when no clock runs (a final status)."""
    await set_next_alerts(session, [(initiative_id, at)])


async def set_next_alerts(session: AsyncSession, moments: Sequence[tuple[int, datetime | None]]) -> None:
    """:func:`set_next_alert` for several cases in one round trip."""
    if not moments:
        return
    conn = await session.connection()
    await conn.execute(_SET_NEXT_ALERT, [{"initiative_id": i, "at": at} for i, at in moments])


# --- coordinators' weekly digest ---------------------------------------------------------------


async def claim_digest(session: AsyncSession, *, staff_id: int, week_start: date, now: datetime) -> bool:
    """Record that this coordinator gets this week's digest; False when someone already sent it."""
    conn, dialect = await _connection(session)
    stmt = (
        _insert(dialect, coordinator_digests)
        .values(staff_id=staff_id, week_start=week_start, sent_at=now)
        .on_conflict_do_nothing(index_elements=["staff_id", "week_start"])
        .returning(coordinator_digests.c.staff_id)
    )
    return (await conn.execute(stmt)).first() is not None


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


# --- send gates (Telegram's budget and the per-chat sender, shared by all processes) -------------------


def chat_gate_key(chat_id: int) -> str:
    return f"chat:{chat_id}"


GLOBAL_GATE_KEY = "global"


async def claim_chat(
    session: AsyncSession, chat_id: int, *, holder: str, now: float, until: float
) -> float | None:
    """Make ``holder`` the only sender to a chat until ``until`` (Unix seconds), if nobody else is;
    return the chat's budget time (``tat``), or None when another holder's claim still runs."""
    conn, dialect = await _connection(session)
    stmt = _insert(dialect, send_gates).values(
        key=chat_gate_key(chat_id), tat=0.0, holder=holder, held_until=until
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[send_gates.c.key],
        set_={"holder": holder, "held_until": until},
        where=or_(
            send_gates.c.holder.is_(None),
            send_gates.c.holder == holder,
            send_gates.c.held_until < now,
        ),
    ).returning(send_gates.c.tat)
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return None if value is None else float(value)


async def release_chat(session: AsyncSession, chat_id: int, *, holder: str, tat: float) -> bool:
    """Give up the claim on a chat and store its budget time; False if the claim had been taken over."""
    conn = await session.connection()
    result = await conn.execute(
        update(send_gates)
        .where(send_gates.c.key == chat_gate_key(chat_id), send_gates.c.holder == holder)
        .values(holder=None, held_until=None, tat=tat)
    )
    return bool(result.rowcount)


async def extend_claim(session: AsyncSession, chat_id: int, *, holder: str, until: float) -> bool:
    """Keep the claim on a chat until ``until``; False if it had run out and someone else took it."""
    conn = await session.connection()
    result = await conn.execute(
        update(send_gates)
        .where(send_gates.c.key == chat_gate_key(chat_id), send_gates.c.holder == holder)
        .values(held_until=until)
    )
    return bool(result.rowcount)


async def take_budget(
    session: AsyncSession, key: str, *, now: float, interval: float, tolerance: float, token: str
) -> float:
    """Take a slot of a shared budget at ``now`` if it has one (GCRA, one statement): 0.0 when taken,
    else how many seconds until it has one. Nothing is reserved ahead: a slot is used when taken.

    ``token`` (unique per call) marks the row when this call took the slot; that is how it knows.
    """
    conn, dialect = await _connection(session)
    at = literal(now, Double)
    conforms = send_gates.c.tat - literal(tolerance, Double) <= at
    start = case((send_gates.c.tat > at, send_gates.c.tat), else_=at)
    stmt = _insert(dialect, send_gates).values(key=key, tat=now + interval, holder=token)
    stmt = stmt.on_conflict_do_update(
        index_elements=[send_gates.c.key],
        set_={
            "tat": case((conforms, start + literal(interval, Double)), else_=send_gates.c.tat),
            "holder": case((conforms, literal(token)), else_=send_gates.c.holder),
        },
    ).returning(send_gates.c.tat, send_gates.c.holder)
    tat, holder = (await conn.execute(stmt)).one()
    if holder == token:
        return 0.0
    return max(float(tat) - tolerance - now, 0.001)  # never 0.0: that would mean "taken"
