"""/vergeetmij over the fake Bot API: the resident chooses, the bot erases, and afterwards no table on
SQLite or PostgreSQL holds their name, phone, Telegram id or anything they typed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import text

from storage.db import create_engine
from tests.e2e import containing, press, running_bot, say, submit_as
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.privacy_support import find_everywhere
from tests.test_e2e_cases import add_staff, meet, rows, text_of

pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RESIDENT_ID = 7_700_123
NAME = "Fatima Odabasi"
PHONE = "06 4871 2290"
TITLE = "Moestuin Kastanjehof"
IDEA = "Zes moestuinbakken achter de flat aan het Kastanjehof."
OWN = "Wij zaaien en wieden elke zaterdag."
TO_BROKER = "Mijn buurvrouw Henriette wil ook meedoen."
FROM_BROKER = "Fijn! Ik bel je maandag over de bakken."
NOTE = "Fatima Odabasi belde: ze wil de bakken bij de schuur."
DRAWING = "Tekening Fatima.pdf"
# The Telegram file ids of the voice note and the document Fatima sent her broker (set by ``talk``).
SENT_FILES: list[str] = []


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def clock() -> datetime:
    return NOW


async def submit(resident: FakeUser) -> str:
    """Fatima shares her idea with her name and phone number; returns the reference."""
    return await submit_as(resident, title=TITLE, idea=IDEA, own=OWN, name=NAME, contact=PHONE)


@contextlib.asynccontextmanager
async def story(fake: FakeBotApi, database_url: str) -> AsyncIterator[tuple[FakeUser, FakeUser, str]]:
    """The running bot once Fatima has submitted and talked with Bea, her broker: (broker, resident,
    reference)."""
    broker = fake.user(5301, "Bea", language_code="en")
    resident = fake.user(RESIDENT_ID, "Fatima", language_code="en")
    await add_staff(database_url, broker.id, "Bea Bakker")
    async with running_bot(fake, database_url, clock=clock):
        await meet(broker)
        reference = await submit(resident)
        await talk(resident, broker, reference)
        yield broker, resident, reference


async def talk(resident: FakeUser, broker: FakeUser, reference: str) -> None:
    """Messages both ways, and a staff note that quotes the resident."""
    await broker.wait_for_message(containing("A new initiative for you."))
    await press(broker, "Message to initiator", "Write your message to the initiator.")
    await say(broker, FROM_BROKER, "Sent to")
    await resident.wait_for_message(containing(FROM_BROKER))
    await press(resident, "Reply", "Write your message to your initiative broker")
    await say(resident, TO_BROKER, "✔ Sent to")
    await broker.wait_for_message(containing(TO_BROKER))
    # A voice note and a drawing, sent without "Reply": they go to Bea too.
    SENT_FILES.clear()
    voice = await resident.send_voice(duration=9)
    await resident.wait_for_message(containing("✔ Sent to"))
    drawing = await resident.send_document(DRAWING)
    await resident.wait_for_message(containing("✔ Sent to"))
    SENT_FILES.extend([voice["message"]["voice"]["file_id"], drawing["message"]["document"]["file_id"]])
    await broker.wait_for_message(lambda m: m.document is not None)
    await say(broker, f"/zaak {reference}", reference)
    await press(broker, "Note", "Write your note.")
    await say(broker, NOTE, "Note saved")


async def realised(database_url: str, reference: str) -> None:
    """The case ends as realised (the broker's steps to get there are tested elsewhere)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("update initiatives set status = 'gerealiseerd' where reference = :r"), {"r": reference}
            )
    finally:
        await engine.dispose()


def traces(reference: str) -> list[str]:
    """What must be gone: name, phone (as typed and as digits), Telegram id, and everything typed."""
    return [
        NAME,
        PHONE,
        PHONE.replace(" ", ""),
        str(RESIDENT_ID),
        TITLE,
        IDEA,
        OWN,
        TO_BROKER,
        FROM_BROKER,
        DRAWING,
        *SENT_FILES,
    ]


async def test_erasure_with_an_open_initiative_stopped_leaves_nothing_of_the_person(
    fake: FakeBotApi, database_url: str
) -> None:
    async with story(fake, database_url) as (broker, resident, reference):
        asked = await say(resident, "/vergeetmij", "I can delete all your data.")
        assert reference in text_of(asked) and TITLE in text_of(asked)
        assert asked.button_labels == [
            "Stop and delete everything",
            "Let it go on without my data",
            "No, delete nothing",
        ]
        await press(resident, "Stop and delete everything", "Done. I deleted your data.")
        told = await broker.wait_for_message(containing(f"The initiator of {reference} asked us"))
        assert "the initiative is stopped" in text_of(told) and NAME not in text_of(told)

    assert await find_everywhere(database_url, traces(reference)) == []
    async with running_bot(fake, database_url, clock=clock):
        # A stranger now: the bot knows no initiative of theirs.
        await say(resident, "/mijn", "You have not submitted an initiative yet.")
    status, title, contact = (
        await rows(
            database_url,
            "select status, title, contact_name from initiatives where reference = :r",
            r=reference,
        )
    )[0]
    assert (status, title, contact) == ("gestopt", "[verwijderd]", "")
    notes = [
        note
        for (note,) in await rows(
            database_url,
            "select e.note from initiative_events e join initiatives i on i.id = e.initiative_id "
            "where i.reference = :r order by e.id",
            r=reference,
        )
    ]
    assert "op verzoek van de inwoner" in notes
    assert "Gegevens van de indiener verwijderd op verzoek" in notes
    assert "[verwijderd] belde: ze wil de bakken bij de schuur." in notes  # the staff note, without her
    assert await rows(
        database_url, "select action, detail from audit_log where action = 'erasure' order by id"
    ) == [("erasure", "case"), ("erasure", "person, 1 cases, via chat")]


async def test_erasure_keeps_an_open_initiative_going_without_the_person(
    fake: FakeBotApi, database_url: str
) -> None:
    async with story(fake, database_url) as (broker, resident, reference):
        await say(resident, "/vergeetmij", "I can delete all your data.")
        bye = await press(resident, "Let it go on without my data", "Done. I deleted your data.")
        assert f"The municipality goes on with {reference}, without your data." in text_of(bye)
        told = await broker.wait_for_message(containing(f"The initiator of {reference} asked us"))
        assert "you can no longer reach them" in text_of(told)

        # The broker can still work on the case, but cannot write to its initiator any more.
        await say(broker, f"/zaak {reference}", reference)
        await press(broker, "Message to initiator", "Write your message to the initiator.")
        await say(broker, "Hallo?", "you can no longer reach them")

    gone = [
        NAME,
        PHONE,
        PHONE.replace(" ", ""),
        str(RESIDENT_ID),
        TO_BROKER,
        FROM_BROKER,
        DRAWING,
        *SENT_FILES,
    ]
    assert len(SENT_FILES) == 2
    assert await find_everywhere(database_url, gone) == []
    # The idea itself stays with the case, which goes on.
    status, title, description = (
        await rows(
            database_url,
            "select status, title, description from initiatives where reference = :r",
            r=reference,
        )
    )[0]
    assert (status, title, description) == ("toegewezen", TITLE, IDEA)


async def test_erasure_without_initiatives_asks_once_and_can_be_cancelled(
    fake: FakeBotApi, database_url: str
) -> None:
    resident = fake.user(RESIDENT_ID, "Fatima", language_code="nl")
    async with running_bot(fake, database_url, clock=clock):
        await say(resident, "/start", "Wat wil je doen?")
        await say(resident, "/vergeetmij", "Ik kan al je gegevens verwijderen.")
        await press(resident, "Nee, niets verwijderen", "Ik heb niets verwijderd.")
        assert await rows(database_url, "select count(*) from people") == [(1,)]

        await say(resident, "/help", "/vergeetmij")
        await press(resident, "Mijn gegevens verwijderen", "Zal ik alles verwijderen?")
        await press(resident, "Ja, verwijder al mijn gegevens", "Klaar. Ik heb je gegevens verwijderd.")

    assert await find_everywhere(database_url, [str(RESIDENT_ID), "Fatima"]) == []


async def test_erasure_of_someone_whose_initiative_has_ended_anonymises_it(
    fake: FakeBotApi, database_url: str
) -> None:
    async with story(fake, database_url) as (broker, resident, reference):
        await realised(database_url, reference)

        asked = await say(resident, "/vergeetmij", "I can delete all your data.")
        assert "1 initiative of yours has ended: it loses your name and texts too." in text_of(asked)
        assert asked.button_labels == ["Yes, delete all my data", "No, delete nothing"]
        await press(resident, "Yes, delete all my data", "Done. I deleted your data.")

    assert await find_everywhere(database_url, traces(reference)) == []
    assert await rows(
        database_url,
        "select status, title, anonymised_at is not null from initiatives where reference = :r",
        r=reference,
    ) == [("gerealiseerd", "[verwijderd]", True)]
    # The broker was not told: the case had ended, nobody works on it any more.
    assert not [m for m in broker.sent() if f"The initiator of {reference}" in (m.text or "")]
