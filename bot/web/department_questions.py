"""Questions to departments with their threads, as the pages show them: on a department's answer page
(every department's questions about the case) and in the staff case page's section "Afdelingen", which
also lists the case's personal links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flows import department as rules
from flows.coordinator import standing_text
from flows.department import QuestionFacts, QuestionState
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, due_at
from flows.text import Msg, t
from storage import departments as store
from storage.departments import LinkRow, MessageRow, QuestionRow
from storage.initiatives import CaseRow


@dataclass(frozen=True)
class ThreadLine:
    """One message in a question's thread, in the page's words."""

    at: datetime
    who: str
    what: Msg
    text: str | None
    details: tuple[Msg, ...]
    from_broker: bool


@dataclass(frozen=True)
class QuestionView:
    question: QuestionRow
    department: str
    asked_by: str
    thread: tuple[ThreadLine, ...]
    due: date | None  # the answer-by date while the department's clock runs
    status: Msg  # where the question stands, in a sentence

    @property
    def state(self) -> str:
        return self.question.state


def department_name(m: Municipality, code: str | None) -> str:
    found = m.department(code) if code else None
    return found.name if found else (code or "")


def thread_lines(m: Municipality, messages: Sequence[MessageRow]) -> tuple[ThreadLine, ...]:
    """A question's thread: the department's answers and the broker's replies, oldest first."""
    lines = []
    for message in messages:
        details: list[Msg] = []
        blocker = rules.blocked_label(message.blocked_by)
        if blocker is not None:
            details.append(t("What blocks it: {blocker}", blocker=blocker))
        if message.promised_on is not None:
            details.append(t("Expected decision: {day}", day=message.promised_on))
        if message.forward_to:
            details.append(t("Passed on to {department}", department=department_name(m, message.forward_to)))
        from_broker = message.author == "broker"
        what = t("Answer from the initiatiefmakelaar") if from_broker else rules.answer_label(message.kind)
        lines.append(
            ThreadLine(message.at, message.author_name, what, message.text, tuple(details), from_broker)
        )
    return tuple(lines)


def state_text(m: Municipality, question: QuestionRow) -> Msg:
    """Where a question stands, for the department and for staff."""
    state = question.state
    if state == QuestionState.OPEN:
        return t("Waiting for the department's answer.")
    if state == QuestionState.INFO:
        return t("The department asked for more information: waiting for the initiatiefmakelaar's answer.")
    if state == QuestionState.FORWARDED:
        return t(
            "Not for this department: passed on to {department}.",
            department=department_name(m, question.forwarded_to),
        )
    if state == QuestionState.WITHDRAWN:
        return t("Withdrawn: the initiative left the department before an answer.")
    return t("Answered: {answer}.", answer=rules.answer_label(question.answer_kind or ""))


def answer_due(m: Municipality, question: QuestionRow) -> date | None:
    """The day the department's clock asks an answer by, while it runs."""
    running = rules.clock(QuestionFacts.of(question), m)
    if running is None:
        return None
    return due_at(running.started_at, running.norm, m.closing_days).astimezone(AMSTERDAM).date()


async def question_views(
    session: AsyncSession,
    m: Municipality,
    history: Sequence[tuple[QuestionRow, Sequence[MessageRow]]],
    *,
    broker_name: str | None,
) -> list[QuestionView]:
    """The case's questions to departments with their threads, oldest first."""
    asked_by = await store.staff_names(
        session, {q.asked_by_staff_id for q, _ in history if q.asked_by_staff_id is not None}
    )
    return [
        QuestionView(
            q,
            department_name(m, q.department),
            asked_by.get(q.asked_by_staff_id or 0) or broker_name or "",
            thread_lines(m, messages),
            answer_due(m, q),
            state_text(m, q),
        )
        for q, messages in history
    ]


def _revoked_text(link: LinkRow, names: dict[int, str]) -> Msg | None:
    if link.revoked_at is None:
        return None
    if link.revoked_reason == "staff":
        who = names.get(link.revoked_by_staff_id or 0)
        return t("revoked by {name}", name=who) if who else t("revoked by staff")
    if link.revoked_reason == "contact_removed":
        return t("revoked: the contact was removed")
    return t("ended: the initiative left the department")


async def department_section(
    session: AsyncSession, m: Municipality, case: CaseRow, broker_name: str | None, now: datetime
) -> dict[str, Any]:
    """The staff case page's departments: each question with its thread and, while the department's
    clock runs, where it stands; and every personal link of the case, newest first."""
    questions = await store.questions_of(session, case.id)
    threads = await store.messages_of(session, [q.id for q in questions])
    history = [(q, threads[q.id]) for q in questions]
    views = await question_views(session, m, history, broker_name=broker_name)
    links = await store.links_of(session, case.id)
    names = await store.staff_names(
        session, {link.revoked_by_staff_id for link in links if link.revoked_by_staff_id is not None}
    )
    items = []
    for view in reversed(views):
        standing = rules.standing(QuestionFacts.of(view.question), m, now)
        items.append(
            {
                "view": view,
                "days": standing.days if standing else None,
                "norm": standing.norm if standing else None,
                "over": standing_text(standing) if standing and standing.level is not None else None,
            }
        )
    return {
        "questions": items,
        # The question whose clock runs now (the case waits on that department), for "who is responsible".
        "running": next((item for item in items if item["days"] is not None), None),
        "links": [
            {
                "link": link,
                "department": department_name(m, link.department),
                "ended": _revoked_text(link, names),
            }
            for link in links
        ],
    }
