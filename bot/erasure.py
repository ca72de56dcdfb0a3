"""``/vergeetmij``: explain what erasure does, then forget the resident inside the update's transaction.

The rules and texts are in ``flows.privacy``; what goes from which table is ``storage.erasure``. The
dispatcher deletes the person last (``storage.erasure.forget_person``), after queuing the goodbye,
which the outbox then sends and wipes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.casework import Casework
from flows import lifecycle
from flows.cases import Notification
from flows.commands import ErasePerson
from flows.events import Reply
from flows.lifecycle import Status
from flows.privacy import STOPPED_ON_REQUEST, OpenCase, erased, erasure_question, erasure_told_staff
from storage import audit
from storage import erasure as erasure_store
from storage import initiatives as initiatives_store
from storage.initiatives import InitiativeSummary

OPEN = frozenset(s.value for s in lifecycle.OPEN_STATUSES)


@dataclass(frozen=True)
class Erased:
    """What erasing someone led to: their goodbye (or the question again), and who else is told."""

    reply: Reply
    notifications: tuple[Notification, ...] = ()
    forgotten: bool = False  # the person is erased: the dispatcher forgets them after queuing ``reply``


class Erasure:
    """Erasure on a resident's request, through the same case rules as the rest of the bot."""

    def __init__(self, casework: Casework) -> None:
        self._casework = casework

    async def explain(self, session: AsyncSession, user_id: int) -> Reply:
        """The erasure question, for the resident's cases as they are now."""
        cases = await initiatives_store.initiatives_of_resident(session, user_id)
        return _question(cases)

    async def erase(
        self, session: AsyncSession, command: ErasePerson, *, user_id: int, now: datetime, via: str = "chat"
    ) -> Erased:
        """Erase the resident, unless their open cases changed since they were asked (then ask again);
        ``via`` says in the audit log who asked: the resident in the "chat", or an administrator on the
        "command line"."""
        cases = await initiatives_store.initiatives_of_resident(session, user_id)
        open_cases = [c for c in cases if c.status in OPEN]
        if len(open_cases) != command.open_seen:
            return Erased(_question(cases))
        notes: list[Notification] = []
        kept: list[str] = []
        ended = [c.id for c in cases if c.status not in OPEN]
        for summary in open_cases:
            case = await self._casework.case(session, summary.reference)
            assert case is not None
            if command.stop_open:
                if case.status == Status.BIJ_GEMEENTE:
                    await self._casework.desk.withdraw(session, case, now)
                await initiatives_store.change_status(
                    session,
                    case.id,
                    status=Status.GESTOPT.value,
                    now=now,
                    # The system's words, not the resident's: they stay when the resident's go.
                    actor_role="system",
                    actor_user_id=None,
                    staff_id=None,
                    note=STOPPED_ON_REQUEST,
                    department=None,
                )
                ended.append(case.id)
            else:
                await erasure_store.erase_resident_of(session, [case.id], now=now)
                kept.append(case.reference)
            told = erasure_told_staff(case.reference, stopped=command.stop_open)
            targets = await self._casework.staff_to_tell(session, case)
            notes.extend(Notification(u, u, told) for u in targets)
        await erasure_store.anonymise_initiatives(session, ended, now=now, reason="request")
        await audit.record(
            session, staff_id=None, action="erasure", detail=f"person, {len(cases)} cases, via {via}", now=now
        )
        return Erased(erased(tuple(kept)), tuple(notes), forgotten=True)


def _question(cases: list[InitiativeSummary]) -> Reply:
    open_cases = tuple(OpenCase(c.reference, c.title) for c in cases if c.status in OPEN)
    return erasure_question(open_cases, len(cases) - len(open_cases))
