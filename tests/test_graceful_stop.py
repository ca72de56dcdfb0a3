"""A graceful stop (SIGTERM, as every deploy sends) cuts off no send, so nothing arrives twice.

The fake Bot API takes a message at once but withholds its answer (``hang_next(..., process=True)``), as
a slow Telegram does; the bot gets SIGTERM while such calls are under way: a reply right after an update
(polling), and the outbox sweep sending again what failed before (both modes). The bot must keep its
HTTP client open until the answers are in and recorded: a call cut off makes the send fail although
Telegram took it, the message stays queued, and the next start sends it a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e import containing, migrate, say
from tests.fake_bot_api import ApiCall, FakeBotApi, FakeUser
from tests.test_e2e_restart import (
    REPLY_TIMEOUT,
    BotProcess,
    assert_chat_ends_with,
    assert_every_queued_message_sent_once_in_order,
    deliver,
    say_hook,
    start_bot_process,
    start_webhook_process,
    stopped_at_the_end,
)

pytestmark = pytest.mark.timeout(60)

# Three answers that differ, so a message sent twice shows.
GREETING = "Type it here, in your own words"  # to /start
AGAIN = "Type it here in a few sentences"  # the menu's answer to a greeting
HELP = "show this help"  # to /help
MINE = "You have not submitted an initiative yet"  # to /mijn
# Time a bot that closes its client too early gets to show it; a bot that keeps it open waits this long.
EARLY_CLOSE = 0.5


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def sigterm_while_sends_are_under_way(fake: FakeBotApi, bot: BotProcess, hung: list[ApiCall]) -> None:
    """SIGTERM the bot while the ``hung`` calls wait for their answers; answer them once the bot is
    stopping; the bot must then exit 0."""
    bot.process.send_signal(signal.SIGTERM)
    # A bot that closes its HTTP client now gives up the calls, which then no longer hang.
    with contextlib.suppress(AssertionError):
        await fake.wait_until_none_hang(timeout=EARLY_CLOSE)
    assert all(call in fake.hanging("sendMessage") for call in hung), (
        f"the bot cut off a send that was under way when it got SIGTERM:\n{bot.output()}"
    )
    fake.release_hung()  # Telegram answers; the messages were delivered all along
    try:  # one SIGTERM, as a platform sends; not bot.stop(), which would send another
        await asyncio.wait_for(bot.process.wait(), timeout=20)
    except TimeoutError:
        raise AssertionError(f"the bot did not stop after SIGTERM:\n{bot.output()}") from None
    assert bot.process.returncode == 0, f"the bot exited {bot.process.returncode}:\n{bot.output()}"
    assert all(call.ok for call in hung)


async def sends_under_way(
    fake: FakeBotApi,
    nora: FakeUser,
    piet: FakeUser,
    write: Callable[[FakeUser, str], Awaitable[None]],
    *,
    reply_hangs: bool,
) -> list[ApiCall]:
    """Piet's reply fails once (a 502: it never reached Telegram) and the sweep sends it again, slowly.
    Nora's reply goes out right after her message, slowly too if ``reply_hangs``; the reply to her next
    message waits behind it. Return the calls under way."""
    fake.fail_next_http("sendMessage", chat=piet)
    fake.hang_next("sendMessage", chat=piet, process=True)
    await write(piet, "hallo")
    await fake.wait_for_hang("sendMessage", timeout=REPLY_TIMEOUT)
    if reply_hangs:
        fake.hang_next("sendMessage", chat=nora, process=True)
    await write(nora, "hallo")
    if reply_hangs:
        await fake.wait_for_hang("sendMessage", 2, timeout=REPLY_TIMEOUT)
    else:
        await nora.wait_for_message(containing(AGAIN), timeout=REPLY_TIMEOUT)
    await write(nora, "/help")
    return fake.hanging("sendMessage")


def assert_each_reply_arrived_once(fake: FakeBotApi, nora: FakeUser, piet: FakeUser) -> None:
    assert_chat_ends_with(fake, nora, GREETING, AGAIN, HELP, MINE)
    assert_chat_ends_with(fake, piet, GREETING, AGAIN, MINE)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_polling_bot_stopped_during_sends_delivers_each_message_once(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    nora = fake.user(3601, "Nora", language_code="en")
    piet = fake.user(3602, "Piet", language_code="en")

    async def write(person: FakeUser, text: str) -> None:
        """Type a message, and wait until the bot stored it (it asked Telegram past it)."""
        update_id = (await person.send_text(text))["update_id"]
        await fake.wait_for_call("getUpdates", lambda call: _offset(call) > update_id, timeout=REPLY_TIMEOUT)

    log = tmp_path / "bot.log"
    bot = await start_bot_process(fake, database_url, log)
    async with stopped_at_the_end(bot):
        for person in (nora, piet):
            await say(person, "/start", GREETING)
        hung = await sends_under_way(fake, nora, piet, write, reply_hangs=True)
        await sigterm_while_sends_are_under_way(fake, bot, hung)

    async with stopped_at_the_end(await start_bot_process(fake, database_url, log)):
        await nora.wait_for_message(containing(HELP), timeout=REPLY_TIMEOUT)
        for person in (nora, piet):
            await say(person, "/mijn", MINE)
    assert_each_reply_arrived_once(fake, nora, piet)
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_webhook_worker_stopped_during_sends_delivers_each_message_once(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    nora = fake.user(3701, "Nora", language_code="en")
    piet = fake.user(3702, "Piet", language_code="en")

    async def write(person: FakeUser, text: str) -> None:
        """Telegram delivers the message; the worker answers 200 once it is stored."""
        await deliver(fake, await person.send_text(text))

    log = tmp_path / "worker.log"
    worker = await start_webhook_process(fake, database_url, log)
    async with stopped_at_the_end(worker):
        for person in (nora, piet):
            await say_hook(fake, person, "/start", GREETING)
        # A webhook worker waited for its replies before, but stopped its sweep mid-send.
        hung = await sends_under_way(fake, nora, piet, write, reply_hangs=False)
        await sigterm_while_sends_are_under_way(fake, worker, hung)

    async with stopped_at_the_end(await start_webhook_process(fake, database_url, log)):
        await nora.wait_for_message(containing(HELP), timeout=REPLY_TIMEOUT)
        for person in (nora, piet):
            await say_hook(fake, person, "/mijn", MINE)
    assert_each_reply_arrived_once(fake, nora, piet)
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


def _offset(call: ApiCall) -> int:
    return int(call.params.get("offset") or 0)
