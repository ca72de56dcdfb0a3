"""Wires the pieces together: database, translations, dispatcher, outbox, and the PTB Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot, BotCommand, Update
from telegram.ext import Application, BaseRateLimiter, ContextTypes, ExtBot, TypeHandler
from telegram.request import BaseRequest

from bot.bot_api import bot_requests
from bot.command_menus import resident_menu_calls
from bot.dispatcher import Dispatcher, Handled
from bot.flood import FloodGuard
from bot.handback import broker_unreachable
from bot.i18n import Translator
from bot.logs import deployment_pseudonyms
from bot.mail import Mailer, Sender, mail_transport
from bot.notifications import enqueue_for_sweep
from bot.outbox import Outbox, Transport
from bot.sendgate import DatabaseGate, LocalGate, SendGate, chat_pace, global_pace
from bot.settings import Settings, load_municipality
from bot.smtp import Echo
from bot.telegram_io import to_event
from bot.transport import SendTimeouts, TelegramTransport
from bot.undelivered import report_undelivered
from bot.watchdog import Watchdog
from flows.events import Event
from flows.flood import FloodRule
from flows.municipality import Municipality
from flows.resident import LANGUAGES
from storage import crypto, reencryption
from storage.db import create_engine, is_sqlite, session_factory
from storage.mail_outbox import MailRow
from storage.migrate import is_up_to_date, upgrade
from storage.outbox import OutboxRow

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
# How long a stopping bot lets the replies under way make new calls, with its HTTP client still open.
# Calls already under way then still get their full timeout (TELEGRAM_SEND_TIMEOUT): cut off, one Telegram
# took would be sent again after the restart.
SEND_GRACE = 5.0
# How long a stopping bot waits for a sender to record a call answered after the stop began; the
# outbox does so in one short transaction, and an idle sweeper cannot say it has.
RECORD_TIME = 1.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_send_coordination(database_url: str, *, sender: str | None) -> str:
    """Where Telegram's budgets and each chat's order live when SEND_COORDINATION is unset.

    In this process on SQLite (one process) and for a ``sender`` role of which one process runs at a time
    (``run``: Telegram lets one poller in, and a deployment sends either through it or through webhook
    workers, never both); in the database for webhook workers and one-off commands on PostgreSQL.
    """
    if make_url(database_url).get_backend_name() == "sqlite" or sender is not None:
        return "local"
    return "database"


def send_gate(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], *, holder: str | None = None
) -> SendGate:
    """Telegram's budgets and the per-chat order, as SEND_COORDINATION says, else as
    ``default_send_coordination``; ``holder`` names the process's sender role (``run``)."""
    coordination = settings.send_coordination or default_send_coordination(
        settings.database_url, sender=holder
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
    _mailer: Mailer | None = field(default=None, init=False, repr=False)

    @classmethod
    async def open(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow, sender: str | None = None
    ) -> Runtime:
        """Open the database and everything on it; ``sender`` names a process role of which only one
        runs at a time (``run``): it is the deployment's only sender, so it keeps Telegram's budgets in
        memory unless SEND_COORDINATION=database, and then a restart takes its predecessor's turns on
        chats back at once."""
        municipality = load_municipality(settings.config_path)
        # Before anything reads or writes a contact detail; raises KeySetupError (one line to show).
        crypto.setup(settings.data_encryption_keys, settings.database_url)
        engine = create_engine(settings.database_url)
        if is_sqlite(engine):
            await upgrade(engine)  # the embedded default migrates itself
        elif not await is_up_to_date(engine):
            await engine.dispose()
            raise DatabaseNotReady("The database schema is not up to date. Run: initiatiefbot db upgrade")
        sessions = session_factory(engine)
        encrypted = await reencryption.encrypt_plaintext(sessions)
        if encrypted.initiatives or encrypted.drafts:
            log.warning(
                "encrypted the contact details stored as plaintext: %d initiatives, %d drafts",
                encrypted.initiatives,
                encrypted.drafts,
            )
        translator = Translator(tuple(LANGUAGES))
        flood = FloodGuard(FloodRule(limit=settings.flood_limit))
        lease = timedelta(seconds=settings.outbox_lease_seconds)
        pseudonyms = await deployment_pseudonyms(settings.log_pseudonym_key, engine)
        gate = send_gate(settings, sessions, holder=sender)
        dispatcher = Dispatcher(
            sessions,
            municipality,
            translator,
            clock,
            flood=flood,
            lease=lease,
            pseudonyms=pseudonyms,
            sends_alone=gate.alone,
            web_url=settings.web_url,
        )
        return cls(settings, municipality, engine, sessions, translator, dispatcher, clock, gate)

    @property
    def send_timeouts(self) -> SendTimeouts:
        return SendTimeouts(self.settings.telegram_send_timeout)

    def transport(self, bot: Bot) -> TelegramTransport:
        """Sends through ``bot`` with this deployment's timeouts."""
        return TelegramTransport(bot, self.send_timeouts)

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
            self.sessions,
            self.municipality,
            self.translator,
            self.clock,
            outbox=outbox,
            lease=self.lease,
            desk=self.dispatcher.casework.desk,
            mailer=self.mailer(),
        )

    def mailer(self, *, echo: Echo | None = None) -> Mailer:
        """The process's one mailer (built on first use, ``echo`` then too): SMTP when SMTP_URL is set,
        else .eml files. Whoever commits queued mail calls ``kick()``; the process that runs the
        sweepers calls ``start()``; :meth:`close` stops it."""
        if self._mailer is None:
            self._mailer = Mailer(
                self.sessions,
                mail_transport(self.settings, echo=echo),
                self.clock,
                sender=Sender.of(self.municipality),
                max_age=timedelta(hours=self.settings.outbox_max_age_hours),
                undeliverable=self._mail_undeliverable,
            )
        return self._mailer

    async def _mail_undeliverable(
        self, session: AsyncSession, mail: MailRow, reason: str, now: datetime
    ) -> None:
        """Tell the case's broker (or its coordinators) that a department did not get a mail about it."""
        notes = await self.dispatcher.casework.desk.undeliverable(session, mail, reason)
        await enqueue_for_sweep(session, notes, self.translator, now)

    @property
    def lease(self) -> timedelta:
        """How long the sweep leaves a fresh message to the process that queued it."""
        return timedelta(seconds=self.settings.outbox_lease_seconds)

    async def close(self) -> None:
        if self._mailer is not None:
            await self._mailer.stop()  # the mail under way is marked sent before the database closes
        await self.engine.dispose()


# A slot of the bot's budget taken from the database is used only if it arrives this soon.
DATABASE_SLOT_LATENESS = 0.1


class StoppableTransport:
    """Wraps a transport so that a stopping process can hold back the calls not yet made, let the calls
    under way be answered, and know when their senders have recorded the answers."""

    def __init__(self, transport: Transport, *, call_seconds: float) -> None:
        self._transport = transport
        self.call_seconds = call_seconds  # the longest one call can take, its timeouts included
        self._open = asyncio.Event()
        self._open.set()
        self._under_way = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._answered: set[asyncio.Task[Any]] = set()  # senders answered since the stop began
        self._held: set[asyncio.Task[Any]] = set()  # senders waiting to make their next call
        self._moved = asyncio.Event()

    def begin_stop(self) -> None:
        """From now on remember which senders get an answer, for :meth:`settle`."""
        self._stopping = True

    def hold(self) -> None:
        """From now on a call waits instead of going out (until its task is cancelled, so its message
        stays queued); calls under way go on."""
        self._open.clear()

    async def idle(self) -> None:
        """Wait until no call is under way."""
        await self._idle.wait()

    async def settle(self) -> None:
        """Wait until each sender whose call was answered since :meth:`begin_stop` has recorded the
        answer: it waits to make its next call (held), or has ended."""
        while settling := {t for t in self._answered if not t.done() and t not in self._held}:
            self._moved.clear()
            moved = asyncio.ensure_future(self._moved.wait())
            try:
                await asyncio.wait({*settling, moved}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        task = asyncio.current_task()
        if not self._open.is_set() and task is not None:
            self._held.add(task)  # the outbox records a new message it sent before it makes the next call
            self._moved.set()
        await self._open.wait()
        self._under_way += 1
        self._idle.clear()
        try:
            return await self._transport.deliver(method, payload)
        finally:
            self._under_way -= 1
            if not self._under_way:
                self._idle.set()
            if self._stopping and task is not None:
                self._answered.add(task)


def stoppable_transport(runtime: Runtime, bot: Bot) -> StoppableTransport:
    """The runtime's transport for ``bot``, which a stopping process can hold (see :func:`stop_sending`)."""
    return StoppableTransport(runtime.transport(bot), call_seconds=runtime.send_timeouts.total)


async def set_commands(bot: Bot, translator: Translator) -> None:
    """The residents' command menu in every shipped language; Dutch is also the default. Staff chats
    have their own (``bot.command_menus``), set through the outbox when their role begins."""
    for call in resident_menu_calls(translator):
        commands = [BotCommand(c["command"], c["description"]) for c in call.payload["commands"]]
        await bot.set_my_commands(commands, language_code=call.payload.get("language_code"))


async def _handle_until_stored(
    runtime: Runtime, event: Event, update_id: int, running: Callable[[], bool]
) -> Handled:
    """Handle a polled update, trying again while the database is unreachable (until the bot stops):
    Telegram keeps no update the bot has asked past, so later updates wait behind this one."""
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
    sends, polls = bot_requests(settings.telegram_api_base_url)
    return ExtBot(settings.telegram_bot_token, request=sends, get_updates_request=polls, **urls)


class BotService:
    """What a polling bot holds while it runs: the runtime, its outbox, the replies being sent beside
    the next updates, the outbox sweeper and the stall watchdog."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._runtime: Runtime | None = None
        self._transport: StoppableTransport | None = None
        self._outbox: Outbox | None = None
        self.sending: set[asyncio.Task[None]] = set()  # replies still going out (benchmarks wait for them)
        self._background: list[asyncio.Task[None]] = []

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the bot service is not started")
        return self._runtime

    async def start(self, bot: Bot) -> None:
        """Open the database, set the command menu, send what a previous run left queued, and start the
        sweeper and the watchdog; ``bot`` must be initialized."""
        # Telegram lets one poller in at a time, so `run` is one process: the only sender (unless
        # SEND_COORDINATION=database), and it may take back its own turns.
        runtime = await Runtime.open(self._settings, clock=self._clock, sender="run")
        self._runtime = runtime
        self._transport = stoppable_transport(runtime, bot)
        outbox = self._outbox = runtime.outbox(self._transport)
        await set_commands(bot, runtime.translator)
        await outbox.flush(take_leased=True)  # messages queued before a crash or restart
        runtime.mailer().start(take_leased=True)  # its first sweep sends mail queued before the restart
        loop = asyncio.get_running_loop()
        self._background.append(loop.create_task(outbox.run(), name="outbox-sweeper"))
        interval = runtime.municipality.watchdog_interval_minutes * 60
        self._background.append(
            loop.create_task(runtime.watchdog(outbox).run(interval), name="stall-watchdog")
        )

    async def store(self, update: Update, running: Callable[[], bool] = lambda: True) -> None:
        """Handle one update in its database transaction and send its replies beside the next updates;
        returns once it is stored (or needs no storing), raises only when it was not stored."""
        try:
            event = to_event(update)
        except Exception:  # a programming error: this update can never be handled, so do not stall on it
            log.exception("update %s could not be read; skipped", update.update_id)
            return
        if event is None:
            return
        handled = await _handle_until_stored(self.runtime, event, update.update_id, running)
        if handled.outbox and self._outbox is not None:
            # Sent beside the next updates, not before them: one stuck on a slow send holds up no one.
            task = asyncio.get_running_loop().create_task(
                self._outbox.send(handled.outbox, alone=handled.alone)
            )
            self.sending.add(task)
            task.add_done_callback(self._sent)
        if handled.mail:
            self.runtime.mailer().kick()

    def _sent(self, task: asyncio.Task[None]) -> None:
        self.sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sending after an update failed; the sweep retries", exc_info=task.exception())

    async def stop_sending(self, grace: float = SEND_GRACE) -> None:
        """End all sending while the HTTP client is still open (see :func:`stop_sending`)."""
        if self._transport is not None:
            await stop_sending(self._transport, self.sending, self._background, grace=grace)
        self._background.clear()

    async def close(self) -> None:
        """Stop sending, then close the database; the caller closes the bot after this."""
        await self.stop_sending()
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None


async def stop_sending(
    transport: StoppableTransport,
    replies: set[asyncio.Task[None]],
    background: Sequence[asyncio.Task[None]],
    *,
    grace: float = SEND_GRACE,
) -> None:
    """Stop sending before the bot's HTTP client closes, so no call Telegram took is cut off and sent
    again after the restart. Replies under way may go on for ``grace`` seconds; then calls not yet made
    are held back (their messages stay queued for the next start), those under way are answered (or time
    out) and recorded; last the ``background`` tasks (sweeper, watchdog) and the replies still held are
    cancelled."""
    transport.begin_stop()
    if replies:
        await asyncio.wait(set(replies), timeout=grace)
    transport.hold()
    try:
        await asyncio.wait_for(transport.idle(), timeout=transport.call_seconds)
    except TimeoutError:
        log.warning("a Bot API call is unanswered after %.0f s; stopping anyway", transport.call_seconds)
    else:
        with contextlib.suppress(TimeoutError):
            # A sweeper that recorded its answer and went back to sleep never shows it: wait a moment.
            await asyncio.wait_for(transport.settle(), timeout=RECORD_TIME)
    tasks = [*replies, *background]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def build_service(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    request: BaseRequest | None = None,
    rate_limiter: BaseRateLimiter[Any] | None = None,
) -> tuple[Application, BotService]:
    """A PTB Application and the service it hands every update to.

    The bot sends through :func:`bot.bot_api.bot_requests`, or through ``request`` (a stub in tests and
    benchmarks) when given. ``initiatiefbot run`` uses the application's bot and polls with
    :mod:`bot.polling`. Code that drives PTB's own updater calls ``await app.initialize()`` and
    ``await app.post_init(app)`` first; the application's ``post_stop`` and ``post_shutdown`` stop the
    sending and close the database.
    """
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    service = BotService(settings, clock)

    async def post_init(app: Application) -> None:
        await service.start(app.bot)
        app.bot_data["runtime"] = service.runtime
        app.bot_data["sending"] = service.sending

    async def post_stop(app: Application) -> None:
        await service.stop_sending()  # before Application.shutdown closes the bot's HTTP client

    async def post_shutdown(app: Application) -> None:
        await service.close()

    async def on_update(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            await service.store(update, lambda: context.application.running)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("unhandled error for update %s", update_id, exc_info=context.error)

    builder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
    )
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url).base_file_url(
            file_url_for(settings.telegram_api_base_url)
        )
    sends, polls = (request, request) if request is not None else bot_requests(settings.telegram_api_base_url)
    builder = builder.request(sends).get_updates_request(polls)
    if rate_limiter is not None:  # the outbox paces and handles flood waits; PTB's limiter is optional
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()
    app.add_handler(TypeHandler(Update, on_update))
    app.add_error_handler(on_error)
    return app, service


def build_application(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    request: BaseRequest | None = None,
    rate_limiter: BaseRateLimiter[Any] | None = None,
) -> Application:
    """A PTB Application whose every update goes through our dispatcher and outbox (see
    :func:`build_service`)."""
    app, _ = build_service(settings, clock=clock, request=request, rate_limiter=rate_limiter)
    return app
