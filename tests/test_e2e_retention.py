"""An untouched draft over Telegram: ``initiatiefbot privacy sweep --once --as-of …`` as a real process
reminds the resident once; they go on, or delete their answers with the reminder's button, and a draft
nobody answers for is gone 14 days later. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from storage import tables
from storage.db import create_engine
from tests.e2e import containing, press, run_command, running_bot, say
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.test_e2e_cases import text_of

pytestmark = pytest.mark.timeout(180)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REMINDED = "2026-06-01T12:00"  # 91 days later
REMINDER = "You have not worked on your idea “Bankjes in het park” for 90 days."


class Clock:
    """The running bot's clock: it stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def privacy_sweep(fake: FakeBotApi, database_url: str, as_of: str, *extra: str) -> str:
    """Run ``python -m bot privacy sweep --once --as-of …`` against the fake Bot API; returns its output."""
    return await run_command(fake, database_url, "privacy", "sweep", "--once", "--as-of", as_of, *extra)


async def start_an_idea(user: FakeUser) -> None:
    await say(user, "/start", "What do you want to do?")
    await press(user, "New initiative", "What is your idea?")
    await say(user, "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.", "Is that right?")
    await press(user, "✏️ Other title", "What is the title")
    await say(user, "Bankjes in het park", "Which theme")


async def conversations(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(tables.conversations)) or 0)
    finally:
        await engine.dispose()


async def test_an_untouched_draft_is_reminded_once_and_the_resident_chooses(
    fake: FakeBotApi, database_url: str
) -> None:
    anna = fake.user(1201, "Anna", language_code="en")
    bert = fake.user(1202, "Bert", language_code="en")
    clock = Clock()

    async with running_bot(fake, database_url, clock=clock):
        await start_an_idea(anna)
        await start_an_idea(bert)

        dry = await privacy_sweep(fake, database_url, REMINDED, "--dry-run")
        assert "drafts reminded                     2" in dry and "dry run" in dry
        printed = await privacy_sweep(fake, database_url, REMINDED)
        assert "drafts reminded                     2" in printed and "2 reminders queued" in printed
        reminder = await anna.wait_for_message(containing(REMINDER))
        assert "I will delete your answers in 14 days" in text_of(reminder)
        assert reminder.button_labels == ["Continue", "Delete my answers"]
        await bert.wait_for_message(containing(REMINDER))
        assert "drafts reminded                     0" in await privacy_sweep(fake, database_url, REMINDED)

        clock.now = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
        await anna.press(reminder, "menu:continue")
        await anna.wait_for_message(containing("Which theme"))  # her draft, where she was

        # Bert does nothing: 14 days after the reminder his answers and he himself are gone.
        printed = await privacy_sweep(fake, database_url, "2026-06-15T13:00")
        assert "reminded drafts deleted             1" in printed
        assert "people forgotten                    1" in printed
        assert await conversations(database_url) == 1  # Anna's: her answer cleared the reminder

        clock.now += timedelta(days=200)
        await privacy_sweep(fake, database_url, "2026-09-01T09:00")  # Anna untouched again: reminded
        second = await anna.wait_for_message(containing(REMINDER))
        await anna.press(second, "menu:discard")
        await anna.wait_for_message(containing("OK, I deleted your answers."))
        await say(anna, "/start", "What do you want to do?")
    assert len([m for m in bert.sent() if REMINDER in text_of(m)]) == 1
