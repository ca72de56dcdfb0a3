"""The staff web on its own (``initiatiefbot web``) and beside the polling bot (``run`` with PORT set)."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from aiohttp import web
from telegram import Bot

from bot import demo
from bot.app import Runtime, telegram_bot
from bot.settings import Settings
from bot.web.limits import start
from bot.web.site import SITE, open_site, setup_site
from bot.web.webhook import limits_of
from storage import staff as staff_store

RUNTIME = web.AppKey("standalone_runtime", Runtime)


def build_site_app(
    settings: Settings, *, runtime: Runtime | None = None, bot: Bot | None = None
) -> web.Application:
    """The staff web and the Open311 API; on ``runtime`` when given (it stays open), else on its own."""
    app = web.Application()
    setup_site(app)

    async def open_(app: web.Application) -> None:
        if runtime is not None:
            app[SITE] = open_site(runtime, bot)
            return
        own = await Runtime.open(settings)
        app[RUNTIME] = own
        app[SITE] = open_site(own, bot)
        own.mailer().start()  # the answer pages queue mail; stopped by own.close()

    async def close(app: web.Application) -> None:
        own = app.get(RUNTIME)
        if own is not None:
            await own.close()

    app.on_startup.append(open_)
    app.on_cleanup.append(close)
    return app


async def start_beside_bot(settings: Settings, runtime: Runtime, bot: Bot) -> web.AppRunner:
    """Serve the staff web on WEBHOOK_HOST:PORT beside ``run``; ``cleanup()`` the runner to stop."""
    runner, _ = await start(
        build_site_app(settings, runtime=runtime, bot=bot),
        host=settings.webhook_host,
        port=settings.port,
        limits=limits_of(settings),
    )
    return runner


async def serve_site(settings: Settings, *, host: str, port: int, out: TextIO = sys.stdout) -> None:
    """``initiatiefbot web``: serve until SIGINT or SIGTERM; with a bot token, the case photos show."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bot = telegram_bot(settings) if settings.telegram_bot_token else None
    try:
        if bot is not None:
            await bot.initialize()
        runner, _ = await start(
            build_site_app(settings, bot=bot), host=host, port=port, limits=limits_of(settings)
        )
        print(f"The staff web runs on {settings.web_url}/dashboard (Ctrl+C stops it).", file=out, flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        if bot is not None:
            await bot.shutdown()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def fill_demo(settings: Settings, *, out: TextIO = sys.stdout) -> None:
    """``web --demo``: on an empty database, made-up staff and two years of initiatives to look at."""
    runtime = await Runtime.open(settings)
    try:
        async with runtime.sessions() as session, session.begin():
            if await demo.has_initiatives(session):
                print("The database already holds initiatives: no demo data added.", file=out)
                return
            count = await demo.seed(session, runtime.municipality, runtime.clock())
    finally:
        await runtime.close()
    print(f"Demo data added: {count} initiatives of {runtime.municipality.name} over two years.", file=out)


async def print_login_link(settings: Settings, telegram_id: int, *, out: TextIO = sys.stdout) -> int:
    """``initiatiefbot web --login-link --telegram-id N``: print a one-time link, as /dashboard sends."""
    runtime = await Runtime.open(settings)
    try:
        async with runtime.sessions() as session, session.begin():
            row = await staff_store.load_staff(session, telegram_id)
            if row is None or not row.active:
                print(
                    f"Nobody with Telegram id {telegram_id} is staff. Add someone first, for example:\n"
                    f"    initiatiefbot staff add --role coordinator --name 'Anna de Vries' "
                    f"--telegram-id {telegram_id}",
                    file=sys.stderr,
                )
                return 2
            url = await runtime.dispatcher.casework.login_url(session, row.id, runtime.clock())
    finally:
        await runtime.close()
    print(f"Log in as {row.name} (works once, for 15 minutes):\n{url}", file=out)
    return 0
