"""Command line: ``initiatiefbot run | webhook | shell | db upgrade | staff | watchdog --once | flows``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import privacy_cli, staff_cli
from bot.logs import setup_logging
from bot.settings import ConfigError, Settings
from storage import crypto
from storage.crypto import KeySetupError
from storage.database_url import DatabaseUrlError, async_url, check_reachable

# ``--as-of`` without a timezone is a Dutch wall-clock time.
LOCAL_TIMEZONE = ZoneInfo("Europe/Amsterdam")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="initiatiefbot", description="Telegram bot for bewonersinitiatieven."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot with long polling (needs TELEGRAM_BOT_TOKEN)")
    webhook = sub.add_parser(
        "webhook",
        help="serve Telegram's webhook, /healthz and /readyz on $PORT (needs TELEGRAM_WEBHOOK_SECRET)",
        description="Without options: serve the web app on WEBHOOK_HOST:PORT. With --set-url or --delete: "
        "register or remove the webhook with Telegram and stop.",
    )
    register = webhook.add_mutually_exclusive_group()
    register.add_argument(
        "--set-url",
        metavar="URL",
        help="register URL/telegram/<path-secret> with Telegram, e.g. --set-url https://bot.example.org",
    )
    register.add_argument("--delete", action="store_true", help="remove the webhook (back to polling)")
    web_ = sub.add_parser(
        "web",
        help="serve the staff web (dashboard, case pages, exports, Open311) on its own",
        description="Serves the staff web on the database of DATABASE_URL (default: the embedded SQLite). "
        "Staff log in with a one-time link: /dashboard in the bot, or --login-link here.",
    )
    web_.add_argument(
        "--login-link", action="store_true", help="print a one-time login link for --telegram-id and stop"
    )
    web_.add_argument("--telegram-id", type=int, help="with --login-link: the staff member's Telegram id")
    web_.add_argument(
        "--demo",
        action="store_true",
        help="fill an empty database with made-up staff and initiatives, print a login link for the demo "
        "coordinator (Telegram id 43), and serve",
    )
    web_.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    web_.add_argument("--port", type=int, help="the port to listen on (default: PORT, else 8080)")
    shell = sub.add_parser("shell", help="chat with the bot in the terminal (no Telegram needed)")
    shell.add_argument("--user-id", type=int, default=1, help="act as this Telegram user id (default 1)")
    shell.add_argument("--lang", default="nl", help="the Telegram language code to pretend (default nl)")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply all migrations")
    db_sub.add_parser("current", help="print the current and the newest migration")
    staff_cli.add_parser(sub)
    privacy_cli.add_parser(sub)
    watchdog = sub.add_parser(
        "watchdog",
        help="send the reminders and escalations for stalled initiatives that are due",
        description="The watchdog also runs inside `initiatiefbot run`; this runs one sweep by hand.",
    )
    watchdog.add_argument("--once", action="store_true", help="run one sweep and stop")
    watchdog.add_argument(
        "--as-of",
        type=_moment,
        metavar="ISO",
        help="sweep as if it were this moment, e.g. 2026-12-01T09:00 (no timezone: Europe/Amsterdam)",
    )
    watchdog.add_argument(
        "--dry-run",
        action="store_true",
        help="only print what would be sent; records and sends nothing, needs no Telegram token",
    )
    watchdog.add_argument(
        "--show",
        action="store_true",
        help="with --dry-run: also print each message, to whom and as they would read it",
    )
    watchdog.add_argument(
        "--batch",
        type=_positive,
        default=500,
        metavar="N",
        help="initiatives per database transaction (default 500)",
    )
    flows = sub.add_parser("flows", help="describe the conversation flows")
    flows.add_argument("--mermaid", action="store_true", help="print every flow as a Mermaid state diagram")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Opt in to PTB's coming timedelta durations (RetryAfter.retry_after); the outbox handles both.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        # One JSON line per record, never message texts or names; the interactive commands keep the
        # terminal for their own output.
        setup_logging(
            settings.log_level_number if args.command in ("run", "webhook", "db") else logging.WARNING
        )
        if _uses_database(args):
            settings = _checked_database(settings)
            if _reads_contacts(args):  # refuse before anything starts, not from inside the bot
                crypto.setup(settings.data_encryption_keys, settings.database_url)
        if args.command == "run":
            return _run(settings)
        if args.command == "webhook":
            return _webhook(settings, set_url=args.set_url, delete=args.delete)
        if args.command == "web":
            return _web(settings, args)
        if args.command == "shell":
            from bot.shell import run_shell

            asyncio.run(run_shell(settings, user_id=args.user_id, language=args.lang))
            return 0
        if args.command == "db":
            return asyncio.run(_db(settings, args.db_command))
        if args.command == "staff":
            return asyncio.run(staff_cli.run(settings, args))
        if args.command == "privacy":
            return asyncio.run(privacy_cli.run(settings, args))
        if args.command == "watchdog":
            return _watchdog(
                settings,
                once=args.once,
                as_of=args.as_of,
                dry_run=args.dry_run,
                show=args.show,
                batch=args.batch,
            )
        if args.command == "flows":
            return _flows(mermaid=args.mermaid)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except DatabaseUrlError as exc:
        print(exc.advice(), file=sys.stderr)
        return 2
    except KeySetupError as exc:
        print(f"Encryption key: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _uses_database(args: argparse.Namespace) -> bool:
    if args.command == "webhook":
        return args.set_url is None and not args.delete
    if args.command == "watchdog":
        return bool(args.once)
    if args.command == "privacy" and args.privacy_command == "rotate-key":
        return not args.new_key
    return args.command in ("run", "shell", "db", "staff", "web", "privacy")


def _reads_contacts(args: argparse.Namespace) -> bool:
    """Whether the command needs the contact key (``privacy rotate-key`` sets it up itself: it also
    makes a first key)."""
    if args.command == "privacy":
        return bool(args.privacy_command != "rotate-key")
    return args.command != "db"


def _checked_database(settings: Settings) -> Settings:
    """Settings with DATABASE_URL in its async form, once the database behind it is known to be usable;
    raises DatabaseUrlError (one line, printed by ``main``) instead of a traceback later on."""
    url, note = async_url(settings.database_url)
    if note is not None:
        print(note, file=sys.stderr)
    asyncio.run(check_reachable(url))
    return dataclasses.replace(settings, database_url=url)


def _run(settings: Settings) -> int:
    if not settings.telegram_bot_token:
        print(
            "TELEGRAM_BOT_TOKEN is not set, so I cannot talk to Telegram.\n"
            "Get a token from @BotFather and set it, or try the bot in your terminal:\n"
            "    initiatiefbot shell",
            file=sys.stderr,
        )
        return 2
    settings.municipality  # noqa: B018 - fail fast on a broken config, before connecting anywhere
    from bot.app import DatabaseNotReady
    from bot.polling import run_polling

    try:
        asyncio.run(run_polling(settings))
    except DatabaseNotReady as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _web(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import DEMO_COORDINATOR_ID
    from bot.web.standalone import fill_demo, print_login_link, serve_site

    if args.port is not None:
        settings = dataclasses.replace(settings, port=args.port)
    if args.login_link:
        if args.telegram_id is None:
            print("--login-link needs --telegram-id, e.g. --telegram-id 43", file=sys.stderr)
            return 2
        return asyncio.run(print_login_link(settings, args.telegram_id))
    if args.demo:
        asyncio.run(fill_demo(settings))
        asyncio.run(print_login_link(settings, DEMO_COORDINATOR_ID))
    asyncio.run(serve_site(settings, host=args.host, port=settings.port))
    return 0


def _webhook(settings: Settings, *, set_url: str | None, delete: bool) -> int:
    if not settings.telegram_bot_token:
        print(
            "TELEGRAM_BOT_TOKEN is not set, so I cannot talk to Telegram.\n"
            "Get a token from @BotFather and set it.",
            file=sys.stderr,
        )
        return 2
    if delete:
        return asyncio.run(_delete_webhook(settings))
    if not settings.telegram_webhook_secret:
        print(
            "TELEGRAM_WEBHOOK_SECRET is not set. Telegram sends it with every update, so the bot can\n"
            "refuse anything else. Choose 32 or more random letters and digits, for example:\n"
            "    python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            file=sys.stderr,
        )
        return 2
    if set_url is not None:
        return asyncio.run(_set_webhook(settings, set_url))
    settings.municipality  # noqa: B018 - fail fast on a broken config, before connecting anywhere
    from bot.app import DatabaseNotReady
    from bot.web import serve

    try:
        serve(settings)
    except DatabaseNotReady as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


async def _set_webhook(settings: Settings, base_url: str) -> int:
    from telegram.error import TelegramError

    from bot.app import ALLOWED_UPDATES, set_commands, telegram_bot
    from bot.i18n import Translator
    from bot.web import webhook_url
    from flows.resident import LANGUAGES

    assert settings.telegram_webhook_secret is not None
    url = webhook_url(base_url, settings.telegram_webhook_secret)
    try:
        async with telegram_bot(settings) as bot:
            await bot.set_webhook(
                url=url,
                secret_token=settings.telegram_webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
            # `run` sets the command menu at every start; webhook workers leave it to this step.
            await set_commands(bot, Translator(tuple(LANGUAGES)))
    except TelegramError as exc:
        print(f"Telegram refused the webhook {url}: {exc}", file=sys.stderr)
        return 1
    print(f"Webhook set: {url}")
    print(f"  updates: {', '.join(ALLOWED_UPDATES)}")
    print("  secret token: TELEGRAM_WEBHOOK_SECRET (Telegram sends it in X-Telegram-Bot-Api-Secret-Token)")
    return 0


async def _delete_webhook(settings: Settings) -> int:
    from telegram.error import TelegramError

    from bot.app import telegram_bot

    try:
        async with telegram_bot(settings) as bot:
            await bot.delete_webhook(drop_pending_updates=False)
    except TelegramError as exc:
        print(f"Telegram refused to delete the webhook: {exc}", file=sys.stderr)
        return 1
    print("Webhook deleted; pending updates are kept for `initiatiefbot run`.")
    return 0


async def _db(settings: Settings, command: str) -> int:
    from storage.db import create_engine
    from storage.migrate import current_revision, head_revision, upgrade

    engine = create_engine(settings.database_url)
    try:
        if command == "upgrade":
            await upgrade(engine)
            print(f"Database is up to date (revision {head_revision()}).")
        else:
            print(f"current: {await current_revision(engine)}  newest: {head_revision()}")
    finally:
        await engine.dispose()
    return 0


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO date and time, like 2026-12-01T09:00 or 2026-12-01T09:00+01:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TIMEZONE)
    return moment


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _watchdog(
    settings: Settings, *, once: bool, as_of: datetime | None, dry_run: bool, show: bool, batch: int
) -> int:
    if not once:
        print(
            "The watchdog runs inside `initiatiefbot run`, every few minutes.\n"
            "For one sweep by hand: initiatiefbot watchdog --once [--as-of 2026-12-01T09:00] [--dry-run]",
            file=sys.stderr,
        )
        return 2
    if show and not dry_run:
        print(
            "--show prints the messages instead of sending them, so it needs --dry-run:\n"
            "initiatiefbot watchdog --once --dry-run --show",
            file=sys.stderr,
        )
        return 2
    if not dry_run and not settings.telegram_bot_token:
        print(
            "TELEGRAM_BOT_TOKEN is not set, so I cannot send the alerts.\n"
            "To see what would be sent: initiatiefbot watchdog --once --dry-run",
            file=sys.stderr,
        )
        return 2
    settings.municipality  # noqa: B018 - fail fast on a broken config, before connecting anywhere
    return asyncio.run(_sweep_once(settings, as_of=as_of, dry_run=dry_run, show=show, batch=batch))


async def _sweep_once(
    settings: Settings, *, as_of: datetime | None, dry_run: bool, show: bool, batch: int
) -> int:
    from bot.app import DatabaseNotReady, Runtime, telegram_bot

    try:
        runtime = await Runtime.open(settings)
    except DatabaseNotReady as exc:
        print(exc, file=sys.stderr)
        return 2
    digests = 0
    try:
        if dry_run:
            report = await runtime.watchdog(None).sweep(as_of=as_of, dry_run=True, show=show, batch=batch)
        else:
            async with telegram_bot(settings) as bot:
                outbox = runtime.outbox(runtime.transport(bot))
                watchdog = runtime.watchdog(outbox)
                report = await watchdog.sweep(as_of=as_of, batch=batch)
                digests = await watchdog.digests(as_of=as_of)
                # Telegram's pace may hold some back: wait for them, or leave them to the bot's sweep.
                if not await outbox.settle():
                    print("Some messages wait for Telegram; the running bot sends them.", file=sys.stderr)
                await runtime.mailer().flush()  # the ladder's e-mails; what fails waits for the bot's sweep
    finally:
        await runtime.close()
    if digests:
        print(f"Weekly digest sent to {digests} coordinator(s).")
    print(report.table())
    return 0


def _flows(*, mermaid: bool) -> int:
    from flows import lifecycle, resident
    from flows.engine import mermaid as draw
    from flows.intake import INTAKE

    if mermaid:
        print("%% conversation: resident")
        print(resident.mermaid())
        print(f"%% flow: {INTAKE.name}")
        print(draw(INTAKE))
        print("%% lifecycle of an initiative")
        print(lifecycle.mermaid())
    else:
        print(f"{INTAKE.name}: " + " → ".join(step.name for step in INTAKE.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
