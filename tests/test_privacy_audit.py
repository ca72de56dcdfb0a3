"""``initiatiefbot privacy audit``: the privacy officer reads who saw, exported or erased what, and when."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bot import privacy_cli
from bot.__main__ import _parser
from bot.settings import Settings, resolve_config_path
from storage import audit
from storage import initiatives as initiatives_store
from storage import staff as staff_store
from storage.db import session_factory
from tests.factories import new_initiative

NOW = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)


async def privacy(database_url: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    settings = Settings(database_url=database_url, config_path=resolve_config_path("zutphen"))
    code = await privacy_cli.run(settings, _parser().parse_args(["privacy", *argv]), out=out)
    return code, out.getvalue()


async def test_audit_lists_views_exports_and_erasures_in_dutch_time_without_contents(
    database_url: str, engine: AsyncEngine
) -> None:
    async with session_factory(engine)() as session, session.begin():
        bea = await staff_store.add_staff(
            session, telegram_user_id=5301, name="Bea Bakker", role="broker", wijken=[], themes=[], now=NOW
        )
        case = await initiatives_store.create_initiative(
            session, new_initiative(contact_phone="0612345678"), NOW
        )
        await audit.record(
            session, staff_id=bea.id, action="view_contact", initiative_id=case.id, detail="telegram", now=NOW
        )
        await audit.record(
            session, staff_id=bea.id, action="export_csv", detail="12 cases", now=NOW.replace(day=3)
        )
        await audit.record(
            session,
            staff_id=None,
            action="erasure",
            initiative_id=case.id,
            detail="case",
            now=NOW.replace(day=4),
        )
        await audit.record(
            session, staff_id=None, action="anonymised", detail="case", now=NOW.replace(day=20)
        )

    code, text = await privacy(database_url, "audit", "--since", "2026-11-01", "--until", "2026-11-10")
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith("Audit log 2026-11-01 00:00 – 2026-11-10 00:00 (Dutch time): 3 entries")
    assert lines[2].split() == [
        "2026-11-02",
        "10:15",
        "Bea",
        "Bakker",
        "view_contact",
        "viewed",
        "contact",
        "details",
        case.reference,
        "telegram",
    ]
    assert "exported cases (CSV)" in lines[3] and "12 cases" in lines[3]
    assert "resident" in lines[4] and "erased on the resident's request" in lines[4]
    # Who and what kind of thing, never the contents: no phone, no name of the resident, no title.
    assert "0612345678" not in text and "Fatima" not in text and "Bankjes" not in text

    code, text = await privacy(database_url, "audit", "--since", "2026-11-15", "--csv")
    assert code == 0
    assert text.splitlines() == [
        "when (Dutch time),who,action,meaning,case,detail",
        "2026-11-20 10:15,system,anonymised,anonymised after the retention period,,case",
    ]

    code, _ = await privacy(database_url, "audit", "--since", "2026-11-10", "--until", "2026-11-01")
    assert code == 2
