"""Carries out case commands inside the update's transaction: routing, assignment, status, relayed messages.

The decisions (may this person do this, what does everybody hear) are pure functions in ``flows``;
this module loads what they need, writes the result and collects the notifications.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.departments import DepartmentDesk
from bot.i18n import Translator
from bot.language_names import language_name
from bot.logs import Pseudonyms
from flows import broker, coordinator, lifecycle, resident
from flows import resident_messages as messages
from flows.bidi import isolate
from flows.cases import (
    RESIDENT_PREFIX,
    STAFF_PREFIX,
    BrokerOption,
    CaseView,
    Notification,
    QuestionFacts,
    StaffRole,
    StaffView,
    TimelineItem,
    case_button,
    parse_case_button,
)
from flows.commands import (
    AddNote,
    AskDepartment,
    Assign,
    ChangeStatus,
    Command,
    CoordinatorReport,
    Handover,
    ListCases,
    MessageBroker,
    MessageResident,
    OpenDashboard,
    PassOnConditions,
    RecordContactView,
    RedeemInvite,
    RemindBroker,
    ReplyToDepartment,
    ShowBrokers,
    ShowTimeline,
)
from flows.department import sent_notice as department_sent
from flows.events import Button, Event, Reply
from flows.lifecycle import Role, Status
from flows.municipality import Municipality
from flows.privacy import ERASED_ID
from flows.resident import Outcome
from flows.routing import BrokerLoad, route
from flows.stalls import AMSTERDAM
from flows.text import Msg, t, verbatim
from storage import audit, reports, web_sessions
from storage import departments as departments_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import resident_messages as messages_store
from storage import staff as staff_store
from storage.initiatives import CaseRow, InitiativeRow, MediaFields
from storage.people import PersonRow
from storage.staff import StaffRow

log = logging.getLogger(__name__)

OPEN = tuple(s.value for s in lifecycle.OPEN_STATUSES)


def staff_view(row: StaffRow) -> StaffView:
    return StaffView(
        id=row.id,
        telegram_user_id=row.telegram_user_id,
        name=row.name,
        role=StaffRole(row.role),
        wijken=row.wijken,
        themes=row.themes,
        absent_until=row.absent_until,
    )


class Casework:
    """Case commands for one municipality."""

    def __init__(
        self,
        municipality: Municipality,
        pseudonym: Callable[[int], str] | None = None,
        *,
        web_url: str = "http://localhost:8080",
        translator: Translator | None = None,
    ) -> None:
        self._m = municipality
        self._readers = translator.languages if translator is not None else ("nl", "en")
        self._web_url = web_url  # login links to the staff web start with it
        # Questions to departments, their answers and links; e-mails are rendered with ``translator``.
        self.desk = DepartmentDesk(municipality, translator, web_url=web_url, view=self.view)
        # Logs name a person by pseudonym only (bot.logs.Pseudonyms), never by Telegram id.
        self._pseudonym = pseudonym if pseudonym is not None else Pseudonyms()

    def context(self, now: datetime) -> broker.StaffContext:
        return broker.StaffContext(self._m, now)

    async def staff(self, session: AsyncSession, user_id: int) -> StaffView | None:
        """The staff member behind an update; a coordinator with wijken also learns which wijken have a
        coordinator, since a wijk without one is every coordinator's (``StaffView.covers``)."""
        row = await staff_store.load_staff(session, user_id)
        if row is None:
            return None
        view = staff_view(row)
        if view.is_coordinator and view.wijken:
            everyone = await staff_store.all_coordinators(session)
            covered = (
                None
                if any(not c.wijken for c in everyone)
                else frozenset(w for c in everyone for w in c.wijken)
            )
            view = replace(view, coordinated_wijken=covered)
        return view

    async def login_url(self, session: AsyncSession, staff_id: int, now: datetime) -> str:
        """A one-time link to the staff web (15 minutes); it holds a random token, nothing personal."""
        token = await web_sessions.create_login_link(session, staff_id, now=now)
        return f"{self._web_url}/login/{token}"

    async def case(self, session: AsyncSession, reference: str, *, lock: bool = True) -> CaseView | None:
        """The case as the flows see it, row-locked for the rest of the transaction."""
        row = await initiatives_store.load_case(session, reference, lock=lock)
        return await self.view(session, row) if row is not None else None

    async def view(self, session: AsyncSession, row: CaseRow) -> CaseView:
        """A case row as the flows see it: with its broker, the initiator's reachability and, while
        bij_gemeente, its department's question."""
        broker_row = await staff_store.staff_by_id(session, row.broker_id) if row.broker_id else None
        if broker_row is not None and not broker_row.active:
            broker_row = None  # removed staff get no more messages; the coordinators take over
        person = await people_store.load_person(session, row.resident_user_id)
        return CaseView(
            id=row.id,
            reference=row.reference,
            title=row.title,
            description=row.description,
            theme_code=row.theme_code,
            wijk_code=row.wijk_code,
            own_contribution=row.own_contribution,
            needs=tuple(row.needs),
            amount_cents=row.amount_cents,
            neighbours=row.neighbours,
            photo_file_id=row.photo_file_id,
            amount_max_cents=row.amount_max_cents,
            idea_voice_file_id=row.idea_voice_file_id,
            own_voice_file_id=row.own_voice_file_id,
            contact_name=row.contact_name or "—",  # empty once the initiator asked to be forgotten
            contact_phone=row.contact_phone,
            contact_email=row.contact_email,
            status=row.status,
            status_changed_at=row.status_changed_at,
            created_at=row.created_at,
            resident_user_id=row.resident_user_id,
            resident_chat_id=row.resident_chat_id,
            broker_id=row.broker_id,
            broker_name=broker_row.name if broker_row else None,
            broker_telegram_id=broker_row.telegram_user_id if broker_row else None,
            department=row.department,
            resident_unreachable=person is not None and person.unreachable_at is not None,
            question=await self._question(session, row),
            resident_language=self._language_of(person, row),
        )

    def _language_of(self, person: PersonRow | None, row: CaseRow) -> Msg | None:
        """The initiator's language as staff read it: their own choice, else their Telegram app's, else
        the language they submitted in (also when it is one the bot does not speak)."""
        if row.resident_user_id == ERASED_ID:
            return None
        code = (person.language or person.telegram_language if person is not None else None) or row.language
        return language_name(code, self._readers) if code else None

    async def _question(self, session: AsyncSession, row: CaseRow) -> QuestionFacts | None:
        """The question of the department a case waits on (its clock, or its request for information)."""
        if row.status != Status.BIJ_GEMEENTE or row.department is None:
            return None
        found = await departments_store.latest_question(session, row.id, department=row.department)
        return QuestionFacts.of(found) if found is not None else None

    async def staff_to_tell(self, session: AsyncSession, case: CaseView) -> list[int]:
        """Who hears what the initiator did: their broker, or the wijk's coordinators when it has none."""
        if case.broker_telegram_id:
            return [case.broker_telegram_id]
        return [c.telegram_user_id for c in await staff_store.coordinators_for_wijk(session, case.wijk_code)]

    async def route_new(
        self, session: AsyncSession, created: InitiativeRow, now: datetime
    ) -> list[Notification]:
        """Give a new initiative to the right broker, or tell the coordinators nobody could take it."""
        loads = await staff_store.broker_loads(session, open_statuses=OPEN)
        brokers = [
            BrokerLoad(
                b.staff_id,
                b.name,
                frozenset(b.wijken),
                frozenset(b.themes),
                b.open_cases,
                b.last_assigned_at,
                b.absent_until,
                b.reachable,
            )
            for b in loads
        ]
        routing = route(
            wijk_code=created.wijk_code,
            theme_code=created.theme_code,
            brokers=brokers,
            today=now.astimezone(AMSTERDAM).date(),
        )
        if routing.broker is None:
            case = await self.case(session, created.reference)
            assert case is not None
            coordinators = await staff_store.coordinators_for_wijk(session, created.wijk_code)
            alert = broker.unassigned_alert(case, self.context(now), routing.reason)
            if not coordinators:
                log.warning("initiative %s has no broker and there is no coordinator", created.reference)
            return [Notification(c.telegram_user_id, c.telegram_user_id, alert) for c in coordinators]
        chosen = await staff_store.staff_by_id(session, routing.broker.staff_id)
        assert chosen is not None
        return await self._assign(session, created.reference, chosen, by=None, now=now)

    async def _assign(
        self, session: AsyncSession, reference: str, to: StaffRow, *, by: StaffView | None, now: datetime
    ) -> list[Notification]:
        before = await self.case(session, reference)
        assert before is not None
        await initiatives_store.assign(
            session, before.id, broker_id=to.id, by_staff_id=by.id if by else None, note=None, now=now
        )
        if before.status == Status.INGEDIEND:
            role = Role.COORDINATOR.value if by else Role.SYSTEM.value
            await initiatives_store.change_status(
                session,
                before.id,
                status=Status.TOEGEWEZEN.value,
                now=now,
                actor_role=role,
                actor_user_id=by.telegram_user_id if by else None,
                staff_id=by.id if by else None,
                note=None,
                department=None,
            )
        after = await self.case(session, reference)
        assert after is not None
        heading = (
            t("{coordinator} assigned this initiative to you.", coordinator=by.name)
            if by
            else t("A new initiative for you.")
        )
        notes = [
            Notification(to.telegram_user_id, to.telegram_user_id, r)
            for r in broker.case_card(after, self.context(now), heading=heading, with_photo=True)
        ]
        if before.status == Status.INGEDIEND:
            notice = resident.status_notice(after, Status.TOEGEWEZEN.value, None, None, to.name)
        else:
            notice = Reply(
                t(
                    "Your initiative “{title}” has a new initiatiefmakelaar: {broker}.",
                    title=after.title,
                    broker=to.name,
                )
            )
        notes.append(Notification(after.resident_user_id, after.resident_chat_id, notice))
        if before.broker_telegram_id and before.broker_telegram_id != to.telegram_user_id:
            moved = Reply(t("{reference} now goes to {broker}.", reference=after.reference, broker=to.name))
            notes.append(Notification(before.broker_telegram_id, before.broker_telegram_id, moved))
        return notes

    async def run(
        self,
        session: AsyncSession,
        command: Command,
        out: Outcome,
        *,
        event: Event,
        staff: StaffView | None,
        case: CaseView | None,
        now: datetime,
    ) -> Outcome:
        """Carry out one case command; returns the outcome with replies and notifications added."""
        ctx = self.context(now)
        if isinstance(command, RedeemInvite):
            return _add(out, await self._redeem(session, command.code, event, now))
        if isinstance(command, ListCases):
            if staff is None:
                return _add(out, Reply(t("This command is only for staff of the municipality.")))
            if staff.is_coordinator:
                rows = await initiatives_store.unassigned_cases(session, open_statuses=OPEN)
                rows = [row for row in rows if staff.covers(row.wijk_code)]
                title = t("Initiatives without an initiatiefmakelaar:")
            else:
                rows = await initiatives_store.cases_of_broker(session, staff.id, open_statuses=OPEN)
                title = t("Your open initiatives, most urgent first:")
            views = [await self.view(session, row) for row in rows]
            if staff.is_coordinator and not views:
                return _add(out, Reply(t("Every open initiative has an initiatiefmakelaar.")))
            return _add(out, broker.case_list(views, ctx, title=title))
        if isinstance(command, RecordContactView) and staff is not None and case is not None:
            await audit.record(
                session,
                staff_id=staff.id,
                action="view_contact",
                initiative_id=case.id,
                detail="telegram",
                now=now,
            )
            return out
        if isinstance(command, OpenDashboard) and staff is not None:
            url = await self.login_url(session, staff.id, now)
            return _add(
                out,
                Reply(
                    t(
                        "Your link to the dashboard: {url}\nIt works once, within 15 minutes, and logs "
                        "you in for 8 hours. Do not share it: whoever opens it is logged in as you.",
                        url=url,
                    )
                ),
            )
        if isinstance(command, CoordinatorReport) and staff is not None and staff.is_coordinator:
            return _add(out, await self._report(session, command.kind, staff, now))
        if isinstance(command, MessageBroker):
            return await self._message_broker(session, command, out, event=event, case=case, now=now)
        if case is None:  # the flows only emit the commands below for a loaded case
            return _add(out, Reply(t("I cannot find that initiative.")))
        if isinstance(command, ShowBrokers):
            loads = await staff_store.broker_loads(session, open_statuses=OPEN)
            # Someone the bot cannot write to would never see the case.
            options = [
                BrokerOption(b.staff_id, b.name, b.open_cases, b.absent_until) for b in loads if b.reachable
            ]
            if command.purpose == "ho" and staff is not None:
                options = [o for o in options if o.staff_id != staff.id]
            return _add(out, broker.broker_menu(case, options, purpose=command.purpose, today=now))
        if isinstance(command, ShowTimeline):
            entries = await initiatives_store.timeline(session, case.id, resident_view=command.for_resident)
            items = [
                TimelineItem(
                    e.at,
                    e.kind,
                    e.status,
                    e.staff_name or e.to_staff_name if e.kind != "status" else e.staff_name,
                    e.actor_role,
                    e.note,
                    _department(self._m, e.department),
                    to_name=e.to_staff_name,
                    media_kind=e.media_kind,
                    media_name=e.media_name,
                    media_seconds=e.media_seconds,
                )
                for e in entries
            ]
            reply = broker.timeline_text(
                case, items, for_resident=command.for_resident, offset=command.offset, now=now
            )
            if command.for_resident:
                buttons = (*reply.buttons, *resident.case_buttons(case.reference, case.status))
                reply = replace(reply, buttons=buttons)
            return _add(out, reply)
        if isinstance(command, ChangeStatus):
            return await self._change_status(
                session, command, out, event=event, staff=staff, case=case, now=now
            )
        if isinstance(command, AskDepartment | ReplyToDepartment | PassOnConditions) and staff is not None:
            return await self._department_step(
                session, command, out, event=event, staff=staff, case=case, now=now
            )
        if isinstance(command, MessageResident) and staff is not None:
            if case.resident_user_id == ERASED_ID:
                gone = t("The initiator asked us to delete their data: you can no longer reach them.")
                return _add(out, Reply(gone))
            await _staff_event(session, case, staff, "message_to_resident", command.text, now)
            message = resident.message_from_broker(case, staff.name, command.text)
            sent = Reply(
                t(
                    "Sent to {name}. The message is on the timeline of {reference}.",
                    name=case.contact_name,
                    reference=case.reference,
                )
            )
            if case.resident_unreachable:
                sent = Reply(
                    t(
                        "Saved on the timeline, but {name} blocked the bot: the message does not arrive.",
                        name=case.contact_name,
                    )
                )
            return _add(
                out, sent, notify=[Notification(case.resident_user_id, case.resident_chat_id, message)]
            )
        if isinstance(command, AddNote) and staff is not None:
            await _staff_event(session, case, staff, "note", command.text, now, visible_to_resident=False)
            return out
        if isinstance(command, RemindBroker) and staff is not None and case.broker_telegram_id:
            heading = coordinator.reminder_from_coordinator(staff.name, case.reference)
            cards = broker.case_card(case, ctx, heading=heading)
            notes = [Notification(case.broker_telegram_id, case.broker_telegram_id, r) for r in cards]
            done = Reply(t("Reminder sent to {broker}.", broker=case.broker_name or ""))
            return _add(out, done, notify=notes)
        if isinstance(command, Handover | Assign) and staff is not None:
            target = await staff_store.staff_by_id(session, command.to_staff_id)
            if target is None or not target.active or target.role != StaffRole.BROKER:
                return _add(out, Reply(t("That initiatiefmakelaar cannot take initiatives (any more).")))
            if not await people_store.is_reachable(session, target.telegram_user_id):
                return _add(
                    out,
                    Reply(
                        t(
                            "The bot cannot reach {name}: they have not opened the bot yet, or they "
                            "blocked it. Choose someone else, or ask {name} to send the bot a message.",
                            name=target.name,
                        )
                    ),
                )
            if isinstance(command, Handover):
                return await self._handover(session, command, out, staff=staff, case=case, to=target, now=now)
            notes = await self._assign(session, case.reference, target, by=staff, now=now)
            done = Reply(
                t("{reference} is assigned to {broker}.", reference=case.reference, broker=target.name)
            )
            return _add(out, done, notify=notes)
        raise TypeError(f"cannot carry out {command!r}")

    async def talk(self, session: AsyncSession, event: Event, now: datetime) -> messages.Talk:
        """What routing a resident's message needs: the case of the bot's message they swiped to answer
        (if it is theirs), else their open and just ended cases with the newest thing said about each."""
        if event.reply_to_message_id is not None:
            payload = await messages_store.sent_payload(session, event.chat_id, event.reply_to_message_id)
            reference = _case_of_message(payload)
            if reference is not None:
                row = await initiatives_store.load_case(session, reference)
                if row is not None and row.resident_user_id == event.user_id:
                    return messages.Talk(answered=reference)
        rows = await messages_store.resident_cases(
            session, event.user_id, open_statuses=OPEN, ended_since=now - messages.ENDED_RECENTLY
        )
        cases = tuple(
            messages.ResidentCase(
                r.reference, r.title, r.broker_name, r.status in OPEN, r.last_at, r.last_kind
            )
            for r in rows
        )
        return messages.Talk(cases)

    async def _message_broker(
        self,
        session: AsyncSession,
        command: MessageBroker,
        out: Outcome,
        *,
        event: Event,
        case: CaseView | None,
        now: datetime,
    ) -> Outcome:
        """A resident's message (and its photo, voice note or document) on the timeline and to their
        broker, or to the wijk's coordinators while the case has none."""
        if case is None or case.reference != command.reference:
            case = await self.case(session, command.reference)
        if case is None or case.resident_user_id != event.user_id:
            return _add(out, Reply(t("I cannot find that initiative.")))
        attachment = command.attachment
        await initiatives_store.add_event(
            session,
            case.id,
            kind="message_from_resident",
            now=now,
            actor_role="resident",
            actor_user_id=event.user_id,
            note=command.text or None,
            media=MediaFields(attachment.kind, attachment.file_id, attachment.name, attachment.seconds)
            if attachment is not None
            else None,
        )
        head = t(
            "Message from {name} about {reference} · {title}:",
            name=isolate(case.contact_name),
            reference=case.reference,
            title=isolate(case.title),
        )
        buttons = (
            (
                Button(t("Reply"), case_button(STAFF_PREFIX, case.reference, "msg")),
                Button(t("Open"), case_button(STAFF_PREFIX, case.reference, "open")),
            ),
        )
        relayed = Reply(
            head,
            extra=(verbatim(isolate(command.text)),) if command.text else (),
            buttons=buttons,
            photo_file_id=_file_of(attachment, "photo"),
            voice_file_id=_file_of(attachment, "voice"),
            document_file_id=_file_of(attachment, "document"),
        )
        if case.broker_telegram_id:
            targets = [case.broker_telegram_id]
        else:
            targets = [
                c.telegram_user_id for c in await staff_store.coordinators_for_wijk(session, case.wijk_code)
            ]
        done = messages.sent_to(case.broker_name if case.broker_telegram_id else None, bool(targets))
        # Several kept messages sent at once are confirmed once.
        confirm = () if out.replies and out.replies[-1] == done else (done,)
        return _add(out, *confirm, notify=[Notification(u, u, relayed) for u in targets])

    async def _change_status(
        self,
        session: AsyncSession,
        command: ChangeStatus,
        out: Outcome,
        *,
        event: Event,
        staff: StaffView | None,
        case: CaseView,
        now: datetime,
    ) -> Outcome:
        # Checked again here, on the locked row: the flow saw the same row, so this only guards mistakes.
        actor = (
            broker.actor_for(staff, case)
            if staff is not None and not command.by_resident
            else lifecycle.Actor(Role.RESIDENT, is_initiator=event.user_id == case.resident_user_id)
        )
        verdict = lifecycle.check_transition(
            case.status, command.target, actor, note=command.note, department=command.department
        )
        if isinstance(verdict, lifecycle.Refused):
            return _add(out, Reply(verdict.reason))
        if case.status == Status.BIJ_GEMEENTE:
            await self.desk.withdraw(session, case, now)
        await initiatives_store.change_status(
            session,
            case.id,
            status=command.target,
            now=now,
            actor_role=actor.role.value,
            actor_user_id=event.user_id,
            staff_id=staff.id if staff and not command.by_resident else None,
            note=command.note,
            department=command.department,
        )
        mailed: int | None = None
        if command.target == Status.BIJ_GEMEENTE and command.department is not None:
            # The question names the case by what the status change leaves as it was (title, wijk, broker).
            mailed = await self.desk.ask(
                session,
                case,
                department=command.department,
                question=command.note or "",
                staff_id=staff.id if staff else None,
                now=now,
            )
        after = await self.case(session, case.reference)  # with its new status and question's clock
        assert after is not None
        department = _department(self._m, command.department)
        notes: list[Notification] = []
        if command.by_resident:
            done = Reply(
                t("Your initiative “{title}” is stopped. Thank you for letting us know.", title=case.title)
            )
            told = Reply(
                t(
                    "{name} stopped {reference} · {title}. The reason: {note}",
                    name=case.contact_name,
                    reference=case.reference,
                    title=case.title,
                    note=command.note or "",
                )
            )
            targets = await self.staff_to_tell(session, case)
            notes.extend(Notification(u, u, told) for u in targets)
            return _add(out, done, notify=notes)
        notice = resident.status_notice(after, command.target, command.note, department, case.broker_name)
        notes.append(Notification(case.resident_user_id, case.resident_chat_id, notice))
        if staff is not None and staff.id != case.broker_id and case.broker_telegram_id:
            told = Reply(
                t(
                    "{coordinator} changed the status of {reference} to {status}.",
                    coordinator=staff.name,
                    reference=case.reference,
                    status=lifecycle.staff_label(command.target),
                )
            )
            notes.append(Notification(case.broker_telegram_id, case.broker_telegram_id, told))
        heading = t("Status changed. The initiator has been told.")
        if case.resident_unreachable:
            heading = t("Status changed, but the initiator blocked the bot: they will not hear it.")
        cards = broker.case_card(after, self.context(now), heading=heading)
        if mailed is not None:
            cards = (*cards, Reply(department_sent(department or "", mailed)))
        return _add(out, *cards, notify=notes)

    async def _department_step(
        self,
        session: AsyncSession,
        command: AskDepartment | ReplyToDepartment | PassOnConditions,
        out: Outcome,
        *,
        event: Event,
        staff: StaffView,
        case: CaseView,
        now: datetime,
    ) -> Outcome:
        """A broker's next step after a department's answer: ask again, answer their question, or go
        back to the plan with the department's conditions passed on to the initiator."""
        if case.status != Status.BIJ_GEMEENTE or case.department is None:
            return _add(out, Reply(t("This initiative is no longer waiting on a department.")))
        department = _department(self._m, case.department) or ""
        if isinstance(command, AskDepartment):
            mailed = await self.desk.ask_again(
                session, case, staff_id=staff.id, question=command.question, now=now
            )
            return _add(out, Reply(department_sent(department, mailed)))
        if isinstance(command, ReplyToDepartment):
            mailed_reply = await self.desk.reply(session, case, staff_id=staff.id, text=command.text, now=now)
            if mailed_reply is None:
                return _add(
                    out,
                    Reply(t("{department} is not waiting for an answer from you.", department=department)),
                )
            return _add(out, Reply(department_sent(department, mailed_reply)))
        conditions = await self.desk.conditions(session, case)
        if conditions is None:
            return _add(out, Reply(t("{department} set no conditions.", department=department)))
        name, text = conditions
        # The broker passes the department's words on: the note reaches the initiator with the status.
        note = f"{name}: {text}"
        change = ChangeStatus(case.reference, Status.PLAN_IN_UITWERKING.value, note, None)
        return await self._change_status(session, change, out, event=event, staff=staff, case=case, now=now)

    async def _handover(
        self,
        session: AsyncSession,
        command: Handover,
        out: Outcome,
        *,
        staff: StaffView,
        case: CaseView,
        to: StaffRow,
        now: datetime,
    ) -> Outcome:
        await initiatives_store.assign(
            session,
            case.id,
            broker_id=to.id,
            by_staff_id=staff.id,
            note=command.note,
            kind="handover",
            now=now,
            visible_to_resident=False,
        )
        after = await self.case(session, case.reference)
        assert after is not None
        heading = t("{name} handed this initiative over to you.", name=staff.name)
        cards = broker.case_card(after, self.context(now), heading=heading, with_photo=True)
        if command.note:
            cards = (*cards, Reply(t("Note from {name}: {note}", name=staff.name, note=command.note)))
        notes = [Notification(to.telegram_user_id, to.telegram_user_id, r) for r in cards]
        told = Reply(
            t(
                "Your initiative “{title}” has a new initiatiefmakelaar: {broker}.",
                title=case.title,
                broker=to.name,
            )
        )
        notes.append(Notification(case.resident_user_id, case.resident_chat_id, told))
        done = Reply(t("{reference} is now with {broker}.", reference=case.reference, broker=to.name))
        return _add(out, done, notify=notes)

    async def _report(self, session: AsyncSession, kind: str, staff: StaffView, now: datetime) -> Reply:
        if kind == "makelaars":
            loads = await staff_store.broker_loads(session, open_statuses=OPEN)
            options = [BrokerOption(b.staff_id, b.name, b.open_cases, b.absent_until) for b in loads]
            return coordinator.brokers(options, {b.staff_id: b.wijken for b in loads}, self._m, now)
        statuses = None if kind == "overzicht" else OPEN
        lines = [
            coordinator.CaseLine.of(row) for row in await reports.overview_rows(session, statuses=statuses)
        ]
        if kind == "overzicht":
            return coordinator.overview(lines, self._m, now)
        # The lists with buttons: only the initiatives this coordinator may act on.
        lines = [line for line in lines if staff.covers(line.wijk_code)]
        if kind == "vastgelopen":
            return coordinator.stalled(lines, self._m, now)
        return coordinator.unassigned(lines, self._m, now)

    async def _redeem(self, session: AsyncSession, code: str, event: Event, now: datetime) -> Reply:
        row = await staff_store.redeem_invite(session, code, telegram_user_id=event.user_id, now=now)
        if row is None:
            log.warning("invite refused for user %s", self._pseudonym(event.user_id))
            return Reply(t("This invitation does not work (any more). Ask the coordinator for a new one."))
        wijken = ", ".join(w.name for code_ in row.wijken if (w := self._m.wijk(code_))) or "—"
        if row.role == StaffRole.COORDINATOR:
            text = t(
                "Welcome, {name}! You are now a coordinator. "
                "Use /zaken to see initiatives without an initiatiefmakelaar.",
                name=row.name,
            )
        else:
            text = t(
                "Welcome, {name}! You are now an initiatiefmakelaar for: {wijken}. "
                "Use /zaken to see your initiatives.",
                name=row.name,
                wijken=wijken,
            )
        return Reply(text)


async def _staff_event(
    session: AsyncSession,
    case: CaseView,
    staff: StaffView,
    kind: str,
    text: str,
    now: datetime,
    *,
    visible_to_resident: bool = True,
) -> None:
    """A broker's or coordinator's action on the timeline; it also restarts the no-sign-of-life clock."""
    await initiatives_store.add_event(
        session,
        case.id,
        kind=kind,
        now=now,
        actor_role=staff.role.value,
        actor_user_id=staff.telegram_user_id,
        staff_id=staff.id,
        note=text,
        visible_to_resident=visible_to_resident,
        touch_broker_action=True,
    )


def _file_of(attachment: messages.Attachment | None, kind: str) -> str | None:
    return attachment.file_id if attachment is not None and attachment.kind == kind else None


def _case_of_message(payload: dict[str, Any] | None) -> str | None:
    """The case a bot message in a resident's chat was about: the one its resident buttons point at
    (a broker's message, a status notice, a timeline), when they point at exactly one."""
    markup = (payload or {}).get("reply_markup")
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    references = {
        parsed[1].upper()
        for row in rows or ()
        if isinstance(row, list)
        for button in row
        if isinstance(button, dict)
        and (parsed := parse_case_button(str(button.get("callback_data") or ""))) is not None
        and parsed[0] == RESIDENT_PREFIX
    }
    return references.pop() if len(references) == 1 else None


def _department(m: Municipality, code: str | None) -> str | None:
    if code is None:
        return None
    department = m.department(code)
    return department.name if department else code


def _add(out: Outcome, *replies: Reply, notify: list[Notification] | None = None) -> Outcome:
    return replace(out, replies=(*out.replies, *replies), notifications=(*out.notifications, *(notify or ())))
