"""Departments as participants: the answers they can give, their clock, and their personal links.

A broker's question to a department waits on that department ("open") until it answers. A final answer
(ja, ja onder voorwaarden, nee) ends it; "meer informatie nodig" hands it to the broker ("info") until the
broker replies, which starts the department's clock again; "niet voor ons" forwards it to another
department, which gets the same question as a new one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from flows.cases import STAFF_PREFIX, QuestionFacts, case_button
from flows.events import Button, Reply
from flows.lifecycle import Status
from flows.municipality import Contact, Department, Municipality
from flows.stalls import (
    AMSTERDAM,
    AlertKey,
    DueAlert,
    StallClock,
    Standing,
    Track,
    clock_standing,
    clock_steps,
    norm_for,
    working_days_between,
)
from flows.text import Msg, t, tn

# Longest texts on the answer form; the page says so beside each field.
MAX_ANSWER = 4000
MAX_QUESTION = 4000
# A promised decision date may lie at most this far ahead.
MAX_PROMISE = timedelta(days=366)


class AnswerKind(StrEnum):
    """The five answers a department can give."""

    YES = "ja"
    CONDITIONS = "voorwaarden"
    NO = "nee"
    INFO = "informatie"
    NOT_OURS = "niet_voor_ons"


FINAL_KINDS = frozenset({AnswerKind.YES, AnswerKind.CONDITIONS, AnswerKind.NO})
# The broker's reply to a department's request for information, in the question's thread.
BROKER_REPLY = "antwoord"


class BlockedBy(StrEnum):
    """What blocks a "nee", when it is not the idea itself: it goes on the coordinators' blocker list."""

    RULE = "regel"
    MANDATE = "mandaat"


class QuestionState(StrEnum):
    OPEN = "open"  # the department is to answer: its clock runs
    INFO = "info"  # the department asked the broker something
    ANSWERED = "answered"
    FORWARDED = "forwarded"
    WITHDRAWN = "withdrawn"  # the case left the department before an answer


ACTIVE_STATES = frozenset({QuestionState.OPEN, QuestionState.INFO})


def answer_label(kind: str) -> Msg:
    """The answer as the form's button and the timeline call it."""
    labels = {
        AnswerKind.YES: t("Yes, that is possible"),
        AnswerKind.CONDITIONS: t("Yes, under conditions"),
        AnswerKind.NO: t("No"),
        AnswerKind.INFO: t("We need more information"),
        AnswerKind.NOT_OURS: t("This is not for us"),
    }
    try:
        return labels[AnswerKind(kind)]
    except ValueError:  # not an answer kind (``kind in AnswerKind`` raises TypeError on Python 3.11)
        return t("Answer")


def blocked_label(blocked_by: str | None) -> Msg | None:
    if blocked_by == BlockedBy.RULE:
        return t("a rule")
    if blocked_by == BlockedBy.MANDATE:
        return t("a lack of mandate")
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    """A checked answer from the form."""

    kind: AnswerKind
    text: str | None
    blocked_by: BlockedBy | None = None
    promised_on: date | None = None
    forward_to: str | None = None
    name: str = ""  # who answers, as they typed it


def check_answer(
    m: Municipality,
    department: str,
    today: date,
    *,
    kind: str,
    text: str = "",
    blocked_by: str = "",
    promised_on: str = "",
    forward_to: str = "",
    name: str = "",
) -> Answer | dict[str, Msg]:
    """The form's fields as an ``Answer``, or a friendly message per field that needs another look."""
    errors: dict[str, Msg] = {}
    text = text.strip()
    name = " ".join(name.split())[:80]
    if kind not in AnswerKind.__members__.values():
        return {"kind": t("Choose one of the five answers.")}
    chosen = AnswerKind(kind)
    if len(text) > MAX_ANSWER:
        errors["text"] = t("Please keep it under {max} characters.", max=MAX_ANSWER)
    elif not text and chosen is AnswerKind.CONDITIONS:
        errors["text"] = t("Write down the conditions, so the initiators know what to do.")
    elif not text and chosen is AnswerKind.NO:
        errors["text"] = t("Write down the reason, so the broker can explain it to the initiators.")
    elif not text and chosen is AnswerKind.INFO:
        errors["text"] = t("Write down what you need to know.")
    blocker: BlockedBy | None = None
    if chosen is AnswerKind.NO and blocked_by:
        if blocked_by not in BlockedBy.__members__.values():
            errors["blocked_by"] = t("Choose what blocks it, or “Something else”.")
        else:
            blocker = BlockedBy(blocked_by)
    promise: date | None = None
    if chosen is AnswerKind.INFO and promised_on.strip():
        try:
            promise = date.fromisoformat(promised_on.strip())
        except ValueError:
            errors["promised_on"] = t("Write the date as day-month-year, or leave it empty.")
        else:
            if promise < today:
                errors["promised_on"] = t("That date has passed. Choose a date from today on.")
            elif promise > today + MAX_PROMISE:
                errors["promised_on"] = t("Choose a date within a year.")
    target: str | None = None
    if chosen is AnswerKind.NOT_OURS:
        if not forward_to:
            errors["forward_to"] = t("Choose the department this is for.")
        elif forward_to == department or m.department(forward_to) is None:
            errors["forward_to"] = t("Choose another department from the list.")
        else:
            target = forward_to
    if errors:
        return errors
    return Answer(chosen, text or None, blocker, promise, target, name)


def department_norm(m: Municipality, code: str) -> int:
    """The department's own norm in working days, else bij_gemeente's."""
    return norm_for(m, Status.BIJ_GEMEENTE, code) or 1


def clock(facts: QuestionFacts, m: Municipality) -> StallClock | None:
    """The department's clock while the question waits on it. A promised decision date counts like the
    norm: the reminder is due the working day after it."""
    if facts.state != QuestionState.OPEN:
        return None
    norm = department_norm(m, facts.department)
    if facts.promised_on is not None:
        promised = datetime.combine(facts.promised_on, datetime.min.time(), AMSTERDAM)
        norm = max(1, working_days_between(facts.clock_started_at, promised, m.closing_days) + 1)
    return StallClock(Track.DEPARTMENT, facts.clock_started_at, norm)


def sweep_steps(
    facts: QuestionFacts, m: Municipality, now: datetime, sent: set[AlertKey]
) -> tuple[list[DueAlert], datetime | None]:
    """The ladder steps of the question's clock due at ``now`` and not in ``sent``, and when the next
    one is due (None: no clock runs, or every step is done)."""
    running = clock(facts, m)
    return clock_steps((running,) if running else (), m, now, sent)


def standing(facts: QuestionFacts, m: Municipality, now: datetime) -> Standing | None:
    """Where the department's clock stands (None while it does not run)."""
    running = clock(facts, m)
    return clock_standing(running, m, now) if running else None


def recipients(department: Department, extra: tuple[Contact, ...] = ()) -> tuple[Contact, ...]:
    """The department's contacts from the config and those added with ``staff add``, each address once."""
    seen: set[str] = set()
    out: list[Contact] = []
    for contact in (*department.contacts, *extra):
        key = contact.email.lower()
        if key not in seen:
            seen.add(key)
            out.append(contact)
    return tuple(out)


# -- personal links ------------------------------------------------------------------------------


def link_token(key: bytes, link_id: int, salt: str) -> str:
    """The token in a contact's link: the link's id and an HMAC of it under the deployment's key, so the
    links table holds nothing that opens the page (the key is a deployment secret: a copy of the whole
    database does) and the same link can be sent again."""
    mac = hmac.new(key, f"department-link:{link_id}:{salt}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"{link_id}-{mac}"


def token_id(token: str) -> int | None:
    """The link id a token claims (check it with ``token_matches``), or None for a malformed token."""
    head, _, mac = token.partition("-")
    if not head.isdigit() or len(head) > 12 or len(mac) != 40:
        return None
    return int(head)


def token_matches(key: bytes, token: str, salt: str) -> bool:
    link_id = token_id(token)
    return link_id is not None and hmac.compare_digest(link_token(key, link_id, salt), token)


# -- what staff and the resident hear ------------------------------------------------------------

# Timeline kinds of department events: "dept_" + an answer kind, BROKER_REPLY or "vraag".
DEPARTMENT_EVENT = "dept_"
ASKED_AGAIN = "vraag"
# Buttons under a department's answer: ask again, answer their question, back to the plan with the
# conditions.
DEPARTMENT_ACTIONS = frozenset({"dask", "drep", "dplan"})


def department_event_text(kind: str, department: str, note: str) -> Msg:
    """A department event on the timeline (staff only); ``department`` is its name."""
    what = kind.removeprefix(DEPARTMENT_EVENT)
    if what == BROKER_REPLY:
        return t("Answer to {department}: {note}", department=department, note=note)
    if what == ASKED_AGAIN:
        return t("Question to {department}: {note}", department=department, note=note)
    return t(
        "{department} answered: {answer}. {note}", department=department, answer=answer_label(what), note=note
    )


def _button(label: Msg, reference: str, action: str, argument: str = "") -> Button:
    return Button(label, case_button(STAFF_PREFIX, reference, action, argument))


def answer_notice(
    reference: str,
    title: str,
    department: str,
    answer: Answer,
    *,
    forwarded_to: str | None = None,
    mailed: int = 0,
) -> Reply:
    """The broker's message when a department answers, with the next steps as buttons."""
    head = t(
        "{department} answered about {reference} · {title}: {answer}",
        department=department,
        reference=reference,
        title=title,
        answer=answer_label(answer.kind),
    )
    extra: list[Msg] = []
    if answer.text:
        extra.append(t("Their words: {text}", text=answer.text))
    if answer.kind is AnswerKind.NO and (blocker := blocked_label(answer.blocked_by)) is not None:
        extra.append(
            t("What blocks it: {blocker}. It is on the coordinators' blocker list.", blocker=blocker)
        )
    if answer.promised_on is not None:
        extra.append(t("They expect to decide by {day}.", day=answer.promised_on))
    ask_again = _button(t("Ask {department} again", department=department), reference, "dask")
    approve = _button(t("Approved"), reference, "st", Status.GOEDGEKEURD.value)
    rows: tuple[tuple[Button, ...], ...]
    if answer.kind is AnswerKind.YES:
        rows = ((approve,), (ask_again,))
    elif answer.kind is AnswerKind.CONDITIONS:
        rows = (
            (approve,),
            (_button(t("Back to the plan, with the conditions"), reference, "dplan"),),
            (ask_again,),
        )
    elif answer.kind is AnswerKind.NO:
        rows = (
            (_button(t("Back to the plan"), reference, "st", Status.PLAN_IN_UITWERKING.value),),
            (_button(t("Rejected"), reference, "st", Status.AFGEWEZEN.value),),
            (ask_again,),
        )
    elif answer.kind is AnswerKind.INFO:
        rows = ((_button(t("Answer their question"), reference, "drep"),),)
    else:
        extra.append(sent_notice(forwarded_to or "", mailed))
        rows = ()
    extra.append(t("The initiator only heard that the department answered."))
    return Reply(head, buttons=rows, extra=tuple(extra))


def resident_sentence(department: str, broker: str | None) -> Msg:
    """The one sentence the initiator hears of a department's answer (its words only through the broker)."""
    if broker:
        return t(
            "The department {department} has answered. {broker} will discuss it with you.",
            department=department,
            broker=broker,
        )
    return t(
        "The department {department} has answered. Your initiatiefmakelaar will discuss it with you.",
        department=department,
    )


def sent_notice(department: str, mailed: int) -> Msg:
    """What the broker hears after a question or reply went to a department by e-mail."""
    if mailed == 0:
        return t(
            "{department} has no e-mail contacts yet, so nobody there got it. Ask them yourself, or ask "
            "the coordinator to add contacts (initiatiefbot staff add --role department).",
            department=department,
        )
    return tn(
        "Sent to {department} by e-mail ({n} contact), with a personal link to answer.",
        "Sent to {department} by e-mail ({n} contacts), with a personal link to answer.",
        mailed,
        department=department,
    )
