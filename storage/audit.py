"""The audit log: who viewed contact details, exported or erased data, and when (never what)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import audit_log, initiatives, staff

ACTIONS = frozenset(
    {
        "view_contact",
        "export_csv",
        "export_xlsx",
        "export_council",
        "login",
        "logout",
        # A resident's own data sent to them (/mijngegevens); no staff member.
        "data_export",
        # A resident asked to be forgotten (/vergeetmij): one entry per case, and one for the person.
        "erasure",
        # The retention sweep anonymised an ended case.
        "anonymised",
    }
)


async def record(
    session: AsyncSession,
    *,
    staff_id: int | None,
    action: str,
    initiative_id: int | None = None,
    detail: str | None = None,
    now: datetime,
) -> None:
    """Write one entry; ``detail`` is a count or a filter, never contents."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn = await session.connection()
    await conn.execute(
        audit_log.insert().values(
            at=now, staff_id=staff_id, action=action, initiative_id=initiative_id, detail=detail
        )
    )


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: datetime
    staff_name: str | None
    action: str
    reference: str | None
    detail: str | None


async def entries(
    session: AsyncSession, *, since: datetime, until: datetime | None = None, limit: int | None = 1000
) -> list[AuditRow]:
    """The entries from ``since`` on (up to ``until``), oldest first; ``limit`` None for all."""
    conn = await session.connection()
    rows = await conn.execute(
        select(audit_log.c.at, staff.c.name, audit_log.c.action, initiatives.c.reference, audit_log.c.detail)
        .select_from(
            audit_log.outerjoin(staff, staff.c.id == audit_log.c.staff_id).outerjoin(
                initiatives, initiatives.c.id == audit_log.c.initiative_id
            )
        )
        .where(audit_log.c.at >= since, *([audit_log.c.at <= until] if until is not None else []))
        .order_by(audit_log.c.at, audit_log.c.id)
        .limit(limit)
    )
    return [AuditRow(*row) for row in rows]
