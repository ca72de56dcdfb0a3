"""What a department's ladder says, and to whom: at 1× its norm (or once a promised decision date has
passed) a reminder e-mail to its contacts; at 1.5× an e-mail to its manager, a copy to the contacts and a
Telegram message to the wijk's coordinators (the body and its parent, as FixMyStreet Zürich does); at 3×
an urgent e-mail to manager and contacts and Telegram to the coordinators and the broker. Pure: the
watchdog loads the people, renders the e-mails in Dutch with each person's link, and sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from flows import resident
from flows.alerts import Audience, Recipient, is_absent, resident_notice
from flows.broker import StaffContext
from flows.cases import STAFF_PREFIX, CaseView, Notification, StaffView, case_button
from flows.department import QuestionFacts, clock
from flows.events import Button, Reply
from flows.municipality import Contact, Municipality
from flows.stalls import AMSTERDAM, DueAlert, Level, working_days_between
from flows.text import Msg, t


class MailTo(StrEnum):
    """Who an e-mail of the ladder goes to."""

    CONTACTS = "contacts"  # the department's contacts, each with their personal link
    MANAGER = "manager"  # the department's manager, with a personal link of their own


@dataclass(frozen=True, slots=True)
class QuestionAlert:
    """What the ladder's messages say about one question: its case, department and clock."""

    case: CaseView
    department: str  # the department's name
    question: str
    started_at: datetime  # the clock's start: since when the question waits on the department
    norm: int  # the clock's norm in working days (up to the promised date + 1, when there is one)
    days: int  # working days the question has waited so far
    promised_on: date | None
    manager: Contact | None
    wijk: str  # the wijk's name, or the municipality's

    @property
    def since(self) -> date:
        return self.started_at.astimezone(AMSTERDAM).date()


@dataclass(frozen=True, slots=True)
class DepartmentMail:
    """An e-mail of the ladder to a group (``to``); ``lines`` say why, before the personal link. Each
    addressee's body is ``mail_body(mail, name, url, m)``."""

    to: MailTo
    kind: str
    subject: Msg
    lines: tuple[Msg, ...]


@dataclass(frozen=True, slots=True)
class DepartmentPlan:
    """The messages of one due step of a department's ladder: e-mails and Telegram, and their recipients
    (for the sweep's report). Nothing for a skipped step."""

    alert: DueAlert
    mails: tuple[DepartmentMail, ...] = ()
    recipients: tuple[Recipient, ...] = ()  # the Telegram ones
    notifications: tuple[Notification, ...] = ()
    manager_missing: bool = False  # the escalation fell back to the contacts: the config names no manager


def question_alert(
    case: CaseView,
    facts: QuestionFacts,
    *,
    question: str,
    m: Municipality,
    now: datetime,
) -> QuestionAlert | None:
    """The facts the messages need, from a question's ``QuestionFacts`` (None when its clock stands)."""
    running = clock(facts, m)
    if running is None:
        return None
    department = m.department(facts.department)
    wijk = m.wijk(case.wijk_code) if case.wijk_code else None
    return QuestionAlert(
        case=case,
        department=department.name if department else facts.department,
        question=question,
        started_at=running.started_at,
        norm=running.norm,
        days=working_days_between(running.started_at, now, m.closing_days),
        promised_on=facts.promised_on,
        manager=department.manager if department else None,
        wijk=wijk.name if wijk else m.name,
    )


def plan_department_alert(
    alert: DueAlert,
    facts: QuestionAlert,
    *,
    broker: StaffView | None,
    coordinators: Sequence[StaffView],
    ctx: StaffContext,
) -> DepartmentPlan:
    """The e-mails and Telegram messages for one due step of the department's ladder.

    ``broker`` is the case's active broker (None without one); ``coordinators`` cover the case's wijk. A
    department without a manager in the configuration gets the manager's e-mail at its contacts.
    """
    if alert.skipped:
        return DepartmentPlan(alert)
    if alert.level is Level.REMINDER:
        return DepartmentPlan(alert, (_reminder(facts),))
    manager_missing = facts.manager is None
    mails = [_to_manager(alert.level, facts)] if not manager_missing else []
    mails.append(_to_contacts(alert.level, facts))
    recipients = [Recipient(Audience.COORDINATOR, c.telegram_user_id, c.name) for c in coordinators]
    if alert.level is Level.URGENT and broker is not None and not is_absent(broker, ctx):
        recipients.append(Recipient(Audience.BROKER, broker.telegram_user_id, broker.name))
    message = _telegram(alert.level, facts, broker)
    notes = [Notification(r.user_id, r.user_id, message) for r in recipients]
    case = facts.case
    if _tells_resident(alert, case, ctx):
        recipients.append(Recipient(Audience.RESIDENT, case.resident_user_id, case.contact_name))
        notice = Reply(
            t("{reference} · {title}", reference=case.reference, title=case.title),
            # The coordinators were asked (and the manager): true whether or not the broker is there.
            extra=(resident_notice(case, None, ctx),),
            buttons=resident.case_buttons(case.reference, case.status),
        )
        notes.append(Notification(case.resident_user_id, case.resident_chat_id, notice))
    return DepartmentPlan(alert, tuple(mails), tuple(recipients), tuple(notes), manager_missing)


def _tells_resident(alert: DueAlert, case: CaseView, ctx: StaffContext) -> bool:
    # As on a case's status clock (flows.alerts): the one sentence at the escalation, or with the urgent
    # step that overtook it; once per clock of the question.
    return (
        ctx.municipality.stall_resident_notice
        and (alert.level is Level.ESCALATION or Level.ESCALATION in alert.overtook)
        and not case.resident_unreachable
    )


def mail_body(mail: DepartmentMail, name: str, url: str, m: Municipality) -> list[Msg]:
    """The body of ``mail`` for one addressee with their personal link."""
    return [
        t("Dear {name},", name=name),
        *mail.lines,
        t("You can see the whole idea and answer through your personal link:"),
        t("{url}", url=url),
        t(
            "This link is for you alone. Please do not pass it on. It works as long as the initiative is "
            "with the department."
        ),
        signature(m),
    ]


def signature(m: Municipality) -> Msg:
    sender = m.mail_from_name or t("Residents' initiatives {municipality}", municipality=m.name)
    return t("Kind regards,\n{sender}", sender=sender)


# -- the e-mails ---------------------------------------------------------------------------------


def _waiting(facts: QuestionAlert) -> Msg:
    if facts.promised_on is not None:
        return t(
            "The question about {reference} has been waiting for your answer since {day} ({days} working "
            "days). You expected to decide by {promised}.",
            reference=facts.case.reference,
            day=facts.since,
            days=facts.days,
            promised=facts.promised_on,
        )
    return t(
        "The question about {reference} has been waiting for your answer since {day} ({days} working "
        "days; the deadline is {norm} working days).",
        reference=facts.case.reference,
        day=facts.since,
        days=facts.days,
        norm=facts.norm,
    )


def _about(facts: QuestionAlert) -> tuple[Msg, Msg]:
    return (
        t("“{question}”", question=facts.question),
        t(
            "It is about the residents' initiative “{title}” ({reference}) in {wijk}.",
            title=facts.case.title,
            reference=facts.case.reference,
            wijk=facts.wijk,
        ),
    )


def _reminder(facts: QuestionAlert) -> DepartmentMail:
    subject = t(
        "Reminder: question about {reference}: {title}",
        reference=facts.case.reference,
        title=facts.case.title,
    )
    lines = (
        _waiting(facts),
        *_about(facts),
        t("The initiators are waiting for your answer. Can you answer it soon?"),
    )
    return DepartmentMail(MailTo.CONTACTS, "reminder", subject, lines)


def _subject(level: Level, facts: QuestionAlert) -> Msg:
    if level is Level.URGENT:
        return t(
            "Urgent: question about {reference}: {title}",
            reference=facts.case.reference,
            title=facts.case.title,
        )
    return t(
        "Overdue: question about {reference}: {title}", reference=facts.case.reference, title=facts.case.title
    )


def _to_manager(level: Level, facts: QuestionAlert) -> DepartmentMail:
    assert facts.manager is not None
    lines = (
        t(
            "You are the manager of {department}. A question to {department} has not been answered in time.",
            department=facts.department,
        ),
        _manager_waiting(facts),
        *_about(facts),
        t("The department's contacts had a reminder. Can you make sure the question is answered?")
        if level is Level.ESCALATION
        else t(
            "The question has now waited three times as long as it should. The department's contacts "
            "and the coordinators have been told too. Please make sure it is answered now."
        ),
    )
    return DepartmentMail(MailTo.MANAGER, level_kind(level), _subject(level, facts), lines)


def _manager_waiting(facts: QuestionAlert) -> Msg:
    if facts.promised_on is not None:
        return t(
            "It has been waiting since {day} ({days} working days). The department expected to decide by "
            "{promised}.",
            day=facts.since,
            days=facts.days,
            promised=facts.promised_on,
        )
    return t(
        "It has been waiting since {day} ({days} working days; the deadline is {norm} working days).",
        day=facts.since,
        days=facts.days,
        norm=facts.norm,
    )


def _to_contacts(level: Level, facts: QuestionAlert) -> DepartmentMail:
    if facts.manager is not None:
        told = t(
            "We have told your manager, {manager}, and the coordinators of residents' initiatives.",
            manager=facts.manager.name,
        )
    else:
        told = t("We have told the coordinators of residents' initiatives.")
    lines: tuple[Msg, ...] = (_waiting(facts), told)
    if level is Level.URGENT:
        lines += (t("It is urgent now: the question has waited three times as long as it should."),)
    lines += (*_about(facts), t("Please answer it as soon as you can."))
    return DepartmentMail(MailTo.CONTACTS, level_kind(level), _subject(level, facts), lines)


def level_kind(level: Level) -> str:
    """The e-mail kind (in the mail outbox) of a ladder step."""
    return {Level.REMINDER: "reminder", Level.ESCALATION: "escalation", Level.URGENT: "urgent"}[level]


# -- Telegram ------------------------------------------------------------------------------------


def _telegram(level: Level, facts: QuestionAlert, broker: StaffView | None) -> Reply:
    case = facts.case
    if level is Level.URGENT:
        head = t(
            "⚠ URGENT: {department} has not answered about {reference} · {title}",
            department=facts.department,
            reference=case.reference,
            title=case.title,
        )
    else:
        head = t(
            "Escalation: {department} has not answered about {reference} · {title}",
            department=facts.department,
            reference=case.reference,
            title=case.title,
        )
    lines: list[Msg] = [_staff_waiting(facts)]
    if facts.manager is not None:
        lines.append(
            t(
                "We e-mailed {manager}, the manager of {department}, and the department's contacts.",
                manager=facts.manager.name,
                department=facts.department,
            )
        )
    else:
        lines.append(
            t(
                "{department} has no manager in the configuration: we e-mailed the department's contacts.",
                department=facts.department,
            )
        )
    lines.append(t("Initiatiefmakelaar: {name}", name=broker.name if broker else t("nobody yet")))
    row = (Button(t("Open"), case_button(STAFF_PREFIX, case.reference, "open")),)
    return Reply(head, extra=tuple(lines), buttons=(row,))


def _staff_waiting(facts: QuestionAlert) -> Msg:
    if facts.promised_on is not None:
        return t(
            "The question has been waiting since {day}: {days} working days. They expected to decide by "
            "{promised}.",
            day=facts.since,
            days=facts.days,
            promised=facts.promised_on,
        )
    return t(
        "The question has been waiting since {day}: {days} working days; the deadline is {norm}.",
        day=facts.since,
        days=facts.days,
        norm=facts.norm,
    )
