"""Telegram's command menus: the residents' list for everyone (per language), and a staff member's own
list in their chat (``BotCommandScopeChat``), queued in the outbox when their role begins or changes.

Telegram picks the first list that exists of: chat + language, chat, all private chats + language, all
private chats, default + language, default. A staff chat's list without a language therefore wins over
every resident list; it is written in the staff member's own language, so one call sets it and one
removes it, and nothing is left behind in another language.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from bot.notifications import enqueue_calls
from bot.telegram_io import ApiCall
from flows import resident
from flows.cases import StaffRole
from flows.staff_menu import commands_for
from flows.text import Msg, t
from storage import people as people_store

RESIDENT_COMMANDS: tuple[tuple[str, Msg], ...] = (
    ("start", t("Start and main menu")),
    ("nieuw", t("Share a new idea")),
    ("mijn", t("My initiatives")),
    ("taal", t("Choose your language")),
    ("mijngegevens", t("My data")),
    ("help", t("Help")),
    ("stop", t("Stop for now")),
    ("vergeetmij", t("Delete my data")),
)
# The same menu under the English names, for Telegram apps set to English.
ENGLISH_COMMANDS: tuple[tuple[str, Msg], ...] = (
    ("start", t("Start and main menu")),
    ("new", t("Share a new idea")),
    ("mine", t("My initiatives")),
    ("language", t("Choose your language")),
    ("mydata", t("My data")),
    ("help", t("Help")),
    ("stop", t("Stop for now")),
    ("forgetme", t("Delete my data")),
)
MENU_METHODS = frozenset({"setMyCommands", "deleteMyCommands"})


def _commands(table: tuple[tuple[str, Msg], ...], tr: Translator, language: str) -> list[dict[str, str]]:
    return [{"command": name, "description": tr.render(text, language)} for name, text in table]


def resident_menu_calls(tr: Translator) -> list[ApiCall]:
    """The default lists: Dutch for everyone, and one per shipped language (English with English names)."""
    calls = [ApiCall("setMyCommands", {"commands": _commands(RESIDENT_COMMANDS, tr, "nl")})]
    for language in tr.languages:
        table = ENGLISH_COMMANDS if language == "en" else RESIDENT_COMMANDS
        payload = {"commands": _commands(table, tr, language), "language_code": language}
        calls.append(ApiCall("setMyCommands", payload))
    return calls


def _chat_scope(chat_id: int) -> dict[str, object]:
    return {"type": "chat", "chat_id": chat_id}


def staff_menu_call(chat_id: int, role: StaffRole, tr: Translator, language: str) -> ApiCall:
    """The call that shows a staff member's commands in their private chat with the bot."""
    commands = [
        {"command": c.name, "description": tr.render(c.description, language)} for c in commands_for(role)
    ]
    return ApiCall("setMyCommands", {"commands": commands, "scope": _chat_scope(chat_id)})


def no_staff_menu_call(chat_id: int) -> ApiCall:
    """The call that gives a former staff member's chat the residents' menu again."""
    return ApiCall("deleteMyCommands", {"scope": _chat_scope(chat_id)})


async def staff_menu_calls(
    session: AsyncSession, telegram_user_id: int, role: StaffRole | str | None, tr: Translator
) -> list[tuple[int, ApiCall]]:
    """The (chat, call) that gives this person the menu of ``role`` (None: no staff role any more); none
    when the bot never talked with them, as Telegram knows no chat to set it for (their /start does)."""
    person = await people_store.load_person(session, telegram_user_id)
    if person is None:
        return []
    # A private chat's id is the user's id (people.chat_id is the chat they wrote from last).
    if role is None:
        return [(telegram_user_id, no_staff_menu_call(telegram_user_id))]
    language = resident.language_for(person.language, person.telegram_language)
    return [(telegram_user_id, staff_menu_call(telegram_user_id, StaffRole(role), tr, language))]


async def queue_staff_menu(
    session: AsyncSession,
    telegram_user_id: int,
    role: StaffRole | str | None,
    tr: Translator,
    now: datetime,
    *,
    lease: timedelta = timedelta(0),
) -> bool:
    """Queue, in the caller's transaction, what ``staff_menu_calls`` gives; False when nothing.

    Through the outbox, not at start-up: it goes out after commit from whichever worker sends, in order
    with the chat's messages, and an outage of Telegram delays it without losing it.
    """
    calls = await staff_menu_calls(session, telegram_user_id, role, tr)
    if calls:
        await enqueue_calls(session, calls, now, lease=lease)
    return bool(calls)
