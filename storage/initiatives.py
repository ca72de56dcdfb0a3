"""Initiatives and their reference numbers, the cases staff handle (assignment, status) and the timeline."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, exists, func, literal, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage import sql
from storage.staff import StaffRole
from storage.tables import (
    initiative_events,
    initiatives,
    reference_counters,
    staff,
    status_spells,
    working_day_ordinals,
)

SUBMITTED_STATUS = "ingediend"
# The status in which a case waits on a department of the municipality (initiatives.department).
AT_MUNICIPALITY_STATUS = "bij_gemeente"
# Reference numbers follow the Dutch calendar year, also for a submission at 00:30 on 1 January.
REFERENCE_TIMEZONE = ZoneInfo("Europe/Amsterdam")


# Columns of initiatives that later revisions added: publish_consent (0010); the amount range and the
# voice messages (0014). Left out of an insert while empty, so code at older revisions can still insert.
LATER_COLUMNS = ("publish_consent", "amount_max_cents", "idea_voice_file_id", "own_voice_file_id")


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
    # The resident agreed that the description may be published without their name; None: not asked.
    publish_consent: bool | None = None
    amount_max_cents: int | None = None  # the top of a range ("800 à 1000 euro")
    idea_voice_file_id: str | None = None  # voice notes sent as the idea, or as what they do themselves
    own_voice_file_id: str | None = None


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


_INITIATIVE_COLUMNS = sql.columns(initiatives, InitiativeRow)
_EVENT_COLUMNS = sql.columns(initiative_events, EventRow)


# --- references and initiatives ----------------------------------------------------------------


@cache
def _next_reference_stmt(dialect: str) -> Any:
    stmt = sql.insert(dialect, reference_counters)
    return stmt.on_conflict_do_update(
        index_elements=["municipality_code", "year"],
        set_={"last_seq": reference_counters.c.last_seq + 1},
    ).returning(reference_counters.c.last_seq)


def format_reference(prefix: str, year: int, seq: int) -> str:
    """Format a reference such as ``INI-2026-0042``; past 9999 the number simply gets longer."""
    return f"{prefix}-{year}-{seq:04d}"


def reference_sequence_name(municipality_code: str, year: int) -> str:
    """The PostgreSQL sequence of a municipality's references in a year, e.g.
    ``reference_seq_2026_gm0150_1a2b3c4d``: readable, and unique per code through the code's hash."""
    readable = re.sub(r"[^a-z0-9]+", "", municipality_code.lower())[:20]
    digest = hashlib.sha256(municipality_code.encode()).hexdigest()[:8]
    return f"{REFERENCE_SEQUENCE_PREFIX}{year}_{readable}_{digest}"


REFERENCE_SEQUENCE_PREFIX = "reference_seq_"
# NULL when the sequence does not exist yet (to_regclass), and nextval(NULL) is NULL: one round trip.
_NEXT_FROM_SEQUENCE = text("SELECT nextval(to_regclass(CAST(:name AS text)))")
_REFERENCE_START = select(
    func.greatest(
        select(func.coalesce(func.max(reference_counters.c.last_seq), 0))
        .where(
            reference_counters.c.municipality_code == bindparam("municipality_code"),
            reference_counters.c.year == bindparam("year"),
        )
        .scalar_subquery(),
        select(func.coalesce(func.max(initiatives.c.seq), 0))
        .where(
            initiatives.c.municipality_code == bindparam("municipality_code"),
            initiatives.c.year == bindparam("year"),
        )
        .scalar_subquery(),
    )
    + 1
)
# A concurrent first submission of the year creating the same sequence: its catalog row is a duplicate
# (unique_violation) or, once committed, the relation exists (duplicate_table).
_SEQUENCE_CREATED_MEANWHILE = frozenset({"23505", "42P07"})


async def next_reference(
    session: AsyncSession, *, municipality_code: str, prefix: str, year: int
) -> tuple[str, int]:
    """Hand out the next reference of a municipality in a year, atomically; returns (reference, seq).

    SQLite counts in ``reference_counters`` (one writer at a time anyway). PostgreSQL takes the number
    from a sequence per municipality and year, so concurrent submissions never wait for each other's
    commit. A sequence is not transactional: a submission that rolls back after this leaves its number
    unused (a gap), never a number handed out twice.
    """
    conn, dialect = await sql.connection(session)
    if dialect == "postgresql":
        seq = await _next_from_sequence(session, municipality_code, year)
    else:
        result = await conn.execute(
            _next_reference_stmt(dialect),
            {"municipality_code": municipality_code, "year": year, "last_seq": 1},
        )
        seq = int(result.scalar_one())
    return format_reference(prefix, year, seq), seq


async def _next_from_sequence(session: AsyncSession, municipality_code: str, year: int) -> int:
    conn = await session.connection()
    name = reference_sequence_name(municipality_code, year)
    value = (await conn.execute(_NEXT_FROM_SEQUENCE, {"name": name})).scalar_one()
    if value is None:
        await _create_reference_sequence(session, municipality_code, year, name)
        value = (await conn.execute(_NEXT_FROM_SEQUENCE, {"name": name})).scalar_one()
    return int(value)


async def _create_reference_sequence(
    session: AsyncSession, municipality_code: str, year: int, name: str
) -> None:
    """Create the year's sequence, once a year per municipality, after the highest number known (from
    before the sequence, or of an initiative); its counter row says that the sequence exists.

    Inside the submission's transaction, under a savepoint: a concurrent first submission waits for
    this one's commit, then finds the sequence made (the error is rolled back to the savepoint).
    """
    key = {"municipality_code": municipality_code, "year": year}
    try:
        async with session.begin_nested():
            conn = await session.connection()
            start = int((await conn.execute(_REFERENCE_START, key)).scalar_one())
            # DDL takes no bind parameters: the name is ours ([a-z0-9_]) and the start an int.
            await conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {start} MINVALUE 1"))
            await conn.execute(
                sql.insert("postgresql", reference_counters)
                .values(**key, last_seq=start - 1)
                .on_conflict_do_nothing(index_elements=["municipality_code", "year"])
            )
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) not in _SEQUENCE_CREATED_MEANWHILE:
            raise


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
    for later in LATER_COLUMNS:
        if values[later] is None:
            # The column's NULL: left out, so that code at older schema revisions can still insert.
            del values[later]
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
        submitted_on=amsterdam_day(now),
        status_on=amsterdam_day(now),
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


NEEDS_INDEX = [field.name for field in dataclasses.fields(InitiativeRow)].index("needs")


def _initiative_row(row: Sequence[Any]) -> InitiativeRow:
    values = list(row)
    values[NEEDS_INDEX] = tuple(values[NEEDS_INDEX] or ())
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
    amount_max_cents: int | None  # the top of an amount range (revision 0014)
    idea_voice_file_id: str | None  # the initiator's voice messages, as the idea or what they do
    own_voice_file_id: str | None


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
    # What came with a message: "photo", "voice" or "document", its file id, file name and length.
    media_kind: str | None = None
    media_file_id: str | None = None
    media_name: str | None = None
    media_seconds: int | None = None


_CASE_COLUMNS = sql.columns(initiatives, CaseRow)


def _case_row(row: Sequence[Any]) -> CaseRow:
    values = list(row)
    values[NEEDS_INDEX] = tuple(values[NEEDS_INDEX] or ())
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
        {"staff_id": broker_id, "open_statuses": sql.statuses(open_statuses)},
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


# A case's first contact: the first message to the initiators, or this status, whichever comes first.
FIRST_CONTACT_STATUS = "in_gesprek"


def _ordinal(day: Any) -> Any:
    """The working-day ordinal of ``day`` in the case's municipality's calendar (NULL when not there)."""
    return (
        select(working_day_ordinals.c.ordinal)
        .where(
            working_day_ordinals.c.municipality_code == initiatives.c.municipality_code,
            working_day_ordinals.c.day == day,
        )
        .scalar_subquery()
    )


_TODAY = bindparam("today", type_=initiatives.c.status_on.type)
_CLOSE_SPELL = status_spells.insert().from_select(
    [
        "initiative_id",
        "status",
        "department",
        "started_at",
        "ended_at",
        "started_on",
        "ended_on",
        "working_days",
        "submitted_on",
    ],
    select(
        initiatives.c.id,
        initiatives.c.status,
        initiatives.c.department,
        initiatives.c.status_changed_at,
        bindparam("now", type_=initiatives.c.status_changed_at.type),
        initiatives.c.status_on,
        _TODAY,
        _ordinal(_TODAY) - _ordinal(initiatives.c.status_on),
        initiatives.c.submitted_on,
    )
    # A row written without the overview's dates (by hand, not through create_initiative) has no spell.
    .where(initiatives.c.id == bindparam("initiative_id"), initiatives.c.status_on.is_not(None)),
)


def amsterdam_day(moment: datetime) -> date:
    """The Dutch calendar date of ``moment``, as the overview's figures count days."""
    return moment.astimezone(REFERENCE_TIMEZONE).date()


def _first_contact(now: datetime, today: date) -> dict[str, Any]:
    # The first one stays: a later contact never moves it (SET reads the values from before the update).
    on = literal(today, initiatives.c.first_contact_on.type)
    first = initiatives.c.first_contact_on.is_(None)
    return {
        "first_contact_at": func.coalesce(
            initiatives.c.first_contact_at, literal(now, initiatives.c.first_contact_at.type)
        ),
        "first_contact_on": func.coalesce(initiatives.c.first_contact_on, on),
        "first_contact_days": case(
            (first, _ordinal(on) - _ordinal(initiatives.c.submitted_on)),
            else_=initiatives.c.first_contact_days,
        ),
    }


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
    today = amsterdam_day(now)
    values: dict[str, Any] = {
        "status": status,
        "status_changed_at": now,
        "status_on": today,
        "updated_at": now,
        "department": department,
        "next_alert_at": now,
    }
    if status == FIRST_CONTACT_STATUS:
        values.update(_first_contact(now, today))
    if staff_id is not None:
        by_broker = exists().where(staff.c.id == staff_id, staff.c.role == StaffRole.BROKER.value)
        values["last_broker_action_at"] = case(
            (by_broker, literal(now, initiatives.c.last_broker_action_at.type)),
            else_=initiatives.c.last_broker_action_at,
        )
    conn = await session.connection()
    # The status that ends here becomes a finished spell, read from the row before it changes.
    await conn.execute(_CLOSE_SPELL, {"initiative_id": initiative_id, "now": now, "today": today})
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


async def change_department(
    session: AsyncSession, initiative_id: int, *, department: str, now: datetime
) -> None:
    """Keep the case bij_gemeente but waiting on another department (a forwarded question): the wait on
    the first one becomes a finished spell. The timeline entry is the caller's."""
    conn = await session.connection()
    today = amsterdam_day(now)
    await conn.execute(_CLOSE_SPELL, {"initiative_id": initiative_id, "now": now, "today": today})
    values = {"department": department, "status_changed_at": now, "status_on": today, "updated_at": now}
    await _update_initiative(conn, initiative_id, {**values, "next_alert_at": now})


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
    department: str | None = None,
    media: MediaFields | None = None,
) -> int:
    """Add an entry (a note, a message) to the timeline and return its id.

    ``visible_to_resident`` None means: hidden for internal kinds ("note"), visible for the others.
    ``touch_broker_action`` records ``now`` as the broker's last action on the case. ``media`` is the
    photo, voice note or document that came with a message.
    """
    kind = str(kind)
    if visible_to_resident is None:
        visible_to_resident = kind not in _INTERNAL_KINDS
    conn = await session.connection()
    values: dict[str, Any] = {}
    if touch_broker_action:
        values.update(last_broker_action_at=now, updated_at=now, next_alert_at=now)
    if kind == TimelineKind.MESSAGE_TO_RESIDENT:
        values.update(_first_contact(now, amsterdam_day(now)), updated_at=now)
    if values:
        await _update_initiative(conn, initiative_id, values)
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
            "department": department,
            "staff_id": staff_id,
            "to_staff_id": None,
            "visible_to_resident": visible_to_resident,
            "media_kind": media.kind if media else None,
            "media_file_id": media.file_id if media else None,
            "media_name": media.name if media else None,
            "media_seconds": media.seconds if media else None,
        },
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True)
class MediaFields:
    """A photo, voice note or document on a timeline entry (``initiative_events.media_*``)."""

    kind: str
    file_id: str
    name: str | None = None
    seconds: int | None = None


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
        initiative_events.c.media_kind,
        initiative_events.c.media_file_id,
        initiative_events.c.media_name,
        initiative_events.c.media_seconds,
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
        _CASES_OF_BROKER, {"staff_id": staff_id, "open_statuses": sql.statuses(open_statuses)}
    )
    return [_case_row(row) for row in result]


async def unassigned_cases(session: AsyncSession, *, open_statuses: Collection[str]) -> list[CaseRow]:
    """Cases in ``open_statuses`` without a broker, oldest first."""
    conn = await session.connection()
    result = await conn.execute(_UNASSIGNED_CASES, {"open_statuses": sql.statuses(open_statuses)})
    return [_case_row(row) for row in result]
