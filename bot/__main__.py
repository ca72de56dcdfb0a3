"""Command line: ``initiatiefbot run | shell | db upgrade | flows --mermaid``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from bot import staff_cli
from bot.settings import ConfigError, Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="initiatiefbot", description="Telegram bot for bewonersinitiatieven."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot with long polling (needs TELEGRAM_BOT_TOKEN)")
    shell = sub.add_parser("shell", help="chat with the bot in the terminal (no Telegram needed)")
    shell.add_argument("--user-id", type=int, default=1, help="act as this Telegram user id (default 1)")
    shell.add_argument("--lang", default="nl", help="the Telegram language code to pretend (default nl)")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply all migrations")
    db_sub.add_parser("current", help="print the current and the newest migration")
    staff_cli.add_parser(sub)
    flows = sub.add_parser("flows", help="describe the conversation flows")
    flows.add_argument("--mermaid", action="store_true", help="print every flow as a Mermaid state diagram")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Opt in to PTB's coming timedelta durations (RetryAfter.retry_after); the outbox handles both.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logging.basicConfig(
            # The interactive commands keep the terminal for their own output.
            level=settings.log_level_number if args.command in ("run", "db") else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        if args.command == "run":
            return _run(settings)
        if args.command == "shell":
            from bot.shell import run_shell

            asyncio.run(run_shell(settings, user_id=args.user_id, language=args.lang))
            return 0
        if args.command == "db":
            return asyncio.run(_db(settings, args.db_command))
        if args.command == "staff":
            return asyncio.run(staff_cli.run(settings, args))
        if args.command == "flows":
            return _flows(mermaid=args.mermaid)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


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
    from bot.app import ALLOWED_UPDATES, build_application

    app = build_application(settings)
    app.run_polling(allowed_updates=ALLOWED_UPDATES)
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
