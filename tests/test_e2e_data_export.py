"""A resident asks what is stored about them (/mijngegevens): the real PTB Application against the fake Bot
API, on SQLite and PostgreSQL. They get a short summary and a JSON file with their own data only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e import containing, press, running_bot, say, submit_as
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage
from tests.test_e2e_cases import add_staff, meet, rows

pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANNA_ID, BOB_ID, BEA_ID = 7_100_451, 7_777_123, 5_555_321


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def clock() -> datetime:
    return NOW


def has_document(message: SentMessage) -> bool:
    return message.document is not None


async def exported(fake: FakeBotApi, user: FakeUser) -> tuple[str, dict[str, Any], str]:
    """The summary and the file the resident gets (the file parsed, and as text)."""
    summary = await user.wait_for_message(containing("This is what we keep about you"))
    document = await user.wait_for_message(has_document)
    assert document.document is not None
    assert document.document["file_name"] == f"mijngegevens-{NOW.date().isoformat()}.json"
    assert document.document["mime_type"] == "application/json"
    assert document.text == "All your data, in a file (JSON)."
    raw = fake.document_data(document).decode("utf-8")
    return summary.text or "", json.loads(raw), raw


async def test_a_resident_gets_all_their_own_data_and_nothing_of_anyone_else(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(BEA_ID, "Bea", language_code="en")
    anna = fake.user(ANNA_ID, "Anna", language_code="en")
    bob = fake.user(BOB_ID, "Bob", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        mine = await submit_as(
            anna,
            title="Bankjes in het park",
            idea="Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.",
            own="Wij verven de bankjes.",
            name="Anna de Vries",
            contact="anna@example.nl",
        )
        await bea.wait_for_message(containing("A new initiative for you."))
        await press(bea, "Message to initiator", "Write your message to the initiator.")
        await say(bea, "Hoi Anna, zullen we donderdag bellen?", "Sent to Anna de Vries.")
        await anna.wait_for_message(containing("Hoi Anna, zullen we donderdag bellen?"))
        await press(anna, "Reply", f"Write your message to your initiatiefmakelaar about {mine}.")
        await say(anna, "Ja, na vijf uur graag.", "Sent to your initiatiefmakelaar Bea Bakker.")
        await press(bea, "Note", "Write your note. Only staff can see it.")
        await say(bea, "Lastige buurman, voorzichtig aanpakken.", f"Note saved on {mine}.")

        theirs = await submit_as(
            bob,
            title="Speeltuin aan de Rijnstraat",
            idea="Een nieuwe glijbaan voor de kinderen uit de straat.",
            own="Wij zoeken sponsors bij de bakker.",
            name="Bob Jansen",
            contact="0612345678",
        )
        await bea.wait_for_message(containing(f"{theirs}"))
        await press(bea, "Message to initiator", "Write your message to the initiator.")
        await say(bea, "Hoi Bob, mooi plan!", "Sent to Bob Jansen.")
        await bob.wait_for_message(containing("Hoi Bob, mooi plan!"))
        await press(bob, "Reply", f"Write your message to your initiatiefmakelaar about {theirs}.")
        await say(bob, "Dank je, Bea. Groet van Bob.", "Sent to your initiatiefmakelaar Bea Bakker.")

        # Anna starts a second idea, and asks in the middle of it.
        await press(anna, "New initiative", "What is your idea?")
        await say(anna, "De speeltuin opknappen met nieuwe toestellen voor de kinderen.", "Is that right?")
        await press(anna, "✏️ Other title", "What is the title")
        await say(anna, "Speeltuin opknappen", "Which theme")
        await anna.send_text("/mijngegevens")
        summary, data, raw = await exported(fake, anna)

        # The button under Help does the same.
        await say(anna, "/help", "/mijngegevens – see what we store about you")
        await anna.press_button("My data")
        _, again, _ = await exported(fake, anna)
        assert again["initiatives"] == data["initiatives"]

    assert "Do you want us to delete your data? Send /vergeetmij." in summary
    assert "Who sees it: the initiatiefmakelaars and coordinators of the municipality of Zutphen" in summary
    assert "until 24 months after your initiative has ended" in summary

    assert data["generated_at"] == NOW.isoformat()
    assert data["municipality"]["name"] == "Zutphen"
    assert set(data["categories"]) >= {"profile", "draft", "initiatives", "messages", "consents"}
    assert "24 months" in data["categories"]["initiatives"]["retention"]
    assert data["profile"]["telegram_user_id"] == ANNA_ID
    assert data["profile"]["first_name"] == "Anna"
    assert data["draft"]["answers"]["title"] == "Speeltuin opknappen"

    (initiative,) = data["initiatives"]
    assert initiative["reference"] == mine
    assert initiative["title"] == "Bankjes in het park"
    assert initiative["own_contribution"] == "Wij verven de bankjes."
    assert initiative["contact"] == {"name": "Anna de Vries", "phone": None, "email": "anna@example.nl"}
    assert initiative["theme"] == {"code": "groen", "name": "Greenery"}
    assert initiative["wijk"]["name"] == "Waterkwartier"
    assert initiative["status"] == "toegewezen"
    assert initiative["consent_at"] == NOW.isoformat()
    assert initiative["publish_consent"] is True
    texts = [entry["text"] for entry in initiative["timeline"]]
    assert texts[0] == "submitted"
    assert "Message to you: Hoi Anna, zullen we donderdag bellen?" in texts
    assert any(entry["who"] == "Bea Bakker" for entry in initiative["timeline"])

    assert [(m["direction"], m["text"]) for m in data["messages"]] == [
        ("to_you", "Hoi Anna, zullen we donderdag bellen?"),
        ("from_you", "Ja, na vijf uur graag."),
    ]
    assert data["consents"] == [
        {"reference": mine, "privacy_consent_at": NOW.isoformat(), "publish_without_name": True}
    ]

    # Nothing of Bob, of the internal note, or of staff's Telegram ids.
    for foreign in (
        "Bob",
        "Rijnstraat",
        "glijbaan",
        "sponsors",
        "0612345678",
        theirs,
        str(BOB_ID),
        str(BEA_ID),
        "Lastige buurman",
    ):
        assert foreign not in raw, foreign

    # The file does not linger in the outbox, and the export is in the audit log without contents.
    documents = await rows(
        database_url, "select status, payload, payload_cleared_at from outbox where method = 'sendDocument'"
    )
    assert len(documents) == 2
    for status, payload, cleared_at in documents:
        assert status == "sent" and cleared_at is not None
        assert payload in ({}, "{}"), payload
    audit = await rows(
        database_url, "select action, staff_id, detail from audit_log where action = 'data_export'"
    )
    assert audit == [("data_export", None, "1 person, 1 case, via chat")] * 2


async def test_a_dutch_resident_without_initiatives_gets_a_dutch_summary_and_their_draft(
    fake: FakeBotApi, database_url: str
) -> None:
    lies = fake.user(7_200_001, "Lies", language_code="nl")
    async with running_bot(fake, database_url, clock=clock):
        await say(lies, "/start", "Wat wil je doen?")
        help_ = await say(lies, "/hulp", "/mijngegevens – bekijk wat we over je bewaren")
        assert help_.button_labels[-2:] == ["Mijn gegevens", "Mijn gegevens verwijderen"]
        await lies.press_button("Mijn gegevens")
        summary = await lies.wait_for_message(containing("Dit bewaren we over jou, en waarom:"))
        document = await lies.wait_for_message(has_document)
    text = summary.text or ""
    assert "Wil je dat we je gegevens verwijderen? Stuur /vergeetmij." in text
    assert "tot 24 maanden nadat je initiatief is afgelopen" in text
    assert document.text == "Al je gegevens, in een bestand (JSON)."
    data = json.loads(fake.document_data(document))
    assert data["language"] == "nl"
    assert data["profile"]["first_name"] == "Lies"
    assert data["draft"] is None and data["initiatives"] == [] and data["messages"] == []
    assert data["categories"]["initiatives"]["purpose"].startswith("Zodat een initiatiefmakelaar")
