"""Two `initiatiefbot webhook` processes on one PostgreSQL database, under a crowd of residents.

200 residents do a whole intake at the same time. Their updates go, as Telegram POSTs them, to one
of two worker processes at random; about one update in ten is delivered a second time, at the same
moment, to the other worker (as Telegram does when it did not see an answer). Afterwards every
initiative is stored once, every chat got its questions in order, and every reply was sent once.

Each resident sends 16 updates: /start, "Nieuw initiatief", idea, "Andere titel", title, theme, wijk,
skip "own", skip neighbours, one need + "Klaar", skip photo, skip contact, name, agree and send. That
is 3200 updates (plus ~340 redeliveries) and 3600 sendMessage calls (the ticked need is an edit; the
wijk and contact questions each come with a keyboard message, and their answers take it away).
The workers keep Telegram's pace: one message a second per chat after a burst, and a budget for the
whole bot that they share (BOT_BUDGET); about 110 s on a 2-core machine with PostgreSQL fsync on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import text

from bot.web import SECRET_HEADER, webhook_path
from storage.db import create_engine
from tests.e2e import migrate
from tests.fake_bot_api import FakeBotApi, FakeUser

# Minutes on a busy 2-core machine with other test processes beside it: it checks "once and in order",
# not speed, so the waits are generous.
pytestmark = pytest.mark.timeout(480)

SECRET = "test-workers-Secret_0123456789"
RESIDENTS = 200
FIRST_USER_ID = 700_001
REDELIVERY_RATE = 0.1
CONCURRENT_DELIVERIES = 40  # Telegram's default max_connections
REPLY_TIMEOUT = 150.0  # seconds a resident waits for the bot's answer (under load)
QUESTIONS = 12
# Messages per second for the whole bot (TELEGRAM_MAX_PER_SECOND), shared by the two workers.
BOT_BUDGET = 60
BUDGETED = ("sendMessage", "sendPhoto", "editMessageText", "editMessageReplyMarkup")
QUESTION = re.compile(r"Vraag (\d+) van (\d+)")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def webhook_workers(
    fake: FakeBotApi, database_url: str, logs: Path, count: int = 2
) -> AsyncIterator[list[str]]:
    """``count`` ``initiatiefbot webhook`` processes; yields the webhook URL of each."""
    started: list[tuple[asyncio.subprocess.Process, Path]] = []
    urls: list[str] = []
    try:
        for number in range(count):
            port = free_port()
            env = {
                **os.environ,
                "TELEGRAM_BOT_TOKEN": fake.token,
                "TELEGRAM_API_BASE_URL": fake.base_url,
                "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "DATABASE_URL": database_url,
                "INITIATIEFBOT_CONFIG": "zutphen",
                "PORT": str(port),
                "WEBHOOK_HOST": "127.0.0.1",
                "FLOOD_LIMIT": "100000",
                # Telegram's real pace per chat, and a budget for the whole bot that the workers must
                # share: each alone would stay under it, together they would not.
                "TELEGRAM_MAX_PER_SECOND": str(BOT_BUDGET),
                "TELEGRAM_CHAT_MAX_PER_SECOND": "1",
                "LOG_LEVEL": "WARNING",
            }
            log = logs / f"worker-{number}.log"
            with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the worker
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "webhook", env=env, stdout=out, stderr=out
                )
            started.append((process, log))
            urls.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session:
            for (process, log), base in zip(started, urls, strict=True):
                deadline = time.monotonic() + 30
                while True:
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with session.get(base + "/readyz") as response:
                            if response.status == 200:
                                break
                    assert process.returncode is None, f"worker stopped:\n{log.read_text()}"
                    assert time.monotonic() < deadline, f"worker not ready in 30 s:\n{log.read_text()}"
                    await asyncio.sleep(0.1)
        yield [base + webhook_path(SECRET) for base in urls]
    finally:
        for process, _ in started:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process, log in started:
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise AssertionError(f"worker did not stop on SIGTERM:\n{log.read_text()}") from None
            assert process.returncode == 0, f"worker exited {process.returncode}:\n{log.read_text()}"


def bot_texts(fake: FakeBotApi, chat_id: int) -> list[str]:
    """The bot's messages in a chat as first sent (before edits), oldest first; cheap, no snapshots."""
    chat = fake._chats.get(chat_id)
    if chat is None:
        return []
    return [
        (message.history[0].text if message.history else message.text) or ""
        for message in chat.messages.values()
        if message.sender is None
    ]


class Crowd:
    """Delivers updates like Telegram: one at a time per chat, to a random worker, some twice."""

    def __init__(self, fake: FakeBotApi, urls: list[str], session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.urls = urls
        self.session = session
        self.limit = asyncio.Semaphore(CONCURRENT_DELIVERIES)
        self.random = random.Random(20240601)
        self.delivered: list[int] = []  # update_ids, once per update
        self.redelivered = 0
        self.retried = 0
        self.statuses: Counter[int] = Counter()
        self.posting = 0.0  # seconds spent waiting for webhook answers, summed over residents
        self.waiting = 0.0  # seconds spent waiting for the bot's messages after the answer

    async def post(self, url: str, update: dict[str, Any]) -> int:
        async with (
            self.limit,
            self.session.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response,
        ):
            await response.read()
            self.statuses[response.status] += 1
            return response.status

    async def until_accepted(self, url: str, update: dict[str, Any]) -> None:
        """POST until a 2xx answer, as Telegram retries an update it was not sure about: after a 503, and
        after a dropped connection (a worker closes a keep-alive connection idle past its timeout, which
        on a busy machine can cross the next request)."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            try:
                status = await self.post(url, update)
            except aiohttp.ServerDisconnectedError:
                status = None
            if status == 200:
                return
            assert status in (None, 503), f"update {update['update_id']}: HTTP {status}"
            assert time.monotonic() < deadline, f"update {update['update_id']} never accepted"
            self.retried += 1
            await asyncio.sleep(0.5)

    async def deliver(self, update: dict[str, Any]) -> None:
        began = time.monotonic()
        try:
            await self._deliver(update)
        finally:
            self.posting += time.monotonic() - began

    async def _deliver(self, update: dict[str, Any]) -> None:
        first = self.random.randrange(len(self.urls))
        self.delivered.append(update["update_id"])
        if self.random.random() < REDELIVERY_RATE:
            # Telegram did not see the first answer in time and delivers the same update again, to
            # whichever worker the load balancer picks: the other one, at the same moment.
            self.redelivered += 1
            other = self.urls[(first + 1) % len(self.urls)]
            await asyncio.gather(
                self.until_accepted(self.urls[first], update), self.until_accepted(other, update)
            )
        else:
            await self.until_accepted(self.urls[first], update)

    async def reply(self, user: FakeUser, seen: int, predicate: Callable[[str], bool]) -> int:
        """Wait for the bot's next message to this resident; it must be the expected one."""

        def arrived() -> bool:
            return len(bot_texts(self.fake, user.chat_id)) > seen

        began = time.monotonic()
        await self.fake._changed.wait_until(
            arrived, REPLY_TIMEOUT, lambda: f"no answer to {user}:\n{self.fake.describe_chat(user.chat_id)}"
        )
        self.waiting += time.monotonic() - began
        texts = bot_texts(self.fake, user.chat_id)
        assert predicate(texts[seen]), (
            f"unexpected answer to {user}:\n{self.fake.describe_chat(user.chat_id)}"
        )
        return seen + 1

    async def intake(self, user: FakeUser, number: int) -> None:
        """One resident's whole intake, each step after the bot's answer to the previous one."""
        seen = 0

        async def step(update: dict[str, Any], expect: str, *, first: str | None = None) -> None:
            """Deliver an update; its answer is one message with ``expect``, or two: ``first``, then it."""
            nonlocal seen
            await self.deliver(update)
            if first is not None:
                seen = await self.reply(user, seen, lambda shown: first in shown)
            seen = await self.reply(user, seen, lambda shown: expect in shown)

        def last() -> int:
            return user.last_message().message_id

        def question() -> int:
            """The newest message with inline buttons (a keyboard hint may have come after it)."""
            return next(m.message_id for m in reversed(user.sent()) if m.buttons)

        await step(await user.send_text("/start"), "Wat wil je doen?")
        await step(await user.press(last(), "menu:new"), "Wat is je idee?")
        await step(
            await user.send_text(f"Een moestuin voor de straat, plan {number}, zodat buren samen tuinieren."),
            "Klopt dat?",
        )
        await step(await user.press(last(), "intake:check:titel"), "titel")
        await step(await user.send_text(f"Buurtmoestuin nummer {number}"), "thema")
        # The wijk question comes with a second message for Telegram's share-location keyboard.
        await step(await user.press(last(), "intake:theme:groen"), "Deel mijn locatie", first="In welke wijk")
        # Its answer takes that keyboard away with a short message of its own.
        await step(await user.press(question(), "intake:wijk:WK030101"), "Wat kun je zelf", first="✔")
        await step(await user.press(last(), "intake:own:!skip"), "Hoeveel buren")
        await step(await user.press(last(), "intake:neighbours:!skip"), "Wat heb je nodig")
        needs = last()
        # A need is ticked by editing the question's buttons: no new message, so wait for the edit.
        await self.deliver(await user.press(needs, "intake:needs:plek"))
        began = time.monotonic()
        await self.fake.wait_for_edit(user, needs, timeout=REPLY_TIMEOUT)
        self.waiting += time.monotonic() - began
        await step(await user.press(needs, "intake:needs:!done"), "foto")
        await step(await user.press(last(), "intake:photo:!skip"), "Deel mijn nummer", first="telefoonnummer")
        await step(await user.press(question(), "intake:contact:!skip"), "naam", first="✔")
        await step(await user.send_text(f"Bewoner {number}"), f"Buurtmoestuin nummer {number}")
        await step(await user.press(last(), "intake:confirm:indienen"), "INI-")


async def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def drained(database_url: str, timeout: float = REPLY_TIMEOUT) -> None:  # noqa: ASYNC109
    """Poll until the outbox has nothing pending (edits and callback answers go out last)."""
    deadline = time.monotonic() + timeout
    while (await query(database_url, "SELECT count(*) FROM outbox WHERE status = 'pending'"))[0][0]:
        assert time.monotonic() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_workers_serve_a_crowd_once_and_in_order(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    residents = [fake.user(FIRST_USER_ID + n, f"Bewoner{n}") for n in range(RESIDENTS)]
    began = time.monotonic()
    async with webhook_workers(fake, database_url, tmp_path) as urls, aiohttp.ClientSession() as session:
        crowd = Crowd(fake, urls, session)
        try:
            await asyncio.gather(*(crowd.intake(user, n) for n, user in enumerate(residents)))
            await drained(database_url)
        except AssertionError as failure:
            retried = await query(
                database_url,
                "SELECT id, chat_id, method, status, attempts, last_error FROM outbox"
                " WHERE attempts > 0 OR status <> 'sent' ORDER BY id LIMIT 30",
            )
            raise AssertionError(f"{failure}\noutbox rows retried or not sent: {retried}") from None
    elapsed = time.monotonic() - began
    print(
        f"\n{RESIDENTS} residents, {len(crowd.delivered)} updates, {crowd.redelivered} redelivered, "
        f"{crowd.retried} retried after 503, statuses {dict(crowd.statuses)}, "
        f"{len(fake.calls('sendMessage'))} sendMessage calls, {elapsed:.1f} s; CPU seconds: this process "
        f"{time.process_time():.1f}; mean per update: webhook answer "
        f"{crowd.posting / len(crowd.delivered) * 1000:.0f} ms, then the bot's message "
        f"{crowd.waiting / len(crowd.delivered) * 1000:.0f} ms"
    )

    # Every initiative stored once: one per resident, with that resident's title.
    initiatives = await query(database_url, "SELECT resident_user_id, title, reference FROM initiatives")
    assert len(initiatives) == RESIDENTS
    assert sorted(user_id for user_id, _, _ in initiatives) == [user.id for user in residents]
    assert {title for _, title, _ in initiatives} == {f"Buurtmoestuin nummer {n}" for n in range(RESIDENTS)}
    assert len({reference for _, _, reference in initiatives}) == RESIDENTS

    # Every update handled once, whichever worker got it and however often.
    assert len(set(crowd.delivered)) == len(crowd.delivered)
    processed = [row[0] for row in await query(database_url, "SELECT update_id FROM processed_updates")]
    assert sorted(processed) == sorted(crowd.delivered)

    # Per chat: the greeting, the 11 questions in order, the summary, the confirmation last; each once.
    per_chat = None
    for user in residents:
        texts = bot_texts(fake, user.chat_id)
        numbers = [int(m.group(1)) for shown in texts if (m := QUESTION.search(shown))]
        assert numbers == list(range(1, QUESTIONS + 1)), fake.describe_chat(user.chat_id)
        assert "Wat wil je doen?" in texts[0]
        assert "INI-" in texts[-1] and sum("INI-" in shown for shown in texts) == 1
        assert len(set(texts)) == len(texts), fake.describe_chat(user.chat_id)
        per_chat = len(texts) if per_chat is None else per_chat
        assert len(texts) == per_chat, fake.describe_chat(user.chat_id)

    # Every reply sent exactly once: the outbox sent each row once and nothing failed or is left.
    assert per_chat is not None
    sends = fake.calls("sendMessage")
    assert all(call.ok for call in sends)
    assert len(sends) == per_chat * RESIDENTS
    statuses = dict(await query(database_url, "SELECT status, count(*) FROM outbox GROUP BY status"))
    assert set(statuses) == {"sent"}, statuses
    rows = await query(
        database_url,
        "SELECT count(*), count(DISTINCT (chat_id, telegram_message_id)) FROM outbox"
        " WHERE method = 'sendMessage'",
    )
    assert rows == [(len(sends), len(sends))]
    for method in ("editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"):
        queued = (await query(database_url, f"SELECT count(*) FROM outbox WHERE method = '{method}'"))[0][0]
        assert len(fake.calls(method)) == queued, method
    answered = Counter(call.params.get("callback_query_id") for call in fake.calls("answerCallbackQuery"))
    assert all(count == 1 for count in answered.values())

    # Telegram's limits: reported, not asserted. Arrival times at the fake carry this busy machine's
    # scheduling noise; tests/test_sendgate.py proves both budgets exactly on an injected clock.
    messages = [call for method in BUDGETED for call in fake.calls(method)]
    arrivals = [call.at for call in messages]
    by_chat: dict[Any, list[float]] = {}
    for call in messages:
        by_chat.setdefault(call.params.get("chat_id"), []).append(call.at)
    print(
        f"busiest second: {most_in_any(arrivals, 1)}, busiest ten seconds: {most_in_any(arrivals, 10)} "
        f"messages (budget {BOT_BUDGET}/s); busiest chat second: "
        f"{max(most_in_any(times, 1) for times in by_chat.values())}"
    )


def most_in_any(times: list[float], seconds: float) -> int:
    """The largest number of ``times`` within any span of ``seconds``."""
    times = sorted(times)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best
