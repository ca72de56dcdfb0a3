"""Department work inside a transaction: questions to departments by e-mail with personal links, their
answers from the web page, forwarding, the broker's replies, and the links' end.

The rules (which answers exist, the clock, what everybody hears) are in ``flows.department``; this module
loads and writes what they need and queues the e-mails and Telegram messages.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import mail
from bot.i18n import Translator
from flows import department as rules
from flows.cases import CaseView, Notification
from flows.department import (
    DEPARTMENT_EVENT,
    Answer,
    AnswerKind,
    QuestionFacts,
    QuestionState,
)
from flows.events import Reply
from flows.lifecycle import Role, Status
from flows.municipality import Contact, Municipality
from flows.stalls import AMSTERDAM, due_at, working_days_between
from flows.text import Msg, t, verbatim
from storage import departments as store
from storage import initiatives as initiatives_store
from storage import staff as staff_store
from storage.departments import LinkRow, MessageRow, QuestionRow
from storage.deployment import secret_in
from storage.initiatives import CaseRow
from storage.mail_outbox import MailRow, NewMail

LINK_KEY_NAME = "department_link_key"
# The answer page's path; the token follows.
LINK_PATH = "/afdeling/"
# The timeline's actor role of a department's answer.
DEPARTMENT_ROLE = "department"
# Department e-mails and the answer page are in Dutch.
MAIL_LANGUAGE = "nl"


@dataclass(frozen=True, slots=True)
class Opened:
    """A valid link: whose it is, the case, the department's current question and the whole history."""

    link: LinkRow
    case: CaseView
    question: QuestionRow | None
    history: tuple[tuple[QuestionRow, tuple[MessageRow, ...]], ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a link does not open: "unknown" (no such link), "revoked", or "moved_on" (the case left the
    department)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Answered:
    """What an answer led to: the question as it is now, and the Telegram messages to queue."""

    question: QuestionRow
    notifications: tuple[Notification, ...]


class DepartmentDesk:
    """Department work for one municipality."""

    def __init__(
        self,
        municipality: Municipality,
        translator: Translator | None,
        *,
        web_url: str,
        view: Callable[[AsyncSession, CaseRow], Awaitable[CaseView]],
    ) -> None:
        self._m = municipality
        self._tr = translator
        self._web_url = web_url.rstrip("/")
        self.view = view  # a case row as the flows see it (``Casework.view``)
        self._key: bytes | None = None

    # -- links -----------------------------------------------------------------------------------

    async def key(self, session: AsyncSession) -> bytes:
        """The deployment's key for link tokens, made on first use and shared by every worker."""
        if self._key is None:
            value = await secret_in(session, LINK_KEY_NAME, lambda: secrets.token_hex(32))
            self._key = bytes.fromhex(value)
        return self._key

    def url(self, key: bytes, link: LinkRow) -> str:
        return f"{self._web_url}{LINK_PATH}{rules.link_token(key, link.id, link.salt)}"

    async def recipients(self, session: AsyncSession, department: str) -> tuple[Contact, ...]:
        """The department's contacts: the config's and those added with ``staff add --role department``."""
        found = self._m.department(department)
        added = tuple(Contact(c.name, c.email) for c in await store.contacts(session, department))
        if found is None:
            return added
        return rules.recipients(found, added)

    async def link_url(
        self, session: AsyncSession, *, initiative_id: int, department: str, contact: Contact, now: datetime
    ) -> str:
        """The contact's personal link to the case (the one they already have while it is valid)."""
        link = await store.link_for(
            session,
            initiative_id=initiative_id,
            department=department,
            name=contact.name,
            email=contact.email,
            now=now,
        )
        return self.url(await self.key(session), link)

    async def open_link(self, session: AsyncSession, token: str, now: datetime) -> Opened | Refused:
        """The page behind a token, if the link is still valid."""
        link_id = rules.token_id(token)
        link = await store.link(session, link_id) if link_id is not None else None
        if link is None or not rules.token_matches(await self.key(session), token, link.salt):
            return Refused("unknown")
        if link.revoked_at is not None:
            return Refused("moved_on" if link.revoked_reason == "left_department" else "revoked")
        row = await initiatives_store.load_case_by_id(session, link.initiative_id)
        if row is None:
            return Refused("unknown")
        if row.status != Status.BIJ_GEMEENTE or row.department != link.department:
            return Refused("moved_on")
        await store.touch_link(session, link.id, now)
        questions = await store.questions_of(session, row.id)
        threads = await store.messages_of(session, [q.id for q in questions])
        mine = [q for q in questions if q.department == link.department]
        current = next(
            (q for q in reversed(mine) if q.state in rules.ACTIVE_STATES), mine[-1] if mine else None
        )
        history = tuple((q, tuple(threads[q.id])) for q in questions)
        return Opened(link, await self.view(session, row), current, history)

    # -- asking ----------------------------------------------------------------------------------

    async def ask(
        self,
        session: AsyncSession,
        case: CaseView,
        *,
        department: str,
        question: str,
        staff_id: int | None,
        now: datetime,
        forwarded_from: QuestionRow | None = None,
    ) -> int:
        """Put ``question`` to the department and e-mail its contacts; returns how many were e-mailed."""
        row = await store.ask(
            session,
            initiative_id=case.id,
            department=department,
            question=question,
            staff_id=staff_id,
            now=now,
            forwarded_from_id=forwarded_from.id if forwarded_from else None,
        )
        contacts = await self.recipients(session, department)
        mails = []
        for contact in contacts:
            url = await self.link_url(
                session, initiative_id=case.id, department=department, contact=contact, now=now
            )
            mails.append(self._question_mail(case, row, contact, url, forwarded_from))
        await mail.queue(session, mails, self._m, now)
        return len(contacts)

    def _question_mail(
        self,
        case: CaseView,
        question: QuestionRow,
        contact: Contact,
        url: str,
        forwarded_from: QuestionRow | None,
    ) -> NewMail:
        name = self._department_name(question.department)
        norm = rules.department_norm(self._m, question.department)
        due = due_at(question.clock_started_at, norm, self._m.closing_days).astimezone(AMSTERDAM).date()
        lines: list[Msg] = [t("Dear {name},", name=contact.name)]
        if forwarded_from is not None:
            lines.append(
                t(
                    "{department} says this question is for you, and passed it on.",
                    department=self._department_name(forwarded_from.department),
                )
            )
        lines += [
            t(
                "{broker} (initiatiefmakelaar) has a question for {department}:",
                broker=case.broker_name or t("The initiatiefmakelaar"),
                department=name,
            ),
            verbatim(f"“{question.question}”"),
            self._about(case),
            t("Please answer through your personal link. There you also see the whole idea:"),
            verbatim(url),
            t(
                "You can answer: yes / yes, under conditions / no / we need more information / this is "
                "not for us. We ask for an answer within {days} working days, by {day}.",
                days=norm,
                day=due,
            ),
            _LINK_NOTE,
            self._signature(),
        ]
        subject = t(
            "Question about initiative {reference}: {title}", reference=case.reference, title=case.title
        )
        return self._mail(contact, subject, lines, "question", case.id)

    def _about(self, case: CaseView) -> Msg:
        wijk = self._m.wijk(case.wijk_code) if case.wijk_code else None
        return t(
            "It is about the residents' initiative “{title}” ({reference}) in {wijk}.",
            title=case.title,
            reference=case.reference,
            wijk=wijk.name if wijk else self._m.name,
        )

    def _signature(self) -> Msg:
        sender = self._m.mail_from_name or t(
            "Residents' initiatives {municipality}", municipality=self._m.name
        )
        return t("Kind regards,\n{sender}", sender=sender)

    def _department_name(self, code: str) -> str:
        found = self._m.department(code)
        return found.name if found else code

    def _render(self, msg: Msg) -> str:
        if self._tr is None:  # tests without catalogs
            return msg.msgid.format(**{k: v for k, v in msg.params.items()})
        return self._tr.render(msg, MAIL_LANGUAGE)

    def _mail(
        self, contact: Contact, subject: Msg, lines: Sequence[Msg], kind: str, initiative_id: int
    ) -> NewMail:
        body = "\n\n".join(self._render(line) for line in lines) + "\n"
        return NewMail(contact.email, contact.name, self._render(subject), body, kind, initiative_id)

    async def mail_contacts(
        self,
        session: AsyncSession,
        case: CaseView,
        department: str,
        *,
        subject: Msg,
        lines: Callable[[Contact, str], Sequence[Msg]],
        kind: str,
        now: datetime,
        to: Sequence[Contact] | None = None,
    ) -> int:
        """E-mail the department's contacts (or ``to``), each with their own link; ``lines`` writes the
        body for a contact and their link. Returns how many were e-mailed."""
        contacts = tuple(to) if to is not None else await self.recipients(session, department)
        mails = []
        for contact in contacts:
            url = await self.link_url(
                session, initiative_id=case.id, department=department, contact=contact, now=now
            )
            mails.append(self._mail(contact, subject, lines(contact, url), kind, case.id))
        await mail.queue(session, mails, self._m, now)
        return len(contacts)

    async def withdraw(self, session: AsyncSession, case: CaseView, now: datetime) -> None:
        """The case left the department: its questions end, its links stop working, and a department
        that had not answered yet hears it need not."""
        withdrawn = await store.withdraw_active(session, case.id, now=now)
        await store.revoke_links(session, case.id, now=now, reason="left_department")
        for question in withdrawn:
            if question.state != QuestionState.OPEN:
                continue
            contacts = await self.recipients(session, question.department)
            lines = [
                t(
                    "The question about initiative {reference} (“{title}”) is no longer needed: the "
                    "initiatiefmakelaar has moved the initiative on. You do not have to answer it, and the "
                    "link in the earlier e-mail no longer works.",
                    reference=case.reference,
                    title=case.title,
                ),
                self._signature(),
            ]
            subject = t("No longer needed: question about {reference}", reference=case.reference)
            mails = [
                self._mail(c, subject, [t("Dear {name},", name=c.name), *lines], "withdrawn", case.id)
                for c in contacts
            ]
            await mail.queue(session, mails, self._m, now)

    async def ask_again(
        self, session: AsyncSession, case: CaseView, *, staff_id: int | None, question: str, now: datetime
    ) -> int:
        """A new question to the department the case waits on; an unanswered one before it ends."""
        assert case.department is not None
        await store.withdraw_active(session, case.id, now=now)
        await self._event(session, case, f"{DEPARTMENT_EVENT}{rules.ASKED_AGAIN}", question, now, staff_id)
        return await self.ask(
            session, case, department=case.department, question=question, staff_id=staff_id, now=now
        )

    async def reply(
        self, session: AsyncSession, case: CaseView, *, staff_id: int | None, text: str, now: datetime
    ) -> int | None:
        """The broker's answer to the department's request for information: e-mailed with the same
        links, and the department's clock starts again. None when no request waits."""
        question = await store.active_question(session, case.id, department=case.department, lock=True)
        if question is None or question.state != QuestionState.INFO:
            return None
        await store.add_message(
            session,
            question.id,
            author="broker",
            author_name=case.broker_name or "",
            kind=rules.BROKER_REPLY,
            text=text,
            now=now,
        )
        await store.update_question(
            session, question.id, state=QuestionState.OPEN.value, clock_started_at=now, next_alert_at=now
        )
        await self._event(session, case, f"{DEPARTMENT_EVENT}{rules.BROKER_REPLY}", text, now, staff_id)
        name = self._department_name(question.department)

        def lines(contact: Contact, url: str) -> list[Msg]:
            return [
                t("Dear {name},", name=contact.name),
                t(
                    "{broker} answered the question {department} asked about this initiative:",
                    broker=case.broker_name or t("The initiatiefmakelaar"),
                    department=name,
                ),
                verbatim(f"“{text}”"),
                self._about(case),
                t("You can give your answer through the same personal link:"),
                verbatim(url),
                _LINK_NOTE,
                self._signature(),
            ]

        subject = t(
            "Answer to your question about {reference}: {title}", reference=case.reference, title=case.title
        )
        return await self.mail_contacts(
            session, case, question.department, subject=subject, lines=lines, kind="reply", now=now
        )

    async def conditions(self, session: AsyncSession, case: CaseView) -> tuple[str, str] | None:
        """The department's name and conditions from its newest answer "yes, under conditions"."""
        latest = await store.latest_question(session, case.id, department=case.department)
        if latest is None or latest.answer_kind != AnswerKind.CONDITIONS or not latest.answer_text:
            return None
        return self._department_name(latest.department), latest.answer_text

    async def undeliverable(self, session: AsyncSession, mail: MailRow, reason: str) -> list[Notification]:
        """What the case's broker (or, without one, its coordinators) hears when a mail about it could
        not be delivered: the department may never have seen the question."""
        row = (
            await initiatives_store.load_case_by_id(session, mail.initiative_id)
            if mail.initiative_id
            else None
        )
        if row is None:
            return []
        case = await self.view(session, row)
        notice = Reply(
            t(
                "The e-mail to {address} about {reference} could not be delivered ({reason}), so they did "
                "not get it. Ask them another way, or have the address checked (initiatiefbot staff list).",
                address=mail.to_address,
                reference=case.reference,
                reason=reason[:200],
            )
        )
        return [Notification(user, user, notice) for user in await self._staff_of(session, case)]

    async def _staff_of(self, session: AsyncSession, case: CaseView) -> list[int]:
        """Who hears of the case's department work: its broker, else the wijk's coordinators."""
        if case.broker_telegram_id is not None:
            return [case.broker_telegram_id]
        return [c.telegram_user_id for c in await staff_store.coordinators_for_wijk(session, case.wijk_code)]

    # -- answers ---------------------------------------------------------------------------------

    async def answer(
        self, session: AsyncSession, opened: Opened, answer: Answer, now: datetime
    ) -> Answered | None:
        """Record a department's answer and tell the broker (in full) and the initiator (one sentence).
        None when the question was answered already (or none is open)."""
        question = opened.question
        if question is None:
            return None
        question = await store.question(session, question.id, lock=True)
        if question is None or question.state not in rules.ACTIVE_STATES:
            return None
        case = opened.case
        link = opened.link
        await store.add_message(
            session,
            question.id,
            author="department",
            author_name=answer.name or link.name,
            author_email=link.email,
            kind=answer.kind.value,
            text=answer.text,
            blocked_by=answer.blocked_by.value if answer.blocked_by else None,
            promised_on=answer.promised_on,
            forward_to=answer.forward_to,
            now=now,
        )
        standing = rules.standing(QuestionFacts.of(question), self._m, now)
        within = standing is None or standing.level is None
        days = working_days_between(question.asked_at, now, self._m.closing_days)
        name = self._department_name(question.department)
        forwarded_name: str | None = None
        mailed = 0
        if answer.kind in rules.FINAL_KINDS:
            await store.update_question(
                session,
                question.id,
                state=QuestionState.ANSWERED.value,
                answer_kind=answer.kind.value,
                answer_text=answer.text,
                blocked_by=answer.blocked_by.value if answer.blocked_by else None,
                answered_at=now,
                answer_working_days=days,
                answered_within_norm=within,
                next_alert_at=None,
                closed_at=now,
            )
        elif answer.kind is AnswerKind.INFO:
            await store.update_question(
                session,
                question.id,
                state=QuestionState.INFO.value,
                promised_on=answer.promised_on,
                next_alert_at=None,
            )
        else:
            assert answer.forward_to is not None
            forwarded_name = self._department_name(answer.forward_to)
            await store.update_question(
                session,
                question.id,
                state=QuestionState.FORWARDED.value,
                answer_kind=answer.kind.value,
                answer_text=answer.text,
                forwarded_to=answer.forward_to,
                answered_at=now,
                answer_working_days=days,
                answered_within_norm=within,
                next_alert_at=None,
                closed_at=now,
            )
        await self._event(
            session, case, f"{DEPARTMENT_EVENT}{answer.kind.value}", answer.text or "", now, None
        )
        if answer.kind is AnswerKind.NOT_OURS and answer.forward_to is not None:
            await store.revoke_links(
                session, case.id, now=now, reason="left_department", department=question.department
            )
            await initiatives_store.change_department(session, case.id, department=answer.forward_to, now=now)
            moved = await initiatives_store.load_case_by_id(session, case.id)
            assert moved is not None
            case = await self.view(session, moved)
            mailed = await self.ask(
                session,
                case,
                department=answer.forward_to,
                question=question.question,
                staff_id=question.asked_by_staff_id,
                now=now,
                forwarded_from=question,
            )
        notes = await self._tell(session, case, name, answer, forwarded_name, mailed)
        after = await store.question(session, question.id)
        assert after is not None
        return Answered(after, tuple(notes))

    async def _tell(
        self,
        session: AsyncSession,
        case: CaseView,
        department: str,
        answer: Answer,
        forwarded: str | None,
        mailed: int,
    ) -> list[Notification]:
        notice = rules.answer_notice(
            case.reference, case.title, department, answer, forwarded_to=forwarded, mailed=mailed
        )
        notes = [Notification(user, user, notice) for user in await self._staff_of(session, case)]
        if answer.kind is not AnswerKind.NOT_OURS:
            sentence = Reply(rules.resident_sentence(department, case.broker_name))
            notes.append(Notification(case.resident_user_id, case.resident_chat_id, sentence))
        return notes

    async def _event(
        self, session: AsyncSession, case: CaseView, kind: str, note: str, now: datetime, staff_id: int | None
    ) -> None:
        await initiatives_store.add_event(
            session,
            case.id,
            kind=kind,
            now=now,
            actor_role=Role.BROKER.value if staff_id is not None else DEPARTMENT_ROLE,
            staff_id=staff_id,
            note=note,
            department=case.department,
            visible_to_resident=False,
            touch_broker_action=staff_id is not None,
        )


_LINK_NOTE = t(
    "This link is for you alone and works as long as the initiative is with your department. "
    "Please do not pass it on. This e-mail does not show the residents' contact details: the "
    "initiatiefmakelaar keeps in touch with them."
)
