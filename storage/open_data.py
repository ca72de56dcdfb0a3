"""Initiatives for the Open311 read API: only the columns open data may look at, a page at a time.

The description leaves the database only when the resident agreed to publish it; contact details,
photos and the resident's Telegram ids are never selected. The contact name is selected only so that
``flows.open311.scrub`` can take it out of the published text.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from flows.open311 import CLOSED_STATUSES, MAX_IDS, PublicCase, RequestQuery
from storage.tables import initiatives

_i = initiatives.c
_COLUMNS = (
    _i.reference,
    _i.status,
    _i.theme_code,
    _i.wijk_code,
    _i.title,
    case((_i.publish_consent.is_(true()), _i.description), else_=None).label("description"),
    _i.department,
    _i.created_at,
    _i.status_changed_at,
    _i.contact_name,
)
# Newest first; ix_initiatives_created_at (migration 0011, shared with the overview) serves both the
# range and the order (on SQLite the index holds the rowid, which is id).
_NEWEST_FIRST = (_i.created_at.desc(), _i.id.desc())


# The status as an expression no index serves: without table statistics SQLite would otherwise pick
# ix_initiatives_status_changed for "status IN (…)" and sort every closed initiative ever.
_STATUS = func.coalesce(_i.status, "")


async def public_cases(session: AsyncSession, query: RequestQuery) -> list[PublicCase]:
    """The initiatives a GeoReport query asks for: by reference, or one page of a date range, newest first.

    A database holds one municipality, as every other query assumes: no filter on its code (which would
    also lead SQLite to the (municipality_code, year, seq) index and a sort of every initiative).
    """
    stmt = select(*_COLUMNS)
    if query.ids:
        stmt = stmt.where(_i.reference.in_(query.ids)).order_by(*_NEWEST_FIRST).limit(MAX_IDS)
    else:
        assert query.start is not None and query.end is not None
        stmt = stmt.where(_i.created_at >= query.start, _i.created_at <= query.end)
        if query.service_codes:
            stmt = stmt.where(_i.theme_code.in_(query.service_codes))
        if query.closed is True:
            stmt = stmt.where(_STATUS.in_(sorted(CLOSED_STATUSES)))
        elif query.closed is False:
            stmt = stmt.where(_STATUS.not_in(sorted(CLOSED_STATUSES)))
        offset = (query.page - 1) * query.page_size
        stmt = stmt.order_by(*_NEWEST_FIRST).limit(query.page_size).offset(offset)
    conn = await session.connection()
    return [PublicCase(*row) for row in await conn.execute(stmt)]


async def public_case(session: AsyncSession, reference: str) -> PublicCase | None:
    """One initiative by its reference (INI-2026-0042), or None."""
    conn = await session.connection()
    row = (await conn.execute(select(*_COLUMNS).where(_i.reference == reference))).first()
    return None if row is None else PublicCase(*row)
