"""The guard for free text over Telegram, on SQLite and PostgreSQL: a phone number or BSN typed where it
does not belong is refused kindly, and no table keeps it; the text sent again without it goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text

from storage.db import create_engine
from storage.models import Base
from tests.e2e import containing, press, running_bot, say
from tests.fake_bot_api import FakeBotApi
from tests.test_e2e_cases import add_staff, clock, meet, submit, text_of, timeline_rows

pytestmark = pytest.mark.timeout(90)

IDEA = "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def stored_anywhere(database_url: str, *needles: str) -> list[str]:
    """The tables whose raw rows hold any of ``needles`` (every table, every column, as text)."""
    engine = create_engine(database_url)
    found: list[str] = []
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = (await conn.execute(text(f"select * from {table.name}"))).all()
                raw = repr([tuple(row) for row in rows])
                found.extend(f"{table.name}: {needle}" for needle in needles if needle in raw)
    finally:
        await engine.dispose()
    return found


async def test_an_idea_with_a_phone_number_is_refused_and_not_stored_then_goes_on_without_it(
    fake: FakeBotApi, database_url: str
) -> None:
    anna = fake.user(3101, "Anna", language_code="nl")
    async with running_bot(fake, database_url):
        await say(anna, "/start", "Wat wil je doen?")
        await press(anna, "Nieuw initiatief", "Wat is je idee?")
        refused = await say(
            anna,
            "Drie bankjes bij de speeltuin. Bel me op 06-12345678 of 0575 123456.",
            "Ik zie een telefoonnummer in je tekst.",
        )
        shown = text_of(refused)
        assert "Je contactgegevens vraag ik apart." in shown
        assert "Wil je je tekst nog een keer sturen, zonder het nummer?" in shown
        assert "12345678" not in shown and "123456" not in shown.replace(" ", "")
        # The question comes again with it, so the resident can just answer it.
        assert shown.endswith("Je mag ook een spraakbericht sturen.")

        assert await stored_anywhere(database_url, "12345678", "123456", "speeltuin. Bel") == []

        await say(anna, IDEA, "Klopt dat?")
        await press(anna, "✏️ Andere titel", "titel")
        await say(anna, "Bankjes in het park", "thema")
        await press(anna, "Groen", "wijk")
        await press(anna, "Waterkwartier", "Wat kun je zelf")
        await say(anna, "Wij verven de bankjes.", "buren")
        await press(anna, "Weet ik nog niet", "Wat heb je nodig?")
        await anna.press_button("▫️ Hulp van vrijwilligers")
        await fake.wait_for_calls("editMessageReplyMarkup", 1)
        await anna.press_button("Klaar ✔")
        await anna.wait_for_message(containing("foto"))
        await press(anna, "Geen foto", "e-mail")
        await say(anna, "06-12345678", "naam")  # the contact question is where the number belongs
        await say(anna, "Anna", "Kijk je initiatief nog even na")
        await press(anna, "✔ Ik ga akkoord, stuur mijn idee", "INI-")

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(text("select description, contact_phone from initiatives"))).all()
    finally:
        await engine.dispose()
    assert [row[0] for row in stored] == [IDEA]
    assert stored[0][1]  # given at the contact question, and only there
    assert "initiatives: " + IDEA in await stored_anywhere(database_url, IDEA)  # the search does find


async def test_a_message_to_the_broker_with_a_bsn_is_refused_not_relayed_and_can_be_sent_again(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5401, "Bea", language_code="en")
    anna = fake.user(1501, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await anna.wait_for_message(containing("is your initiatiefmakelaar"))

        await press(anna, "Message to my initiatiefmakelaar", "Write your message")
        refused = await say(
            anna,
            "Voor de subsidie: mijn BSN is 1234.56.782.",
            "I see a number that looks like a citizen service number (BSN).",
        )
        shown = text_of(refused)
        assert "Never share your BSN in a chat." in shown and "Please send your text again" in shown
        assert "782" not in shown
        assert refused.button_labels == ["Cancel"]
        assert await stored_anywhere(database_url, "1234.56.782", "123456782", "Voor de subsidie") == []

        # Still waiting for the message: the resident just sends it again, without the number.
        await say(anna, "Voor de subsidie: wat hebben jullie nog nodig?", "Sent to your initiatiefmakelaar")
        relayed = await bea.wait_for_message(containing(f"Message from Anna about {reference}"))
        assert "wat hebben jullie nog nodig?" in text_of(relayed)

    assert [m for m in bea.sent() if "1234.56.782" in (m.text or "")] == []
    assert len([m for m in bea.sent() if "Message from Anna" in (m.text or "")]) == 1
    timeline = await timeline_rows(database_url, reference)
    messages = [row[5] for row in timeline if str(row[0]).startswith("message")]
    assert messages == ["Voor de subsidie: wat hebben jullie nog nodig?"]
    assert await stored_anywhere(database_url, "1234.56.782", "123456782") == []
