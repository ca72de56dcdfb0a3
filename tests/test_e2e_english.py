"""An English-speaking resident on Telegram: English commands, and English words for the people who help."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from storage import staff as staff_store
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from tests.e2e import containing, intake_until_summary, press, running_bot, say
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WATERKWARTIER = "WK030101"  # where intake_until_summary's initiative is
ENGLISH_COMMANDS = ("/new", "/mine", "/language", "/mydata", "/forgetme", "/help")
DUTCH_COMMANDS = re.compile(r"/(?:nieuw|mijn|taal|mijngegevens|vergeetmij|hulp)\b")
DUTCH_WORDS = re.compile(r"initiatiefmakelaar|\bwijk(?:en)?\b", re.IGNORECASE)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def clock() -> datetime:
    return NOW


async def add_broker(database_url: str, user_id: int, name: str) -> None:
    """A broker for Waterkwartier, added as ``initiatiefbot staff add`` does."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session, session.begin():
            await staff_store.add_staff(
                session, telegram_user_id=user_id, name=name, role="broker", wijken=[WATERKWARTIER],
                themes=[], now=NOW,
            )  # fmt: skip
    finally:
        await engine.dispose()


def everything_read(user: FakeUser) -> list[str]:
    """Every text and button label the bot showed in this chat."""
    return [part for m in user.sent() for part in (m.text or "", *m.button_labels)]


async def answer_to(user: FakeUser, command: str) -> SentMessage:
    await user.send_text(command)
    return await user.wait_for_message()


async def test_the_english_help_names_the_english_commands(fake: FakeBotApi, database_url: str) -> None:
    anna = fake.user(1801, "Anna", language_code="en")
    async with running_bot(fake, database_url):
        greeting = await say(anna, "/start", "What do you want to do?")
        help_text = (await press(anna, "Help", "/help")).text or ""
        again = (await say(anna, "/help", "/help")).text or ""
    assert help_text == again
    for command in ENGLISH_COMMANDS:
        assert f"{command} – " in help_text, command
    assert not DUTCH_COMMANDS.search(help_text), help_text
    assert not any(DUTCH_WORDS.search(text) for text in everything_read(anna)), greeting.text


async def test_english_commands_do_what_the_dutch_ones_do(fake: FakeBotApi, database_url: str) -> None:
    anna = fake.user(1802, "Anna", language_code="en")  # types the English commands
    bob = fake.user(1803, "Bob", language_code="en")  # types the Dutch ones
    async with running_bot(fake, database_url):
        for user in (anna, bob):
            await say(user, "/start", "What do you want to do?")
        replies = {}
        for english, dutch in (("/mine", "/mijn"), ("/language", "/taal"), ("/new", "/nieuw")):
            said, expected = await answer_to(anna, english), await answer_to(bob, dutch)
            assert "I do not know that command" not in (said.text or ""), english
            assert (said.text, said.button_labels) == (expected.text, expected.button_labels), english
            replies[english] = said.text or ""
    assert "Which language do you want?" in replies["/language"]
    assert "initiative" in replies["/mine"]


async def test_an_english_resident_reads_initiative_broker_never_initiatiefmakelaar(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5801, "Bea", language_code="en")
    anna = fake.user(1804, "Anna", language_code="en")
    await add_broker(database_url, bea.id, "Bea Bakker")
    async with running_bot(fake, database_url, clock=clock):
        await say(
            bea, "/start", "What do you want to do?"
        )  # Telegram lets a bot write only to people who did
        await intake_until_summary(anna)
        done = await press(anna, "✔ I agree, send my idea", "Your reference is")
        assert "an initiative broker of the municipality will contact you" in (done.text or "")
        told = await anna.wait_for_message(containing("Good news"))
        assert "Bea Bakker is your initiative broker" in (told.text or "")
        mine = await say(anna, "/mine", "Your initiatives:")
        assert "an initiative broker is assigned" in (mine.text or "")
        await say(anna, "/help", "/help")
    read = everything_read(anna)
    assert not [text for text in read if DUTCH_WORDS.search(text)]
    assert not [text for text in read if DUTCH_COMMANDS.search(text)]
