"""``initiatiefbot privacy export|erase``: a request that came in by e-mail or at the desk is handled as
/mijngegevens and /vergeetmij handle one in the chat."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.db import session_factory
from tests.factories import new_initiative
from tests.privacy_support import find_everywhere
from tests.test_privacy_audit import privacy

NOW = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)


async def _resident_with_a_case(engine: AsyncEngine) -> str:
    async with session_factory(engine)() as session, session.begin():
        await people_store.upsert_person(
            session, user_id=1001, chat_id=1001, first_name="Fatima", telegram_language="nl", now=NOW
        )
        bea = await staff_store.add_staff(
            session, telegram_user_id=5301, name="Bea Bakker", role="broker", wijken=[], themes=[], now=NOW
        )
        case = await initiatives_store.create_initiative(
            session, new_initiative(contact_phone="0612345678"), NOW
        )
        await initiatives_store.assign(
            session, case.id, broker_id=bea.id, by_staff_id=None, note=None, now=NOW
        )
        return case.reference


async def test_export_by_reference_writes_the_residents_file(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    reference = await _resident_with_a_case(engine)
    code, out = await privacy(database_url, "export", "--reference", reference.lower())
    assert code == 0
    data = json.loads(out)
    assert data["profile"]["first_name"] == "Fatima"
    assert [i["reference"] for i in data["initiatives"]] == [reference]

    target = tmp_path / "export.json"
    code, out = await privacy(database_url, "export", "--telegram-id", "1001", "--output", str(target))
    assert code == 0 and "readable by you only" in out
    assert target.stat().st_mode & 0o777 == 0o600 and "Fatima el Amrani" in target.read_text()

    code, _ = await privacy(database_url, "export", "--telegram-id", "999")
    assert code == 2


async def test_erase_asks_about_open_initiatives_shows_first_and_then_erases(
    database_url: str, engine: AsyncEngine
) -> None:
    reference = await _resident_with_a_case(engine)
    code, _ = await privacy(database_url, "erase", "--reference", reference)
    assert code == 2  # the case is open: stop it, or let it go on?
    code, out = await privacy(database_url, "erase", "--reference", reference, "--stop-open")
    assert code == 0 and "Nothing was erased" in out
    assert await find_everywhere(database_url, ["Fatima el Amrani"]) != []

    code, out = await privacy(database_url, "erase", "--reference", reference, "--stop-open", "--yes")
    assert code == 0 and "1 staff member(s) will be told" in out
    assert (
        await find_everywhere(database_url, ["Fatima el Amrani", "Fatima", "Bankjes bij de speeltuin"])
        == [
            # The broker's notice waits in the outbox for the running bot; it names the reference only.
        ]
    )
    async with engine.connect() as conn:
        status = (await conn.execute(text("select status from initiatives"))).scalar()
        told = (await conn.execute(text("select chat_id, status from outbox"))).all()
    # The broker's notice waits in the outbox for the running bot; it names the reference only.
    assert status == "gestopt" and [tuple(r) for r in told] == [(5301, "pending")]
    code, _ = await privacy(database_url, "erase", "--reference", reference, "--yes")
    assert code == 2  # nobody left under that reference
    code, out = await privacy(database_url, "audit", "--since", "2026-01-01")
    assert "administrator  erasure" in out and "via command line" in out
