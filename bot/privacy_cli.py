"""``initiatiefbot privacy …``: the retention sweep by hand, the audit log for the privacy officer, and
rotating the key that encrypts contact details."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from bot.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    privacy = sub.add_parser("privacy", help="retention sweep, audit log and encryption key")
    commands = privacy.add_subparsers(dest="privacy_command", required=True)
    # Each subcommand adds its own arguments in its section below.
    _sweep_parser(commands)
    _audit_parser(commands)
    _rotate_parser(commands)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.privacy_command == "sweep":
        return await _sweep(settings, args)
    if args.privacy_command == "audit":
        return await _audit(settings, args)
    if args.privacy_command == "rotate-key":
        return await _rotate_key(settings, args)
    raise AssertionError(args.privacy_command)


# --- privacy sweep --once [--as-of …] [--dry-run] ---------------------------------------------------


def _sweep_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run the retention sweep once",
        description="The retention sweep also runs inside `initiatiefbot run`, with the watchdog; this runs "
        "it once by hand. Periods: [privacy] in the municipality file.",
    )
    sweep.add_argument("--once", action="store_true", help="run one sweep and stop")
    sweep.add_argument(
        "--as-of",
        type=_as_of,
        default=None,
        metavar="MOMENT",
        help="sweep as if it were this moment, e.g. 2027-01-01T09:00 (local time unless an offset is given)",
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="change and send nothing; show what would be done"
    )


def _as_of(value: str) -> datetime:
    from bot.__main__ import _moment  # the watchdog's --as-of, parsed the same way

    return _moment(value)


async def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import DatabaseNotReady, Runtime, telegram_bot

    if not args.once:
        print(
            "The retention sweep runs inside `initiatiefbot run`, with the watchdog.\n"
            "For one sweep by hand:\n"
            "  initiatiefbot privacy sweep --once [--as-of 2027-01-01T09:00] [--dry-run]",
            file=sys.stderr,
        )
        return 2
    if not args.dry_run and not settings.telegram_bot_token:
        print(
            "TELEGRAM_BOT_TOKEN is not set, so I cannot send the reminders of untouched drafts.\n"
            "To see what would be done: initiatiefbot privacy sweep --once --dry-run",
            file=sys.stderr,
        )
        return 2
    try:
        runtime = await Runtime.open(settings)
    except DatabaseNotReady as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        if args.dry_run:
            report = await runtime.watchdog(None).privacy.sweep(as_of=args.as_of, dry_run=True)
        else:
            async with telegram_bot(settings) as bot:
                outbox = runtime.outbox(runtime.transport(bot))
                report = await runtime.watchdog(outbox).privacy.sweep(as_of=args.as_of)
                if not await outbox.settle():
                    print("Some reminders wait for Telegram; the running bot sends them.", file=sys.stderr)
    finally:
        await runtime.close()
    print(report.table())
    return 0


# --- privacy audit --since … ---------------------------------------------------------------------


def _audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("audit", help="print the audit log")


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("privacy audit")


# --- privacy rotate-key ----------------------------------------------------------------------------


def _rotate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("rotate-key", help="re-encrypt contact details with the newest key")


async def _rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("privacy rotate-key")
