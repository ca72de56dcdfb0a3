"""Everything stored about one resident, for their own copy (/mijngegevens): nothing of anyone else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import sql
from storage.initiatives import TimelineEntry
from storage.people import PersonRow
from storage.tables import initiatives


@dataclass(frozen=True, slots=True)
class ResidentInitiative:
    """An initiative's row as the resident gave it, with its status and dates (no staff fields)."""

    id: int
    reference: str
    title: str
    description: str
    theme_code: str
    wijk_code: str | None
    own_contribution: str | None
    needs: list[str] | None
    amount_cents: int | None
    neighbours: int | None
    photo_file_id: str | None
    contact_name: str
    contact_phone: str | None
    contact_email: str | None
    consent_at: datetime
    publish_consent: bool | None
    language: str
    status: str
    status_changed_at: datetime
    department: str | None
    created_at: datetime
    resident_erased_at: datetime | None
    anonymised_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredInitiative:
    """One of the resident's initiatives with its timeline as the resident sees it (no internal notes)."""

    case: ResidentInitiative
    timeline: tuple[TimelineEntry, ...]


@dataclass(frozen=True, slots=True)
class StoredData:
    """The resident's row in ``people`` (None if never seen) and their initiatives, oldest first."""

    person: PersonRow | None
    initiatives: tuple[StoredInitiative, ...]


_OF_RESIDENT = select(*sql.columns(initiatives, ResidentInitiative))


async def stored_data(session: AsyncSession, user_id: int) -> StoredData:
    """Load what is stored about the resident with this Telegram user id; timelines in the resident's
    view (``storage.initiatives.timeline``), so staff-only entries never reach the copy."""
    person = await people_store.load_person(session, user_id)
    conn = await session.connection()
    rows = await conn.execute(
        _OF_RESIDENT.where(initiatives.c.resident_user_id == user_id).order_by(
            initiatives.c.created_at, initiatives.c.id
        )
    )
    found: list[StoredInitiative] = []
    for row in rows.all():
        case = ResidentInitiative(*row)
        timeline = await initiatives_store.timeline(session, case.id, resident_view=True)
        found.append(StoredInitiative(case, tuple(timeline)))
    return StoredData(person, tuple(found))
