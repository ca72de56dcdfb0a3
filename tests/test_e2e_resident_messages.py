"""A resident talks to their initiatiefmakelaar without pressing "Reply" first: typed, swiped, with a
photo, a voice note or a document; asked "for whom?" when the bot cannot know. The real PTB Application
against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from tests.e2e import containing, press, running_bot, say
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage
from tests.test_e2e_cases import NOW, TITLE, add_staff, meet, rows, submit, text_of, timeline_rows

pytestmark = pytest.mark.timeout(90)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


class Clock:
    """The bot's clock, moved on by the test (never the wall clock)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def wait(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def broker_writes(bea: FakeUser, resident: FakeUser, text: str) -> SentMessage:
    """Bea writes to the initiator from the case card she got; returns the message as the resident has it."""
    await press(bea, "Message to initiator", "Write your message to the initiator.")
    await say(bea, text, "The message is on the timeline")
    return await resident.wait_for_message(containing(text))


async def recorded(database_url: str, message: SentMessage, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait until the bot recorded the Telegram message id of a message it sent: the fake shows it a
    commit before (a person never swipes that fast). The database has no event to wait for: this polls."""
    deadline = asyncio.get_running_loop().time() + timeout
    sql = "select count(*) from outbox where chat_id = :chat and telegram_message_id = :message"
    while not (await rows(database_url, sql, chat=message.chat_id, message=message.message_id))[0][0]:
        assert asyncio.get_running_loop().time() < deadline, "the bot did not record the message as sent"
        await asyncio.sleep(0.05)


async def outbox_count(database_url: str, chat_id: int) -> int:
    found = await rows(database_url, "select count(*) from outbox where chat_id = :chat", chat=chat_id)
    return int(found[0][0])  # type: ignore[call-overload]


def relayed_from(name: str, reference: str) -> Callable[[SentMessage], bool]:
    return containing(f"Message from {name} about {reference}")


async def test_a_typed_reply_reaches_the_broker_without_pressing_reply(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5301, "Bea", language_code="en")
    anna = fake.user(1401, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=Clock()):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await broker_writes(bea, anna, "Hoi Anna, zullen we donderdag bellen?")

        await say(anna, "Ja, donderdag na vijf uur.", "✔ Sent to Bea Bakker")
        relayed = await bea.wait_for_message(relayed_from("Anna", reference))
        assert "Ja, donderdag na vijf uur." in text_of(relayed)
        assert relayed.button_labels == ["Reply", "Open"]

        # A typed "help" is answered as such, not passed on.
        before = await outbox_count(database_url, bea.id)
        await say(anna, "help", "I help you share an idea for your neighbourhood")
        assert await outbox_count(database_url, bea.id) == before

        # A second line goes on to Bea too; the guard for contact details still holds.
        await say(anna, "Bel me op 06 12345678", "I see a phone number in your text.")
        await say(anna, "Of bel via de chat.", "✔ Sent to Bea Bakker")
        await bea.wait_for_message(containing("Of bel via de chat."))

    messages = [note for kind, _, _, _, _, note, _, _ in await timeline_rows(database_url, reference)]
    assert "Ja, donderdag na vijf uur." in messages and "Of bel via de chat." in messages
    assert not any("12345678" in (note or "") for note in messages)


async def test_a_dutch_resident_hears_doorgestuurd_naar_the_broker(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5302, "Bea", language_code="en")
    anna = fake.user(1402, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=Clock()):
        await meet(bea)
        reference = await submit(anna)
        await broker_writes(bea, anna, "Hoi Anna!")
        await say(anna, "/taal", "Which language")
        await press(anna, "Nederlands", "Nederlands")
        await say(anna, "Hoi Bea, dank je!", "✔ Doorgestuurd naar Bea Bakker")
        await bea.wait_for_message(relayed_from("Anna", reference))


async def test_a_swipe_reply_reaches_the_broker_even_weeks_later(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5303, "Bea", language_code="en")
    anna = fake.user(1403, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    clock = Clock()

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        question = await broker_writes(bea, anna, "Heb je al een offerte voor de bankjes?")
        clock.wait(days=20)  # long enough that a plain message would be asked about
        await recorded(database_url, question)

        await anna.send_text("Ja, die stuur ik morgen.", reply_to=question.message_id)
        await anna.wait_for_message(containing("✔ Sent to Bea Bakker"))
        relayed = await bea.wait_for_message(relayed_from("Anna", reference))
        assert "Ja, die stuur ik morgen." in text_of(relayed)

        # Swiping to a status notice of the case works as well.
        notice = next(m for m in anna.sent() if "is your initiative broker" in (m.text or ""))
        await recorded(database_url, notice)
        await anna.send_text("Fijn dat jij het bent!", reply_to=notice.message_id)
        await anna.wait_for_message(containing("✔ Sent to Bea Bakker"))
        await bea.wait_for_message(containing("Fijn dat jij het bent!"))


async def test_a_swipe_reply_in_the_middle_of_a_new_idea_goes_to_the_broker_not_into_the_idea(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5307, "Bea", language_code="en")
    anna = fake.user(1407, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=Clock()):
        await meet(bea)
        reference = await submit(anna)
        question = await broker_writes(bea, anna, "Kan het ook zaterdag?")
        await anna.send_text("/nieuw")  # a second idea: the intake asks its first question
        await anna.wait_for_message()
        await recorded(database_url, question)

        await anna.send_text("Zaterdag kan ik ook.", reply_to=question.message_id)
        await anna.wait_for_message(containing("✔ Sent to Bea Bakker"))
        await bea.wait_for_message(containing("Zaterdag kan ik ook."))

    (flow, data), *_ = await rows(
        database_url, "select flow, data from conversations where chat_id = :c", c=anna.id
    )
    assert flow == "intake" and "Zaterdag" not in str(data)
    notes = [note for kind, _, _, _, _, note, _, _ in await timeline_rows(database_url, reference)]
    assert "Zaterdag kan ik ook." in notes


async def test_a_photo_a_voice_note_and_a_document_reach_the_broker(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5304, "Bea", language_code="en")
    anna = fake.user(1404, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=Clock()):
        await meet(bea)
        reference = await submit(anna)
        await broker_writes(bea, anna, "Kun je de plek laten zien?")

        sent_photo = await anna.send_photo(caption="Hier komen de bankjes.")
        await anna.wait_for_message(containing("✔ Sent to Bea Bakker"))
        photo = await bea.wait_for_message(relayed_from("Anna", reference))
        assert photo.photo is not None and "Hier komen de bankjes." in text_of(photo)
        sent_sizes = sent_photo["message"]["photo"]
        assert photo.photo[-1]["file_unique_id"] in {size["file_unique_id"] for size in sent_sizes}
        assert photo.button_labels == ["Reply", "Open"]

        sent_voice = await anna.send_voice(duration=12)
        await anna.wait_for_message(containing("✔ Sent to Bea Bakker"))
        voice = await bea.wait_for_message(relayed_from("Anna", reference))
        assert voice.voice is not None
        assert voice.voice["file_id"] == sent_voice["message"]["voice"]["file_id"]
        assert voice.voice["duration"] == 12

        # After "Reply" a document goes too, not only text.
        await press(anna, "Message to my initiative broker", "Write your message")
        sent_document = await anna.send_document("plan.pdf", caption="Het plan")
        await anna.wait_for_message(containing("✔ Sent to Bea Bakker"))
        document = await bea.wait_for_message(relayed_from("Anna", reference))
        assert document.document is not None and document.document["file_name"] == "plan.pdf"
        assert document.document["file_id"] == sent_document["message"]["document"]["file_id"]
        assert "Het plan" in text_of(document)

        # Both timelines say what came with each message.
        await press(anna, "My initiatives", "Your initiatives:")
        mine = await press(anna, f"View {reference}", f"Timeline of {reference}")
        for shown in ("📷 photo", "🎤 voice note (0:12)", "📄 plan.pdf", "Hier komen de bankjes."):
            assert shown in text_of(mine), text_of(mine)
        await bea.press(document, document.callback_data[1])  # Open
        await bea.wait_for_message(containing(f"{reference}"))
        await press(bea, "Timeline", f"Timeline of {reference}")
        staff_view = bea.last_message()
        assert "Message from the initiator: 🎤 voice note (0:12)" in text_of(staff_view), text_of(staff_view)

    media = await rows(
        database_url,
        "select e.media_kind, e.media_name, e.media_seconds from initiative_events e "
        "join initiatives i on i.id = e.initiative_id where i.reference = :reference "
        "and e.media_kind is not null order by e.id",
        reference=reference,
    )
    assert media == [("photo", None, None), ("voice", None, 12), ("document", "plan.pdf", None)]


async def test_an_unclear_message_is_kept_while_the_resident_chooses_whom_it_is_for(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5305, "Bea", language_code="en")
    anna = fake.user(1405, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    clock = Clock()

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        clock.wait(days=10)  # nothing said about the case for ten days: the bot cannot know
        before = await outbox_count(database_url, bea.id)

        first = await say(anna, "Hoe staat het ervoor?", f"Is this for Bea Bakker about “{TITLE}”")
        assert first.button_labels == [f"To Bea Bakker: “{TITLE}”", "It is a new idea"]
        second = await say(anna, "En mag de gemeente helpen met verven?", "I keep your 2 messages")
        assert await outbox_count(database_url, bea.id) == before  # nothing sent yet

        await press(anna, f"To Bea Bakker: “{TITLE}”", "✔ Sent to Bea Bakker")
        got = [
            text_of(await bea.wait_for_message(relayed_from("Anna", reference))),
            text_of(await bea.wait_for_message(relayed_from("Anna", reference))),
        ]
        assert "Hoe staat het ervoor?" in got[0] and "En mag de gemeente helpen met verven?" in got[1]
        closed = await fake.wait_for_edit(anna, second.message_id)  # its buttons are gone
        assert closed.buttons == []
        confirmations = [m for m in anna.sent() if "✔ Sent to Bea Bakker" in (m.text or "")]
        assert len(confirmations) == 1

        # The next plain message goes on to Bea: the resident just wrote to her.
        await say(anna, "Nog één ding: de bankjes worden groen.", "✔ Sent to Bea Bakker")

        # A new idea, told apart by a tap: it reaches nobody.
        clock.wait(days=10)
        before = await outbox_count(database_url, bea.id)
        await say(anna, "Een moestuin bij de school", "or is it a new idea?")
        await anna.press_button("It is a new idea")
        await anna.wait_for_message(lambda m: "✔" not in (m.text or ""))
        assert await outbox_count(database_url, bea.id) == before
        assert not re.search("moestuin", " ".join(text_of(m) for m in bea.sent()))


async def test_a_resident_without_a_case_who_types_is_sent_to_nobody(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5306, "Bea", language_code="en")
    carla = fake.user(1406, "Carla", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=Clock()):
        await meet(bea)
        before = await outbox_count(database_url, bea.id)
        await carla.send_text("Een moestuin bij de school")
        answer = await carla.wait_for_message()
        assert "✔" not in text_of(answer) and "for Bea" not in text_of(answer)
        await carla.send_voice(duration=5)
        await carla.wait_for_message()
    assert await outbox_count(database_url, bea.id) == before
    assert not [m for m in bea.sent() if "Carla" in (m.text or "")]
