"""The webhook worker: Telegram's updates over HTTPS, health checks for the platform, and the staff web.

Telegram POSTs each update to ``/telegram/<path-secret>`` with the header
``X-Telegram-Bot-Api-Secret-Token: $TELEGRAM_WEBHOOK_SECRET``. The path secret is derived from that
secret (:func:`webhook_path_secret`), so an access log that shows the URL does not show the header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, Update

from bot.app import Runtime, StoppableTransport, stop_sending, stoppable_transport, telegram_bot, utcnow
from bot.outbox import Outbox
from bot.settings import Settings
from bot.telegram_io import to_event
from bot.web.limits import MAX_BODY_BYTES, Limits, read_body, start
from bot.web.site import SITE, open_site, setup_site
from storage.migrate import is_up_to_date
from storage.outbox import OutboxRow

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PREFIX = "/telegram/"
# A database that does not answer within this time counts as unreachable for /readyz.
READINESS_TIMEOUT = 5.0


def webhook_path_secret(secret: str) -> str:
    """The path part of the webhook URL: the first 16 hex digits of the secret's SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def webhook_path(secret: str) -> str:
    return WEBHOOK_PREFIX + webhook_path_secret(secret)


def webhook_url(base_url: str, secret: str) -> str:
    """The URL to register with Telegram for a deployment reachable at ``base_url``."""
    return base_url.rstrip("/") + webhook_path(secret)


async def readiness(engine: AsyncEngine) -> str | None:
    """Why this worker cannot serve updates now (database unreachable, schema not current), or None."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            if not await is_up_to_date(engine):
                return "database schema is not current: run initiatiefbot db upgrade"
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}"
    return None


@dataclass
class _Worker:
    """What a running web worker holds between start-up and clean-up."""

    runtime: Runtime
    bot: Bot
    transport: StoppableTransport
    outbox: Outbox
    background: list[asyncio.Task[None]] = field(default_factory=list)
    sending: set[asyncio.Task[None]] = field(default_factory=set)

    def send_later(self, rows: tuple[OutboxRow, ...], alone: frozenset[int] = frozenset()) -> None:
        """Send committed rows after the response; what fails stays queued for the sweeper."""
        task = asyncio.get_running_loop().create_task(self.outbox.send(rows, alone=alone), name="outbox-send")
        self.sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self.sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sending after a webhook update failed", exc_info=task.exception())


WORKER = web.AppKey("worker", _Worker)


def build_web_app(
    settings: Settings,
    *,
    open_runtime: Callable[[], Awaitable[Runtime]] | None = None,
    bot: Bot | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> web.Application:
    """The aiohttp application of ``initiatiefbot webhook``: the webhook, ``/healthz``, ``/readyz``, the
    staff web and the Open311 API.

    ``open_runtime`` (default ``Runtime.open``) and ``bot`` are opened at start-up and closed at
    clean-up by the application.
    """
    secret = settings.telegram_webhook_secret
    if not secret:
        raise ValueError("TELEGRAM_WEBHOOK_SECRET is not set")
    secret_bytes = secret.encode()
    path_secret = webhook_path_secret(secret).encode()
    limits = limits_of(settings)

    async def start(app: web.Application) -> None:
        runtime = await (open_runtime() if open_runtime is not None else Runtime.open(settings, clock=clock))
        telegram = bot if bot is not None else telegram_bot(settings)
        try:
            await telegram.initialize()
        except BaseException:
            await runtime.close()
            raise
        transport = stoppable_transport(runtime, telegram)
        outbox = runtime.outbox(transport)
        worker = _Worker(runtime, telegram, transport, outbox)
        app[SITE] = open_site(runtime, telegram)
        loop = asyncio.get_running_loop()
        # Unlike `run`, no flush(take_leased=True): other workers may be sending their fresh rows. The
        # sweeper takes over what a crashed worker left once its lease has run out.
        worker.background.append(loop.create_task(outbox.run(), name="outbox-sweeper"))
        runtime.mailer().start()  # stopped by runtime.close(); a dead worker's claims wait for their lease
        interval = runtime.municipality.watchdog_interval_minutes * 60
        worker.background.append(
            loop.create_task(runtime.watchdog(outbox).run(interval), name="stall-watchdog")
        )
        app[WORKER] = worker

    async def cleanup(app: web.Application) -> None:
        worker = app.get(WORKER)
        if worker is None:
            return
        # Sending ends before the bot's HTTP client closes: a call cut off after Telegram took it would
        # be sent again by the next worker.
        await stop_sending(worker.transport, worker.sending, worker.background)
        try:
            await worker.bot.shutdown()
        finally:
            await worker.runtime.close()

    async def telegram_update(request: web.Request) -> web.Response:
        # Nothing about the request is trusted, or even read, before both secrets match.
        if not hmac.compare_digest(request.match_info["secret"].encode(), path_secret):
            raise web.HTTPNotFound()
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret_bytes):
            raise web.HTTPUnauthorized()
        worker = request.app[WORKER]
        body = await read_body(request, limits)  # 413 when it is too long
        if isinstance(body, web.Response):  # 408: it stalled
            return body
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an Update")
            update = Update.de_json(data, worker.bot)
        except Exception:
            log.warning("webhook: refused a body that is not a Telegram Update")
            raise web.HTTPBadRequest() from None
        event = to_event(update)
        if event is None:
            return web.Response(status=200)
        try:
            handled = await worker.runtime.dispatcher.handle(event, update.update_id)
        except Exception:
            # The dispatcher only raises when it could not even record the update: the database is
            # down. Telegram delivers the update again later.
            log.exception("update %s not stored; asking Telegram to deliver it again", update.update_id)
            raise web.HTTPServiceUnavailable() from None
        if handled.outbox:
            worker.send_later(handled.outbox, handled.alone)
        if handled.mail:
            worker.runtime.mailer().kick()
        return web.Response(status=200)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        reason = await readiness(request.app[WORKER].runtime.engine)
        if reason is not None:
            return web.json_response({"status": "not ready", "reason": reason}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_route("*", WEBHOOK_PREFIX + "{secret}", telegram_update)
    app.router.add_get("/healthz", healthz, allow_head=True)
    app.router.add_get("/readyz", readyz, allow_head=True)
    setup_site(app)
    app.on_startup.append(start)
    app.on_cleanup.append(cleanup)
    return app


def limits_of(settings: Settings) -> Limits:
    """The HTTP server's limits: WEBHOOK_HEADER_TIMEOUT, WEBHOOK_BODY_TIMEOUT, WEBHOOK_MAX_CONNECTIONS."""
    return Limits(
        header_timeout=settings.webhook_header_timeout,
        body_timeout=settings.webhook_body_timeout,
        max_connections=settings.webhook_max_connections,
    )


async def _serve(settings: Settings) -> None:
    # SIGINT and SIGTERM end the wait below, so clean-up runs while the replies still being sent live
    # (under asyncio.run, aiohttp's GracefulExit would cancel every task before the clean-up).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        runner, site = await start(
            build_web_app(settings),
            host=settings.webhook_host,
            port=settings.port,
            limits=limits_of(settings),
        )
        log.info("webhook: listening on %s", site.name)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serve(settings: Settings) -> None:
    """Serve the web app on ``WEBHOOK_HOST:PORT``, within the server's limits, until SIGINT or SIGTERM."""
    asyncio.run(_serve(settings))
