"""The watchdog's second pass: questions past their department's norm get a reminder, an escalation to
the manager and the coordinators, and an urgent one (``flows.department_alerts``).

Each step is recorded in ``stall_alerts`` under the question's case with track "department" and the clock's
start, before its messages are queued; only the transaction that inserted the key queues them, so each step
happens once, also with several watchdogs. The e-mails go to the mail outbox, the Telegram messages back to
the watchdog, which renders them in each recipient's language.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter

from sqlalchemy.ext.asyncio import AsyncSession

from bot.casework import staff_view
from bot.departments import MAIL_LANGUAGE, DepartmentDesk
from bot.i18n import Translator
from flows.alerts import Audience, Recipient
from flows.broker import StaffContext
from flows.cases import CaseView, Notification, StaffRole, StaffView
from flows.department import QuestionFacts, sweep_steps
from flows.department_alerts import (
    DepartmentMail,
    MailTo,
    mail_body,
    plan_department_alert,
    question_alert,
)
from flows.municipality import Contact, Municipality
from flows.stalls import DueAlert, Level, Track
from flows.text import Msg
from storage import alerts as alerts_store
from storage import departments as departments_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.alerts import NewStallAlert
from storage.departments import QuestionRow
from storage.initiatives import CaseRow
from storage.people import PersonRow

log = logging.getLogger(__name__)

# What a dry run shows where each addressee's personal link would be.
LINK_PLACEHOLDER = "[personal link]"


@dataclass(frozen=True, slots=True)
class DepartmentStep:
    """One step of a department's ladder a sweep handled: its case, who it reaches (by e-mail and by
    Telegram), the Telegram messages to render, and in a dry run with ``show`` the e-mails as rendered."""

    reference: str
    alert: DueAlert
    recipients: tuple[Recipient, ...] = ()
    notifications: tuple[Notification, ...] = ()
    mails: tuple[tuple[Recipient, str], ...] = ()
    mails_queued: int = 0


class DepartmentSweep:
    """Finds the due steps of the questions given, records them, queues their e-mails, plans their
    Telegram messages."""

    def __init__(self, municipality: Municipality, translator: Translator, desk: DepartmentDesk) -> None:
        self._m = municipality
        self._tr = translator
        self._desk = desk

    async def batch(
        self,
        session: AsyncSession,
        rows: Sequence[QuestionRow],
        as_of: datetime,
        *,
        now: datetime,
        dry_run: bool,
        show: bool = False,
    ) -> list[DepartmentStep]:
        """The steps of these due questions at ``as_of``; a dry run records and queues nothing."""
        recorded = await alerts_store.sent_alerts(session, {q.initiative_id for q in rows})
        facts = {q.id: QuestionFacts.of(q) for q in rows}
        steps: dict[int, tuple[list[DueAlert], datetime | None]] = {}
        for q in rows:
            # The case's department keys; the clock's start tells one question's clock from another's.
            sent = {key for key in recorded[q.initiative_id] if key[0] == Track.DEPARTMENT.value}
            steps[q.id] = sweep_steps(facts[q.id], self._m, as_of, sent)
        due = [(q, alert) for q in rows for alert in steps[q.id][0]]
        if dry_run:
            ours = due
        else:
            new = [
                NewStallAlert(
                    q.initiative_id, alert.track.value, alert.started_at, int(alert.level), alert.skipped
                )
                for q, alert in due
            ]
            # Only the steps this transaction inserted are its to send; another watchdog sends the rest.
            mine = await alerts_store.record_alerts(session, new, now=now)
            ours = [(q, alert) for q, alert in due if (q.initiative_id, alert.key) in mine]
            await departments_store.set_next_alerts(session, [(q_id, at) for q_id, (_, at) in steps.items()])
        if not ours:
            return []
        return await self._plan(session, ours, facts, as_of, now=now, dry_run=dry_run, show=show)

    async def _plan(
        self,
        session: AsyncSession,
        ours: Sequence[tuple[QuestionRow, DueAlert]],
        facts: dict[int, QuestionFacts],
        as_of: datetime,
        *,
        now: datetime,
        dry_run: bool,
        show: bool,
    ) -> list[DepartmentStep]:
        staff = await staff_store.list_staff(session)
        views = {s.id: staff_view(s) for s in staff}
        brokers = {s.id: views[s.id] for s in staff if s.role == StaffRole.BROKER}
        coordinators = [s for s in staff if s.role == StaffRole.COORDINATOR]
        ctx = StaffContext(self._m, as_of)
        cases: dict[int, CaseRow | None] = {}
        out: list[DepartmentStep] = []
        for q, alert in ours:
            if q.initiative_id not in cases:
                cases[q.initiative_id] = await initiatives_store.load_case_by_id(session, q.initiative_id)
            row = cases[q.initiative_id]
            if row is None:  # the case is gone (erased): nobody to tell about it
                continue
            broker = brokers.get(row.broker_id) if row.broker_id is not None else None
            person = await people_store.load_person(session, row.resident_user_id)
            case = case_view(row, broker, person)
            about = question_alert(case, facts[q.id], question=q.question, m=self._m, now=as_of)
            if about is None:
                continue
            covering = [views[c.id] for c in staff_store.covering_coordinators(coordinators, row.wijk_code)]
            plan = plan_department_alert(alert, about, broker=broker, coordinators=covering, ctx=ctx)
            if alert.skipped:
                out.append(DepartmentStep(row.reference, alert))
                continue
            if plan.manager_missing:
                log.warning(
                    "department %s has no manager in the configuration: the %s of %s goes to its contacts",
                    q.department,
                    "urgent escalation" if alert.level is Level.URGENT else "escalation",
                    row.reference,
                )
            coordinated = any(r.audience is Audience.COORDINATOR for r in plan.recipients)
            if alert.level is not Level.REMINDER and not coordinated:
                log.warning("department escalation for %s reaches no coordinator", row.reference)
            contacts = await self._desk.recipients(session, q.department)
            if not contacts:
                log.warning("department %s has no contacts to e-mail about %s", q.department, row.reference)
            mailed: list[Recipient] = []
            shown: list[tuple[Recipient, str]] = []
            queued = 0
            for mail in plan.mails:
                to = _addressees(mail, contacts, about.manager)
                audience = Audience.MANAGER if mail.to is MailTo.MANAGER else Audience.CONTACT
                mailed.extend(Recipient(audience, 0, f"{c.name} <{c.email}>") for c in to)
                if dry_run:
                    if show:
                        shown.extend(
                            (Recipient(audience, 0, f"{c.name} <{c.email}>"), self._shown(mail, c))
                            for c in to
                        )
                    continue
                queued += await self._desk.mail_contacts(
                    session,
                    case,
                    q.department,
                    subject=mail.subject,
                    lines=lambda contact, url, mail=mail: mail_body(mail, contact.name, url, self._m),
                    kind=mail.kind,
                    now=now,
                    to=to,
                )
            out.append(
                DepartmentStep(
                    row.reference,
                    alert,
                    (*mailed, *plan.recipients),
                    plan.notifications if (not dry_run or show) else (),
                    tuple(shown),
                    queued,
                )
            )
        return out

    def _shown(self, mail: DepartmentMail, contact: Contact) -> str:
        """An e-mail as its addressee would read it, with a placeholder for their link."""
        body = mail_body(mail, contact.name, LINK_PLACEHOLDER, self._m)
        return "\n\n".join([f"Subject: {self._render(mail.subject)}", *(self._render(line) for line in body)])

    def _render(self, msg: Msg) -> str:
        return self._tr.render(msg, MAIL_LANGUAGE)


def _addressees(
    mail: DepartmentMail, contacts: Sequence[Contact], manager: Contact | None
) -> tuple[Contact, ...]:
    if mail.to is MailTo.MANAGER and manager is not None:
        return (manager,)
    return tuple(contacts)


_VIEW_FIELDS = tuple(f.name for f in fields(CaseView) if f.name in CaseRow.__dataclass_fields__)
_VIEW_VALUES = attrgetter(*_VIEW_FIELDS)


def case_view(row: CaseRow, broker: StaffView | None, resident: PersonRow | None) -> CaseView:
    """The case as the flows see it, as ``Casework`` builds it, from rows already loaded."""
    return CaseView(
        **dict(zip(_VIEW_FIELDS, _VIEW_VALUES(row), strict=True)),
        broker_name=broker.name if broker else None,
        broker_telegram_id=broker.telegram_user_id if broker else None,
        resident_unreachable=resident is not None and resident.unreachable_at is not None,
    )
