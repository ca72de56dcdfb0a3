"""Long polling for ``initiatiefbot run`` that tells Telegram an update arrived only once it is stored.

Telegram forgets every update below the ``offset`` of the next getUpdates call. The poller stores each
fetched batch first (one chat's updates in order, chats side by side) and only then asks past it, so a
process killed at any moment gets its unstored updates again at the next start; those it had stored
already are skipped by the dispatcher, which records every update_id in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError

from bot.app import ALLOWED_UPDATES, build_service
from bot.settings import Settings

log = logging.getLogger(__name__)

# Seconds Telegram holds a getUpdates call open while there is nothing new (PTB's default too).
POLL_TIMEOUT = 10
# After a failed getUpdates (network, 409 Conflict, 5xx) the next try waits this long, doubling to MAX.
FIRST_RETRY = 0.5
MAX_RETRY = 30.0
# Chats whose updates are stored at the same time; enough to overlap database round trips, few enough
# to leave connections to the outbox.
CONCURRENT_CHATS = 8
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")
Store = Callable[[Update], Awaitable[None]]


class Poller:
    """Fetches updates and hands each to ``store``, asking Telegram past an update only after ``store``
    returned for it; ``store`` raises when it could not store the update."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        *,
        allowed_updates: Sequence[str] = ALLOWED_UPDATES,
        timeout: int = POLL_TIMEOUT,
        concurrent_chats: int = CONCURRENT_CHATS,
        first_retry: float = FIRST_RETRY,
    ) -> None:
        self._bot = bot
        self._store = store
        self._allowed_updates = list(allowed_updates)
        self._timeout = timeout
        self._first_retry = first_retry
        self._chats = asyncio.Semaphore(concurrent_chats)
        self._offset: int | None = None  # None: from the oldest update Telegram still keeps
        self._stopping = asyncio.Event()

    @property
    def offset(self) -> int | None:
        """The update_id to ask from next: every update below it is stored."""
        return self._offset

    def stop(self) -> None:
        """Ask :meth:`run` to end; an update it was storing and had not stored is fetched again next time."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll until :meth:`stop`; then confirm the stored updates to Telegram and return."""
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    updates = await self._unless_stopped(self._fetch())
                    self._offset = await self._unless_stopped(self._store_batch(updates))
                    failures = 0
                except InvalidToken:
                    raise  # no retry helps: the token is wrong or revoked
                except RetryAfter as exc:
                    await self._pause(_seconds(exc.retry_after))
                except (TelegramError, OSError) as exc:  # network, 409 Conflict, 5xx
                    delay = min(self._first_retry * 2**failures, MAX_RETRY)
                    failures += 1
                    log.warning("getUpdates failed (%s); trying again in %.1f s", exc, delay)
                    await self._pause(delay)
                except _NotStored as exc:
                    delay = min(self._first_retry * 2**failures, MAX_RETRY)
                    failures += 1
                    log.error("update %s not stored; fetching it again in %.1f s", exc.update_id, delay)
                    self._offset = exc.update_id
                    await self._pause(delay)
        except _Stopped:
            pass
        await self._confirm()

    async def _fetch(self) -> tuple[Update, ...]:
        return await self._bot.get_updates(
            offset=self._offset, timeout=self._timeout, allowed_updates=self._allowed_updates
        )

    async def _store_batch(self, updates: Sequence[Update]) -> int | None:
        """Store a batch, each chat's updates in order; return the offset past it."""
        if not updates:
            return self._offset
        chats: dict[tuple[str, int], list[Update]] = {}
        for update in updates:
            chats.setdefault(_chat_key(update), []).append(update)
        unstored: list[int] = []

        async def store_chat(chat_updates: list[Update]) -> None:
            async with self._chats:
                for index, update in enumerate(chat_updates):
                    try:
                        await self._store(update)
                    except Exception:
                        log.exception("update %s not stored", update.update_id)
                        unstored.extend(later.update_id for later in chat_updates[index:])
                        return

        await asyncio.gather(*(store_chat(chat_updates) for chat_updates in chats.values()))
        if unstored:
            # Later updates of other chats may be stored already: fetched again, the dispatcher skips them.
            raise _NotStored(min(unstored))
        return max(update.update_id for update in updates) + 1

    async def _unless_stopped(self, work: Awaitable[T]) -> T:
        """``work``'s result; raises :class:`_Stopped` (and cancels ``work``) once :meth:`stop` is called."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise _Stopped

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _confirm(self) -> None:
        """Tell Telegram which updates are stored, so the next start does not fetch them again (it would
        skip them, so this only saves work)."""
        if self._offset is None:
            return
        try:
            await self._bot.get_updates(
                offset=self._offset, limit=1, timeout=0, allowed_updates=self._allowed_updates
            )
        except (TelegramError, OSError) as exc:
            log.info("could not confirm the stored updates (%s); they come again and are skipped", exc)


class _Stopped(Exception):
    """:meth:`Poller.stop` was called."""


class _NotStored(Exception):
    """An update of the batch was not stored; it and what comes after it are fetched again."""

    def __init__(self, update_id: int) -> None:
        super().__init__(update_id)
        self.update_id = update_id


def _chat_key(update: Update) -> tuple[str, int]:
    """What orders updates: their chat, else their sender, else nothing (the update on its own)."""
    if update.effective_chat is not None:
        return ("chat", update.effective_chat.id)
    if update.effective_user is not None:
        return ("user", update.effective_user.id)
    return ("update", update.update_id)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def run_polling(settings: Settings, *, stop_signals: Sequence[int] = STOP_SIGNALS) -> None:
    """``initiatiefbot run``: poll until SIGINT or SIGTERM, then stop taking updates, let the replies
    under way go out while the HTTP client is still open, stop the sweeper and watchdog, and close."""
    app, service = build_service(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.initialize()
        web_runner = None
        try:
            await service.start(app.bot)
            if settings.port_set:  # a platform that gives the process a port gets the staff web on it
                from bot.web.standalone import start_beside_bot

                web_runner = await start_beside_bot(settings, service.runtime, app.bot)
            poller = Poller(app.bot, service.store)
            polling = asyncio.ensure_future(poller.run())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if stop.is_set():
                log.info("stopping: no more updates; replies under way go out first")
            poller.stop()
            await polling  # raises what ended polling early (a revoked token)
        finally:
            if web_runner is not None:
                await web_runner.cleanup()
            await service.close()  # sending ends while the HTTP client is still open
            await app.shutdown()
    finally:
        for sig in stop_signals:
            loop.remove_signal_handler(sig)
