"""The bot as a real process (`initiatiefbot run`): killed mid-intake, restarted, nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e import containing, migrate, press, say
from tests.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(90)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def start_bot_process(fake: FakeBotApi, database_url: str) -> asyncio.subprocess.Process:
    """Run ``python -m bot run`` against the fake API and wait until it polls."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "INITIATIEFBOT_CONFIG": "zutphen",
    }
    polls = len(fake.calls("getUpdates"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake.wait_for_calls("getUpdates", polls + 1, timeout=30)
    except AssertionError:
        process.kill()
        _, stderr = await process.communicate()
        raise AssertionError(f"the bot did not start polling:\n{stderr.decode(errors='replace')}") from None
    return process


async def kill_hard(process: asyncio.subprocess.Process) -> None:
    """``kill -9``: no shutdown code runs."""
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def test_resident_resumes_after_the_bot_process_is_killed_mid_intake(
    fake: FakeBotApi, database_url: str
) -> None:
    await migrate(database_url)
    nora = fake.user(2001, "Nora", language_code="en")
    first = await start_bot_process(fake, database_url)
    try:
        await say(nora, "/start", "What do you want to do?")
        await press(nora, "New initiative", "What is the title")
        await say(nora, "Bankjes in het park", "What do you want?")
        await say(nora, "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.", "Which theme")
    finally:
        await kill_hard(first)

    # While the bot is down, Nora answers the theme question; Telegram keeps the update.
    await nora.press_button("Greenery")
    second = await start_bot_process(fake, database_url)
    try:
        await nora.wait_for_message(containing("In which neighbourhood"), timeout=20)
        await press(nora, "Noordveen", "What can you do yourself?")
        await press(nora, "Stop", "I saved your answers")
        menu = nora.last_message()
        assert "Continue “Bankjes in het park”" in menu.button_labels
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), timeout=20)
    # Each question was asked once: nothing was handled twice across the restart.
    asked = [m.text for m in nora.sent() if m.text and "In which neighbourhood" in m.text]
    assert len(asked) == 1
