"""Erasure: what is left of a case, or of a person, once their personal data must go.

A case keeps what the municipality must archive (reference, wijk, theme, needs, amounts, status history
and dates, staff notes) and loses the resident's name, contact details, Telegram ids, photo and words,
also where staff quoted them (``flows.privacy.Traces`` scrubs those out of what is kept).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, or_, select, tuple_, update

from flows.privacy import (
    ERASED_BY_RETENTION,
    ERASED_ID,
    ERASED_ON_REQUEST,
    ERASED_TEXT,
    Traces,
    name_parts,
)
from storage import audit, sql
from storage.initiatives import TimelineKind
from storage.send_gates import chat_gate_key
from storage.tables import (
    blocker_actions,
    conversations,
    department_messages,
    department_questions,
    initiative_events,
    initiatives,
    mail_outbox,
    outbox,
    people,
    send_gates,
)

REASONS = {"request": ERASED_ON_REQUEST, "retention": ERASED_BY_RETENTION}
_MESSAGE_KINDS = (TimelineKind.MESSAGE_TO_RESIDENT.value, TimelineKind.MESSAGE_FROM_RESIDENT.value)
# The timeline entries that hold the resident's words: theirs, and the messages exchanged with them.
_THEIRS = or_(initiative_events.c.actor_role == "resident", initiative_events.c.kind.in_(_MESSAGE_KINDS))
# Outbox rows are read this many at a time when their payloads are scrubbed.
_SCAN_BATCH = 500


@dataclass(frozen=True, slots=True)
class ErasedCase:
    """A case whose resident's data went: its id, reference and whether its idea was kept."""

    id: int
    reference: str
    idea_kept: bool


async def anonymise_initiatives(session: sql.Db, ids: Sequence[int], *, now: datetime, reason: str) -> int:
    """Leave nothing personal on these cases (``reason`` "retention" or "request"); returns how many
    were anonymised now (a case already anonymised is skipped)."""
    erased = await _erase_cases(session, ids, now=now, reason=reason, keep_idea=False)
    return len(erased)


async def erase_resident_of(session: sql.Db, ids: Sequence[int], *, now: datetime) -> list[ErasedCase]:
    """The resident asked to be forgotten but these open cases go on: their name, contact details,
    Telegram ids, photo and messages go; the idea itself (title, description, own contribution) stays
    until the retention period after the case ends."""
    return await _erase_cases(session, ids, now=now, reason="request", keep_idea=True)


async def _erase_cases(
    session: sql.Db, ids: Sequence[int], *, now: datetime, reason: str, keep_idea: bool
) -> list[ErasedCase]:
    if reason not in REASONS:
        raise ValueError(f"unknown erasure reason {reason!r}")
    if not ids:
        return []
    conn, _ = await sql.connection(session)
    rows = (
        await conn.execute(
            select(
                initiatives.c.id,
                initiatives.c.reference,
                initiatives.c.resident_user_id,
                initiatives.c.title,
                initiatives.c.description,
                initiatives.c.own_contribution,
                initiatives.c.photo_file_id,
                initiatives.c.idea_voice_file_id,
                initiatives.c.own_voice_file_id,
                initiatives.c.contact_name,
                initiatives.c.contact_phone,
                initiatives.c.contact_email,
                initiatives.c.resident_erased_at,
                initiatives.c.anonymised_at,
            )
            .where(initiatives.c.id.in_(list(ids)))
            .order_by(initiatives.c.id)
            .with_for_update()
        )
    ).all()
    erased: list[ErasedCase] = []
    # Copies in Telegram messages: scrubbed at once on request; after the retention period the
    # sweep's own rule has long cleared every payload of the time the case was open.
    everything = Traces(frozenset())
    for row in rows:
        if row.anonymised_at is not None or (keep_idea and row.resident_erased_at is not None):
            continue
        traces, names = await _traces_of_case(conn, row, keep_idea=keep_idea)
        # Texts about this case lose the parts of the name too ("mevrouw Amrani"); other people's
        # messages only whole traces, or a "Jan" of the next case would go as well.
        everything = everything | traces
        await _erase_case(conn, row, traces | names, now=now, reason=reason, keep_idea=keep_idea)
        erased.append(ErasedCase(row.id, row.reference, keep_idea))
        await audit.record(
            session,  # type: ignore[arg-type]
            staff_id=None,
            action="erasure" if reason == "request" else "anonymised",
            initiative_id=row.id,
            detail="contact" if keep_idea else "case",
            now=now,
        )
    if everything and reason == "request":
        await scrub_outbox(conn, everything)
    return erased


async def _traces_of_case(conn: Any, row: Any, *, keep_idea: bool) -> tuple[Traces, Traces]:
    """The texts that identify the case's resident (name, contact, photo, what they wrote, and the
    broker's messages to them: a conversation with the person is theirs too), and the parts of their
    names."""
    words = (
        await conn.execute(
            select(initiative_events.c.note).where(
                initiative_events.c.initiative_id == row.id,
                initiative_events.c.note.is_not(None),
                or_(
                    initiative_events.c.actor_role == "resident", initiative_events.c.kind.in_(_MESSAGE_KINDS)
                ),
            )
        )
    ).scalars()
    first_name = None
    if row.resident_user_id != ERASED_ID:
        first_name = (
            await conn.execute(
                select(people.c.first_name).where(people.c.telegram_user_id == row.resident_user_id)
            )
        ).scalar()
    idea = () if keep_idea else (row.title, row.description, row.own_contribution)
    traces = Traces.of(
        (
            row.contact_name,
            row.contact_phone,
            row.contact_email,
            row.photo_file_id,
            row.idea_voice_file_id,
            row.own_voice_file_id,
            first_name,
            *idea,
            *words,
        )
    )
    return traces, Traces.of((*name_parts(row.contact_name), *name_parts(first_name)))


async def _erase_case(
    conn: Any, row: Any, traces: Traces, *, now: datetime, reason: str, keep_idea: bool
) -> None:
    values: dict[str, Any] = {
        "contact_name": "",
        "contact_phone": None,
        "contact_email": None,
        "photo_file_id": None,
        "idea_voice_file_id": None,  # the resident's own voice
        "own_voice_file_id": None,
        "resident_user_id": ERASED_ID,
        "resident_chat_id": ERASED_ID,
        "resident_erased_at": func.coalesce(initiatives.c.resident_erased_at, now),
        "updated_at": now,
    }
    if keep_idea:
        # The idea goes on without its author: their name out of its texts, and no publication of the
        # description on their consent (open data shows the title and theme only).
        values.update(
            title=traces.scrub(row.title),
            description=traces.scrub(row.description),
            own_contribution=traces.scrub(row.own_contribution) if row.own_contribution else None,
            publish_consent=False,
        )
    else:
        values.update(title=ERASED_TEXT, description=ERASED_TEXT, own_contribution=None, anonymised_at=now)
    await conn.execute(update(initiatives).where(initiatives.c.id == row.id).values(**values))
    events = initiative_events.c
    # The resident's own words and the messages exchanged with them go; who acted stays as a role.
    await conn.execute(
        update(initiative_events).where(events.initiative_id == row.id, _THEIRS).values(note=None)
    )
    if row.resident_user_id != ERASED_ID:
        await conn.execute(
            update(initiative_events)
            .where(events.initiative_id == row.id, events.actor_user_id == row.resident_user_id)
            .values(actor_user_id=None)
        )
    # Staff notes and status notes stay, without the resident's name, contact or words in them.
    await _scrub_column(conn, initiative_events, "note", events.initiative_id == row.id, traces)
    questions = department_questions.c
    of_case = questions.initiative_id == row.id
    for column in ("question", "answer_text"):
        await _scrub_column(conn, department_questions, column, of_case, traces)
    asked = select(questions.id).where(of_case).scalar_subquery()
    await _scrub_column(
        conn, department_messages, "text", department_messages.c.question_id.in_(asked), traces
    )
    await _scrub_column(conn, blocker_actions, "outcome", blocker_actions.c.question_id.in_(asked), traces)
    for column in ("subject", "body"):
        await _scrub_column(conn, mail_outbox, column, mail_outbox.c.initiative_id == row.id, traces)
    await conn.execute(
        initiative_events.insert().values(
            initiative_id=row.id,
            at=now,
            kind=TimelineKind.NOTE.value,
            status=None,
            actor_user_id=None,
            actor_role="system",
            note=REASONS[reason],
            department=None,
            staff_id=None,
            to_staff_id=None,
            visible_to_resident=False,
        )
    )


async def _scrub_column(conn: Any, table: Table, column: str, where: Any, traces: Traces) -> None:
    """Put ERASED_TEXT in place of every trace in one text column of the rows ``where`` selects."""
    col = table.c[column]
    rows = (await conn.execute(select(table.c.id, col).where(where, col.is_not(None)))).all()
    for row_id, text in rows:
        scrubbed = traces.scrub(text)
        if scrubbed != text:
            await conn.execute(update(table).where(table.c.id == row_id).values({column: scrubbed}))


async def scrub_outbox(session: sql.Db, traces: Traces) -> int:
    """Scrub the traces out of every queued or sent Telegram message that still has its payload (staff
    got the resident's name, contact and idea in their notifications); returns how many changed.

    It reads the pending rows and the sent ones whose payload the retention sweep has not cleared yet
    (``ix_outbox_payload_kept``), so its cost follows the last ``sent_message_days`` of traffic."""
    conn, _ = await sql.connection(session)
    changed = 0
    kept = (outbox.c.status != "pending", outbox.c.payload_cleared_at.is_(None))
    for where, order in (
        ((outbox.c.status == "pending",), outbox.c.id),
        (kept, outbox.c.created_at),
    ):
        after: tuple[Any, int] | None = None
        while True:
            page = select(outbox.c.id, order, outbox.c.payload).where(*where)
            if after is not None:
                page = page.where(tuple_(order, outbox.c.id) > tuple_(*after))
            rows = (await conn.execute(page.order_by(order, outbox.c.id).limit(_SCAN_BATCH))).all()
            for row_id, _, payload in rows:
                scrubbed = _scrub_json(payload, traces)
                if scrubbed != payload:
                    await conn.execute(update(outbox).where(outbox.c.id == row_id).values(payload=scrubbed))
                    changed += 1
            if len(rows) < _SCAN_BATCH:
                break
            after = (rows[-1][1], rows[-1][0])
    return changed


def _scrub_json(value: Any, traces: Traces) -> Any:
    if isinstance(value, str):
        return traces.scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_json(v, traces) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v, traces) for v in value]
    return value


async def forget_person(session: sql.Db, *, user_id: int, chat_id: int, now: datetime) -> None:
    """Make the person a stranger to the bot: their profile, conversation and draft, the messages still
    queued for them and the chat id and contents of those sent to them go. Their cases must already be
    erased (``anonymise_initiatives`` / ``erase_resident_of``)."""
    conn, _ = await sql.connection(session)
    await conn.execute(delete(conversations).where(conversations.c.chat_id == chat_id))
    await conn.execute(delete(conversations).where(conversations.c.user_id == user_id))
    await conn.execute(delete(people).where(people.c.telegram_user_id == user_id))
    # Rows are wiped, never deleted: SQLite would hand a deleted row's id to the next message, and a
    # sender that still has the old row in hand would mark the new one sent. What still waited for the
    # person is not sent any more; then their chat goes as the retention sweep's forgotten people's do.
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id == chat_id, outbox.c.status == "pending")
        .values(status="failed", last_error="the person asked to be forgotten")
    )
    await forget_chats(conn, [chat_id], now=now)


async def forget_chats(session: sql.Db, chat_ids: Collection[int], *, now: datetime) -> None:
    """The chat ids of people the retention sweep forgot go from the outbox and the send gates too: sent
    rows lose chat id and contents now, a message still queued once it is sent (or given up on)."""
    if not chat_ids:
        return
    conn, _ = await sql.connection(session)
    chats = sorted(chat_ids)
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id.in_(chats), outbox.c.status == "pending")
        .values(forget_chat=True)
    )
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id.in_(chats), outbox.c.status != "pending")
        .values(chat_id=ERASED_ID, payload={}, payload_cleared_at=now)
    )
    await conn.execute(delete(send_gates).where(send_gates.c.key.in_([chat_gate_key(c) for c in chats])))
