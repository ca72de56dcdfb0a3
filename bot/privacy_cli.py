"""``initiatiefbot privacy …``: the retention sweep by hand, the audit log for the privacy officer, and
rotating the key that encrypts contact details."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from typing import TextIO

from bot.settings import Settings
from flows.stalls import AMSTERDAM
from storage import audit as audit_store
from storage.db import create_engine, session_factory
from storage.migrate import is_up_to_date


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    privacy = sub.add_parser("privacy", help="retention sweep, audit log and encryption key")
    commands = privacy.add_subparsers(dest="privacy_command", required=True)
    # Each subcommand adds its own arguments in its section below.
    _sweep_parser(commands)
    _audit_parser(commands)
    _rotate_parser(commands)


async def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out one privacy command; returns the exit code."""
    if args.privacy_command == "sweep":
        return await _sweep(settings, args)
    if args.privacy_command == "audit":
        return await _audit(settings, args, out or sys.stdout)
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
    audit = commands.add_parser(
        "audit",
        help="print who viewed contact details, exported or erased data, and when (never what)",
    )
    audit.add_argument(
        "--since",
        type=_day_or_moment,
        required=True,
        help="from this date or moment on, e.g. 2026-11-01 or 2026-11-01T09:00 (Dutch time)",
    )
    audit.add_argument("--until", type=_day_or_moment, help="up to this date or moment (default: now)")
    audit.add_argument("--csv", action="store_true", help="comma-separated, for a spreadsheet")


# What each audit action means, for the privacy officer.
AUDIT_ACTIONS = {
    "view_contact": "viewed contact details",
    "export_csv": "exported cases (CSV)",
    "export_xlsx": "exported cases (Excel)",
    "export_council": "exported the council overview",
    "login": "logged in to the staff web",
    "logout": "logged out of the staff web",
    "data_export": "a resident downloaded their data",
    "erasure": "erased on the resident's request",
    "anonymised": "anonymised after the retention period",
}


def _day_or_moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date or moment, like 2026-11-01 or 2026-11-01T09:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=AMSTERDAM)


async def _audit(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    until = args.until or datetime.now(UTC)
    if until < args.since:
        print("--until is before --since: nothing to show.", file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    try:
        if not await is_up_to_date(engine):
            print("The database schema is not up to date. Run: initiatiefbot db upgrade", file=sys.stderr)
            return 2
        async with session_factory(engine)() as session:
            rows = await audit_store.entries(session, since=args.since, until=until, limit=None)
    finally:
        await engine.dispose()
    lines = [
        (
            f"{row.at.astimezone(AMSTERDAM):%Y-%m-%d %H:%M}",
            row.staff_name or ("resident" if row.action in ("data_export", "erasure") else "system"),
            row.action,
            AUDIT_ACTIONS.get(row.action, row.action),
            row.reference or "",
            row.detail or "",
        )
        for row in rows
    ]
    head = ("when (Dutch time)", "who", "action", "meaning", "case", "detail")
    if args.csv:
        writer = csv.writer(out)
        writer.writerow(head)
        writer.writerows(lines)
        return 0
    print(
        f"Audit log {args.since.astimezone(AMSTERDAM):%Y-%m-%d %H:%M} – "
        f"{until.astimezone(AMSTERDAM):%Y-%m-%d %H:%M} (Dutch time): {len(lines)} entries",
        file=out,
    )
    if lines:
        widths = [max(len(str(x)) for x in column) for column in zip(head, *lines, strict=True)]
        for line in (head, *lines):
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip(), file=out)
    return 0


# --- privacy rotate-key ----------------------------------------------------------------------------


def _rotate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("rotate-key", help="re-encrypt contact details with the newest key")


async def _rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("privacy rotate-key")
