"""``initiatiefbot privacy …``: the retention sweep by hand, the audit log for the privacy officer, and
rotating the key that encrypts contact details."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from bot.casework import Casework
from bot.data_export import export_replies
from bot.erasure import OPEN, Erasure
from bot.i18n import Translator
from bot.notifications import enqueue_for_sweep, language_of
from bot.settings import Settings
from flows.commands import ErasePerson
from flows.municipality import Municipality
from flows.privacy import ERASED_ID
from flows.resident import LANGUAGES, Conversation
from flows.stalls import AMSTERDAM
from storage import audit as audit_store
from storage import conversations as conversations_store
from storage import erasure as erasure_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage.db import create_engine, session_factory
from storage.migrate import is_up_to_date


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    privacy = sub.add_parser("privacy", help="retention sweep, audit log and encryption key")
    commands = privacy.add_subparsers(dest="privacy_command", required=True)
    # Each subcommand adds its own arguments in its section below.
    _sweep_parser(commands)
    _audit_parser(commands)
    _rotate_parser(commands)
    _request_parsers(commands)


async def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out one privacy command; returns the exit code."""
    if args.privacy_command == "sweep":
        return await _sweep(settings, args)
    if args.privacy_command == "audit":
        return await _audit(settings, args, out or sys.stdout)
    if args.privacy_command == "rotate-key":
        return await _rotate_key(settings, args)
    if args.privacy_command in ("export", "erase"):
        return await _request(settings, args, out or sys.stdout)
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


def _who(row: audit_store.AuditRow) -> str:
    """Who did it: a staff member by name, an administrator on the command line, the resident, or the
    bot itself (retention)."""
    if row.staff_name:
        return row.staff_name
    if row.detail and row.detail.endswith("via command line"):
        return "administrator"
    return "resident" if row.action in ("data_export", "erasure") else "system"


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
            _who(row),
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
    rotate = commands.add_parser(
        "rotate-key",
        help="re-encrypt contact details with the newest key",
        description="Re-encrypts every phone number and e-mail address (initiatives and drafts) with the "
        "newest key of DATA_ENCRYPTION_KEYS (or the key file beside the SQLite database), in batches. "
        "Rotation: make a key (--new-key), put it first, restart the bot, run this, then remove the old "
        "key and restart again.",
    )
    rotate.add_argument("--new-key", action="store_true", help="print a fresh key and stop")
    rotate.add_argument(
        "--add-to-key-file",
        action="store_true",
        help="with --new-key, on the embedded SQLite default: put the new key first in the key file",
    )
    rotate.add_argument(
        "--batch", type=int, default=500, metavar="N", help="rows per transaction (default 500)"
    )


async def _rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here, so the sections of this file do not meet in one import block.
    from storage import crypto, reencryption
    from storage.db import is_sqlite
    from storage.migrate import upgrade

    if args.new_key:
        return _new_key(settings, add=args.add_to_key_file)
    if args.add_to_key_file:
        print("--add-to-key-file goes with --new-key", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("--batch must be 1 or more", file=sys.stderr)
        return 2
    try:
        cipher = crypto.setup(settings.data_encryption_keys, settings.database_url)
    except crypto.KeySetupError as error:
        print(f"Encryption key: {error}", file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    try:
        if is_sqlite(engine):
            await upgrade(engine)
        elif not await is_up_to_date(engine):
            print("The database schema is not up to date. Run: initiatiefbot db upgrade", file=sys.stderr)
            return 2
        try:
            counts = await reencryption.rotate(session_factory(engine), batch=args.batch)
        except crypto.MissingKeyError as error:
            print(f"Stopped: {error}", file=sys.stderr)
            return 1
    finally:
        await engine.dispose()
    print(
        f"Re-encrypted with key {cipher.current_id}: {counts.initiatives} initiatives, "
        f"{counts.drafts} drafts."
    )
    if len(cipher.keys) > 1:
        older = ", ".join(kid for kid, _ in cipher.keys[1:])
        print(f"Nothing needs key(s) {older} any more: remove them and restart the bot.")
    return 0


def _new_key(settings: Settings, *, add: bool) -> int:
    from storage import crypto

    key = crypto.new_key()
    if not add:
        print(key)
        print(
            f"Put it first in {crypto.KEYS_VARIABLE} (comma-separated, newest first), restart the bot, then "
            "run: initiatiefbot privacy rotate-key",
            file=sys.stderr,
        )
        return 0
    path = crypto.key_file_for(settings.database_url)
    if settings.data_encryption_keys or path is None:
        print(
            f"--add-to-key-file is for the embedded SQLite default without {crypto.KEYS_VARIABLE}; "
            f"put the new key first in {crypto.KEYS_VARIABLE} instead",
            file=sys.stderr,
        )
        return 2
    if not path.exists():
        print(f"There is no key file at {path} yet: start the bot once to make it.", file=sys.stderr)
        return 2
    try:
        crypto.prepend_to_key_file(path, key)
    except crypto.KeySetupError as error:
        print(f"Encryption key: {error}", file=sys.stderr)
        return 2
    print(f"Added key {crypto.key_id(key)} first in {path}.")
    print("Restart the bot, then run: initiatiefbot privacy rotate-key")
    return 0


# --- privacy export | erase: a request that came in by e-mail, letter or at the desk ----------------


def _request_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def who(p: argparse.ArgumentParser) -> None:
        found = p.add_mutually_exclusive_group(required=True)
        found.add_argument("--reference", help="a reference of one of their initiatives, e.g. INI-2026-0042")
        found.add_argument("--telegram-id", type=int, help="their Telegram user id")

    export = commands.add_parser(
        "export", help="write everything stored about a resident as JSON (the file /mijngegevens sends)"
    )
    who(export)
    export.add_argument("--output", type=Path, help="the file to write (default: print it)")
    erase = commands.add_parser(
        "erase", help="erase a resident as /vergeetmij does, for a request that came in another way"
    )
    who(erase)
    choice = erase.add_mutually_exclusive_group()
    choice.add_argument("--stop-open", action="store_true", help="stop their open initiatives")
    choice.add_argument(
        "--keep-open", action="store_true", help="let their open initiatives go on without their data"
    )
    erase.add_argument("--yes", action="store_true", help="really erase (without it: show what would go)")


async def _request(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    municipality = settings.municipality
    translator = Translator(tuple(LANGUAGES))
    engine = create_engine(settings.database_url)
    try:
        if not await is_up_to_date(engine):
            print("The database schema is not up to date. Run: initiatiefbot db upgrade", file=sys.stderr)
            return 2
        now = datetime.now(UTC)
        async with session_factory(engine)() as session, session.begin():
            found = await _resident(session, args)
            if found is None:
                print("No resident found: nothing is stored under that reference or id.", file=sys.stderr)
                return 2
            user_id, chat_id = found
            if args.privacy_command == "export":
                return await _export(session, args, out, user_id, chat_id, municipality, translator, now)
            return await _erase(session, args, out, user_id, chat_id, municipality, translator, now)
    finally:
        await engine.dispose()


async def _resident(session: AsyncSession, args: argparse.Namespace) -> tuple[int, int] | None:
    """(Telegram user id, chat id) of the resident the request is about, or None."""
    if args.reference:
        row = await initiatives_store.load_initiative(session, args.reference.strip().upper())
        if row is None or row.resident_user_id == ERASED_ID:
            return None
        return row.resident_user_id, row.resident_chat_id
    person = await people_store.load_person(session, args.telegram_id)
    if person is not None:
        return person.telegram_user_id, person.chat_id
    cases = await initiatives_store.initiatives_of_resident(session, args.telegram_id)
    if not cases:
        return None
    row = await initiatives_store.load_initiative(session, cases[0].reference)
    assert row is not None
    return row.resident_user_id, row.resident_chat_id


async def _export(
    session: AsyncSession,
    args: argparse.Namespace,
    out: TextIO,
    user_id: int,
    chat_id: int,
    municipality: Municipality,
    translator: Translator,
    now: datetime,
) -> int:
    person = await people_store.load_person(session, user_id)
    language = language_of(person)
    row = await conversations_store.load_conversation(session, chat_id)
    conversation = Conversation.from_row(row.flow, row.data, row.updated_at) if row is not None else None
    _, document_reply = await export_replies(
        session,
        user_id=user_id,
        draft=conversation.draft if conversation else None,
        draft_changed_at=conversation.updated_at if conversation else None,
        municipality=municipality,
        translator=translator,
        language=language,
        now=now,
        via="command line",
    )
    document = document_reply.document
    assert document is not None
    if args.output is None:
        out.write(document.content)
        return 0
    # Readable by its owner from the first byte: it holds everything about the resident.
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(document.content)
    args.output.chmod(0o600)  # also when the file was there before
    print(f"Written to {args.output} (readable by you only). Send it to the resident safely.", file=out)
    return 0


async def _erase(
    session: AsyncSession,
    args: argparse.Namespace,
    out: TextIO,
    user_id: int,
    chat_id: int,
    municipality: Municipality,
    translator: Translator,
    now: datetime,
) -> int:
    erasure = Erasure(Casework(municipality, translator=translator))
    cases = await initiatives_store.initiatives_of_resident(session, user_id)
    open_cases = [c for c in cases if c.status in OPEN]
    listed = ", ".join(f"{c.reference} ({c.status})" for c in cases) or "none"
    print(f"Resident with {len(cases)} initiative(s): {listed}.", file=out)
    if open_cases and not (args.stop_open or args.keep_open):
        print(
            f"{len(open_cases)} of them are still going: say what the resident wants, "
            "--stop-open or --keep-open (they go on without the resident's data).",
            file=sys.stderr,
        )
        return 2
    if not args.yes:
        print("Nothing was erased. Add --yes to erase, as /vergeetmij does.", file=out)
        return 0
    erased = await erasure.erase(
        session, ErasePerson(args.stop_open, len(open_cases)), user_id=user_id, now=now, via="command line"
    )
    # The broker hears it through the running bot's outbox; the resident gets no goodbye in Telegram
    # (they asked another way, and are answered that way).
    await enqueue_for_sweep(session, erased.notifications, translator, now)
    await erasure_store.forget_person(session, user_id=user_id, chat_id=chat_id, now=now)
    print(f"Erased. {len(erased.notifications)} staff member(s) will be told by the bot.", file=out)
    return 0
