"""A broker's open initiatives when the broker is away, removed, or out of the bot's reach.

Their coordinators get one message each, listing the initiatives they cover with a one-tap reassign.
A removed or unreachable broker's initiatives also go back to the coordinators: they count as unassigned
until someone is assigned, and each resident hears one sentence that a new broker follows. Everything is
queued in the outbox inside the caller's transaction; the outbox sweep sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from bot.notifications import enqueue_for_sweep
from flows import coordinator, lifecycle, resident
from flows.cases import HandBack, Notification, StaffRole
from flows.events import Reply
from flows.resident import LANGUAGES
from storage import initiatives as initiatives_store
from storage import staff as staff_store
from storage.initiatives import CaseRow
from storage.staff import StaffRow

log = logging.getLogger(__name__)

OPEN = tuple(s.value for s in lifecycle.OPEN_STATUSES)

CaseList = Sequence[tuple[str, str]]  # (reference, title)


async def tell_absent(
    session: AsyncSession, broker: StaffRow, until: date, now: datetime, *, tr: Translator | None = None
) -> int:
    """Tell the coordinators of an absent broker's wijken (and of their cases) about the open cases;
    returns how many coordinators were told."""
    cases = await initiatives_store.cases_of_broker(session, broker.id, open_statuses=OPEN)
    return await _tell_coordinators(
        session,
        cases,
        lambda found: coordinator.absent_broker(broker.name, until, found),
        now,
        tr=tr,
        also=broker.wijken or (None,),
    )


async def hand_back(
    session: AsyncSession, broker: StaffRow, why: HandBack, now: datetime, *, tr: Translator | None = None
) -> tuple[int, int]:
    """Take a broker's open cases off them and tell the coordinators and the residents;
    returns (cases handed back, coordinators told)."""
    cases = await initiatives_store.hand_back_cases(
        session, broker.id, open_statuses=OPEN, reason=why.value, now=now
    )
    if not cases:
        return 0, 0
    tr = tr or Translator(tuple(LANGUAGES))
    told = await _tell_coordinators(
        session, cases, lambda found: coordinator.handed_back(broker.name, why, found), now, tr=tr
    )
    residents = [
        Notification(
            c.resident_user_id, c.resident_chat_id, resident.new_broker_soon(c.reference, c.title, c.status)
        )
        for c in cases
    ]
    await enqueue_for_sweep(session, residents, tr, now)
    return len(cases), told


async def broker_unreachable(
    session: AsyncSession, chat_id: int, now: datetime, *, tr: Translator | None = None
) -> None:
    """After Telegram refused to deliver to ``chat_id`` (403): a broker's open cases go back to the
    coordinators, who are told why; anyone else is left alone."""
    broker = await staff_store.load_staff(session, chat_id)  # a private chat's id is the user's id
    if broker is None or broker.role != StaffRole.BROKER:
        return
    try:
        # A savepoint: a failure here must not undo what the outbox records in the same transaction.
        async with session.begin_nested():
            await hand_back(session, broker, HandBack.UNREACHABLE, now, tr=tr)
    except Exception:
        log.exception("could not hand back the initiatives of unreachable broker %s", broker.id)


async def _tell_coordinators(
    session: AsyncSession,
    cases: Sequence[CaseRow],
    message: Callable[[CaseList], Reply],
    now: datetime,
    *,
    tr: Translator | None,
    also: Collection[str | None] = (),
) -> int:
    """One message per coordinator who covers one of ``cases`` (or one of the wijken ``also``),
    listing the cases they cover."""
    everyone = await staff_store.all_coordinators(session)
    lists: dict[int, tuple[StaffRow, list[tuple[str, str]]]] = {}
    for wijk in also:
        for person in staff_store.covering_coordinators(everyone, wijk):
            lists.setdefault(person.id, (person, []))
    for case in cases:
        for person in staff_store.covering_coordinators(everyone, case.wijk_code):
            lists.setdefault(person.id, (person, []))[1].append((case.reference, case.title))
    notes = [
        Notification(person.telegram_user_id, person.telegram_user_id, message(found))
        for person, found in lists.values()
    ]
    await enqueue_for_sweep(session, notes, tr or Translator(tuple(LANGUAGES)), now)
    return len(notes)
