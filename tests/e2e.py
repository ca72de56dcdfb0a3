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


async def intake_until_summary(user: FakeUser, *, contact: str | None = None) -> SentMessage:
    """An English-speaking resident answers every question up to the summary, which asks for consent
    (the title typed instead of the suggested one; ``contact`` typed, or Telegram only)."""
    return await answer_intake(
        user,
        title="Bankjes in het park",
        idea="Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.",
        own="Wij verven de bankjes.",
        name="Anna",
        contact=contact,
    )


async def answer_intake(
    user: FakeUser, *, title: str, idea: str, own: str, name: str, contact: str | None
) -> SentMessage:
    """The intake from the menu's "New initiative" up to the summary; returns the summary."""
    await say(user, "/start", "What do you want to do?")
    await press(user, "New initiative", "What is your idea?")
    check = await say(user, idea, "Is that right?")
    if "✏️ Other title" in check.button_labels:
        await press(user, "✏️ Other title", "What is the title")
    await say(user, title, "Which theme")
    await press(user, "Greenery", "In which neighbourhood")
    await press(user, "Waterkwartier", "What can you do yourself")
    await user.send_text(own)
    asked = await user.wait_for_message(
        lambda m: "How many neighbours" in (m.text or "") or "What do you need?" in (m.text or "")
    )
    if "How many neighbours" in (asked.text or ""):  # not read from the answer
        await press(user, "I don't know yet", "What do you need?")
    await user.press_button("▫️ Money or a grant")
    await user.press_button("Done ✔")
    await user.wait_for_message(containing("how much money"))
    await say(user, "1250", "photo")
    await press(user, "No photo", "phone number or e-mail")
    if contact is None:
        await press(user, "Only via Telegram", "What name")
    else:
        await say(user, contact, "What name")
    return await say(user, name, "Please check your initiative")


async def submit(user: FakeUser) -> str:
    """Agree and send, from the summary; returns the reference."""
    done = await press(user, "✔ I agree, send my idea", "Your reference is")
    found = re.search(r"INI-\d{4}-\d{4}", done.text or "")
    assert found, done.text
    return found.group()


async def submit_as(user: FakeUser, *, title: str, idea: str, own: str, name: str, contact: str) -> str:
    """An English-speaking resident answers the intake with these texts (and a phone number or e-mail
    address) and submits; returns the reference."""
    await answer_intake(user, title=title, idea=idea, own=own, name=name, contact=contact)
    return await submit(user)


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
