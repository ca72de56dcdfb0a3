"""What the escalation ladder says, and to whom: a reminder to the broker, escalations to the coordinators,
and one honest sentence to the resident. Pure: the watchdog loads the people and sends the messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from flows import resident
from flows.broker import StaffContext, case_card, department_name
from flows.cases import STAFF_PREFIX, CaseView, Notification, StaffView, case_button
from flows.events import Button, Reply
from flows.lifecycle import Status, is_final, staff_label
from flows.stalls import AMSTERDAM, DueAlert, Level, StallFacts, Track, norm_for, working_days_between
from flows.text import Msg, t, tn

RESIDENT_NOTICE = t("It is taking longer than usual. We have asked your initiatiefmakelaar to contact you.")
NOTICE_WITHOUT_BROKER = t(
    "It is taking longer than usual. Your initiative has no initiatiefmakelaar at the moment. "
    "We have asked a coordinator to find one for you."
)
NOTICE_BROKER_AWAY = t(
    "It is taking longer than usual. Your initiatiefmakelaar is away for a while. "
    "We have asked a coordinator to help you further."
)


class Audience(StrEnum):
    """Who an alert message is for."""

    BROKER = "broker"
    COORDINATOR = "coordinator"
    RESIDENT = "resident"
    # By e-mail, on a department's ladder (flows.department_alerts): no Telegram id.
    CONTACT = "contact"
    MANAGER = "manager"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person an alert goes to; ``name`` is the staff member's name, or the resident's contact name."""

    audience: Audience
    user_id: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """The messages one ladder step sends, and who gets them (for the dry-run table)."""

    alert: DueAlert
    recipients: tuple[Recipient, ...] = ()
    notifications: tuple[Notification, ...] = ()


def is_absent(staff: StaffView, ctx: StaffContext) -> bool:
    """Whether ``staff`` is away today (the Amsterdam date of ``ctx.now``); absent_until is the last day."""
    return staff.absent_until is not None and staff.absent_until >= ctx.now.astimezone(AMSTERDAM).date()


def plan_alert(
    case: CaseView,
    alert: DueAlert,
    *,
    facts: StallFacts,
    broker: StaffView | None,
    coordinators: Sequence[StaffView],
    ctx: StaffContext,
    messages: bool = True,
) -> AlertPlan:
    """The messages for one due ladder step and their recipients; nothing for a skipped step.

    ``broker`` is the case's active broker (None when it has none, or they were removed); ``coordinators``
    are the ones covering the case's wijk. The reminder goes to the broker, or to the coordinators when the
    broker is absent or missing; escalations go to the coordinators. ``messages=False`` only works out the
    recipients (for a dry run).
    """
    if alert.skipped:
        return AlertPlan(alert)
    present = broker is not None and not is_absent(broker, ctx)
    recipients: list[Recipient] = []
    notes: list[Notification] = []
    if alert.level is Level.REMINDER and broker is not None and present:
        recipients.append(Recipient(Audience.BROKER, broker.telegram_user_id, broker.name))
        if messages:
            for reply in case_card(case, ctx, heading=_reminder_heading(case, alert, facts, ctx)):
                notes.append(Notification(broker.telegram_user_id, broker.telegram_user_id, reply))
    else:
        recipients.extend(Recipient(Audience.COORDINATOR, c.telegram_user_id, c.name) for c in coordinators)
        if messages and coordinators:
            message = _coordinator_message(case, alert, facts, broker, present=present, ctx=ctx)
            notes.extend(Notification(c.telegram_user_id, c.telegram_user_id, message) for c in coordinators)
    if _tells_resident(case, alert, ctx):
        recipients.append(Recipient(Audience.RESIDENT, case.resident_user_id, case.contact_name))
        if messages:
            notice = Reply(
                t("{reference} · {title}", reference=case.reference, title=case.title),
                extra=(resident_notice(case, broker, ctx),),
                buttons=resident.case_buttons(case.reference, case.status),
            )
            notes.append(Notification(case.resident_user_id, case.resident_chat_id, notice))
    return AlertPlan(alert, tuple(recipients), tuple(notes))


def _tells_resident(case: CaseView, alert: DueAlert, ctx: StaffContext) -> bool:
    # The status clock's escalation, or the urgent step that overtook it (the watchdog was down): once per
    # status entry, whoever is (or is not) the broker.
    return (
        ctx.municipality.stall_resident_notice
        and alert.track is Track.STATUS
        and (alert.level is Level.ESCALATION or Level.ESCALATION in alert.overtook)
        and not is_final(case.status)
        and not case.resident_unreachable
    )


def resident_notice(case: CaseView, broker: StaffView | None, ctx: StaffContext) -> Msg:
    """The one honest sentence for the resident at 1.5× the norm: what the case waits for, and who was asked.

    The escalation goes to the coordinators, who check with the broker; without a broker, or while the
    broker is away, the sentence says the coordinators take it up.
    """
    present = broker is not None and not is_absent(broker, ctx)
    if case.status == Status.BIJ_GEMEENTE and case.department:
        department = department_name(ctx.municipality, case.department)
        if present:
            return t(
                "It is taking longer than usual. Your initiative is waiting for an answer from {department}. "
                "We have asked your initiatiefmakelaar to ask them about it.",
                department=department,
            )
        return t(
            "It is taking longer than usual. Your initiative is waiting for an answer from {department}. "
            "We have asked a coordinator to ask them about it.",
            department=department,
        )
    if present:
        return RESIDENT_NOTICE
    return NOTICE_WITHOUT_BROKER if broker is None else NOTICE_BROKER_AWAY


def _days(alert: DueAlert, ctx: StaffContext) -> int:
    return working_days_between(alert.started_at, ctx.now, ctx.municipality.closing_days)


def _norm(alert: DueAlert, facts: StallFacts, ctx: StaffContext) -> int:
    if alert.track is Track.SILENCE:
        return ctx.municipality.no_sign_of_life_days
    return norm_for(ctx.municipality, facts.status, facts.department) or 0


def _reminder_heading(case: CaseView, alert: DueAlert, facts: StallFacts, ctx: StaffContext) -> Msg:
    days = _days(alert, ctx)
    if alert.track is Track.SILENCE:
        return t(
            "No sign of life on {reference} for {days} working days. "
            "Please contact the initiator, or add a note if you are waiting for something.",
            reference=case.reference,
            days=days,
        )
    return t(
        "Reminder: {reference} has been {days} working days in {status} (norm {norm}).",
        reference=case.reference,
        days=days,
        status=staff_label(case.status),
        norm=_norm(alert, facts, ctx),
    )


def _coordinator_message(
    case: CaseView,
    alert: DueAlert,
    facts: StallFacts,
    broker: StaffView | None,
    *,
    present: bool,
    ctx: StaffContext,
) -> Reply:
    titles = {
        Level.REMINDER: t("Reminder for {reference} · {title}", reference=case.reference, title=case.title),
        Level.ESCALATION: t("Escalation: {reference} · {title}", reference=case.reference, title=case.title),
        Level.URGENT: t(
            "⚠ URGENT escalation: {reference} · {title}", reference=case.reference, title=case.title
        ),
    }
    lines: list[Msg] = [titles[alert.level], _why(alert, facts, ctx)]
    if broker is None:
        lines.append(t("Initiatiefmakelaar: {name}", name=t("nobody yet")))
        lines.append(t("Please assign an initiatiefmakelaar."))
    else:
        lines.append(t("Initiatiefmakelaar: {name}", name=broker.name))
        if not present:
            lines.append(_absence(broker.name, broker.absent_until, alert.level))
        if alert.level is not Level.REMINDER:
            lines.append(t("Please check with {name} what is needed to move on.", name=broker.name))
    row = [Button(t("Open"), case_button(STAFF_PREFIX, case.reference, "open"))]
    if broker is not None and present:
        row.append(Button(t("Remind broker"), case_button(STAFF_PREFIX, case.reference, "remind")))
    row.append(Button(t("Assign"), case_button(STAFF_PREFIX, case.reference, "as")))
    return Reply(lines[0], extra=tuple(lines[1:]), buttons=(tuple(row),))


def _why(alert: DueAlert, facts: StallFacts, ctx: StaffContext) -> Msg:
    days = _days(alert, ctx)
    norm = _norm(alert, facts, ctx)
    if alert.track is Track.SILENCE:
        return t("No sign of life for {days} working days (norm {norm}).", days=days, norm=norm)
    status = staff_label(facts.status)
    over = max(0, days - norm)
    if not over:
        return t("{days} working days in {status}; the norm is {norm}.", days=days, status=status, norm=norm)
    return tn(
        "{days} working days in {status}: {n} working day over the norm of {norm}.",
        "{days} working days in {status}: {n} working days over the norm of {norm}.",
        over,
        days=days,
        status=status,
        norm=norm,
    )


def _absence(name: str, until: date | None, level: Level) -> Msg:
    assert until is not None
    if level is Level.REMINDER:
        return t("{name} is absent until {date}, so this reminder comes to you.", name=name, date=until)
    return t("{name} is absent until {date}.", name=name, date=until)
