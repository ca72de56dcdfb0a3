"""Everything stored about one resident, for their own copy (/mijngegevens): nothing of anyone else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import initiatives as initiatives_store
from storage import people as people_store
from storage.initiatives import CaseRow, TimelineEntry
from storage.people import PersonRow
from storage.tables import initiatives


@dataclass(frozen=True, slots=True)
class InitiativeExtras:
    """What a case row leaves out but the resident's copy shows."""

    publish_consent: bool | None
    submitted_on: date | None
    resident_erased_at: datetime | None
    anonymised_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredInitiative:
    """One of the resident's initiatives with its timeline as the resident sees it (no internal notes)."""

    case: CaseRow
    extras: InitiativeExtras
    timeline: tuple[TimelineEntry, ...]


@dataclass(frozen=True, slots=True)
class StoredData:
    """The resident's row in ``people`` (None if never seen) and their initiatives, oldest first."""

    person: PersonRow | None
    initiatives: tuple[StoredInitiative, ...]


async def stored_data(session: AsyncSession, user_id: int) -> StoredData:
    """Load what is stored about the resident with this Telegram user id.

    Cases are loaded through ``storage.initiatives`` as staff see them (contact details readable), and
    timelines in the resident's view, so staff-only entries never reach the copy."""
    person = await people_store.load_person(session, user_id)
    conn = await session.connection()
    rows = await conn.execute(
        select(
            initiatives.c.id,
            initiatives.c.publish_consent,
            initiatives.c.submitted_on,
            initiatives.c.resident_erased_at,
            initiatives.c.anonymised_at,
        )
        .where(initiatives.c.resident_user_id == user_id)
        .order_by(initiatives.c.created_at, initiatives.c.id)
    )
    found: list[StoredInitiative] = []
    for initiative_id, *extras in rows.all():
        case = await initiatives_store.load_case_by_id(session, initiative_id)
        if case is None:  # deleted meanwhile
            continue
        timeline = await initiatives_store.timeline(session, initiative_id, resident_view=True)
        found.append(StoredInitiative(case, InitiativeExtras(*extras), tuple(timeline)))
    return StoredData(person, tuple(found))
