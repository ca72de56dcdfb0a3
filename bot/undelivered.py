"""Tells staff which person missed which message, once the outbox has given up delivering it.

A resident's missed message goes to the broker of their newest open initiative, else to the coordinators
who cover its wijk (all coordinators when the resident has no open initiative). A staff member's missed
message goes to the coordinators. A coordinator's missed message is only recorded: telling another
coordinator about a missed report could go on for ever in a long outage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from bot.notifications import enqueue_for_sweep
from flows import lifecycle
from flows.cases import Notification
from flows.events import Reply
from flows.text import Msg, t, tn, verbatim
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.outbox import OutboxRow
from storage.staff import StaffRole, StaffRow

EXCERPT = 200  # characters of the missed message quoted to staff
OPEN = frozenset(s.value for s in lifecycle.OPEN_STATUSES)


@dataclass(frozen=True)
class _Missed:
    """Who missed messages, and the case they are about (if any)."""

    name: str
    reference: str | None
    texts: tuple[str, ...]


def _excerpt(row: OutboxRow) -> str:
    text = str(row.payload.get("text") or row.payload.get("caption") or "")
    if not text:
        return {"sendPhoto": "[foto]", "sendDocument": "[bestand]", "sendVoice": "[spraakbericht]"}.get(
            row.method, ""
        )
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


async def _recipients(session: AsyncSession, chat_id: int, name: str) -> tuple[list[StaffRow], _Missed]:
    """The staff to tell about messages to ``chat_id`` (known to the bot as ``name``), and about whom."""
    coordinators = await staff_store.all_coordinators(session)
    staff = await staff_store.load_staff(session, chat_id)
    if staff is not None:
        if staff.role == StaffRole.COORDINATOR.value:
            return [], _Missed(staff.name, None, ())
        return [c for c in coordinators if c.telegram_user_id != chat_id], _Missed(staff.name, None, ())
    for summary in await initiatives_store.initiatives_of_resident(session, chat_id):
        if summary.status not in OPEN:
            continue
        case = await initiatives_store.load_case(session, summary.reference)
        if case is None:
            continue
        about = _Missed(case.contact_name or name, case.reference, ())
        if case.broker_id is not None:
            broker = await staff_store.staff_by_id(session, case.broker_id)
            if broker is not None and broker.active:
                return [broker], about
        return staff_store.covering_coordinators(coordinators, case.wijk_code), about
    return coordinators, _Missed(name, None, ())


def _report(missed: _Missed, max_age: timedelta) -> Reply:
    hours = int(max_age.total_seconds() // 3600)
    quoted = "\n".join(f"“{text}”" for text in missed.texts if text)
    parts: list[Msg] = [
        tn(
            "{n} message to {name} could not be delivered for {hours} hours: Telegram could not be reached. "
            "The bot has stopped trying.",
            "{n} messages to {name} could not be delivered for {hours} hours: Telegram could not be "
            "reached. The bot has stopped trying.",
            len(missed.texts),
            name=missed.name,
            hours=hours,
        )
    ]
    if missed.reference is not None:
        parts.append(t("About initiative {reference}.", reference=missed.reference))
    if quoted:
        parts.append(verbatim(quoted))
    parts.append(t("Please contact them another way if it matters."))
    return Reply(text=parts[0], extra=tuple(parts[1:]))


async def report_undelivered(
    session: AsyncSession,
    rows: Sequence[OutboxRow],
    now: datetime,
    *,
    tr: Translator,
    max_age: timedelta,
) -> None:
    """Queue, in the caller's transaction, one message per staff member about the given-up ``rows``."""
    by_chat: dict[int, list[OutboxRow]] = {}
    for row in rows:
        if row.method in ("setMyCommands", "deleteMyCommands"):
            continue  # a command menu is no message anyone misses
        by_chat.setdefault(row.chat_id, []).append(row)
    people = await people_store.load_people(session, set(by_chat))
    notes: list[Notification] = []
    for chat_id, missed_rows in by_chat.items():
        person = people.get(chat_id)
        name = (person.first_name if person is not None else None) or f"#{chat_id}"
        staff, about = await _recipients(session, chat_id, name)
        missed = replace(about, texts=tuple(_excerpt(row) for row in missed_rows))
        reply = _report(missed, max_age)
        notes.extend(Notification(m.telegram_user_id, m.telegram_user_id, reply) for m in staff)
    if notes:
        await enqueue_for_sweep(session, notes, tr, now)
