"""Helpers for end-to-end tests: the real PTB Application polling the fake Bot API."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import ALLOWED_UPDATES, build_application, utcnow
from bot.settings import Settings, resolve_config_path
from storage.db import create_engine
from storage.migrate import upgrade
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage

# E-mail written as .eml files goes here, not into the working directory (beside a PostgreSQL database
# there is no folder of the database's own): one folder for the test run, removed at its end.
MAIL_DIR = Path(tempfile.mkdtemp(prefix="initiatiefbot-test-mail-"))
atexit.register(shutil.rmtree, MAIL_DIR, ignore_errors=True)


def settings_for(fake: FakeBotApi, database_url: str, config: str = "zutphen") -> Settings:
    return Settings(
        mail_dir=MAIL_DIR,
        telegram_bot_token=fake.token,
        telegram_api_base_url=fake.base_url,
        database_url=database_url,
        config_path=resolve_config_path(config),
        # The fake Bot API has no rate limits, and some tests stop the clock: pacing is tested on its
        # own (tests/test_sendgate.py) and in the tests that run the bot as a process.
        telegram_max_per_second=0,
        telegram_chat_max_per_second=0,
    )


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeBotApi,
    database_url: str,
    *,
    clock: Callable[[], datetime] = utcnow,
    config: str = "zutphen",
    flood_limit: int = 10_000,
    send_coordination: str | None = None,
    **overrides: Any,
) -> AsyncIterator[Application]:
    """Start the bot as ``initiatiefbot run`` does (polling), and stop it afterwards; ``overrides`` are
    further settings (e.g. ``smtp_url``).

    PostgreSQL is migrated first, as the Procfile's release step does in production.
    """
    await migrate(database_url)
    # The tests type faster than any person; flood control is tested on its own (tests/test_flood.py).
    settings = dataclasses.replace(
        settings_for(fake, database_url, config),
        flood_limit=flood_limit,
        send_coordination=send_coordination,
        **overrides,
    )
    app = build_application(settings, clock=clock)
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)  # opens the runtime, and with it the dispatcher
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=ALLOWED_UPDATES)
    await app.start()
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        assert app.post_shutdown is not None
        await app.post_shutdown(app)
        await app.shutdown()


async def migrate(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def containing(text: str) -> Callable[[SentMessage], bool]:
    return lambda message: message.text is not None and text in message.text


async def say(user: FakeUser, text: str, expect: str) -> SentMessage:
    """Send text and wait for the bot's next message that contains ``expect``."""
    await user.send_text(text)
    return await user.wait_for_message(containing(expect))


async def press(user: FakeUser, label: str, expect: str) -> SentMessage:
    """Press a button by its label and wait for the bot's next message that contains ``expect``."""
    await user.press_button(label)
    return await user.wait_for_message(containing(expect))


def asks_to_publish(message: SentMessage) -> bool:
    """Whether a message asks if the idea may be shown without the resident's name (any language)."""
    return any(data.startswith("intake:publish:") for data in message.callback_data)


async def answer_publish(user: FakeUser, expect: str, *, yes: bool = True) -> SentMessage:
    """Answer the open-data question by its button, whatever the language, and wait for ``expect``."""
    question = await user.wait_for_message(asks_to_publish)
    await user.press(question, "intake:publish:ja" if yes else "intake:publish:nee")
    return await user.wait_for_message(containing(expect))


async def intake_until_summary(user: FakeUser) -> None:
    """An English-speaking resident answers every question up to the summary."""
    await say(user, "/start", "What do you want to do?")
    await press(user, "New initiative", "What is the title")
    await say(user, "Bankjes in het park", "What do you want?")
    await say(user, "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.", "Which theme")
    await press(user, "Greenery", "In which neighbourhood")
    await press(user, "Waterkwartier", "What can you do yourself?")
    await say(user, "Wij verven de bankjes.", "What do you need?")
    await user.press_button("▫️ Money or a grant")
    await user.press_button("Done ✔")
    await user.wait_for_message(containing("how much money"))
    await say(user, "1250", "How many neighbours")
    await press(user, "I don't know yet", "photo")
    await press(user, "No photo", "What name")
    await say(user, "Anna", "phone number or e-mail")
    await user.press_button("Telegram is fine")
    await answer_publish(user, "Do you agree?")
    await press(user, "I agree", "Please check your initiative")


async def submit_as(user: FakeUser, *, title: str, idea: str, own: str, name: str, contact: str) -> str:
    """An English-speaking resident answers the intake with these texts (and a phone number or e-mail
    address) and submits; returns the reference."""
    await say(user, "/start", "What do you want to do?")
    await press(user, "New initiative", "What is the title")
    await say(user, title, "What do you want?")
    await say(user, idea, "Which theme")
    await press(user, "Greenery", "In which neighbourhood")
    await press(user, "Waterkwartier", "What can you do yourself?")
    await say(user, own, "What do you need?")
    await user.press_button("▫️ Money or a grant")
    await user.press_button("Done ✔")
    await user.wait_for_message(containing("how much money"))
    await say(user, "1250", "How many neighbours")
    await press(user, "I don't know yet", "photo")
    await press(user, "No photo", "What name")
    await say(user, name, "phone number or e-mail")
    await user.send_text(contact)
    await answer_publish(user, "Do you agree?")
    await press(user, "I agree", "Please check your initiative")
    done = await press(user, "Submit", "Your reference is")
    found = re.search(r"INI-\d{4}-\d{4}", done.text or "")
    assert found, done.text
    return found.group()


async def run_command(fake: FakeBotApi, database_url: str, *argv: str) -> str:
    """Run ``python -m bot <argv>`` as a process against the fake Bot API, unpaced like the bot in these
    tests (30 reminders to one broker would take 30 s at Telegram's pace per chat); returns what it
    printed, after checking it exited 0."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "INITIATIEFBOT_CONFIG": "zutphen",
        "TELEGRAM_MAX_PER_SECOND": "0",
        "TELEGRAM_CHAT_MAX_PER_SECOND": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")
    return stdout.decode()
