"""Initiatiefmakelaars and coordinators on Telegram: the real PTB Application against the fake Bot API.

Each test is a story: a resident submits, the bot gives the initiative to the right broker, the broker
moves it through the municipality, and everybody hears what concerns them — on SQLite and PostgreSQL.
Staff are added straight into the database, as ``initiatiefbot staff add`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage import staff as staff_store
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from tests.e2e import containing, intake_until_summary, press, running_bot, say
from tests.e2e import submit as agree_and_send
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage

pytestmark = pytest.mark.timeout(60)

# A Monday morning; the bot's clock stands still, so absences and timelines are exact.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WATERKWARTIER, NOORDVEEN = "WK030101", "WK030102"
TITLE = "Bankjes in het park"  # what intake_until_summary answers; the contact name is "Anna"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def clock() -> datetime:
    return NOW


@contextlib.asynccontextmanager
async def database(database_url: str) -> AsyncIterator[AsyncSession]:
    """One transaction on the test database, migrated first (as the release step does)."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


async def add_staff(
    database_url: str,
    user_id: int,
    name: str,
    *,
    role: str = "broker",
    wijken: Collection[str] = (WATERKWARTIER,),
    themes: Collection[str] = (),
    absent_until: date | None = None,
) -> int:
    """Add a staff member as the staff command does; returns their staff id."""
    async with database(database_url) as session:
        row = await staff_store.add_staff(
            session,
            telegram_user_id=user_id,
            name=name,
            role=role,
            wijken=list(wijken),
            themes=list(themes),
            now=NOW,
        )
        if absent_until is not None:
            await staff_store.set_absent(session, row.id, absent_until)
        return row.id


async def rows(database_url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def case_row(database_url: str, reference: str) -> tuple[object, ...]:
    """(status, broker_id, department) of one initiative."""
    found = await rows(
        database_url,
        "select status, broker_id, department from initiatives where reference = :reference",
        reference=reference,
    )
    assert len(found) == 1, found
    return found[0]


async def timeline_rows(database_url: str, reference: str) -> list[tuple[object, ...]]:
    """(kind, status, actor_role, staff_id, to_staff_id, note, department, visible), oldest first."""
    return await rows(
        database_url,
        "select e.kind, e.status, e.actor_role, e.staff_id, e.to_staff_id, e.note, e.department, "
        "e.visible_to_resident from initiative_events e join initiatives i on i.id = e.initiative_id "
        "where i.reference = :reference order by e.at, e.id",
        reference=reference,
    )


async def meet(user: FakeUser) -> None:
    """Someone opens the chat with the bot (staff too: Telegram lets a bot write only to people who did)."""
    await say(user, "/start", "What do you want to do?")


async def submit(resident: FakeUser) -> str:
    """A resident answers the whole intake (Greenery, Waterkwartier) and submits; returns the reference."""
    await intake_until_summary(resident)
    return await agree_and_send(resident)


def text_of(message: SentMessage) -> str:
    return (message.text or "").replace("\xa0", " ")


async def refused(fake: FakeBotApi, query: dict[str, object]) -> str:
    """The short answer (toast) the bot gave to a button press."""
    answer = await fake.wait_for_answer(query)
    return answer.text or ""


# --- routing ------------------------------------------------------------------------------------


async def test_new_initiatives_go_to_a_present_broker_of_the_wijk_with_the_most_room(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5001, "Bea", language_code="en")
    dirk = fake.user(5002, "Dirk", language_code="en")
    bram = fake.user(5003, "Bram", language_code="en")
    carla = fake.user(5004, "Carla", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
    dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker")
    # The greenery specialist of Waterkwartier would come first, but is on holiday this week.
    bram_id = await add_staff(
        database_url, bram.id, "Bram Bos", themes=["groen"], absent_until=NOW.date() + timedelta(days=4)
    )
    # Works on greenery, but in another wijk.
    await add_staff(database_url, carla.id, "Carla Cornelissen", wijken=[NOORDVEEN], themes=["groen"])
    residents = [fake.user(1101 + i, f"Bewoner {i}", language_code="en") for i in range(3)]

    async with running_bot(fake, database_url, clock=clock):
        for person in (bea, dirk, bram, carla):
            await meet(person)

        first = await submit(residents[0])
        card = await bea.wait_for_message(containing("A new initiative for you."))
        assert first in text_of(card) and TITLE in text_of(card)
        assert "Status: Assigned" in text_of(card) and "Wijk: Waterkwartier · Theme: Greenery" in text_of(
            card
        )
        assert card.button_labels == [
            "Change status",
            "Message to initiator",
            "Note",
            "Hand over",
            "Timeline",
        ]
        told = await residents[0].wait_for_message(containing("is your initiatiefmakelaar"))
        assert "Bea Bakker" in text_of(told) and first in text_of(told)

        # Bea has one open case now, Dirk none: the next one goes to Dirk.
        second = await submit(residents[1])
        await dirk.wait_for_message(containing(second))
        await residents[1].wait_for_message(containing("Dirk Dekker is your initiatiefmakelaar"))

        # Bram is back early: as the greenery specialist he goes before the generalists.
        async with database(database_url) as session:
            await staff_store.set_absent(session, bram_id, None)
        third = await submit(residents[2])
        await bram.wait_for_message(containing(third))
        await residents[2].wait_for_message(containing("Bram Bos is your initiatiefmakelaar"))

        await say(carla, "/zaken", "You have no open initiatives.")

    assert await case_row(database_url, first) == ("toegewezen", bea_id, None)
    assert await case_row(database_url, second) == ("toegewezen", dirk_id, None)
    assert await case_row(database_url, third) == ("toegewezen", bram_id, None)
    assert [
        (kind, status, role, to) for kind, status, role, _, to, *_ in await timeline_rows(database_url, first)
    ] == [
        ("status", "ingediend", "resident", None),
        ("assigned", None, "system", bea_id),
        ("status", "toegewezen", "system", None),
    ]
    assert not [m for m in carla.sent() if "A new initiative" in (m.text or "")]


async def test_a_wijk_without_broker_alerts_its_coordinator_who_assigns_one(
    fake: FakeBotApi, database_url: str
) -> None:
    cora = fake.user(5101, "Cora", language_code="en")
    cees = fake.user(5102, "Cees", language_code="en")
    dirk = fake.user(5103, "Dirk", language_code="en")
    anna = fake.user(1201, "Anna", language_code="en")
    await add_staff(database_url, cora.id, "Cora Claassen", role="coordinator", wijken=[])
    await add_staff(database_url, cees.id, "Cees Claassen", role="coordinator", wijken=[NOORDVEEN])
    dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker", wijken=[NOORDVEEN])

    async with running_bot(fake, database_url, clock=clock):
        for person in (cora, cees, dirk):
            await meet(person)
        reference = await submit(anna)
        alert = await cora.wait_for_message(containing("without an initiatiefmakelaar"))
        assert f"{reference} · {TITLE} (wijk: Waterkwartier)" in text_of(alert)
        assert "No initiatiefmakelaar works in this wijk." in text_of(alert)
        assert alert.button_labels == ["Assign", "Open"]

        # Until someone is assigned, a message from the resident goes to the coordinator.
        await press(anna, "My initiatives", "Your initiatives:")
        await press(anna, f"View {reference}", f"Timeline of {reference}")
        await press(anna, "Message to my initiatiefmakelaar", "Write your message")
        await say(anna, "Wanneer hoor ik iets?", "went to the coordinator")
        relayed = await cora.wait_for_message(containing(f"Message from Anna about {reference}"))
        assert "Wanneer hoor ik iets?" in text_of(relayed)

        listed = await say(cora, "/zaken", "Initiatives without an initiatiefmakelaar:")
        assert reference in text_of(listed) and f"Open {reference}" in listed.button_labels

        await cora.press(alert, alert.callback_data[0])
        menu = await cora.wait_for_message(containing(f"Who becomes the initiatiefmakelaar of {reference}?"))
        assert menu.button_labels == ["Dirk Dekker (0 open)", "Cancel"]
        await press(cora, "Dirk Dekker (0 open)", f"{reference} is assigned to Dirk Dekker.")
        card = await dirk.wait_for_message(containing("Cora Claassen assigned this initiative to you."))
        assert reference in text_of(card)
        await anna.wait_for_message(containing("Good news: Dirk Dekker is your initiatiefmakelaar"))
        await say(cees, "/help", "/nieuw")  # a barrier: Cees's updates and messages come in order

    assert await case_row(database_url, reference) == ("toegewezen", dirk_id, None)
    # Cees only covers Noordveen: the alert and the message were not for him.
    assert not [m for m in cees.sent() if reference in (m.text or "")]
    kinds = [(kind, status, role) for kind, status, role, *_ in await timeline_rows(database_url, reference)]
    assert kinds == [
        ("status", "ingediend", "resident"),
        ("message_from_resident", None, "resident"),
        ("assigned", None, "coordinator"),
        ("status", "toegewezen", "coordinator"),
    ]


# --- the broker moves the case ------------------------------------------------------------------


async def change_status(broker: FakeUser, label: str) -> SentMessage:
    """The broker opens the status menu on the newest case card and picks ``label``."""
    await press(broker, "Change status", "what is the new status?")
    await broker.press_button(label)
    return await broker.wait_for_message()


async def test_broker_moves_initiative_to_realised_and_resident_hears_each_step(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5201, "Bea", language_code="en")
    anna = fake.user(1301, "Anna", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await anna.wait_for_message(containing("is your initiatiefmakelaar"))

        menu = await press(bea, "Change status", "what is the new status?")
        assert menu.button_labels == ["In conversation", "Stopped", "Cancel"]
        await bea.press_button("In conversation")
        await bea.wait_for_message(containing("Do you want to add a note for the initiator?"))
        card = await press(bea, "No note", "Status changed. The initiator has been told.")
        assert "Status: In conversation" in text_of(card)
        heard = await anna.wait_for_message(containing("You are now in conversation with Bea Bakker"))
        assert f"“{TITLE}”" in text_of(heard) and f"Reference: {reference}" in text_of(heard)

        departments = await change_status(bea, "With the municipality")
        assert "Which department is it waiting for?" in text_of(departments)
        assert departments.button_labels[0] == "Verkeer" and departments.button_labels[-1] == "Cancel"
        await press(bea, "Verkeer", "What is the question for Verkeer?")
        card = await say(bea, "Mogen de bankjes op de stoep staan?", "Status changed.")
        assert "Status: With the municipality (Verkeer)" in text_of(card)
        heard = await anna.wait_for_message(containing("is now with the municipality"))
        assert "at the department Verkeer" in text_of(heard)
        assert "Bea Bakker asked: Mogen de bankjes op de stoep staan?" in text_of(heard)
        assert await case_row(database_url, reference) == ("bij_gemeente", bea_id, "verkeer")

        ask = await change_status(bea, "Approved")
        assert "New status: Approved" in text_of(ask)
        await say(bea, "De gemeente plaatst ze in april.", "Status changed.")
        heard = await anna.wait_for_message(containing("has been approved"))
        assert "Bea Bakker writes: De gemeente plaatst ze in april." in text_of(heard)

        await change_status(bea, "Being carried out")
        await press(bea, "No note", "Status changed.")
        await anna.wait_for_message(containing("is being carried out now"))

        await change_status(bea, "Done")
        final = await press(bea, "No note", "Status changed.")
        assert "Status: Done" in text_of(final) and final.button_labels == ["Timeline"]
        heard = await anna.wait_for_message(containing("is done! Thank you"))
        assert "Stop my initiative" not in heard.button_labels

        timeline = await press(bea, "Timeline", f"Timeline of {reference}")
        shown = text_of(timeline)
        steps = ["Submitted", "Assigned", "In conversation", "With the municipality", "Approved"]
        positions = [shown.index(step) for step in [*steps, "Being carried out", "Done"]]
        assert positions == sorted(positions, reverse=True), shown  # newest first
        assert "(department: Verkeer) Mogen de bankjes op de stoep staan?" in shown

    assert await case_row(database_url, reference) == ("gerealiseerd", bea_id, None)
    changes = [
        (status, role, staff, department)
        for kind, status, role, staff, _, _, department, _ in await timeline_rows(database_url, reference)
        if kind == "status"
    ]
    assert changes == [
        ("ingediend", "resident", None, None),
        ("toegewezen", "system", None, None),
        ("in_gesprek", "broker", bea_id, None),
        ("bij_gemeente", "broker", bea_id, "verkeer"),
        ("goedgekeurd", "broker", bea_id, None),
        ("in_uitvoering", "broker", bea_id, None),
        ("gerealiseerd", "broker", bea_id, None),
    ]


async def test_messages_are_relayed_between_resident_and_broker_both_ways(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5301, "Bea", language_code="en")
    anna = fake.user(1401, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))

        await press(bea, "Message to initiator", "Write your message to the initiator.")
        await say(
            bea, "Hoi Anna, zullen we donderdag bellen?", "Sent to Anna. The message is on the timeline"
        )
        got = await anna.wait_for_message(containing("Message from your initiatiefmakelaar Bea Bakker"))
        assert "Hoi Anna, zullen we donderdag bellen?" in text_of(got) and reference in text_of(got)
        assert got.button_labels == ["Reply"]

        await press(anna, "Reply", f"Write your message to your initiatiefmakelaar about {reference}.")
        await say(anna, "Ja, na vijf uur graag.", "Sent to your initiatiefmakelaar Bea Bakker.")
        relayed = await bea.wait_for_message(containing(f"Message from Anna about {reference} · {TITLE}:"))
        assert "Ja, na vijf uur graag." in text_of(relayed)
        assert relayed.button_labels == ["Reply", "Open"]

        await press(bea, "Reply", "Write your message to the initiator.")
        await say(bea, "Prima, tot donderdag!", "Sent to Anna.")
        await anna.wait_for_message(containing("Prima, tot donderdag!"))

        # Cancelling sends nothing.
        await press(anna, "Reply", "Write your message")
        await press(anna, "Cancel", "Nothing was sent.")
        await say(anna, "hallo", "What do you want to do?")  # plain text again, not a message

    messages = [
        (kind, role, note)
        for kind, _, role, _, _, note, _, _ in await timeline_rows(database_url, reference)
        if kind.startswith("message")
    ]
    assert messages == [
        ("message_to_resident", "broker", "Hoi Anna, zullen we donderdag bellen?"),
        ("message_from_resident", "resident", "Ja, na vijf uur graag."),
        ("message_to_resident", "broker", "Prima, tot donderdag!"),
    ]
    assert len([m for m in bea.sent() if "Message from Anna" in (m.text or "")]) == 1


# --- coordinators and colleagues ----------------------------------------------------------------


async def test_coordinator_reassigns_an_initiative_and_everybody_hears_it(
    fake: FakeBotApi, database_url: str
) -> None:
    cora = fake.user(5401, "Cora", language_code="en")
    bea = fake.user(5402, "Bea", language_code="en")
    dirk = fake.user(5403, "Dirk", language_code="en")
    eva = fake.user(5404, "Eva", language_code="en")
    anna = fake.user(1501, "Anna", language_code="en")
    cora_id = await add_staff(database_url, cora.id, "Cora Claassen", role="coordinator", wijken=[])
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
    dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker", wijken=[NOORDVEEN])
    await add_staff(database_url, eva.id, "Eva Evers", absent_until=date(2026, 3, 20))
    # Added, but never opened the bot: she could not get the case, so she is not offered.
    await add_staff(database_url, 5405, "Fien Fransen")

    async with running_bot(fake, database_url, clock=clock):
        for person in (cora, bea, dirk, eva):
            await meet(person)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))

        await say(bea, f"/toewijzen {reference}", "Only a coordinator can assign initiatives.")
        menu = await say(
            cora, f"/toewijzen {reference}", f"Who becomes the initiatiefmakelaar of {reference}?"
        )
        labels = menu.button_labels
        assert labels[-1] == "Cancel" and "Dirk Dekker (0 open)" in labels
        assert any(label.startswith("Eva Evers (0 open, absent until") for label in labels), labels
        assert not any(label.startswith("Bea Bakker") for label in labels)  # she has it already
        assert not any(label.startswith("Fien Fransen") for label in labels)

        await press(cora, "Dirk Dekker (0 open)", f"{reference} is assigned to Dirk Dekker.")
        card = await dirk.wait_for_message(containing("Cora Claassen assigned this initiative to you."))
        assert "Initiatiefmakelaar: Dirk Dekker" in text_of(card)
        await bea.wait_for_message(containing(f"{reference} now goes to Dirk Dekker."))
        await anna.wait_for_message(
            containing(f"Your initiative “{TITLE}” has a new initiatiefmakelaar: Dirk Dekker.")
        )

        # Bea's old card no longer works for her.
        await press(bea, "Change status", "This initiative is not assigned to you.")
        await say(dirk, "/zaken", reference)

    assert await case_row(database_url, reference) == ("toegewezen", dirk_id, None)
    assignments = [
        (role, staff, to)
        for kind, _, role, staff, to, *_ in await timeline_rows(database_url, reference)
        if kind == "assigned"
    ]
    assert assignments == [("system", None, bea_id), ("coordinator", cora_id, dirk_id)]


async def test_broker_hands_an_initiative_over_to_a_colleague_with_a_note(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5501, "Bea", language_code="en")
    dirk = fake.user(5502, "Dirk", language_code="en")
    anna = fake.user(1601, "Anna", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
    dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker", wijken=[NOORDVEEN])

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        await meet(dirk)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))

        menu = await press(bea, "Hand over", f"To whom do you hand over {reference}?")
        assert menu.button_labels == ["Dirk Dekker (0 open)", "Cancel"]
        await press(bea, "Dirk Dekker (0 open)", "Write a short note for your colleague")
        await say(bea, "Anna belt liever na vijf uur.", f"{reference} is now with Dirk Dekker.")
        card = await dirk.wait_for_message(containing("Bea Bakker handed this initiative over to you."))
        assert reference in text_of(card) and "Change status" in card.button_labels
        await dirk.wait_for_message(containing("Note from Bea Bakker: Anna belt liever na vijf uur."))
        await anna.wait_for_message(containing("has a new initiatiefmakelaar: Dirk Dekker."))
        await press(bea, "Note", "This initiative is not assigned to you.")

        # And back again, without a note.
        await press(dirk, "Hand over", f"To whom do you hand over {reference}?")
        await press(dirk, "Bea Bakker (0 open)", "Write a short note")
        await press(dirk, "No note", f"{reference} is now with Bea Bakker.")
        await bea.wait_for_message(containing("Dirk Dekker handed this initiative over to you."))

        # The note between colleagues stays internal.
        await press(anna, "My initiatives", "Your initiatives:")
        timeline = await press(anna, f"View {reference}", f"Timeline of {reference}")
        assert "vijf uur" not in text_of(timeline)

    assert await case_row(database_url, reference) == ("toegewezen", bea_id, None)
    handovers = [
        (staff, to, note, visible)
        for kind, _, _, staff, to, note, _, visible in await timeline_rows(database_url, reference)
        if kind == "handover"
    ]
    assert handovers == [
        (bea_id, dirk_id, "Anna belt liever na vijf uur.", False),
        (dirk_id, bea_id, None, False),
    ]


# --- staff commands ------------------------------------------------------------------------------


async def test_staff_invite_link_makes_someone_a_broker_who_then_gets_initiatives(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5601, "Bea", language_code="en")
    mallory = fake.user(5602, "Mallory", language_code="en")
    anna = fake.user(1701, "Anna", language_code="en")
    async with database(database_url) as session:
        invite = await staff_store.create_invite(
            session, role="broker", name="Bea Bakker", wijken=[WATERKWARTIER], themes=[], now=NOW
        )

    async with running_bot(fake, database_url, clock=clock):
        welcome = await say(bea, f"/start {invite.code}", "Welcome, Bea Bakker!")
        assert "You are now an initiatiefmakelaar for: Waterkwartier." in text_of(welcome)
        await say(bea, "/zaken", "You have no open initiatives.")
        await say(mallory, f"/start {invite.code}", "This invitation does not work (any more).")
        await say(mallory, "/start not-a-real-invitation-code", "This invitation does not work")

        reference = await submit(anna)
        card = await bea.wait_for_message(containing("A new initiative for you."))
        assert reference in text_of(card)

    staff = await rows(database_url, "select telegram_user_id, name, role, wijken from staff")
    assert [(user, name, role) for user, name, role, _ in staff] == [(bea.id, "Bea Bakker", "broker")]
    used = await rows(database_url, "select used_by_user_id from staff_invites")
    assert used == [(bea.id,)]


async def test_zaken_lists_the_brokers_open_cases_and_zaak_opens_a_card(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5701, "Bea", language_code="en")
    residents = [fake.user(1801 + i, f"Bewoner {i}", language_code="en") for i in range(3)]
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        first, second, third = [await submit(r) for r in residents]
        await bea.wait_for_message(containing(third))
        # The third one is stopped: it is no longer open.
        await say(bea, f"/zaak {third}", f"{third} · {TITLE}")
        await change_status(bea, "Stopped")
        await say(bea, "Anna heeft geen tijd meer.", "Status changed.")

        listed = await say(bea, "/zaken", "Your open initiatives, most urgent first:")
        assert first in text_of(listed) and second in text_of(listed) and third not in text_of(listed)
        assert listed.button_labels == [f"Open {first}", f"Open {second}"]
        card = await press(bea, f"Open {second}", f"{second} · {TITLE}")
        assert "Status: Assigned" in text_of(card) and "0 of 5 working days in this status" in text_of(card)
        assert "Contact: Anna" in text_of(card) and "Amount: about €1,250" in text_of(card)

        card = await say(bea, f"/zaak {first.lower()}", f"{first} · {TITLE}")
        assert card.button_labels[0] == "Change status"
        await say(bea, "/zaak", "Add the reference, for example: /zaak INI-2026-0042")
        await say(bea, "/zaak INI-2026-0999", "I cannot find the initiative INI-2026-0999.")
        closed = await say(bea, f"/zaak {third}", f"{third} · {TITLE}")
        assert closed.button_labels == ["Timeline"]

    assert (await case_row(database_url, third))[0] == "gestopt"


# The norm is worked out in flows (tests/test_stall_views.py); one database is enough for the story.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_case_at_vergunningen_counts_against_its_own_norm_on_the_card_and_in_zaken(
    fake: FakeBotApi, database_url: str
) -> None:
    # Vergunningen has its own norm of 40 working days (config/zutphen.toml), as the watchdog knows.
    bea = fake.user(5751, "Bea", language_code="en")
    anna = fake.user(1851, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await change_status(bea, "In conversation")
        await press(bea, "No note", "Status changed.")
        await change_status(bea, "With the municipality")
        await press(bea, "Vergunningen", "What is the question for Vergunningen?")
        card = await say(bea, "Mag er een bankje op de stoep?", "Status changed.")
        assert "Status: With the municipality (Vergunningen)" in text_of(card)
        # The department's clock: its own norm, from the moment it got the question.
        assert "Vergunningen: 0 of 40 working days to answer" in text_of(card)
        listed = await say(bea, "/zaken", "Your open initiatives, most urgent first:")
        assert f"{reference} · {TITLE}\nWith the municipality · 0/40 working days" in text_of(listed)


async def test_staff_commands_are_politely_refused_for_residents(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5801, "Bea", language_code="en")
    anna = fake.user(1901, "Anna", language_code="en")
    olaf = fake.user(1902, "Olaf", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await meet(olaf)
        for command in ("/zaken", f"/zaak {reference}", f"/toewijzen {reference}"):
            answer = await say(olaf, command, "This command is only for staff of the municipality.")
            assert TITLE not in text_of(answer) and reference not in text_of(answer)
        await say(olaf, "/start", "What do you want to do?")  # and the chat goes on

    assert (await case_row(database_url, reference))[0] == "toegewezen"


async def test_staff_commands_in_a_group_chat_show_no_case_details(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5851, "Bea", language_code="en")
    anna = fake.user(1951, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    group = fake.group()

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        for command in (f"/zaak {reference}", "/zaken", f"/toewijzen {reference}"):
            await bea.in_group(group).send_text(command)
            pointer = await fake.wait_for_message(group, containing("private chat"))
            assert pointer.buttons == []
        await say(bea, f"/zaak {reference}", f"{reference} · {TITLE}")  # in her own chat it works

    assert not [m for m in fake.sent(group) if reference in (m.text or "") or "Anna" in (m.text or "")]


# --- forged and foreign buttons ------------------------------------------------------------------


async def test_a_resident_pressing_forged_buttons_is_refused(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5901, "Bea", language_code="en")
    anna = fake.user(2001, "Anna", language_code="en")
    olaf = fake.user(2002, "Olaf", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        notice = await anna.wait_for_message(containing("is your initiatiefmakelaar"))

        # Staff buttons, with the resident's own reference.
        for data in (f"c:{reference}:st:in_gesprek", f"c:{reference}:nonote:gestopt", f"c:{reference}:as:1"):
            query = await anna.press(notice, data, check_button=False)
            await anna.wait_for_message(containing("This button is only for staff of the municipality."))
            assert await refused(fake, query) == "Not possible."

        # Another resident's initiative.
        home = await say(olaf, "/start", "What do you want to do?")
        for action in ("stop", "msg", "tl"):
            query = await olaf.press(home, f"r:{reference}:{action}", check_button=False)
            await olaf.wait_for_message(containing("I cannot find that initiative."))
            assert await refused(fake, query) == "Not possible."
        await say(olaf, "Ik wil stoppen", "What do you want to do?")  # nothing is waiting for a reason

        # Garbage.
        query = await anna.press(notice, f"r:{reference}:explode", check_button=False)
        await anna.wait_for_message(containing("That button does not work here."))
        assert await refused(fake, query) == "Not possible."
        query = await anna.press(notice, "x" * 40, check_button=False)
        await anna.wait_for_message(containing("That button no longer works."))
        assert "no longer works" in await refused(fake, query)
        await say(bea, "/help", "/nieuw")  # a barrier

    assert await case_row(database_url, reference) == ("toegewezen", bea_id, None)
    assert len(await timeline_rows(database_url, reference)) == 3
    # Nothing reached the broker.
    assert not [m for m in bea.sent() if "Message from" in (m.text or "") or "stopped" in (m.text or "")]


async def test_a_broker_acting_on_someone_elses_case_or_with_forged_data_is_refused(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(6001, "Bea", language_code="en")
    dirk = fake.user(6002, "Dirk", language_code="en")
    anna = fake.user(2101, "Anna", language_code="en")
    karel = fake.user(2102, "Karel", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
    dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        await meet(dirk)
        beas = await submit(anna)
        bea_card = await bea.wait_for_message(containing(beas))
        dirks = await submit(karel)
        dirk_card = await dirk.wait_for_message(containing(dirks))

        # Dirk tries Bea's case: by command, and with buttons carrying her reference on his own card.
        await say(dirk, f"/zaak {beas}", "This initiative is not assigned to you.")
        for data in (
            f"c:{beas}:open",
            f"c:{beas}:st",
            f"c:{beas}:st:in_gesprek",
            f"c:{beas}:nonote:in_gesprek",
            f"c:{beas}:msg",
            f"c:{beas}:ho:{dirk_id}",
            f"c:{beas}:honote:{dirk_id}",
            f"c:{beas}:as:{dirk_id}",
            f"c:{beas}:tl",
        ):
            query = await dirk.press(dirk_card, data, check_button=False)
            await dirk.wait_for_message(containing("This initiative is not assigned to you."))
            assert await refused(fake, query) == "Not possible.", data

        # Bea on her own case, with steps that are not possible now or do not exist.
        refusals = {
            f"c:{beas}:st:gerealiseerd": "An initiative cannot go from Assigned to Done.",
            f"c:{beas}:st:toegewezen": "The initiative already has the status Assigned.",
            f"c:{beas}:nonote:goedgekeurd": "An initiative cannot go from Assigned to Approved.",
            f"c:{beas}:nonote:afgewezen": "An initiative cannot go from Assigned to Rejected.",
            f"c:{beas}:dep:verkeer": "An initiative cannot go from Assigned to With the municipality.",
            f"c:{beas}:st:opgeheven": "I don't know the status opgeheven.",
            f"c:{beas}:ho:{bea_id}": "Choose another initiatiefmakelaar.",
            f"c:{beas}:ho:99999999999": "Choose another initiatiefmakelaar.",
            f"c:{beas}:as:{dirk_id}": "That button does not work here.",  # only coordinators assign
            f"c:{beas}:boom": "That button does not work here.",
            "c:INI-2026-9999:st:in_gesprek": "This initiative does not exist (any more).",
            "c:INI-2026-0002:": "That button no longer works.",
        }
        for data, reason in refusals.items():
            query = await bea.press(bea_card, data, check_button=False)
            await bea.wait_for_message(containing(reason))
            assert await refused(fake, query), data

        # A forged handover to someone who is not a broker.
        query = await bea.press(bea_card, f"c:{beas}:honote:424242", check_button=False)
        await bea.wait_for_message(containing("cannot take initiatives"))
        await say(bea, "nog steeds van mij?", "What do you want to do?")
        assert await case_row(database_url, beas) == ("toegewezen", bea_id, None)

        # In conversation the municipality is one step away, but only a department that exists.
        await change_status(bea, "In conversation")
        await press(bea, "No note", "Status changed.")
        query = await bea.press(bea_card, f"c:{beas}:dep:nergens", check_button=False)
        await bea.wait_for_message(containing("That department does not exist."))
        assert await refused(fake, query) == "Not possible."
        query = await bea.press(bea_card, f"c:{beas}:nonote:bij_gemeente", check_button=False)
        await bea.wait_for_message(containing("Choose the department the question is for."))
        assert await refused(fake, query) == "Not possible."

    assert await case_row(database_url, beas) == ("in_gesprek", bea_id, None)
    assert await case_row(database_url, dirks) == ("toegewezen", dirk_id, None)
    assert len(await timeline_rows(database_url, beas)) == 4
    assert len(await timeline_rows(database_url, dirks)) == 3
    # Anna heard of the one real step only.
    assert len([m for m in anna.sent() if "You are now in conversation" in (m.text or "")]) == 1
    assert not [m for m in karel.sent() if "You are now in conversation" in (m.text or "")]


# --- the resident's side of the case -------------------------------------------------------------


async def test_resident_follows_the_timeline_from_my_initiatives(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(6101, "Bea", language_code="en")
    anna = fake.user(2201, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await press(bea, "Note", "Write your note. Only staff can see it.")
        await say(bea, "Lijkt op het plan van vorig jaar.", f"Note saved on {reference}.")
        await change_status(bea, "In conversation")
        await say(bea, "Ik bel je morgen.", "Status changed.")
        await anna.wait_for_message(containing("Bea Bakker writes: Ik bel je morgen."))

        mine = await say(anna, "/mijn", "Your initiatives:")
        assert f"{reference} · {TITLE}" in text_of(mine)
        assert "Status: in conversation with your initiatiefmakelaar (since March 2, 2026)" in text_of(mine)
        timeline = await press(anna, f"View {reference}", f"Timeline of {reference} · {TITLE}")
        shown = text_of(timeline)
        assert "you\nsubmitted" in shown
        assert "an initiatiefmakelaar is assigned" in shown
        assert "Bea Bakker\nin conversation with your initiatiefmakelaar Ik bel je morgen." in shown
        assert "Mar 2, 2026" in shown
        assert "vorig jaar" not in shown  # the internal note
        assert timeline.button_labels == [
            "Message to my initiatiefmakelaar",
            "Timeline",
            "Stop my initiative",
        ]

        staff_view = await press(bea, "Timeline", f"Timeline of {reference}")
        assert "Internal note: Lijkt op het plan van vorig jaar." in text_of(staff_view)

    notes = [
        (visible, note)
        for kind, _, _, _, _, note, _, visible in await timeline_rows(database_url, reference)
        if kind == "note"
    ]
    assert notes == [(False, "Lijkt op het plan van vorig jaar.")]


async def test_resident_withdraws_own_initiative_with_a_reason_and_the_broker_is_told(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(6201, "Bea", language_code="en")
    anna = fake.user(2301, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))

        await press(anna, "My initiatives", "Your initiatives:")
        await press(anna, f"View {reference}", f"Timeline of {reference}")
        await press(anna, "Stop my initiative", f"Do you want to stop “{TITLE}”?")
        await press(anna, "No, go on", "OK. Nothing was sent.")
        await press(anna, "Stop my initiative", f"Do you want to stop “{TITLE}”?")
        await say(anna, "We verhuizen naar Deventer.", f"Your initiative “{TITLE}” is stopped.")
        told = await bea.wait_for_message(containing(f"Anna stopped {reference} · {TITLE}."))
        assert "The reason: We verhuizen naar Deventer." in text_of(told)

        await press(anna, "Stop my initiative", "This initiative has already ended.")
        await press(bea, "Change status", "This initiative is closed.")
        await say(bea, "/zaken", "You have no open initiatives.")

    assert (await case_row(database_url, reference))[0] == "gestopt"
    last = (await timeline_rows(database_url, reference))[-1]
    assert last[:3] == ("status", "gestopt", "resident") and last[5] == "We verhuizen naar Deventer."
