"""What staff do in the chat: case cards, status changes, messages to residents, notes, handing over.

Every button is checked against the case as it is in the database now (loaded and locked by the
dispatcher): does it exist, may this person act on it, is this step allowed now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

from flows import lifecycle
from flows.bidi import isolate
from flows.cases import (
    COORDINATOR_COMMANDS,
    RESIDENT_PREFIX,
    STAFF_COMMANDS,
    STAFF_PREFIX,
    BrokerOption,
    CaseView,
    HandBack,
    Pending,
    StaffView,
    TimelineItem,
    case_button,
    page_offset,
    parse_case_button,
)
from flows.commands import (
    AddNote,
    AskDepartment,
    Assign,
    ChangeStatus,
    CoordinatorReport,
    Handover,
    ListCases,
    MessageResident,
    OpenDashboard,
    PassOnConditions,
    RecordContactView,
    RemindBroker,
    ReplyToDepartment,
    ShowBrokers,
    ShowTimeline,
    SyncStaffMenu,
)
from flows.department import (
    DEPARTMENT_ACTIONS,
    DEPARTMENT_EVENT,
    QuestionState,
    department_event_text,
)
from flows.department import standing as department_standing
from flows.events import Button, Event, EventKind, Notice, Reply
from flows.intake import NEEDS
from flows.lifecycle import Actor, Refused, Role, Status, staff_label
from flows.municipality import Municipality
from flows.resident import Conversation, Outcome, looks_like_invite
from flows.resident_messages import attachment_label
from flows.splitting import MESSAGE_LIMIT, utf16_len
from flows.staff_menu import MENU_COMMANDS, MENU_PREFIX, menu_command, staff_menu
from flows.stalls import AMSTERDAM, StallFacts, Standing, Track, status_standing, working_days_between
from flows.text import Moment, Money, Msg, capital, t, tn, verbatim
from flows.validators import clean_text

TEXT_MAX = 2000
CASE_LIST_LIMIT = 30  # one button each; Telegram allows 100 under a message


@dataclass(frozen=True)
class StaffContext:
    municipality: Municipality
    now: datetime


def actor_for(staff: StaffView, case: CaseView) -> Actor:
    role = Role.COORDINATOR if staff.is_coordinator else Role.BROKER
    return Actor(role, is_assigned_broker=case.broker_id == staff.id)


def may_act(staff: StaffView, case: CaseView) -> bool:
    """Who may open a case, see its contact details and act on it: its broker, and the coordinators
    who cover its wijk (see ``StaffView.covers``)."""
    if staff.is_coordinator:
        return staff.covers(case.wijk_code)
    return case.broker_id == staff.id


def not_yours(staff: StaffView, case: CaseView, ctx: StaffContext) -> Msg:
    """Why ``may_act`` refused, in words for this staff member."""
    if staff.is_coordinator:
        return t(
            "This initiative is in {wijk}, which is not one of your wijken. "
            "A coordinator of that wijk takes care of it.",
            wijk=_wijk_name(ctx.municipality, case.wijk_code),
        )
    return t("This initiative is not assigned to you.")


def _btn(label: Msg, case: CaseView, action: str, argument: str = "") -> Button:
    return Button(label, case_button(STAFF_PREFIX, case.reference, action, argument))


# The card's button labels, built once: every case card carries them.
_CHANGE_STATUS, _MESSAGE, _NOTE, _HAND_OVER, _TIMELINE = (
    t("Change status"),
    t("Message to initiator"),
    t("Note"),
    t("Hand over"),
    t("Timeline"),
)


def card_buttons(case: CaseView, m: Municipality | None = None) -> tuple[tuple[Button, ...], ...]:
    if lifecycle.is_final(case.status):
        return ((_btn(_TIMELINE, case, "tl"),),)
    rows: tuple[tuple[Button, ...], ...] = (
        (_btn(_CHANGE_STATUS, case, "st"), _btn(_MESSAGE, case, "msg")),
        (_btn(_NOTE, case, "note"), _btn(_HAND_OVER, case, "ho")),
        (_btn(_TIMELINE, case, "tl"),),
    )
    if case.status == Status.BIJ_GEMEENTE and case.department and m is not None:
        name = department_name(m, case.department)
        department: tuple[Button, ...] = (_btn(t("Ask {department} again", department=name), case, "dask"),)
        if case.question is not None and case.question.state == QuestionState.INFO:
            department = (_btn(t("Answer their question"), case, "drep"), *department)
        rows = (department, *rows)
    return rows


def _wijk_name(m: Municipality, code: str | None) -> Msg:
    wijk = m.wijk(code) if code else None
    return verbatim(wijk.name) if wijk else t("unknown")


def _theme(m: Municipality, code: str) -> Msg:
    theme = m.theme(code)
    return theme.localized() if theme else verbatim(code)


def department_name(m: Municipality, code: str | None) -> str:
    department = m.department(code) if code else None
    return department.name if department else (code or "")


def days_in_status(case: CaseView, ctx: StaffContext) -> int:
    return working_days_between(case.status_changed_at, ctx.now, ctx.municipality.closing_days)


_BLANK = verbatim("")
_NEED_LABELS: Mapping[str, Msg] = MappingProxyType({o.code: o.label for o in NEEDS})


def status_clock(case: CaseView, ctx: StaffContext) -> Standing | None:
    """The case's clock as the watchdog reads it: the status clock, or while bij_gemeente the clock of
    the department's question (None while it waits on the broker or has answered)."""
    if case.status == Status.BIJ_GEMEENTE:
        if case.question is None:
            return None
        return department_standing(case.question, ctx.municipality, ctx.now)
    facts = StallFacts(case.status, case.status_changed_at, department=case.department)
    return status_standing(facts, ctx.municipality, ctx.now)


def case_card(
    case: CaseView, ctx: StaffContext, *, heading: Msg | None = None, with_photo: bool = False
) -> tuple[Reply, ...]:
    """Everything a broker needs to pick a case up, with the actions as buttons; the photo goes first
    ``with_photo`` only (a new case, a case opened on purpose), not with every status card.

    What the initiator wrote is bidi-isolated (``flows.bidi``): Arabic reads right to left inside the
    Dutch card, whose own labels stay left to right."""
    m = ctx.municipality
    lines: list[Msg] = []
    if heading is not None:
        lines.append(heading)
    lines.append(t("{reference} · {title}", reference=case.reference, title=isolate(case.title)))
    lines.append(
        t(
            "Wijk: {wijk} · Theme: {theme}",
            wijk=_wijk_name(m, case.wijk_code),
            theme=_theme(m, case.theme_code),
        )
    )
    status = t("Status: {status}", status=staff_label(case.status))
    if case.status == Status.BIJ_GEMEENTE and case.department:
        status = t(
            "Status: {status} ({department})",
            status=staff_label(case.status),
            department=department_name(m, case.department),
        )
    clock = status_clock(case, ctx)
    lines.append(status)
    if clock is not None and clock.track is Track.DEPARTMENT:
        lines.append(
            t(
                "{department}: {days} of {norm} working days to answer",
                department=department_name(m, case.department),
                days=clock.days,
                norm=clock.norm,
            )
        )
    elif clock is not None:
        lines.append(t("{days} of {norm} working days in this status", days=clock.days, norm=clock.norm))
    elif case.status == Status.BIJ_GEMEENTE and case.question is not None:
        if case.question.state == QuestionState.INFO:
            waiting = t(
                "⚠ {department} waits for your answer to their question.",
                department=department_name(m, case.department),
            )
            lines.append(waiting)
    lines.append(t("Initiatiefmakelaar: {name}", name=case.broker_name or t("nobody yet")))
    # The free texts stand apart, so a long card is split around them (flows.splitting), not inside.
    lines += [_BLANK, t("What do they want?\n{text}", text=isolate(case.description)), _BLANK]
    if case.own_contribution:
        lines += [t("What can they do themselves?\n{text}", text=isolate(case.own_contribution)), _BLANK]
    needs = [_NEED_LABELS.get(code) or verbatim(code) for code in case.needs]
    if needs:  # an empty msgid would render as the catalog's header
        joined = Msg(
            ", ".join(f"{{n{i}}}" for i in range(len(needs))), {f"n{i}": n for i, n in enumerate(needs)}
        )
        lines.append(t("What do they need? {needs}", needs=joined))
    if case.amount_cents and case.amount_max_cents and case.amount_max_cents != case.amount_cents:
        lines.append(
            t(
                "Amount: {low} to {high}",
                low=Money(case.amount_cents),
                high=Money(case.amount_max_cents),
            )
        )
    elif case.amount_cents:
        lines.append(t("Amount: about {amount}", amount=Money(case.amount_cents)))
    if case.idea_voice_file_id or case.own_voice_file_id:
        lines.append(t("🎤 The initiator sent a voice message: listen to it above the card."))
    if case.neighbours:
        lines.append(t("Neighbours taking part: {count}", count=case.neighbours))
    contact = [isolate(case.contact_name), *(c for c in (case.contact_phone, case.contact_email) if c)]
    lines.append(t("Contact: {contact} (and in this chat via the bot)", contact=" · ".join(contact)))
    if case.resident_language is not None:
        lines.append(t("Language of the initiator: {language}", language=case.resident_language))
    if case.resident_unreachable:
        lines.append(t("⚠ The initiator blocked the bot: messages do not arrive."))
    text = Msg("\n".join(f"{{l{i}}}" for i in range(len(lines))), {f"l{i}": x for i, x in enumerate(lines)})
    card = Reply(text, buttons=card_buttons(case, m))
    if not with_photo:
        return (card,)
    shown: list[Reply] = []
    if case.photo_file_id:
        shown.append(
            Reply(t("Photo of {reference}", reference=case.reference), photo_file_id=case.photo_file_id)
        )
    # The initiator's own voice goes with the first card too: the idea, or what they do themselves.
    if case.idea_voice_file_id:
        shown.append(
            Reply(
                t("The idea of {reference}, as a voice message", reference=case.reference),
                voice_file_id=case.idea_voice_file_id,
            )
        )
    if case.own_voice_file_id:
        shown.append(
            Reply(
                t(
                    "What the initiator of {reference} does themselves, as a voice message",
                    reference=case.reference,
                ),
                voice_file_id=case.own_voice_file_id,
            )
        )
    return (*shown, card)


def case_list(cases: Sequence[CaseView], ctx: StaffContext, *, title: Msg) -> Reply:
    """Open cases, most urgent first: longest in their status compared with that status's norm."""
    if not cases:
        return Reply(t("You have no open initiatives."))

    clocks = {case.id: status_clock(case, ctx) for case in cases}

    def urgency(case: CaseView) -> tuple[float, datetime]:
        clock = clocks[case.id]
        return (-(clock.days / clock.norm) if clock is not None else 0.0, case.status_changed_at)

    ordered = sorted(cases, key=urgency)
    lines: list[Msg] = [title]
    buttons: list[tuple[Button, ...]] = []
    for case in ordered[:CASE_LIST_LIMIT]:
        clock = clocks[case.id]
        when = (
            t("{days}/{norm} working days", days=clock.days, norm=clock.norm)
            if clock is not None
            else tn("{n} working day", "{n} working days", days_in_status(case, ctx))
        )
        # The same moment the watchdog sends the reminder: 09:00 on the day the norm runs out.
        overdue = "⚠ " if clock is not None and clock.level is not None else ""
        lines.append(
            t(
                "{mark}{reference} · {title}\n{status} · {when}",
                mark=overdue,
                reference=case.reference,
                title=isolate(case.title),
                status=staff_label(case.status),
                when=when,
            )
        )
        buttons.append((Button(t("Open {reference}", reference=case.reference), f"c:{case.reference}:open"),))
    if len(ordered) > CASE_LIST_LIMIT:  # said, not silently left out; /zaak opens any of them
        lines.append(t("… and {count} more.", count=len(ordered) - CASE_LIST_LIMIT))
    return Reply(lines[0], buttons=tuple(buttons), extra=tuple(lines[1:]))


def timeline_text(
    case: CaseView,
    items: Sequence[TimelineItem],
    *,
    for_resident: bool,
    offset: int = 0,
    now: datetime | None = None,
) -> Reply:
    """One message of a case's timeline (``items`` oldest first), newest first from ``offset`` on, with
    "Earlier messages" while older entries remain; the button carries the next offset, nothing is kept.

    One entry per event (``merged``), each "day time · who" over a sentence that starts with a capital;
    the year only for another year than ``now``'s."""
    newest = list(reversed(merged(items)))
    offset = max(0, min(offset, len(newest) - 1))
    end = _page_end(case, newest, offset)
    title = isolate(case.title)
    lines: list[Msg] = [t("Timeline of {reference} · {title}", reference=case.reference, title=title)]
    if newest:
        lines.append(
            t("Newest first · {first}–{last} of {total}", first=offset + 1, last=end, total=len(newest))
        )
    for item in newest[offset:end]:
        who = (
            verbatim(isolate(item.staff_name))  # a name as it is written ("van Dijk")
            if item.staff_name
            else capital(_role_name(item.actor_role, for_resident))
        )
        shown = replace(item, note=isolate(item.note) if item.note else item.note)
        when = Moment(item.at, with_year=now is not None and item.at.year != now.year)
        what = capital(event_text(shown, for_resident))
        lines.append(t("{date} · {who}\n{what}", date=when, who=who, what=what))
    text = Msg("\n\n".join(f"{{l{i}}}" for i in range(len(lines))), {f"l{i}": x for i, x in enumerate(lines)})
    if end == len(newest):
        return Reply(text)
    prefix = RESIDENT_PREFIX if for_resident else STAFF_PREFIX
    earlier = Button(t("Earlier messages"), case_button(prefix, case.reference, "tl", str(end)))
    return Reply(text, buttons=((earlier,),))


def merged(items: Sequence[TimelineItem]) -> list[TimelineItem]:
    """The timeline with one entry per event: an assignment and the status "toegewezen" it caused, written
    at the same moment, become one status entry that names the initiatiefmakelaar."""
    out: list[TimelineItem] = []
    for item in items:
        before = out[-1] if out else None
        if before is not None and before.at == item.at and _pair(before, item):
            status, assigned = (before, item) if before.kind == "status" else (item, before)
            out[-1] = replace(status, to_name=assigned.to_name or assigned.staff_name)
            continue
        out.append(item)
    return out


def _pair(a: TimelineItem, b: TimelineItem) -> bool:
    kinds = {a.kind, b.kind}
    status = a if a.kind == "status" else b
    return kinds == {"status", "assigned"} and status.status == Status.TOEGEWEZEN and status.to_name is None


# What a timeline entry and the heading add to their free text once rendered (the date, who, the
# status and the words around them), with room to spare in every language: a page fits one message.
TIMELINE_ENTRY_ROOM = 200
TIMELINE_HEAD_ROOM = 300


def _page_end(case: CaseView, newest: Sequence[TimelineItem], offset: int) -> int:
    """The end of the page that starts at ``offset``: as many entries as fit, at least one."""
    room = MESSAGE_LIMIT - TIMELINE_HEAD_ROOM - utf16_len(case.reference) - utf16_len(case.title)
    end = offset
    while end < len(newest):
        item = newest[end]
        room -= TIMELINE_ENTRY_ROOM + sum(
            # Bidi isolation (``flows.bidi``) may add two characters to each line.
            utf16_len(x or "") + 2 * (x or "").count("\n")
            for x in (item.note, item.staff_name, item.department, item.to_name)
        )
        if room < 0 and end > offset:
            break
        end += 1
    return end


def _role_name(role: str, for_resident: bool) -> Msg:
    if role == "resident":
        return t("you") if for_resident else t("the initiator")
    if role == "system":
        return t("the bot")
    return t("the municipality")


def event_text(item: TimelineItem, for_resident: bool) -> Msg:
    """What a timeline entry says, for the initiator or for staff (the bot and the staff web alike)."""
    said = _event_text(item, for_resident)
    attachment = attachment_label(item.media_kind, item.media_name, item.media_seconds)
    if attachment is None:
        return said
    if not item.note:  # "Your message: 📷 photo"
        return t("{text}{attachment}", text=said, attachment=attachment)
    return t("{text}\n{attachment}", text=said, attachment=attachment)


def _event_text(item: TimelineItem, for_resident: bool) -> Msg:
    label = lifecycle.status_label if for_resident else staff_label
    note = item.note or ""
    if item.kind == "status" and item.status:
        return _status_text(item, label(item.status), note)
    if item.kind == "assigned":
        if item.to_name is None:
            return t("Initiatiefmakelaar assigned.")
        if for_resident:
            return t("{broker} is your initiatiefmakelaar now.", broker=item.to_name)
        return t("{broker} is the initiatiefmakelaar now.", broker=item.to_name)
    if item.kind == "handover":
        to = verbatim(item.to_name) if item.to_name else t("another initiatiefmakelaar")
        if note:
            return t("Handed over to {broker}: {note}", broker=to, note=note)
        return t("Handed over to {broker}.", broker=to)
    if item.kind == "unassigned":
        if note == HandBack.UNREACHABLE:
            return t("Back to the coordinators: the bot cannot reach this initiatiefmakelaar.")
        return t("Back to the coordinators: no longer an initiatiefmakelaar.")
    if item.kind == "note":
        return t("Internal note: {note}", note=note)
    if item.kind == "message_to_resident":
        if for_resident:
            return t("Message to you: {note}", note=note)
        return t("Message to the initiator: {note}", note=note)
    if item.kind == "message_from_resident":
        if for_resident:
            return t("Your message: {note}", note=note)
        return t("Message from the initiator: {note}", note=note)
    if item.kind.startswith(DEPARTMENT_EVENT):
        return department_event_text(item.kind, item.department or "", note)
    return verbatim(note)


def _status_text(item: TimelineItem, status: Msg, note: str) -> Msg:
    """A status entry: the status, then (after a separator) whom it went to, the department, the note."""
    if item.to_name:  # merged with its assignment (``merged``)
        return t("{status} — {broker}", status=status, broker=item.to_name)
    if item.department and note:
        return t(
            "{status} (department: {department}): {note}",
            status=status,
            department=item.department,
            note=note,
        )
    if item.department:
        return t("{status} (department: {department})", status=status, department=item.department)
    if note:
        return t("{status}: {note}", status=status, note=note)
    return status


def may_concern_staff(event: Event, pending: Pending | None) -> bool:
    """Whether an event could be a staff matter, so only then the sender's staff role is looked up."""
    if event.kind is EventKind.COMMAND:
        return event.command in STAFF_COMMANDS or _is_menu_command(event)
    if event.kind is EventKind.BUTTON:
        return (event.button or "").startswith((f"{STAFF_PREFIX}:", f"{MENU_PREFIX}:"))
    return event.kind is EventKind.TEXT and pending is not None and pending.action in _STAFF_INPUTS


def _is_menu_command(event: Event) -> bool:
    """/start or /help, but not /start with an invitation code (that one may change someone's role)."""
    if event.command not in MENU_COMMANDS:
        return False
    payload = event.command_args.split()[0] if event.command_args.split() else ""
    return not (event.command == "start" and looks_like_invite(payload))


def handle(
    conv: Conversation, event: Event, staff: StaffView, case: CaseView | None, ctx: StaffContext
) -> Outcome | None:
    """A staff member's event, or None when it is not a staff matter (then the resident flow takes it)."""
    if not event.private_chat:
        return None  # a case card holds the initiator's contact details: never in a group
    if event.kind is EventKind.COMMAND and _is_menu_command(event):
        # Their own menu, not the resident's greeting; the chat's command list is set again with it.
        menu = (staff_menu(staff),)
        return Outcome(replace(conv, pending=None), menu, commands=(SyncStaffMenu(),))
    if event.kind is EventKind.COMMAND and event.command in STAFF_COMMANDS:
        return _command(conv, event, staff, case, ctx)
    if event.kind is EventKind.BUTTON and (command := menu_command(event.button or "")) is not None:
        typed = replace(event, kind=EventKind.COMMAND, command=command, command_args="", button=None)
        if command not in STAFF_COMMANDS and command not in MENU_COMMANDS:
            return Outcome(conv, (Reply(t("That button does not work here.")),), Notice(t("Not possible.")))
        return replace(handle(conv, typed, staff, case, ctx) or Outcome(conv), notice=Notice())
    if event.kind is EventKind.BUTTON:
        parsed = parse_case_button(event.button or "")
        if parsed is None or parsed[0] != STAFF_PREFIX:
            return None
        return _button(replace(conv, pending=None), parsed[2], parsed[3], staff, case, ctx)
    if event.kind is EventKind.TEXT and conv.pending is not None and conv.pending.action in _STAFF_INPUTS:
        return _text(conv, conv.pending, event.text or "", staff, case, ctx)
    return None


def _command(
    conv: Conversation, event: Event, staff: StaffView, case: CaseView | None, ctx: StaffContext
) -> Outcome:
    conv = replace(conv, pending=None)
    if event.command == "zaken":
        return Outcome(conv, commands=(ListCases(),))
    if event.command == "dashboard":
        return Outcome(conv, commands=(OpenDashboard(),))
    if event.command in COORDINATOR_COMMANDS:
        if not staff.is_coordinator:
            return Outcome(conv, (Reply(t("This command is only for coordinators.")),))
        return Outcome(conv, commands=(CoordinatorReport(event.command or ""),))
    reference = event.command_args.strip().upper()
    if not reference:
        example = "INI-2026-0042"
        return Outcome(
            conv,
            (
                Reply(
                    t(
                        "Add the reference, for example: /{command} {example}",
                        command=event.command or "",
                        example=example,
                    )
                ),
            ),
        )
    if case is None:
        return Outcome(conv, (Reply(t("I cannot find the initiative {reference}.", reference=reference)),))
    if event.command == "toewijzen" and not staff.is_coordinator:
        return Outcome(conv, (Reply(t("Only a coordinator can assign initiatives.")),))
    if not may_act(staff, case):
        return Outcome(conv, (Reply(not_yours(staff, case, ctx)),))
    if event.command == "toewijzen":
        if lifecycle.is_final(case.status):
            return Outcome(conv, (Reply(t("This initiative is closed.")),))
        return Outcome(conv, commands=(ShowBrokers(case.reference, "as"),))
    return Outcome(conv, case_card(case, ctx, with_photo=True), commands=_contact_seen(case))


def _contact_seen(case: CaseView) -> tuple[RecordContactView, ...]:
    """The audit entry for a card that shows the initiator's phone or e-mail to the staff member."""
    return (RecordContactView(case.reference),) if case.contact_phone or case.contact_email else ()


def _button(
    conv: Conversation, action: str, argument: str, staff: StaffView, case: CaseView | None, ctx: StaffContext
) -> Outcome:
    if case is None:
        return Outcome(
            conv, (Reply(t("This initiative does not exist (any more).")),), Notice(t("Not possible."))
        )
    if not may_act(staff, case):
        return Outcome(conv, (Reply(not_yours(staff, case, ctx)),), Notice(t("Not possible.")))
    ok = Notice()
    if action == "open":
        return Outcome(conv, case_card(case, ctx, with_photo=True), ok, commands=_contact_seen(case))
    if action == "tl":
        show = ShowTimeline(case.reference, for_resident=False, offset=page_offset(argument))
        return Outcome(conv, notice=ok, commands=(show,))
    if action == "cancel":
        return Outcome(conv, (Reply(t("Cancelled. Nothing was sent.")),), ok)
    if lifecycle.is_final(case.status):
        return Outcome(conv, (Reply(t("This initiative is closed.")),), Notice(t("Not possible.")))
    actor = actor_for(staff, case)
    if action == "st" and not argument:
        options = lifecycle.next_statuses(case.status, actor)
        rows = tuple((_btn(staff_label(s), case, "st", s.value),) for s in options)
        question = t("{reference}: what is the new status?", reference=case.reference)
        return Outcome(conv, (Reply(question, buttons=(*rows, (_btn(t("Cancel"), case, "cancel"),))),), ok)
    if action == "st":
        return _choose_status(conv, case, argument, actor, ctx)
    if action == "dep":
        if (not_now := _not_offered(conv, case, Status.BIJ_GEMEENTE.value, actor)) is not None:
            return not_now
        if ctx.municipality.department(argument) is None:
            return Outcome(conv, (Reply(t("That department does not exist.")),), Notice(t("Not possible.")))
        pending = Pending("question", case.reference, status=Status.BIJ_GEMEENTE.value, department=argument)
        ask = t(
            "What is the question for {department}? The initiator will see it too.",
            department=department_name(ctx.municipality, argument),
        )
        return _ask(conv, pending, ask, case)
    if action == "nonote":
        return _change(conv, case, argument, None, None, actor, ctx)
    if action == "msg":
        return _ask(conv, Pending("message", case.reference), t("Write your message to the initiator."), case)
    if action == "note":
        return _ask(conv, Pending("note", case.reference), t("Write your note. Only staff can see it."), case)
    if action == "ho" and not argument:
        return Outcome(conv, notice=ok, commands=(ShowBrokers(case.reference, "ho"),))
    if action == "ho":
        to = _staff_id(argument)
        if to is None or to == case.broker_id:
            return Outcome(
                conv, (Reply(t("Choose another initiatiefmakelaar.")),), Notice(t("Not possible."))
            )
        ask = t("Write a short note for your colleague, or choose “No note”.")
        skip = _btn(t("No note"), case, "honote", str(to))
        return _ask(conv, Pending("handover", case.reference, to_staff_id=to), ask, case, extra=(skip,))
    if action == "honote":
        to = _staff_id(argument)
        if to is None or to == case.broker_id:
            return Outcome(
                conv, (Reply(t("Choose another initiatiefmakelaar.")),), Notice(t("Not possible."))
            )
        return Outcome(conv, notice=ok, commands=(Handover(case.reference, to, None),))
    if action in DEPARTMENT_ACTIONS:
        return _department_button(conv, action, case, ctx)
    if action == "remind" and staff.is_coordinator:
        if case.broker_id is None:
            return Outcome(
                conv,
                (Reply(t("This initiative has no initiatiefmakelaar yet.")),),
                Notice(t("Not possible.")),
            )
        return Outcome(conv, notice=ok, commands=(RemindBroker(case.reference),))
    if action == "as" and staff.is_coordinator:
        if not argument:
            return Outcome(conv, notice=ok, commands=(ShowBrokers(case.reference, "as"),))
        to = _staff_id(argument)
        if to is None or to == case.broker_id:
            return Outcome(
                conv, (Reply(t("Choose another initiatiefmakelaar.")),), Notice(t("Not possible."))
            )
        return Outcome(conv, notice=ok, commands=(Assign(case.reference, to),))
    return Outcome(conv, (Reply(t("That button does not work here.")),), Notice(t("Not possible.")))


def _department_button(conv: Conversation, action: str, case: CaseView, ctx: StaffContext) -> Outcome:
    """The next steps offered under a department's answer."""
    if case.status != Status.BIJ_GEMEENTE or case.department is None:
        return Outcome(
            conv,
            (Reply(t("This initiative is no longer waiting on a department.")),),
            Notice(t("Not possible.")),
        )
    name = department_name(ctx.municipality, case.department)
    if action == "dask":
        ask = t("What do you want to ask {department}? They get it by e-mail.", department=name)
        return _ask(conv, Pending("dquestion", case.reference, department=case.department), ask, case)
    if action == "drep":
        ask = t("Write your answer to {department}'s question. They get it by e-mail.", department=name)
        return _ask(conv, Pending("dreply", case.reference, department=case.department), ask, case)
    return Outcome(conv, notice=Notice(), commands=(PassOnConditions(case.reference),))


def _staff_id(argument: str) -> int | None:
    return int(argument) if argument.isdigit() and len(argument) < 10 else None


def _ask(
    conv: Conversation, pending: Pending, question: Msg, case: CaseView, *, extra: tuple[Button, ...] = ()
) -> Outcome:
    buttons = ((*extra, _btn(t("Cancel"), case, "cancel")),)
    return Outcome(replace(conv, pending=pending), (Reply(question, buttons=buttons),), Notice())


def _not_offered(conv: Conversation, case: CaseView, target: str, actor: Actor) -> Outcome | None:
    """A refusal when ``target`` is not in this actor's status menu for the case now, else None."""
    if target in lifecycle.next_statuses(case.status, actor):
        return None
    refused = lifecycle.check_transition(case.status, target, actor)
    reason = refused.reason if isinstance(refused, Refused) else t("That is not possible now.")
    return Outcome(conv, (Reply(reason),), Notice(t("Not possible.")))


def _choose_status(
    conv: Conversation, case: CaseView, target: str, actor: Actor, ctx: StaffContext
) -> Outcome:
    if (not_now := _not_offered(conv, case, target, actor)) is not None:
        return not_now
    if lifecycle.needs_department(target):
        rows = tuple((_btn(verbatim(d.name), case, "dep", d.code),) for d in ctx.municipality.departments)
        ask = t("Which department is it waiting for?")
        return Outcome(conv, (Reply(ask, buttons=(*rows, (_btn(t("Cancel"), case, "cancel"),))),), Notice())
    if lifecycle.needs_reason(target):
        ask = t("Why {status}? Write a short reason. The initiator will see it.", status=staff_label(target))
        return _ask(conv, Pending("reason", case.reference, status=target), ask, case)
    ask = t(
        "New status: {status}. Do you want to add a note for the initiator? Write it, or choose “No note”.",
        status=staff_label(target),
    )
    skip = _btn(t("No note"), case, "nonote", target)
    return _ask(conv, Pending("status_note", case.reference, status=target), ask, case, extra=(skip,))


_STAFF_INPUTS = frozenset(
    {"question", "reason", "status_note", "message", "note", "handover", "dquestion", "dreply"}
)


def _text(
    conv: Conversation, pending: Pending, raw: str, staff: StaffView, case: CaseView | None, ctx: StaffContext
) -> Outcome:
    conv = replace(conv, pending=None)
    if case is None or case.reference != pending.reference:
        return Outcome(conv, (Reply(t("This initiative does not exist (any more).")),))
    if not may_act(staff, case):
        return Outcome(conv, (Reply(not_yours(staff, case, ctx)),))
    text = clean_text(raw, keep_newlines=True)
    if not text or len(text) > TEXT_MAX:
        again = t("Please write between 1 and {max} characters.", max=TEXT_MAX)
        return Outcome(
            replace(conv, pending=pending), (Reply(again, buttons=((_btn(t("Cancel"), case, "cancel"),),)),)
        )
    actor = actor_for(staff, case)
    if pending.action in ("question", "reason", "status_note") and pending.status:
        return _change(conv, case, pending.status, text, pending.department, actor, ctx)
    if pending.action == "message":
        return Outcome(conv, commands=(MessageResident(case.reference, text),))
    if pending.action == "note":
        return Outcome(
            conv,
            (Reply(t("Note saved on {reference}.", reference=case.reference)),),
            commands=(AddNote(case.reference, text),),
        )
    if pending.action == "handover" and pending.to_staff_id is not None:
        return Outcome(conv, commands=(Handover(case.reference, pending.to_staff_id, text),))
    if pending.action == "dquestion":
        return Outcome(conv, commands=(AskDepartment(case.reference, text),))
    if pending.action == "dreply":
        return Outcome(conv, commands=(ReplyToDepartment(case.reference, text),))
    return Outcome(conv, (Reply(t("Cancelled. Nothing was sent.")),))


def _change(
    conv: Conversation,
    case: CaseView,
    target: str,
    note: str | None,
    department: str | None,
    actor: Actor,
    ctx: StaffContext,
) -> Outcome:
    codes = [d.code for d in ctx.municipality.departments]
    verdict = lifecycle.check_transition(
        case.status, target, actor, note=note, department=department, departments=codes
    )
    if isinstance(verdict, Refused):
        return Outcome(conv, (Reply(verdict.reason),), Notice(t("Not possible.")))
    command = ChangeStatus(case.reference, verdict.target.value, verdict.note, verdict.department)
    return Outcome(conv, notice=Notice(), commands=(command,))


def broker_menu(case: CaseView, options: Sequence[BrokerOption], *, purpose: str, today: datetime) -> Reply:
    """Brokers to assign a case to (coordinator) or to hand it over to (broker), with their load."""
    rows: list[tuple[Button, ...]] = []
    for option in options:
        if option.staff_id == case.broker_id:
            continue
        absent = option.absent_until is not None and option.absent_until >= today.astimezone(AMSTERDAM).date()
        label = (
            t(
                "{name} ({open} open, absent until {date})",
                name=option.name,
                open=option.open_cases,
                date=option.absent_until,
            )
            if absent and option.absent_until
            else t("{name} ({open} open)", name=option.name, open=option.open_cases)
        )
        rows.append((_btn(label, case, purpose, str(option.staff_id)),))
    if not rows:
        return Reply(t("There is no other initiatiefmakelaar to choose."))
    question = (
        t("Who becomes the initiatiefmakelaar of {reference}?", reference=case.reference)
        if purpose == "as"
        else t("To whom do you hand over {reference}?", reference=case.reference)
    )
    return Reply(question, buttons=(*rows, (_btn(t("Cancel"), case, "cancel"),)))


def unassigned_alert(case: CaseView, ctx: StaffContext, reason: Msg) -> Reply:
    """For coordinators: a new initiative that no broker could take."""
    wijk = _wijk_name(ctx.municipality, case.wijk_code)
    text = t(
        "New initiative without an initiatiefmakelaar: {reference} · {title} (wijk: {wijk}).",
        reference=case.reference,
        title=isolate(case.title),
        wijk=wijk,
    )
    return Reply(
        text, extra=(reason,), buttons=((_btn(t("Assign"), case, "as"), _btn(t("Open"), case, "open")),)
    )
