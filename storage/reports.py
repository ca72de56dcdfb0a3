"""Read-only queries for coordinators' overviews: one row per initiative with what the pictures need."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import initiative_events, initiatives, staff


@dataclass(frozen=True, slots=True)
class OverviewRow:
    reference: str
    title: str
    wijk_code: str | None
    status: str
    status_changed_at: datetime
    department: str | None
    broker_id: int | None
    broker_name: str | None
    broker_absent_until: date | None
    assigned_at: datetime | None
    last_broker_action_at: datetime | None
    created_at: datetime
    first_contact_at: datetime | None  # first talk with the initiators: in_gesprek, or a first message


_FIRST_CONTACT = (
    select(func.min(initiative_events.c.at))
    .where(
        initiative_events.c.initiative_id == initiatives.c.id,
        or_(
            initiative_events.c.kind == "message_to_resident",
            and_(initiative_events.c.kind == "status", initiative_events.c.status == "in_gesprek"),
        ),
    )
    .correlate(initiatives)
    .scalar_subquery()
)

_OVERVIEW = (
    select(
        initiatives.c.reference,
        initiatives.c.title,
        initiatives.c.wijk_code,
        initiatives.c.status,
        initiatives.c.status_changed_at,
        initiatives.c.department,
        initiatives.c.broker_id,
        staff.c.name,
        staff.c.absent_until,
        initiatives.c.assigned_at,
        initiatives.c.last_broker_action_at,
        initiatives.c.created_at,
        _FIRST_CONTACT,
    )
    .select_from(initiatives.outerjoin(staff, staff.c.id == initiatives.c.broker_id))
    .order_by(initiatives.c.id)
)


async def overview_rows(
    session: AsyncSession,
    *,
    statuses: Collection[str] | None = None,
    or_changed_since: datetime | None = None,
) -> list[OverviewRow]:
    """Every initiative, or those in ``statuses`` plus any created or changed since a moment."""
    stmt = _OVERVIEW
    if statuses is not None:
        wanted = initiatives.c.status.in_(list(statuses))
        if or_changed_since is not None:
            wanted = or_(
                wanted,
                initiatives.c.status_changed_at >= or_changed_since,
                initiatives.c.created_at >= or_changed_since,
            )
        stmt = stmt.where(wanted)
    conn = await session.connection()
    return [OverviewRow(*row) for row in await conn.execute(stmt)]
