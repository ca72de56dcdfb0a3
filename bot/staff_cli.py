"""``initiatiefbot staff …``: invite, add, list, remove staff and mark them absent."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from typing import TextIO

import email_validator
from sqlalchemy.ext.asyncio import AsyncSession

from bot import handback
from bot.app import telegram_bot
from bot.command_menus import queue_staff_menu
from bot.i18n import Translator
from bot.settings import Settings
from flows.cases import HandBack
from flows.municipality import Municipality
from flows.resident import LANGUAGES
from storage import crypto
from storage import departments as departments_store
from storage import people as people_store
from storage import staff as staff_store
from storage.db import create_engine, is_sqlite, session_factory
from storage.migrate import is_up_to_date, upgrade

ROLES = ("broker", "coordinator")
# Department contacts get questions by e-mail and need no Telegram: ``staff add`` only.
DEPARTMENT = "department"
NOT_REACHABLE = (
    "{name} has not opened the bot yet, and Telegram lets a bot write only to people who did. "
    "Until {name} opens the bot once (an invitation link from `initiatiefbot staff invite` does this, "
    "or sending it /start), no initiatives go to them and they get no messages."
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = sub.add_parser("staff", help="manage initiatiefmakelaars and coordinators")
    commands = staff.add_subparsers(dest="staff_command", required=True)

    def scope(p: argparse.ArgumentParser, roles: tuple[str, ...] = ROLES) -> None:
        p.add_argument("--role", choices=roles, required=True)
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
    add = commands.add_parser(
        "add",
        help="bind a Telegram user directly (for scripts and tests), or add a department contact "
        "(--role department --department verkeer --email …; no Telegram needed)",
    )
    add.add_argument("--telegram-id", type=int, help="the Telegram user id (brokers and coordinators)")
    add.add_argument("--department", help="with --role department: the department code, e.g. verkeer")
    add.add_argument("--email", help="with --role department: where the questions go")
    scope(add, (*ROLES, DEPARTMENT))
    commands.add_parser("list", help="everyone with a staff role, and the departments' contacts")
    remove = commands.add_parser("remove", help="take the staff role away (their history stays)")
    who = remove.add_mutually_exclusive_group(required=True)
    who.add_argument("--telegram-id", type=int)
    who.add_argument("--email", help="a department contact's address: no more questions, links end")
    remove.add_argument("--department", help="with --email: only for this department")
    absent = commands.add_parser("absent", help="mark someone absent until a date, or back")
    absent.add_argument("--telegram-id", type=int, required=True)
    when = absent.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", type=date.fromisoformat, help="last day of absence, e.g. 2026-12-24")
    when.add_argument("--back", action="store_true", help="no longer absent")


def _check_scope(m: Municipality, args: argparse.Namespace) -> str | None:
    if args.role == DEPARTMENT:
        return _check_department(m, args)
    if args.staff_command == "add" and args.telegram_id is None:
        return "Brokers and coordinators need --telegram-id (or use: initiatiefbot staff invite)."
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


def _check_department(m: Municipality, args: argparse.Namespace) -> str | None:
    known = ", ".join(f"{d.code} ({d.name})" for d in m.departments)
    if not args.department or m.department(args.department) is None:
        return f"A department contact needs --department, one of: {known}"
    if not args.email:
        return "A department contact needs --email: the questions go there."
    try:
        args.email = email_validator.validate_email(args.email, check_deliverability=False).normalized
    except email_validator.EmailNotValidError as error:
        return f"{args.email!r} is not an e-mail address: {error}"
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
    crypto.setup(settings.data_encryption_keys, settings.database_url)
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
            if command == "add" and args.role == DEPARTMENT:
                contact = await departments_store.add_contact(
                    session, department=args.department, name=args.name, email=args.email, now=now
                )
                name = m.department(contact.department)
                print(
                    f"{contact.name} <{contact.email}> now gets the questions for "
                    f"{name.name if name else contact.department} by e-mail.",
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
                # Sent by the running bot's outbox; someone who never opened the bot gets it at /start.
                await queue_staff_menu(
                    session, row.telegram_user_id, row.role, Translator(tuple(LANGUAGES)), now
                )
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
                await _list_departments(session, m, out)
                return 0
            if command == "remove" and args.email:
                removed = await departments_store.remove_contact(
                    session, email=args.email, department=args.department, now=now
                )
                if not removed:
                    print(f"{args.email} is not a department contact added here.", file=sys.stderr)
                    return 1
                print(f"{args.email} gets no more questions; their links no longer work.", file=out)
                return 0
            staff = await staff_store.load_staff(session, args.telegram_id)
            if staff is None:
                print(f"Telegram id {args.telegram_id} has no staff role.", file=sys.stderr)
                return 1
            if command == "remove":
                await staff_store.remove_staff(session, staff_id=staff.id, now=now)
                # Their chat shows the residents' commands again once the running bot sends this.
                await queue_staff_menu(
                    session, staff.telegram_user_id, None, Translator(tuple(LANGUAGES)), now
                )
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


async def _list_departments(session: AsyncSession, m: Municipality, out: TextIO) -> None:
    """The departments' e-mail contacts: the config's, and those added with ``staff add``."""
    added = await departments_store.contacts(session)
    print("\nDepartment contacts (questions by e-mail):", file=out)
    for department in m.departments:
        extra = [c for c in added if c.department == department.code]
        people = [f"{c.name} <{c.email}> (config)" for c in department.contacts]
        people += [f"{c.name} <{c.email}> (added)" for c in extra]
        manager = (
            f"; manager {department.manager.name} <{department.manager.email}>" if department.manager else ""
        )
        print(f"  {department.code:<13} {', '.join(people) or 'nobody yet'}{manager}", file=out)


def _open() -> tuple[str, ...]:
    from flows.lifecycle import OPEN_STATUSES

    return tuple(s.value for s in OPEN_STATUSES)
