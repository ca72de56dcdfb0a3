"""``initiatiefbot staff …``: invite, add, list, remove staff and mark them absent."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from typing import TextIO

from bot import handback
from bot.app import telegram_bot
from bot.settings import Settings
from flows.cases import HandBack
from flows.municipality import Municipality
from storage import people as people_store
from storage import staff as staff_store
from storage.db import create_engine, is_sqlite, session_factory
from storage.migrate import is_up_to_date, upgrade

ROLES = ("broker", "coordinator")
NOT_REACHABLE = (
    "{name} has not opened the bot yet, and Telegram lets a bot write only to people who did. "
    "Until {name} opens the bot once (an invitation link from `initiatiefbot staff invite` does this, "
    "or sending it /start), no initiatives go to them and they get no messages."
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = sub.add_parser("staff", help="manage initiatiefmakelaars and coordinators")
    commands = staff.add_subparsers(dest="staff_command", required=True)

    def scope(p: argparse.ArgumentParser) -> None:
        p.add_argument("--role", choices=ROLES, required=True)
        p.add_argument("--name", required=True, help='the name residents see, e.g. "Anna de Vries"')
        p.add_argument(
            "--wijk", action="append", default=[], help="a wijk code such as WK030101 (repeatable)"
        )
        p.add_argument("--theme", action="append", default=[], help="a theme code such as groen (repeatable)")

    invite = commands.add_parser(
        "invite", help="print a one-time link (valid 7 days) that binds whoever opens it"
    )
    scope(invite)
    invite.add_argument(
        "--bot-username", help="the bot's @username (default: TELEGRAM_BOT_USERNAME or getMe)"
    )
    add = commands.add_parser("add", help="bind a Telegram user directly (for scripts and tests)")
    add.add_argument("--telegram-id", type=int, required=True)
    scope(add)
    commands.add_parser("list", help="everyone with a staff role")
    remove = commands.add_parser("remove", help="take the staff role away (their history stays)")
    remove.add_argument("--telegram-id", type=int, required=True)
    absent = commands.add_parser("absent", help="mark someone absent until a date, or back")
    absent.add_argument("--telegram-id", type=int, required=True)
    when = absent.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", type=date.fromisoformat, help="last day of absence, e.g. 2026-12-24")
    when.add_argument("--back", action="store_true", help="no longer absent")


def _check_scope(m: Municipality, args: argparse.Namespace) -> str | None:
    unknown = [w for w in args.wijk if m.wijk(w) is None]
    if unknown:
        known = ", ".join(f"{w.code} ({w.name})" for w in m.wijken)
        return f"Unknown wijk {', '.join(unknown)} for {m.name}. Known: {known}"
    themes = [th for th in args.theme if m.theme(th) is None]
    if themes:
        return f"Unknown theme {', '.join(themes)}. Known: {', '.join(th.code for th in m.themes)}"
    if args.role == "broker" and not args.wijk:
        return "A broker needs at least one --wijk."
    return None


async def _bot_username(settings: Settings, given: str | None) -> str | None:
    if given:
        return given.lstrip("@")
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.lstrip("@")
    if not settings.telegram_bot_token:
        return None
    async with telegram_bot(settings) as bot:
        return bot.username


async def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Carry out one staff command; returns the exit code."""
    m = settings.municipality
    if args.staff_command in ("invite", "add") and (problem := _check_scope(m, args)):
        print(problem, file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    try:
        if is_sqlite(engine):
            await upgrade(engine)
        elif not await is_up_to_date(engine):
            print("The database schema is not up to date. Run: initiatiefbot db upgrade", file=sys.stderr)
            return 2
        now = datetime.now(UTC)
        async with session_factory(engine)() as session, session.begin():
            command = args.staff_command
            if command == "invite":
                invite = await staff_store.create_invite(
                    session, role=args.role, name=args.name, wijken=args.wijk, themes=args.theme, now=now
                )
                username = await _bot_username(settings, args.bot_username)
                link = f"https://t.me/{username or '<bot-username>'}?start={invite.code}"
                print(
                    f"Invitation for {args.name} ({args.role}), "
                    f"valid until {invite.expires_at:%Y-%m-%d %H:%M} UTC:",
                    file=out,
                )
                print(link, file=out)
                if username is None:
                    print(
                        "(Set TELEGRAM_BOT_USERNAME or pass --bot-username to fill in the bot's name.)",
                        file=out,
                    )
                return 0
            if command == "add":
                row = await staff_store.add_staff(
                    session,
                    telegram_user_id=args.telegram_id,
                    name=args.name,
                    role=args.role,
                    wijken=args.wijk,
                    themes=args.theme,
                    now=now,
                )
                print(
                    f"{row.name} is now {row.role} (staff id {row.id}, Telegram id {row.telegram_user_id}).",
                    file=out,
                )
                if not await people_store.is_reachable(session, row.telegram_user_id):
                    print(f"Warning: {NOT_REACHABLE.format(name=row.name)}", file=out)
                return 0
            if command == "list":
                rows = await staff_store.list_staff(session)
                loads = {
                    b.staff_id: b.open_cases
                    for b in await staff_store.broker_loads(session, open_statuses=_open())
                }
                people = await people_store.load_people(session, [row.telegram_user_id for row in rows])
                if not rows:
                    print(
                        "No staff yet. Add someone with: initiatiefbot staff invite --role broker …", file=out
                    )
                for row in rows:
                    wijken = ", ".join(row.wijken) or "all wijken"
                    themes = ", ".join(row.themes) or "all themes"
                    absent = (
                        f", absent until {row.absent_until}"
                        if row.absent_until and row.absent_until >= now.date()
                        else ""
                    )
                    load = f", {loads.get(row.id, 0)} open" if row.role == "broker" else ""
                    person = people.get(row.telegram_user_id)
                    reach = (
                        ", has not opened the bot yet"
                        if person is None
                        else ", unreachable (blocked the bot)"
                        if person.unreachable_at is not None
                        else ""
                    )
                    print(
                        f"{row.telegram_user_id:>12}  {row.role:<11} "
                        f"{row.name} ({wijken}; {themes}{load}{absent}{reach})",
                        file=out,
                    )
                return 0
            staff = await staff_store.load_staff(session, args.telegram_id)
            if staff is None:
                print(f"Telegram id {args.telegram_id} has no staff role.", file=sys.stderr)
                return 1
            if command == "remove":
                await staff_store.remove_staff(session, staff_id=staff.id, now=now)
                print(f"{staff.name} no longer has a staff role.", file=out)
                if staff.role == "broker":
                    cases, told = await handback.hand_back(session, staff, HandBack.REMOVED, now)
                    print(
                        f"{cases} open initiative(s) went back to the coordinators "
                        f"({told} told, each with a one-tap reassign)."
                        if cases
                        else "They had no open initiatives.",
                        file=out,
                    )
                return 0
            until = None if args.back else args.until
            await staff_store.set_absent(session, staff.id, until)
            print(f"{staff.name} is {'back' if until is None else f'absent until {until}'}.", file=out)
            if until is not None and staff.role == "broker":
                told = await handback.tell_absent(session, staff, until, now)
                print(f"Told {told} coordinator(s) about {staff.name}'s open initiatives.", file=out)
            return 0
    finally:
        await engine.dispose()


def _open() -> tuple[str, ...]:
    from flows.lifecycle import OPEN_STATUSES

    return tuple(s.value for s in OPEN_STATUSES)
