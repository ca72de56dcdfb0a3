"""Departments as participants: their contacts, the questions put to them with each thread, and the
personal links to a case's answer page (the blocker list is ``storage.blockers``)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.tables import (
    department_contacts,
    department_links,
    department_messages,
    department_questions,
    staff,
)

# The states in which a question is still with the department or its broker (flows.department).
ACTIVE_STATES = ("open", "info")


@dataclass(frozen=True, slots=True)
class ContactRow:
    id: int
    department: str
    name: str
    email: str
    created_at: datetime
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class QuestionRow:
    id: int
    initiative_id: int
    department: str
    question: str
    asked_at: datetime
    asked_by_staff_id: int | None
    state: str
    clock_started_at: datetime
    promised_on: date | None
    next_alert_at: datetime | None
    answer_kind: str | None
    answer_text: str | None
    blocked_by: str | None
    answered_at: datetime | None
    answer_working_days: int | None
    answered_within_norm: bool | None
    forwarded_to: str | None
    forwarded_from_id: int | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    question_id: int
    at: datetime
    author: str
    author_name: str
    author_email: str | None
    kind: str
    text: str | None
    blocked_by: str | None
    promised_on: date | None
    forward_to: str | None


@dataclass(frozen=True, slots=True)
class LinkRow:
    id: int
    initiative_id: int
    department: str
    name: str
    email: str
    salt: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    revoked_by_staff_id: int | None


_CONTACT = sql.columns(department_contacts, ContactRow)
_QUESTION = QUESTION_COLUMNS = sql.columns(department_questions, QuestionRow)
_MESSAGE = sql.columns(department_messages, MessageRow)
_LINK = sql.columns(department_links, LinkRow)


# -- contacts ------------------------------------------------------------------------------------


async def add_contact(
    session: AsyncSession, *, department: str, name: str, email: str, now: datetime
) -> ContactRow:
    """Add a contact to a department (or bring a removed one back, with this name)."""
    conn = await session.connection()
    email = email.strip()
    found = (
        await conn.execute(
            select(*_CONTACT).where(
                department_contacts.c.department == department,
                department_contacts.c.email == email,
            )
        )
    ).first()
    if found is None:
        await conn.execute(
            department_contacts.insert().values(
                department=department, name=name, email=email, created_at=now, removed_at=None
            )
        )
    else:
        await conn.execute(
            update(department_contacts)
            .where(department_contacts.c.id == found[0])
            .values(name=name, removed_at=None)
        )
    row = (
        await conn.execute(
            select(*_CONTACT).where(
                department_contacts.c.department == department, department_contacts.c.email == email
            )
        )
    ).one()
    return ContactRow(*row)


async def remove_contact(session: AsyncSession, *, email: str, department: str | None, now: datetime) -> int:
    """Stop e-mailing this address (for one department, or all); their links stop working. Returns how
    many contacts were removed."""
    conn = await session.connection()
    where = [department_contacts.c.email == email.strip(), department_contacts.c.removed_at.is_(None)]
    if department is not None:
        where.append(department_contacts.c.department == department)
    result = await conn.execute(update(department_contacts).where(*where).values(removed_at=now))
    link_where = [department_links.c.email == email.strip(), department_links.c.revoked_at.is_(None)]
    if department is not None:
        link_where.append(department_links.c.department == department)
    await conn.execute(
        update(department_links).where(*link_where).values(revoked_at=now, revoked_reason="contact_removed")
    )
    return int(result.rowcount or 0)


async def contacts(session: AsyncSession, department: str | None = None) -> list[ContactRow]:
    """The contacts added on the command line (not removed), of one department or all."""
    conn = await session.connection()
    stmt = select(*_CONTACT).where(department_contacts.c.removed_at.is_(None))
    if department is not None:
        stmt = stmt.where(department_contacts.c.department == department)
    result = await conn.execute(stmt.order_by(department_contacts.c.department, department_contacts.c.name))
    return [ContactRow(*row) for row in result]


# -- questions -----------------------------------------------------------------------------------


async def ask(
    session: AsyncSession,
    *,
    initiative_id: int,
    department: str,
    question: str,
    staff_id: int | None,
    now: datetime,
    forwarded_from_id: int | None = None,
) -> QuestionRow:
    """Put a question to a department; its clock starts now (the watchdog looks at it from now on)."""
    conn = await session.connection()
    result = await conn.execute(
        department_questions.insert()
        .values(
            initiative_id=initiative_id,
            department=department,
            question=question,
            asked_at=now,
            asked_by_staff_id=staff_id,
            state="open",
            clock_started_at=now,
            next_alert_at=now,
            forwarded_from_id=forwarded_from_id,
        )
        .returning(*_QUESTION)
    )
    return QuestionRow(*result.one())


async def question(session: AsyncSession, question_id: int, *, lock: bool = False) -> QuestionRow | None:
    conn = await session.connection()
    stmt = select(*_QUESTION).where(department_questions.c.id == question_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return QuestionRow(*row) if row is not None else None


async def questions_of(session: AsyncSession, initiative_id: int) -> list[QuestionRow]:
    """Every question ever put about this case, oldest first."""
    conn = await session.connection()
    result = await conn.execute(
        select(*_QUESTION)
        .where(department_questions.c.initiative_id == initiative_id)
        .order_by(department_questions.c.id)
    )
    return [QuestionRow(*row) for row in result]


async def active_question(
    session: AsyncSession, initiative_id: int, *, department: str | None = None, lock: bool = False
) -> QuestionRow | None:
    """The newest question still open or waiting on the broker (of one department, if given)."""
    conn = await session.connection()
    stmt = select(*_QUESTION).where(
        department_questions.c.initiative_id == initiative_id,
        department_questions.c.state.in_(ACTIVE_STATES),
    )
    if department is not None:
        stmt = stmt.where(department_questions.c.department == department)
    stmt = stmt.order_by(department_questions.c.id.desc()).limit(1)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return QuestionRow(*row) if row is not None else None


async def latest_question(
    session: AsyncSession, initiative_id: int, *, department: str | None = None
) -> QuestionRow | None:
    """The newest question of the case (of one department, if given), in any state."""
    conn = await session.connection()
    stmt = select(*_QUESTION).where(department_questions.c.initiative_id == initiative_id)
    if department is not None:
        stmt = stmt.where(department_questions.c.department == department)
    row = (await conn.execute(stmt.order_by(department_questions.c.id.desc()).limit(1))).first()
    return QuestionRow(*row) if row is not None else None


async def update_question(session: AsyncSession, question_id: int, **values: Any) -> None:
    """Change a question's columns (state, clock, answer, next_alert_at …)."""
    conn = await session.connection()
    await conn.execute(
        update(department_questions).where(department_questions.c.id == question_id).values(**values)
    )


async def withdraw_active(session: AsyncSession, initiative_id: int, *, now: datetime) -> list[QuestionRow]:
    """The case left the department: its active questions end unanswered and their clocks stop. Returns
    the questions withdrawn, as they were before."""
    conn = await session.connection()
    active = (
        department_questions.c.initiative_id == initiative_id,
        department_questions.c.state.in_(ACTIVE_STATES),
    )
    before = [QuestionRow(*row) for row in await conn.execute(select(*_QUESTION).where(*active))]
    if before:
        await conn.execute(
            update(department_questions)
            .where(department_questions.c.id.in_([q.id for q in before]))
            .values(state="withdrawn", closed_at=now, next_alert_at=None)
        )
    return before


async def add_message(
    session: AsyncSession,
    question_id: int,
    *,
    author: str,
    author_name: str,
    kind: str,
    text: str | None,
    now: datetime,
    author_email: str | None = None,
    blocked_by: str | None = None,
    promised_on: date | None = None,
    forward_to: str | None = None,
) -> MessageRow:
    """One message in a question's thread: the department's answer, or the broker's reply."""
    conn = await session.connection()
    result = await conn.execute(
        department_messages.insert()
        .values(
            question_id=question_id,
            at=now,
            author=author,
            author_name=author_name[:80],
            author_email=author_email,
            kind=kind,
            text=text,
            blocked_by=blocked_by,
            promised_on=promised_on,
            forward_to=forward_to,
        )
        .returning(*_MESSAGE)
    )
    return MessageRow(*result.one())


async def messages_of(session: AsyncSession, question_ids: Collection[int]) -> dict[int, list[MessageRow]]:
    """Each question's thread, oldest first; every id given is a key."""
    out: dict[int, list[MessageRow]] = {qid: [] for qid in question_ids}
    if not out:
        return out
    conn = await session.connection()
    result = await conn.execute(
        select(*_MESSAGE)
        .where(department_messages.c.question_id.in_(sorted(out)))
        .order_by(department_messages.c.id)
    )
    for row in result:
        message = MessageRow(*row)
        out[message.question_id].append(message)
    return out


# -- the department clock's sweep ----------------------------------------------------------------

# Served by ix_department_questions_next_alert_at (next_alert_at, id), as the case sweep's query.
DUE_QUESTIONS = sql.DueQueue(department_questions, _QUESTION)


async def due_questions(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
    lock: bool = True,
) -> list[QuestionRow]:
    """Up to ``limit`` questions with ``next_alert_at <= now``, earliest first; row-locked with SKIP
    LOCKED so several watchdogs take different ones. ``after`` pages on from the last batch."""
    rows = await DUE_QUESTIONS.rows(session, cutoff=now, limit=limit, after=after, lock=lock)
    return [QuestionRow(*row) for row in rows]


_SET_NEXT = (
    update(department_questions)
    .where(department_questions.c.id == bindparam("question_id"))
    .values(next_alert_at=bindparam("at", type_=department_questions.c.next_alert_at.type))
)


async def set_next_alerts(session: AsyncSession, moments: Sequence[tuple[int, datetime | None]]) -> None:
    """When the watchdog should look at each question again (None: never, until its clock restarts)."""
    if moments:
        await sql.run_many(session, _SET_NEXT, [{"question_id": q, "at": at} for q, at in moments])


# -- personal links ------------------------------------------------------------------------------


async def link_for(
    session: AsyncSession, *, initiative_id: int, department: str, name: str, email: str, now: datetime
) -> LinkRow:
    """The contact's link to this case while it is with their department: the one they have, else new."""
    conn = await session.connection()
    stmt = (
        select(*_LINK)
        .where(
            department_links.c.initiative_id == initiative_id,
            department_links.c.department == department,
            department_links.c.email == email,
            department_links.c.revoked_at.is_(None),
        )
        .order_by(department_links.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    if row is not None:
        return LinkRow(*row)
    result = await conn.execute(
        department_links.insert()
        .values(
            initiative_id=initiative_id,
            department=department,
            name=name[:80],
            email=email,
            salt=secrets.token_hex(16),
            created_at=now,
        )
        .returning(*_LINK)
    )
    return LinkRow(*result.one())


async def link(session: AsyncSession, link_id: int) -> LinkRow | None:
    conn = await session.connection()
    row = (await conn.execute(select(*_LINK).where(department_links.c.id == link_id))).first()
    return LinkRow(*row) if row is not None else None


async def touch_link(session: AsyncSession, link_id: int, now: datetime) -> None:
    conn = await session.connection()
    await conn.execute(
        update(department_links).where(department_links.c.id == link_id).values(last_used_at=now)
    )


async def links_of(session: AsyncSession, initiative_id: int) -> list[LinkRow]:
    """Every link ever made for the case, newest first."""
    conn = await session.connection()
    result = await conn.execute(
        select(*_LINK)
        .where(department_links.c.initiative_id == initiative_id)
        .order_by(department_links.c.id.desc())
    )
    return [LinkRow(*row) for row in result]


async def revoke_links(
    session: AsyncSession,
    initiative_id: int,
    *,
    now: datetime,
    reason: str,
    department: str | None = None,
    link_id: int | None = None,
    staff_id: int | None = None,
) -> int:
    """End the case's links (of one department, or one link); returns how many were still valid."""
    conn = await session.connection()
    where = [department_links.c.initiative_id == initiative_id, department_links.c.revoked_at.is_(None)]
    if department is not None:
        where.append(department_links.c.department == department)
    if link_id is not None:
        where.append(department_links.c.id == link_id)
    result = await conn.execute(
        update(department_links)
        .where(*where)
        .values(revoked_at=now, revoked_reason=reason, revoked_by_staff_id=staff_id)
    )
    return int(result.rowcount or 0)


async def staff_names(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    """Names of staff members by id (who asked, who acted on a blocker)."""
    if not ids:
        return {}
    conn = await session.connection()
    result = await conn.execute(select(staff.c.id, staff.c.name).where(staff.c.id.in_(sorted(ids))))
    return {row[0]: row[1] for row in result}
