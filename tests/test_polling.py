"""Polling loses nothing and repeats nothing: Telegram is asked past an update only once it is stored.

The first tests drive :class:`bot.polling.Poller` against the fake Bot API with a stand-in store; the
last runs ``initiatiefbot run`` as a real process and kills it (``kill -9``) at points of a burst of
messages that the fake observes: right after it handed out a batch, and right after the bot asked for
the next one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from telegram import Bot, Update

from bot.polling import Poller
from tests.e2e import migrate
from tests.fake_bot_api import ApiCall, FakeBotApi, FakeUser
from tests.test_e2e_restart import (
    REPLY_TIMEOUT,
    assert_every_queued_message_sent_once_in_order,
    query,
    start_bot_process,
    stopped_at_the_end,
)

pytestmark = pytest.mark.timeout(90)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest_asyncio.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as bot:
        yield bot


class Store:
    """Stands in for the bot's store: records what it stored, and can fail for chosen updates."""

    def __init__(self, fake: FakeBotApi) -> None:
        self._fake = fake
        self.stored: list[int] = []
        self.polls_before: dict[int, int] = {}  # update_id -> getUpdates calls made before it was stored
        self.attempts: Counter[int] = Counter()
        self.failing: dict[int, int] = {}  # update_id -> how many more attempts fail
        self.changed = asyncio.Event()

    async def __call__(self, update: Update) -> None:
        self.attempts[update.update_id] += 1
        if self.failing.get(update.update_id, 0) > 0:
            self.failing[update.update_id] -= 1
            raise ConnectionError("database unreachable")
        self.stored.append(update.update_id)
        self.polls_before[update.update_id] = len(self._fake.calls("getUpdates"))
        self.changed.set()

    async def wait_for(self, *update_ids: int) -> None:
        async with asyncio.timeout(10):
            while not set(update_ids) <= set(self.stored):
                self.changed.clear()
                await self.changed.wait()


def offsets(fake: FakeBotApi) -> list[int]:
    return [int(call.params.get("offset") or 0) for call in fake.calls("getUpdates")]


async def test_poller_asks_past_updates_only_after_storing_them(fake: FakeBotApi, bot: Bot) -> None:
    nora, piet = fake.user(3001, "Nora"), fake.user(3002, "Piet")
    store = Store(fake)
    poller = Poller(bot, store, timeout=1, first_retry=0.01)
    polling = asyncio.ensure_future(poller.run())
    try:
        sent = [await user.send_text(f"bericht {n}") for n in range(3) for user in (nora, piet)]
        ids = [update["update_id"] for update in sent]
        await store.wait_for(*ids)
        await fake.wait_until_consumed()
        # Each getUpdates call asked past an update only if that update was stored before the call.
        for index, offset in enumerate(offsets(fake)):
            passed = [update_id for update_id in ids if update_id < offset]
            assert all(store.polls_before[update_id] <= index for update_id in passed)
    finally:
        poller.stop()
        await polling
    assert sorted(store.stored) == ids
    # One chat's updates in order.
    for user in (nora, piet):
        mine = [update["update_id"] for update in sent if update["message"]["chat"]["id"] == user.chat_id]
        assert [i for i in store.stored if i in mine] == mine


async def test_poller_keeps_polling_through_conflicts_and_server_errors(fake: FakeBotApi, bot: Bot) -> None:
    nora = fake.user(3101, "Nora")
    fake.fail_next("getUpdates", error_code=409)  # another instance polls (a deploy's overlap)
    fake.fail_next_http("getUpdates", status=502)
    fake.fail_next("getUpdates", error_code=500)
    fake.fail_next("getUpdates", error_code=429, retry_after=1)
    update = await nora.send_text("hallo")
    store = Store(fake)
    poller = Poller(bot, store, timeout=1, first_retry=0.01)
    polling = asyncio.ensure_future(poller.run())
    try:
        await store.wait_for(update["update_id"])
    finally:
        poller.stop()
        await polling
    statuses = [call.status for call in fake.calls("getUpdates")]
    assert statuses[:5] == [409, 502, 500, 429, 200]
    assert store.stored == [update["update_id"]]


async def test_an_update_that_cannot_be_stored_is_fetched_again_and_not_passed(
    fake: FakeBotApi, bot: Bot
) -> None:
    nora, piet = fake.user(3201, "Nora"), fake.user(3202, "Piet")
    first = (await nora.send_text("een"))["update_id"]
    stuck = (await nora.send_text("twee"))["update_id"]
    after = (await nora.send_text("drie"))["update_id"]
    other = (await piet.send_text("hoi"))["update_id"]
    store = Store(fake)
    store.failing[stuck] = 2  # the database is down for two tries
    poller = Poller(bot, store, timeout=1, first_retry=0.01)
    polling = asyncio.ensure_future(poller.run())
    try:
        await store.wait_for(first, stuck, after, other)
    finally:
        poller.stop()
        await polling
    assert store.attempts[stuck] == 3
    # Nora's later message waited behind the one that failed; Piet's was stored at once.
    assert [i for i in store.stored if i in (first, stuck, after)] == [first, stuck, after]
    # It was fetched again after each failure, and until it was stored no getUpdates asked past it.
    before = store.polls_before[stuck]
    assert before == 3
    assert all(offset <= stuck for offset in offsets(fake)[:before])
    assert poller.offset == other + 1


async def test_stopping_confirms_only_what_was_stored(fake: FakeBotApi, bot: Bot) -> None:
    nora = fake.user(3301, "Nora")
    stored = (await nora.send_text("een"))["update_id"]
    store = Store(fake)
    poller = Poller(bot, store, timeout=1, first_retry=0.01)
    polling = asyncio.ensure_future(poller.run())
    await store.wait_for(stored)
    stuck = (await nora.send_text("twee"))["update_id"]
    store.failing[stuck] = 1000  # the database went down
    await fake.wait_for_call("getUpdates", lambda call: stuck in fake.handed_out(call), timeout=10)
    poller.stop()
    await polling
    assert offsets(fake)[-1] == stuck  # the last call confirmed the first update only
    assert fake.pending_updates == 1


# --- a real process, killed during a burst ----------------------------------------------------

# Each round types groups of messages; the fake hands each group out before the next is typed.
GROUPS = (2, 3, 1, 4)
# (round's last group, moment of the kill): "handed_out" right after the fake answered a getUpdates
# with that group, "asked_again" right after the bot's next getUpdates call arrived.
KILLS = (
    (1, "handed_out"),
    (2, "asked_again"),
    (3, "handed_out"),
)


# Four process starts take a while: one database, the one where chats' transactions really overlap.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_every_message_of_a_burst_is_answered_once_however_often_the_bot_is_killed(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    residents = [fake.user(3401 + n, f"Bewoner {n}", language_code="en") for n in range(4)]
    typed: dict[FakeUser, list[int]] = {user: [] for user in residents}
    log = tmp_path / "bot.log"
    turn = 0
    for round_number, (last_group, moment) in enumerate(KILLS):
        await fake.wait_until_none_hang()
        fake.clear_faults()
        # The replies of the last round go out (and are recorded) at start, before the bot polls. New
        # replies hang from its first poll on: a kill -9 then never falls between Telegram taking a
        # message and the bot recording it (the outbox's window, see tests/test_e2e_restart.py), and
        # this test counts what polling does: every message stored once, so answered once.
        fake.when_called("getUpdates", lambda _: fake.hang_next("sendMessage", times=10_000))
        async with stopped_at_the_end(await start_bot_process(fake, database_url, log)) as bot:
            for group, size in enumerate(GROUPS[: last_group + 1]):
                polls = _answered(fake)
                ids = []
                for _ in range(size):
                    user = residents[turn % len(residents)]
                    turn += 1
                    update = await user.send_text(f"Ronde {round_number}, groep {group}: hallo")
                    typed[user].append(update["update_id"])
                    ids.append(update["update_id"])
                handed = await fake.wait_for_call(
                    "getUpdates",
                    lambda call, last=ids[-1]: last in fake.handed_out(call),
                    after=polls,
                    timeout=REPLY_TIMEOUT,
                )
            if moment == "asked_again":
                after = _index(fake, handed) + 1
                await fake.wait_for_call(
                    "getUpdates",
                    lambda call, last=ids[-1]: _offset(call) > last,
                    after=after,
                    timeout=REPLY_TIMEOUT,
                )
            await bot.kill_hard()

    await fake.wait_until_none_hang()
    fake.clear_faults()
    async with stopped_at_the_end(await start_bot_process(fake, database_url, log)):
        for user in residents:  # each message gets one reply
            await fake.wait_for_sent(user, len(typed[user]), timeout=REPLY_TIMEOUT)
        await fake.wait_until_consumed(timeout=REPLY_TIMEOUT)
    all_typed = sorted(i for ids in typed.values() for i in ids)
    handled = [row[0] for row in await query(database_url, "SELECT update_id FROM processed_updates")]
    assert sorted(set(handled) & set(all_typed)) == all_typed
    for user in residents:
        assert len(fake.sent(user)) == len(typed[user]), fake.describe_chat(user)
    await assert_every_queued_message_sent_once_in_order(fake, database_url)


def _offset(call: ApiCall) -> int:
    return int(call.params.get("offset") or 0)


def _answered(fake: FakeBotApi) -> int:
    """How many getUpdates calls were answered before the first one still open."""
    calls = fake.calls("getUpdates")
    return next((n for n, call in enumerate(calls) if call.status is None), len(calls))


def _index(fake: FakeBotApi, call: ApiCall) -> int:
    """How many getUpdates calls came before ``call``."""
    return next(n for n, other in enumerate(fake.calls("getUpdates")) if other is call)
