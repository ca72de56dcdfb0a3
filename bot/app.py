"""Wires the pieces together: database, translations, dispatcher, outbox, and the PTB Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot, BotCommand, Update
from telegram.ext import Application, BaseRateLimiter, ContextTypes, ExtBot, TypeHandler
from telegram.request import BaseRequest

from bot.dispatcher import Dispatcher, Handled
from bot.flood import FloodGuard
from bot.handback import broker_unreachable
from bot.i18n import Translator
from bot.logs import deployment_pseudonyms
from bot.outbox import Outbox, Transport
from bot.sendgate import DatabaseGate, LocalGate, SendGate, chat_pace, global_pace
from bot.settings import Settings, load_municipality
from bot.telegram_io import to_event
from bot.transport import SendTimeouts, TelegramTransport
from bot.undelivered import report_undelivered
from bot.watchdog import Watchdog
from flows.events import Event
from flows.flood import FloodRule
from flows.municipality import Municipality
from flows.resident import LANGUAGES
from flows.text import Msg, t
from storage.db import create_engine, is_sqlite, session_factory
from storage.migrate import is_up_to_date, upgrade
from storage.repository import OutboxRow

log = logging.getLogger(__name__)

COMMANDS: tuple[tuple[str, Msg], ...] = (
    ("start", t("Start and main menu")),
    ("nieuw", t("Share a new idea")),
    ("mijn", t("My initiatives")),
    ("taal", t("Choose your language")),
    ("help", t("Help")),
    ("stop", t("Stop for now")),
)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def send_gate(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], *, holder: str | None = None
) -> SendGate:
    """Telegram's budgets and the per-chat order: in the database on PostgreSQL (shared by every worker),
    in this process on SQLite (one process), unless SEND_COORDINATION says otherwise."""
    coordination = settings.send_coordination
    if coordination is None:
        coordination = (
            "local" if make_url(settings.database_url).get_backend_name() == "sqlite" else "database"
        )
    chat = chat_pace(settings.telegram_chat_max_per_second)
    if coordination == "database":
        # A slot comes back from the database a round trip after its moment: the pace leaves room for it.
        late = DATABASE_SLOT_LATENESS
        return DatabaseGate(
            sessions,
            chat_pace=chat,
            global_pace=global_pace(settings.telegram_max_per_second, slack=late),
            claim_seconds=settings.outbox_lease_seconds,
            holder=holder,
            late=late,
            call_seconds=SendTimeouts(settings.telegram_send_timeout).total,
        )
    return LocalGate(chat, global_pace(settings.telegram_max_per_second))


class DatabaseNotReady(RuntimeError):
    """The PostgreSQL schema is behind the code: run ``initiatiefbot db upgrade``."""


@dataclass
class Runtime:
    """Everything a running bot holds: opened once per process, closed on shutdown."""

    settings: Settings
    municipality: Municipality
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    translator: Translator
    dispatcher: Dispatcher
    clock: Callable[[], datetime]
    gate: SendGate

    @classmethod
    async def open(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow, sender: str | None = None
    ) -> Runtime:
        """Open the database and everything on it; ``sender`` names a process role of which only one
        runs at a time (``run``), so a restart takes its predecessor's turns on chats back at once."""
        municipality = load_municipality(settings.config_path)
        engine = create_engine(settings.database_url)
        if is_sqlite(engine):
            await upgrade(engine)  # the embedded default migrates itself
        elif not await is_up_to_date(engine):
            await engine.dispose()
            raise DatabaseNotReady("The database schema is not up to date. Run: initiatiefbot db upgrade")
        sessions = session_factory(engine)
        translator = Translator(tuple(LANGUAGES))
        flood = FloodGuard(FloodRule(limit=settings.flood_limit))
        lease = timedelta(seconds=settings.outbox_lease_seconds)
        pseudonyms = await deployment_pseudonyms(settings.log_pseudonym_key, engine)
        dispatcher = Dispatcher(
            sessions, municipality, translator, clock, flood=flood, lease=lease, pseudonyms=pseudonyms
        )
        return cls(
            settings,
            municipality,
            engine,
            sessions,
            translator,
            dispatcher,
            clock,
            send_gate(settings, sessions, holder=sender),
        )

    def transport(self, bot: Bot) -> TelegramTransport:
        """Sends through ``bot`` with this deployment's timeouts."""
        return TelegramTransport(bot, SendTimeouts(self.settings.telegram_send_timeout))

    def outbox(self, transport: Transport) -> Outbox:
        max_age = timedelta(hours=self.settings.outbox_max_age_hours)

        async def undelivered(session: AsyncSession, rows: Sequence[OutboxRow], now: datetime) -> None:
            await report_undelivered(session, rows, now, tr=self.translator, max_age=max_age)

        async def unreachable(session: AsyncSession, chat_id: int, now: datetime) -> None:
            await broker_unreachable(session, chat_id, now, tr=self.translator)

        return Outbox(
            self.sessions,
            transport,
            self.clock,
            lease=self.lease,
            gate=self.gate,
            max_age=max_age,
            undelivered=undelivered,
            unreachable=unreachable,
        )

    def watchdog(self, outbox: Outbox | None) -> Watchdog:
        """The stall watchdog; it sends through ``outbox`` (None: it only queues, or only reports)."""
        return Watchdog(
            self.sessions, self.municipality, self.translator, self.clock, outbox=outbox, lease=self.lease
        )

    @property
    def lease(self) -> timedelta:
        """How long the sweep leaves a fresh message to the process that queued it."""
        return timedelta(seconds=self.settings.outbox_lease_seconds)

    async def close(self) -> None:
        await self.engine.dispose()


# A slot of the bot's budget taken from the database is used only if it arrives this soon.
DATABASE_SLOT_LATENESS = 0.1


async def set_commands(bot: Bot, translator: Translator) -> None:
    """The command menu in every shipped language; Dutch is also the default."""
    for language in (None, *translator.languages):
        lang = language or "nl"
        commands = [BotCommand(name, translator.render(desc, lang)) for name, desc in COMMANDS]
        await bot.set_my_commands(commands, language_code=language)


async def _handle_until_stored(
    runtime: Runtime, event: Event, update_id: int, running: Callable[[], bool]
) -> Handled:
    """Handle a polled update, trying again while the database is unreachable (until the bot stops):
    PTB has confirmed it to Telegram already, so giving up would lose it. Later updates wait behind it."""
    delay = 1.0
    while True:
        try:
            return await runtime.dispatcher.handle(event, update_id)
        except Exception:
            if not running():
                raise
            # The dispatcher only raises when it could not even record the update.
            log.exception("update %s not stored; trying again in %.0f s", update_id, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def file_url_for(base_url: str) -> str:
    """The file download URL belonging to a Bot API base URL (``…/bot`` → ``…/file/bot``)."""
    trimmed = base_url.rstrip("/")
    if trimmed.endswith("/bot"):
        return trimmed[: -len("/bot")] + "/file/bot"
    return trimmed + "/file/bot"


def telegram_bot(settings: Settings) -> ExtBot[None]:
    """A Bot for use outside an Application (the outbox paces it, as in ``run``); call ``initialize`` (or
    use ``async with``) before sending."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    urls: dict[str, str] = {}
    if settings.telegram_api_base_url:
        urls = {
            "base_url": settings.telegram_api_base_url,
            "base_file_url": file_url_for(settings.telegram_api_base_url),
        }
    return ExtBot(settings.telegram_bot_token, **urls)


def build_application(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    request: BaseRequest | None = None,
    rate_limiter: BaseRateLimiter[Any] | None = None,
) -> Application:
    """A PTB Application whose every update goes through our dispatcher and outbox.

    The database and outbox are opened in ``post_init``, which ``run_polling`` calls; code that drives
    the application by hand calls ``await app.initialize()`` and then ``await app.post_init(app)``.
    """
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    state: dict[str, Any] = {}

    async def post_init(app: Application) -> None:
        # Telegram lets one poller in at a time, so `run` is one process: it may take back its own turns.
        runtime = await Runtime.open(settings, clock=clock, sender="run")
        outbox = runtime.outbox(runtime.transport(app.bot))
        state.update(runtime=runtime, outbox=outbox)
        app.bot_data["runtime"] = runtime
        app.bot_data["sending"] = sending  # replies still going out (benchmarks wait for them)
        await set_commands(app.bot, runtime.translator)
        await outbox.flush(take_leased=True)  # messages queued before a crash or restart
        loop = asyncio.get_running_loop()
        state["sweeper"] = loop.create_task(outbox.run(), name="outbox-sweeper")
        interval = runtime.municipality.watchdog_interval_minutes * 60
        state["watchdog"] = loop.create_task(runtime.watchdog(outbox).run(interval), name="stall-watchdog")

    sending: set[asyncio.Task[None]] = set()

    def _sent(task: asyncio.Task[None]) -> None:
        sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sending after an update failed; the sweep retries", exc_info=task.exception())

    async def post_shutdown(app: Application) -> None:
        if sending:  # replies of the last updates: give them a moment, the rest stays queued
            await asyncio.wait(set(sending), timeout=10)
            for task in set(sending):
                task.cancel()
        for name in ("watchdog", "sweeper"):
            task = state.pop(name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        runtime = state.pop("runtime", None)
        if runtime is not None:
            await runtime.close()

    async def on_update(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        event = to_event(update)
        if event is None:
            return
        runtime: Runtime = state["runtime"]
        handled = await _handle_until_stored(
            runtime, event, update.update_id, lambda: context.application.running
        )
        if handled.outbox:
            # Sent beside the next updates, not before them: PTB has confirmed the updates it fetched
            # to Telegram, so one stuck on a slow send would be lost with the process.
            task = asyncio.get_running_loop().create_task(state["outbox"].send(handled.outbox))
            sending.add(task)
            task.add_done_callback(_sent)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("unhandled error for update %s", update_id, exc_info=context.error)

    builder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url).base_file_url(
            file_url_for(settings.telegram_api_base_url)
        )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if rate_limiter is not None:  # the outbox paces and handles flood waits; PTB's limiter is optional
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()
    app.add_handler(TypeHandler(Update, on_update))
    app.add_error_handler(on_error)
    return app
