"""What routing a resident's message needs: their cases with the newest thing the chat said about each,
and the bot's message they swiped to answer."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

from storage import sql
from storage.tables import initiative_events, initiatives, outbox, staff


@dataclass(frozen=True, slots=True)
class ResidentCaseRow:
    """One of a resident's cases: its active broker's name (None: none, or removed), and the time and
    kind of the newest timeline entry the resident sees."""

    reference: str
    title: str
    status: str
    broker_name: str | None
    last_at: datetime | None
    last_kind: str | None


_SEEN = and_(
    initiative_events.c.initiative_id == initiatives.c.id,
    initiative_events.c.visible_to_resident,
)
_NEWEST = (
    select(initiative_events.c.at, initiative_events.c.kind)
    .where(_SEEN)
    .order_by(initiative_events.c.at.desc(), initiative_events.c.id.desc())
    .limit(1)
    .correlate(initiatives)
)
_CASES = (
    select(
        initiatives.c.reference,
        initiatives.c.title,
        initiatives.c.status,
        staff.c.name,
        _NEWEST.with_only_columns(initiative_events.c.at).scalar_subquery(),
        _NEWEST.with_only_columns(initiative_events.c.kind).scalar_subquery(),
    )
    .select_from(
        initiatives.outerjoin(
            staff, and_(staff.c.id == initiatives.c.broker_id, staff.c.removed_at.is_(None))
        )
    )
    .where(
        initiatives.c.resident_user_id == bindparam("user_id"),
        or_(
            initiatives.c.status.in_(bindparam("open_statuses", expanding=True)),
            initiatives.c.status_changed_at >= bindparam("ended_since"),
        ),
    )
    .order_by(initiatives.c.id)
)


async def resident_cases(
    session: sql.Db, user_id: int, *, open_statuses: Collection[str], ended_since: datetime
) -> list[ResidentCaseRow]:
    """The resident's open cases and those that ended since ``ended_since``, oldest first."""
    params = {"user_id": user_id, "open_statuses": sql.statuses(open_statuses), "ended_since": ended_since}
    conn, _ = await sql.connection(session)
    return [ResidentCaseRow(*row) for row in await conn.execute(_CASES, params)]


_SENT_PAYLOAD = (
    select(outbox.c.payload)
    .where(
        outbox.c.chat_id == bindparam("chat_id"),
        outbox.c.telegram_message_id == bindparam("message_id"),
    )
    .order_by(outbox.c.id.desc())
    .limit(1)
)


async def sent_payload(session: sql.Db, chat_id: int, message_id: int) -> dict[str, Any] | None:
    """What the bot sent (or last edited) as message ``message_id`` of a chat, while the outbox keeps
    it (``Retention.sent_message_days``); None when unknown or cleared."""
    rows = await sql.fetch(session, _SENT_PAYLOAD, {"chat_id": chat_id, "message_id": message_id})
    return dict(rows[0][0]) if rows and rows[0][0] else None
