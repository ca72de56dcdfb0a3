"""Wires the pieces together: database, translations, dispatcher, outbox, and the PTB Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot, BotCommand, InlineKeyboardMarkup, Message, Update
from telegram.ext import AIORateLimiter, Application, ContextTypes, ExtBot, TypeHandler
from telegram.request import BaseRequest

from bot.dispatcher import Dispatcher
from bot.flood import FloodGuard
from bot.i18n import Translator
from bot.outbox import Outbox, Transport
from bot.settings import Settings, load_municipality
from bot.telegram_io import to_event
from bot.watchdog import Watchdog
from flows.flood import FloodRule
from flows.municipality import Municipality
from flows.resident import LANGUAGES
from flows.text import Msg, t
from storage.db import create_engine, is_sqlite, session_factory
from storage.migrate import is_up_to_date, upgrade

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

    @classmethod
    async def open(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Runtime:
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
        dispatcher = Dispatcher(sessions, municipality, translator, clock, flood=flood, lease=lease)
        return cls(settings, municipality, engine, sessions, translator, dispatcher, clock)

    def outbox(self, transport: Transport) -> Outbox:
        return Outbox(self.sessions, transport, self.clock, lease=self.lease)

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


class TelegramTransport:
    """Carries out outbox calls with PTB's Bot (through its rate limiter)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        markup_data = payload.get("reply_markup")
        markup = InlineKeyboardMarkup.de_json(markup_data, self._bot) if markup_data else None
        chat_id = payload.get("chat_id")
        result: Message | bool
        if method == "sendMessage":
            result = await self._bot.send_message(chat_id, payload["text"], reply_markup=markup)
        elif method == "sendPhoto":
            result = await self._bot.send_photo(
                chat_id, payload["photo"], caption=payload.get("caption"), reply_markup=markup
            )
        elif method == "editMessageText":
            result = await self._bot.edit_message_text(
                payload["text"], chat_id=chat_id, message_id=payload["message_id"], reply_markup=markup
            )
        elif method == "editMessageReplyMarkup":
            result = await self._bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=payload["message_id"], reply_markup=markup
            )
        elif method == "answerCallbackQuery":
            result = await self._bot.answer_callback_query(
                payload["callback_query_id"], text=payload.get("text")
            )
        else:
            raise ValueError(f"unknown outbox method {method}")
        return result.message_id if isinstance(result, Message) else None


async def set_commands(bot: Bot, translator: Translator) -> None:
    """The command menu in every shipped language; Dutch is also the default."""
    for language in (None, *translator.languages):
        lang = language or "nl"
        commands = [BotCommand(name, translator.render(desc, lang)) for name, desc in COMMANDS]
        await bot.set_my_commands(commands, language_code=language)


def file_url_for(base_url: str) -> str:
    """The file download URL belonging to a Bot API base URL (``…/bot`` → ``…/file/bot``)."""
    trimmed = base_url.rstrip("/")
    if trimmed.endswith("/bot"):
        return trimmed[: -len("/bot")] + "/file/bot"
    return trimmed + "/file/bot"


def telegram_bot(settings: Settings) -> ExtBot[None]:
    """A Bot for use outside an Application: Telegram's rate limits respected, flood waits left to the
    outbox (as in ``run``); call ``initialize`` (or use ``async with``) before sending."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    urls: dict[str, str] = {}
    if settings.telegram_api_base_url:
        urls = {
            "base_url": settings.telegram_api_base_url,
            "base_file_url": file_url_for(settings.telegram_api_base_url),
        }
    return ExtBot(settings.telegram_bot_token, rate_limiter=AIORateLimiter(max_retries=0), **urls)


def build_application(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    request: BaseRequest | None = None,
    rate_limiter: AIORateLimiter | None = None,
) -> Application:
    """A PTB Application whose every update goes through our dispatcher and outbox.

    The database and outbox are opened in ``post_init``, which ``run_polling`` calls; code that drives
    the application by hand calls ``await app.initialize()`` and then ``await app.post_init(app)``.
    """
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    state: dict[str, Any] = {}

    async def post_init(app: Application) -> None:
        runtime = await Runtime.open(settings, clock=clock)
        outbox = runtime.outbox(TelegramTransport(app.bot))
        state.update(runtime=runtime, outbox=outbox)
        await set_commands(app.bot, runtime.translator)
        await outbox.flush(take_leased=True)  # messages queued before a crash or restart
        loop = asyncio.get_running_loop()
        state["sweeper"] = loop.create_task(outbox.run(), name="outbox-sweeper")
        interval = runtime.municipality.watchdog_interval_minutes * 60
        state["watchdog"] = loop.create_task(runtime.watchdog(outbox).run(interval), name="stall-watchdog")

    async def post_shutdown(app: Application) -> None:
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
        handled = await runtime.dispatcher.handle(event, update.update_id)
        await state["outbox"].send(handled.outbox)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("unhandled error for update %s", update_id, exc_info=context.error)

    builder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        # Flood waits are handled by the outbox (the chat waits, others go on), so no retries here.
        .rate_limiter(rate_limiter or AIORateLimiter(max_retries=0))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url).base_file_url(
            file_url_for(settings.telegram_api_base_url)
        )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    app = builder.build()
    app.add_handler(TypeHandler(Update, on_update))
    app.add_error_handler(on_error)
    return app
