"""The bot as a real process, killed (``kill -9``) and restarted: nothing typed is lost, nothing sent twice.

The processes are ``initiatiefbot run`` (polling) and ``initiatiefbot webhook`` against the fake Bot API.
To kill a process *during* an outbox send, the fake lets the bot's ``sendMessage`` to one chat hang: the
call never reaches "Telegram" (no message appears), the process is blocked mid-send and is killed then.
After the restart the queued messages go out: ``run`` sends its leftovers at start, a webhook worker's
sweep takes a dead worker's messages over once their lease (OUTBOX_LEASE_SECONDS) has run out.

At the end each test compares every chat with the outbox table: each queued message is in the chat
exactly once, in queue order, and nothing is in the chat that was not queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import text

from bot.app import ALLOWED_UPDATES
from bot.web import webhook_path
from storage.db import create_engine
from tests.e2e import containing, intake_until_summary, migrate, press, say
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage
from tests.test_e2e_cases import add_staff, meet

pytestmark = pytest.mark.timeout(60)

SECRET = "test-restart-Secret_0123456789"
# OUTBOX_LEASE_SECONDS, unless a test wants the default: how long a dead process's messages wait for a
# webhook worker's sweep (and its claim on a chat blocks other senders, where claims are kept).
SHORT_LEASE = 2
REPLY_TIMEOUT = 20.0  # seconds to wait for a reply that needs a process start (or a lease) first

TITLE = "Bankjes in het park"
IDEA = "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


# --- processes -------------------------------------------------------------------------------


@dataclass
class BotProcess:
    """A running ``python -m bot …``; its log goes to a file (a pipe nobody reads could block it)."""

    process: asyncio.subprocess.Process
    log: Path
    url: str | None = None  # a webhook worker's webhook URL

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def kill_hard(self) -> None:
        """``kill -9``: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, as the platform stops a process; it must exit cleanly."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"the bot did not stop on SIGTERM:\n{self.output()}") from None
        assert self.process.returncode == 0, f"the bot exited {self.process.returncode}:\n{self.output()}"


def bot_env(fake: FakeBotApi, database_url: str, lease: int | None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "INITIATIEFBOT_CONFIG": "zutphen",
        # The tests type faster than any person and the fake has no rate limits: flood control and
        # pacing are tested on their own.
        "FLOOD_LIMIT": "100000",
        "TELEGRAM_CHAT_MAX_PER_SECOND": "0",
        **extra,
    }
    env.pop("OUTBOX_LEASE_SECONDS", None)
    if lease is not None:
        env["OUTBOX_LEASE_SECONDS"] = str(lease)
        # A dead worker's claim on a chat lasts as long as its longest send could have: keep that short.
        env["TELEGRAM_SEND_TIMEOUT"] = "2"
    return env


async def start_bot_process(
    fake: FakeBotApi, database_url: str, log: Path, *, lease: int | None = None
) -> BotProcess:
    """Run ``python -m bot run`` against the fake API and wait until it polls."""
    polls = len(fake.calls("getUpdates"))
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=bot_env(fake, database_url, lease),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=out,
        )
    bot = BotProcess(process, log)
    polling = asyncio.ensure_future(fake.wait_for_calls("getUpdates", polls + 1, timeout=30))
    exited = asyncio.ensure_future(process.wait())
    await asyncio.wait([polling, exited], return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    if polling.done() and polling.exception() is None:
        return bot
    polling.cancel()
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
    raise AssertionError(f"the bot did not start polling:\n{bot.output()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_webhook_process(
    fake: FakeBotApi, database_url: str, log: Path, *, lease: int | None = SHORT_LEASE
) -> BotProcess:
    """Run ``python -m bot webhook`` on a free port, wait until it is ready, register it with the fake."""
    port = free_port()
    env = bot_env(
        fake, database_url, lease, TELEGRAM_WEBHOOK_SECRET=SECRET, PORT=str(port), WEBHOOK_HOST="127.0.0.1"
    )
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "webhook", env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    bot = BotProcess(process, log, base + webhook_path(SECRET))
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:  # no event to wait for: the worker's port opens when it is ready
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        break
            if process.returncode is not None or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise AssertionError(f"the webhook worker did not get ready:\n{bot.output()}")
            await asyncio.sleep(0.1)
        # As `initiatiefbot webhook --set-url` does; the worker that replaces a dead one is registered anew.
        async with session.post(
            f"{fake.base_url}{fake.token}/setWebhook",
            json={"url": bot.url, "secret_token": SECRET, "allowed_updates": ALLOWED_UPDATES},
        ) as registered:
            assert (await registered.json())["ok"]
    return bot


@contextlib.asynccontextmanager
async def stopped_at_the_end(bot: BotProcess, *, drained: str | None = None) -> AsyncIterator[BotProcess]:
    """Stop the process (SIGTERM) when the block ends, if it still runs, even when the block failed.

    With ``drained`` (the database URL) a block that ended well first waits until the bot has sent and
    recorded every queued message: a stop leaves what is still queued for the next start (right for the
    product), but the tests then check that everything went out once.
    """
    try:
        yield bot
        if drained is not None:
            await outbox_drained(drained, timeout=REPLY_TIMEOUT)
    finally:
        if bot.process.returncode is None:
            await bot.stop()


# --- webhook deliveries ----------------------------------------------------------------------


async def deliver(fake: FakeBotApi, update: Mapping[str, Any]) -> None:
    """Telegram POSTs the update to the webhook; the worker takes it (2xx) once it is stored."""
    status = await fake.deliver_webhook(dict(update))
    assert status == 200, f"the webhook answered {status} to update {update['update_id']}"


async def say_hook(fake: FakeBotApi, user: FakeUser, words: str, expect: str) -> SentMessage:
    await deliver(fake, await user.send_text(words))
    return await user.wait_for_message(containing(expect))


async def press_hook(fake: FakeBotApi, user: FakeUser, label: str, expect: str) -> SentMessage:
    await deliver(fake, await user.press_button(label))
    return await user.wait_for_message(containing(expect))


# --- what was sent ---------------------------------------------------------------------------


async def query(database_url: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


def first_text(message: SentMessage) -> str:
    """A bot message's text as first sent, before any edit."""
    return ((message.history[0].text if message.history else message.text) or "").strip()


def texts(fake: FakeBotApi, user: FakeUser) -> list[str]:
    """The bot's messages in a chat as first sent, oldest first."""
    return [first_text(message) for message in fake.sent(user)]


def assert_chat_ends_with(fake: FakeBotApi, user: FakeUser, *parts: str) -> None:
    """The chat's last messages contain ``parts``, one each, in this order; no message is in it twice."""
    shown = texts(fake, user)
    short = [line.splitlines()[0][:60] for line in shown]
    assert len(shown) >= len(parts), short
    tail = shown[len(shown) - len(parts) :]
    assert all(part in line for part, line in zip(parts, tail, strict=True)), (
        f"chat {user.chat_id} should end with {list(parts)}, but shows {short}"
    )
    twice = [line for line, count in Counter(shown).items() if count > 1]
    assert not twice, f"sent twice to chat {user.chat_id}: {twice}"


async def outbox_drained(database_url: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until the bot recorded every queued message as handled (sent, or failed for good).

    The fake sees a message before the bot hears back and records it; a kill in between would leave it
    to be sent again. The database has no event to wait for, so this polls.
    """
    deadline = time.monotonic() + timeout
    sql = "SELECT count(*) FROM outbox WHERE status = 'pending'"
    while (await query(database_url, sql))[0][0]:
        assert time.monotonic() < deadline, f"the outbox still has pending messages after {timeout}s"
        await asyncio.sleep(0.05)


async def recorded(
    fake: FakeBotApi,
    database_url: str,
    *chats: FakeUser,
    timeout: float = 3.0,  # noqa: ASYNC109
) -> None:
    """Wait until nothing but the hung calls is in flight and the bot recorded as sent every message it
    delivered to ``chats``.

    A message Telegram took but the bot did not record yet is sent again after a kill: no Bot API call
    can be made idempotent. That window is the time of one database commit, so before a kill the tests
    wait it out in the chats they do not hang (a hung send must end before PTB gives up on it, in 5 s).
    """
    deadline = time.monotonic() + timeout
    sql = "SELECT chat_id, telegram_message_id FROM outbox WHERE status = 'sent'"
    while True:
        hanging = {id(call) for call in fake.hanging()}
        in_flight = [
            call.method
            for call in fake.calls()
            if call.status is None and call.method != "getUpdates" and id(call) not in hanging
        ]
        delivered = {(user.chat_id, message.message_id) for user in chats for message in fake.sent(user)}
        unrecorded = delivered - {(int(chat), mid) for chat, mid in await query(database_url, sql)}
        if not in_flight and not unrecorded:
            return
        assert time.monotonic() < deadline, f"in flight: {in_flight}; delivered, not recorded: {unrecorded}"
        await asyncio.sleep(0.05)


async def assert_every_queued_message_sent_once_in_order(fake: FakeBotApi, database_url: str) -> None:
    """Every outbox row went out exactly once, and each chat shows its messages in queue order.

    Each chat's messages in the fake are compared with the outbox's sendMessage rows for it (message id
    and text, in row order): a message lost, sent twice or overtaken shows here.
    """
    statuses = dict(await query(database_url, "SELECT status, count(*) FROM outbox GROUP BY status"))
    assert set(statuses) == {"sent"}, f"outbox rows not sent: {statuses}"
    queued: dict[int, list[tuple[int, str]]] = {}
    for chat_id, message_id, payload in await query(
        database_url,
        "SELECT chat_id, telegram_message_id, payload FROM outbox WHERE method = 'sendMessage' ORDER BY id",
    ):
        payload = json.loads(payload) if isinstance(payload, str) else payload  # SQLite gives text
        queued.setdefault(int(chat_id), []).append((int(message_id), payload["text"].strip()))
    for chat_id, rows in queued.items():
        delivered = [(message.message_id, first_text(message)) for message in fake.sent(chat_id)]
        assert delivered == rows, (
            f"chat {chat_id}: the bot's messages differ from its queue\n{fake.describe_chat(chat_id)}"
        )
    sends = [call for call in fake.calls("sendMessage") if call.ok]
    assert len(sends) == sum(len(rows) for rows in queued.values()), "more sendMessage calls than rows"
    answered = Counter(
        call.params["callback_query_id"] for call in fake.calls("answerCallbackQuery") if call.ok
    )
    assert all(count == 1 for count in answered.values()), f"callback queries answered twice: {answered}"


# --- polling: killed mid-intake while idle ---------------------------------------------------


async def test_resident_resumes_after_the_bot_process_is_killed_mid_intake(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    nora = fake.user(2001, "Nora", language_code="en")
    async with stopped_at_the_end(await start_bot_process(fake, database_url, tmp_path / "bot.log")) as first:
        await say(nora, "/start", "What do you want to do?")
        await press(nora, "New initiative", "What is your idea?")
        await say(nora, IDEA, "Is that right?")
        await say(nora, TITLE, "Which theme")
        await outbox_drained(database_url)  # idle: killed between two updates, not during a send
        await first.kill_hard()

    # While the bot is down, Nora answers the theme question; Telegram keeps the update.
    await nora.press_button("Greenery")
    async with stopped_at_the_end(
        await start_bot_process(fake, database_url, tmp_path / "bot.log"), drained=database_url
    ):
        await nora.wait_for_message(containing("In which neighbourhood"), timeout=REPLY_TIMEOUT)
        await press(nora, "Noordveen", "What can you do yourself")
        await press(nora, "Stop", "I saved your answers")
        menu = nora.last_message()
        assert f"Continue “{TITLE}”" in menu.button_labels
    # Each question was asked once: nothing was handled twice across the restart.
    asked = [m.text for m in nora.sent() if m.text and "In which neighbourhood" in m.text]
    assert len(asked) == 1
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


# --- polling: killed during a send -----------------------------------------------------------

# A submission's reply: three messages queued in one transaction, in this order.
CONFIRMATION = "Your reference is"  # to the resident
CARD = "A new initiative for you."  # to her broker
ASSIGNED = "Bea Bakker is your initiatiefmakelaar"  # to the resident


@pytest.mark.parametrize(
    "hung_part",
    [
        pytest.param(CONFIRMATION, id="first-message-hangs"),
        pytest.param(ASSIGNED, id="later-message-hangs"),
    ],
)
async def test_polling_bot_killed_during_a_send_delivers_every_queued_message_once_after_restart(
    fake: FakeBotApi, database_url: str, tmp_path: Path, hung_part: str
) -> None:
    """``kill -9`` of ``initiatiefbot run`` while it sends the reply to a submission.

    Submitting queues the confirmation to Nora, the new case to her broker Bea, and "Bea is your
    initiatiefmakelaar" to Nora. One of Nora's messages hangs, and the process is killed then. The
    restarted process sends what was left: every message arrives once, each chat in order, and both
    Nora and Piet (halfway his intake) go on.
    """
    await migrate(database_url)
    nora = fake.user(2101, "Nora", language_code="en")
    piet = fake.user(2102, "Piet", language_code="en")
    bea = fake.user(2103, "Bea", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    log = tmp_path / "bot.log"
    async with stopped_at_the_end(
        await start_bot_process(fake, database_url, log, lease=SHORT_LEASE)
    ) as first:
        await meet(bea)
        await intake_until_summary(nora)
        await say(piet, "/start", "What do you want to do?")
        await press(piet, "New initiative", "What is your idea?")
        await say(piet, "Een speeltuin met een wip, zodat kinderen buiten spelen.", "Is that right?")

        fake.hang_next("sendMessage", chat=nora, matching=lambda params: hung_part in params["text"])
        await nora.press_button("✔ I agree, send my idea")
        (hung,) = await fake.wait_for_hang("sendMessage")
        await recorded(fake, database_url, bea, piet)
        await first.kill_hard()
    await fake.wait_until_none_hang()

    # Killed mid-send: the hung call had no effect, and nothing after it reached Nora.
    assert hung.status is None
    assert not any(ASSIGNED in line for line in texts(fake, nora))

    fake.clear_faults()
    async with stopped_at_the_end(
        await start_bot_process(fake, database_url, log, lease=SHORT_LEASE), drained=database_url
    ):
        await nora.wait_for_message(containing(ASSIGNED), timeout=REPLY_TIMEOUT)
        card = await bea.wait_for_message(containing(CARD), timeout=REPLY_TIMEOUT)
        assert TITLE in (card.text or "")
        # Both residents go on: Piet with his intake, Nora with her submitted initiative.
        await say(piet, "Een speeltuin in de wijk", "Which theme")
        await press(piet, "Greenery", "In which neighbourhood")
        await say(nora, "/mijn", "Your initiatives")

    assert_chat_ends_with(
        fake, nora, "Please check your initiative", CONFIRMATION, ASSIGNED, "Your initiatives"
    )
    assert_chat_ends_with(fake, bea, "What do you want to do?", CARD)
    assert_chat_ends_with(fake, piet, "Is that right?", "Which theme", "In which neighbourhood")
    await assert_every_queued_message_sent_once_in_order(fake, database_url)
    assert await query(database_url, "SELECT resident_user_id, title FROM initiatives") == [(nora.id, TITLE)]


async def test_polling_bot_sends_what_a_killed_run_left_before_it_polls_again(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    """With the default lease: ``run`` sends its predecessor's leftovers at start, not a lease later."""
    await migrate(database_url)
    nora = fake.user(2301, "Nora", language_code="en")
    log = tmp_path / "bot.log"
    async with stopped_at_the_end(await start_bot_process(fake, database_url, log)) as first:
        await say(nora, "/start", "What do you want to do?")
        fake.hang_next("sendMessage", chat=nora)
        await nora.press_button("New initiative")
        await fake.wait_for_hang("sendMessage")
        await recorded(fake, database_url)
        await first.kill_hard()
    await fake.wait_until_none_hang()
    assert not any("What is your idea?" in line for line in texts(fake, nora))

    fake.clear_faults()
    async with stopped_at_the_end(await start_bot_process(fake, database_url, log), drained=database_url):
        # The process polls only after its start-up, and sends what was left during it.
        assert any("What is your idea?" in line for line in texts(fake, nora)), fake.describe_chat(nora)
        await say(nora, IDEA, "Is that right?")
    assert_chat_ends_with(fake, nora, "What do you want to do?", "What is your idea?", "Is that right?")
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


async def test_polling_bot_killed_while_stuck_on_a_send_loses_nothing_typed_meanwhile(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    """Piet answers while ``initiatiefbot run`` is stuck sending to Nora; then it is killed."""
    await migrate(database_url)
    nora = fake.user(2201, "Nora", language_code="en")
    piet = fake.user(2202, "Piet", language_code="en")
    log = tmp_path / "bot.log"
    async with stopped_at_the_end(
        await start_bot_process(fake, database_url, log, lease=SHORT_LEASE)
    ) as first:
        for person in (nora, piet):
            await say(person, "/start", "What do you want to do?")
            await press(person, "New initiative", "What is your idea?")
        await say(piet, "Een speeltuin met een wip, zodat kinderen buiten spelen.", "Is that right?")

        fake.hang_next("sendMessage", chat=nora)
        await nora.send_text(IDEA)
        await fake.wait_for_hang("sendMessage")
        await piet.send_text("Een speeltuin in de wijk")
        await fake.wait_until_consumed()  # the bot fetched Piet's answer, and told Telegram so
        # Handled and answered although Nora's reply still hangs: no update waits behind a send.
        await piet.wait_for_message(containing("Which theme"), timeout=REPLY_TIMEOUT)
        await recorded(fake, database_url, piet)
        await first.kill_hard()
    await fake.wait_until_none_hang()

    fake.clear_faults()
    async with stopped_at_the_end(
        await start_bot_process(fake, database_url, log, lease=SHORT_LEASE), drained=database_url
    ):
        await nora.wait_for_message(containing("Is that right?"), timeout=REPLY_TIMEOUT)
        await say(nora, TITLE, "Which theme")
        await press(piet, "Greenery", "In which neighbourhood")
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


# --- webhook: killed during a send -----------------------------------------------------------


async def test_webhook_worker_killed_during_sends_delivers_every_queued_message_once_after_restart(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    """``kill -9`` of ``initiatiefbot webhook`` while its sends to two chats hang, more queued behind.

    Nora and Piet each answer a question; the replies hang. Before seeing them they answer the next
    question too; those replies wait behind the hung ones. After the kill a new worker starts; its
    sweep takes the dead worker's messages once their lease has run out.
    """
    await migrate(database_url)
    nora = fake.user(2401, "Nora", language_code="en")
    piet = fake.user(2402, "Piet", language_code="en")
    residents = (nora, piet)
    answers = {
        nora: (IDEA, TITLE),
        piet: ("Een speeltuin met een wip, zodat kinderen buiten spelen.", "Een speeltuin in de wijk"),
    }
    log = tmp_path / "worker.log"
    async with stopped_at_the_end(await start_webhook_process(fake, database_url, log)) as first:
        for person in residents:
            await say_hook(fake, person, "/start", "What do you want to do?")
            await press_hook(fake, person, "New initiative", "What is your idea?")
            fake.hang_next("sendMessage", chat=person)
        for person in residents:
            await deliver(fake, await person.send_text(answers[person][0]))
        hung = await fake.wait_for_hang("sendMessage", 2)
        for person in residents:  # stored (2xx), and the reply queued behind the hung one
            await deliver(fake, await person.send_text(answers[person][1]))
        await recorded(fake, database_url)
        await first.kill_hard()
    await fake.wait_until_none_hang()

    assert all(call.status is None for call in hung)
    for person in residents:
        assert not any("Is that right?" in line for line in texts(fake, person))

    fake.clear_faults()
    async with stopped_at_the_end(await start_webhook_process(fake, database_url, log), drained=database_url):
        for person in residents:
            await person.wait_for_message(containing("Is that right?"), timeout=REPLY_TIMEOUT)
            await person.wait_for_message(containing("Which theme"), timeout=REPLY_TIMEOUT)
        for person in residents:
            await press_hook(fake, person, "Greenery", "In which neighbourhood")

    for person in residents:
        assert_chat_ends_with(
            fake, person, "What is your idea?", "Is that right?", "Which theme", "In which neighbourhood"
        )
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


# --- webhook: killed after an update was stored, before its reply went out ---------------------


async def test_webhook_worker_killed_before_a_reply_went_out_replies_once_and_skips_the_redelivery(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    """Nora's answer is stored, then the worker dies before its reply is out; Telegram delivers again.

    The new worker recognises the redelivered update (it was handled), the sweep sends the reply
    the dead worker queued, once, and Nora goes on from where she was.
    """
    await migrate(database_url)
    nora = fake.user(2501, "Nora", language_code="en")
    log = tmp_path / "worker.log"
    async with stopped_at_the_end(await start_webhook_process(fake, database_url, log)) as first:
        await say_hook(fake, nora, "/start", "What do you want to do?")
        await press_hook(fake, nora, "New initiative", "What is your idea?")
        fake.hang_next("sendMessage", chat=nora)
        title = await nora.send_text(IDEA)
        await deliver(fake, title)
        await fake.wait_for_hang("sendMessage")
        await recorded(fake, database_url)
        await first.kill_hard()
    await fake.wait_until_none_hang()
    assert not any("Is that right?" in line for line in texts(fake, nora))

    fake.clear_faults()
    async with stopped_at_the_end(await start_webhook_process(fake, database_url, log), drained=database_url):
        # Telegram was not sure the dead worker took the update, and delivers it to the new one.
        await deliver(fake, await fake.redeliver(title))
        await nora.wait_for_message(containing("Is that right?"), timeout=REPLY_TIMEOUT)
        await say_hook(fake, nora, TITLE, "Which theme")
        await press_hook(fake, nora, "Greenery", "In which neighbourhood")
        await press_hook(fake, nora, "Stop", "I saved your answers")
        assert f"Continue “{TITLE}”" in nora.last_message().button_labels

    assert_chat_ends_with(
        fake,
        nora,
        "What do you want to do?",
        "What is your idea?",
        "Is that right?",
        "Which theme",
        "In which neighbourhood",
        "I saved your answers",
    )
    await assert_every_queued_message_sent_once_in_order(fake, database_url)
    handled = await query(
        database_url, "SELECT count(*) FROM processed_updates WHERE update_id = :id", id=title["update_id"]
    )
    assert handled == [(1,)]
