"""Privacy rules: how long each kind of data is kept, what a resident is told about their data, and what
erasure keeps and scrubs (the guard for free text is ``flows.pii``). Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import cached_property

from flows.events import Button, Reply
from flows.lifecycle import OPEN_STATUSES, Status
from flows.text import Msg, t, tn, verbatim

# --- retention periods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """How long each kind of data is kept; the municipality file's [privacy] section may change each,
    never below its lower bound (``LOWER_BOUNDS``)."""

    # Ended initiatives are anonymised this many months after they ended.
    retention_months: int = 24
    # A draft untouched this long gets one reminder …
    draft_reminder_days: int = 90
    # … and is deleted this many days after the reminder (with the person, if nothing else is kept).
    draft_delete_days: int = 14
    # Sent (and failed) Telegram messages and e-mails lose their contents after this many days.
    sent_message_days: int = 30
    # Telegram's update ids (to skip a redelivery) are forgotten after this many days.
    processed_update_days: int = 7
    # A chat's send gate (Telegram's per-chat budget) is removed after this many idle days.
    send_gate_idle_days: int = 1
    # An unused staff invitation is removed this many days after it expired.
    expired_invite_days: int = 0


# The smallest value each period may have: below it the bot would break a promise or itself (Telegram
# redelivers an update for up to a day; the outbox retries a message for up to two days).
LOWER_BOUNDS: dict[str, int] = {
    "retention_months": 1,
    "draft_reminder_days": 7,
    "draft_delete_days": 1,
    "sent_message_days": 3,
    "processed_update_days": 2,
    "send_gate_idle_days": 1,
    "expired_invite_days": 0,
}
assert set(LOWER_BOUNDS) == {f.name for f in fields(Retention)}
# The keys of [privacy] that set a period, in the order of ``Retention``.
RETENTION_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Retention))
# Why each lower bound is there, said when a configured period is below it.
RETENTION_WHY: dict[str, str] = {
    "retention_months": "an ended initiative must stay readable for at least a month",
    "draft_reminder_days": "a resident who pauses for a few days must not be reminded yet",
    "draft_delete_days": "the resident needs at least a day to answer the reminder",
    "sent_message_days": "the outbox may still retry a message for up to two days",
    "processed_update_days": "Telegram may deliver an update again for up to a day",
    "send_gate_idle_days": "a chat's send budget must outlive Telegram's flood waits",
    "expired_invite_days": "a period cannot be negative",
}


@dataclass(frozen=True)
class Cutoffs:
    """For a sweep at one moment: each kind of data before its cutoff is due."""

    ended: datetime  # initiatives that ended before this are anonymised
    untouched: datetime  # drafts untouched since before this get their reminder
    reminded: datetime  # drafts reminded before this (and untouched since) are deleted
    sent: datetime  # sent messages and e-mails queued before this lose their contents
    processed: datetime  # update ids handled before this are forgotten
    invite_expired: datetime  # unused invitations that expired before this are removed
    gate_idle: float  # chats' send gates idle since before this (Unix seconds) are removed


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (the month's last day when it is
    shorter: 31 March minus one month is 28 or 29 February)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    following = datetime(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def cutoffs(retention: Retention, as_of: datetime) -> Cutoffs:
    """The cutoffs of a sweep ``as_of`` that moment."""
    days = timedelta(days=1)
    return Cutoffs(
        ended=months_before(as_of, retention.retention_months),
        untouched=as_of - retention.draft_reminder_days * days,
        reminded=as_of - retention.draft_delete_days * days,
        sent=as_of - retention.sent_message_days * days,
        processed=as_of - retention.processed_update_days * days,
        invite_expired=as_of - retention.expired_invite_days * days,
        gate_idle=(as_of - retention.send_gate_idle_days * days).timestamp(),
    )


def draft_reminder(title: str | None, retention: Retention) -> Reply:
    """The one reminder of a draft untouched for ``draft_reminder_days``: go on, or delete it now; doing
    nothing deletes it ``draft_delete_days`` later."""
    days = retention.draft_reminder_days
    if title:
        head = tn(
            "You have not worked on your idea “{title}” for {n} day.",
            "You have not worked on your idea “{title}” for {n} days.",
            days,
            title=title,
        )
    else:
        head = tn(
            "You have not worked on your new idea for {n} day.",
            "You have not worked on your new idea for {n} days.",
            days,
        )
    then = tn(
        "Do you want to continue? If you do nothing, I will delete your answers in {n} day.",
        "Do you want to continue? If you do nothing, I will delete your answers in {n} days.",
        retention.draft_delete_days,
    )
    buttons = (
        (Button(t("Continue"), "menu:continue"),),
        (Button(t("Delete my answers"), "menu:discard"),),
    )
    return Reply(head, buttons=buttons, extra=(then,))


# Statuses in which an initiative has ended for the retention period: every status that is not open,
# "afgewezen" too (it may be picked up again, which restarts the period).
ENDED_STATUSES: frozenset[Status] = frozenset(Status) - OPEN_STATUSES


# --- access: what a resident is told about their data (/mijngegevens) ----------------------------


@dataclass(frozen=True)
class ExportCategory:
    """One kind of data in a resident's export: its key in the JSON, why we keep it, and how long."""

    key: str
    purpose: Msg
    retention: Msg


def _months(n: int) -> Msg:
    return tn("{n} month", "{n} months", n)


def _days(n: int) -> Msg:
    return tn("{n} day", "{n} days", n)


def export_categories(retention: Retention) -> tuple[ExportCategory, ...]:
    """The categories of a resident's data export, each with its purpose and retention period."""
    case_kept = t(
        "Until {period} after your initiative has ended. Then we remove your name, contact details and "
        "texts.",
        period=_months(retention.retention_months),
    )
    return (
        ExportCategory(
            "profile",
            t("To answer you in this chat, in your language."),
            t("As long as you have a draft or an initiative with us. Earlier if you ask (/vergeetmij)."),
        ),
        ExportCategory(
            "draft",
            t("So you can finish your idea later."),
            t(
                "If you do not touch it for {reminder}, we remind you once. {delete} later we delete it.",
                reminder=_days(retention.draft_reminder_days),
                delete=_days(retention.draft_delete_days),
            ),
        ),
        ExportCategory(
            "initiatives",
            t("So an initiatiefmakelaar can help you, and the municipality can decide on your idea."),
            case_kept,
        ),
        ExportCategory(
            "messages", t("Your conversation with your initiatiefmakelaar about your initiative."), case_kept
        ),
        ExportCategory("consents", t("To show when you agreed to what."), case_kept),
        ExportCategory(
            "sent_messages",
            t("Copies of the messages the bot sent you, to deliver them. They are not in this file."),
            t(
                "{period} after sending. A file like this one: at once.",
                period=_days(retention.sent_message_days),
            ),
        ),
    )


def access_summary(municipality: str, retention: Retention) -> Reply:
    """The plain-language summary a resident gets with their data (/mijngegevens)."""
    return Reply(
        t("This is what we keep about you, and why:"),
        extra=(
            t(
                "• Your name and language from Telegram: to answer you in this chat.\n"
                "• Your ideas, your name and contact details: so an initiatiefmakelaar can help you.\n"
                "• Your messages with your initiatiefmakelaar, and the timeline of your initiative.\n"
                "• An idea you have not finished yet: so you can continue later."
            ),
            t(
                "Who sees it: the initiatiefmakelaars and coordinators of the municipality of "
                "{municipality}. A department that your idea needs sees the idea, not your name or "
                "contact details. The title and theme can be in open data, without your name. Telegram, "
                "a company outside the EU, sees the messages in this chat.",
                municipality=municipality,
            ),
            t(
                "How long: until {period} after your initiative has ended. An idea you do not finish: "
                "we remind you after {reminder} and delete it {delete} later.",
                period=_months(retention.retention_months),
                reminder=_days(retention.draft_reminder_days),
                delete=_days(retention.draft_delete_days),
            ),
            t("Do you want us to delete your data? Send /vergeetmij."),
        ),
    )


def access_document_caption() -> Msg:
    """The caption of the file with all of a resident's data."""
    return t("All your data, in a file (JSON).")


# --- erasure: what /vergeetmij asks, does and says -----------------------------------------------

FORGET_PREFIX = "forget:"
FORGET_CANCEL = "forget:cancel"


@dataclass(frozen=True)
class OpenCase:
    """An initiative of the resident that is still going, as the erasure question names it."""

    reference: str
    title: str


def forget_choice(data: str) -> tuple[str, int] | None:
    """("stop" | "keep" | "all", open cases the question counted) from a button, or None."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] + ":" != FORGET_PREFIX or parts[1] not in ("stop", "keep", "all"):
        return None
    return (parts[1], int(parts[2])) if parts[2].isdigit() else None


def erasure_question(open_cases: tuple[OpenCase, ...], ended: int) -> Reply:
    """What /vergeetmij explains, with the choices as buttons."""
    what = t(
        "I can delete all your data. I then delete your name, your phone number or e-mail address, "
        "your Telegram details, your messages, your photos and your unfinished answers."
    )
    kept = t(
        "The municipality only keeps what it must keep: the number of your initiative, the "
        "neighbourhood, the theme and the dates of each step. Without your name."
    )
    parts: list[Msg] = [what, kept]
    if ended:
        parts.append(
            tn(
                "{n} initiative of yours has ended: it loses your name and texts too.",
                "{n} initiatives of yours have ended: they lose your name and texts too.",
                ended,
            )
        )
    cancel = (Button(t("No, delete nothing"), FORGET_CANCEL),)
    if not open_cases:
        parts.append(t("After this I no longer know you. This cannot be undone. Shall I delete everything?"))
        yes = (Button(t("Yes, delete all my data"), f"{FORGET_PREFIX}all:0"),)
        return Reply(parts[0], buttons=(yes, cancel), extra=tuple(parts[1:]))
    listed = "\n".join(f"{c.reference} · {c.title}" for c in open_cases)
    parts.append(
        tn(
            "You have {n} initiative that is still going:\n{cases}\nWhat do you want with it?",
            "You have {n} initiatives that are still going:\n{cases}\nWhat do you want with them?",
            len(open_cases),
            cases=verbatim(listed),
        )
    )
    parts.append(
        t(
            "• Stop: I stop it and delete everything.\n"
            "• Let it go on: the municipality goes on with your idea, but without your name and contact "
            "details. Your initiatiefmakelaar can then no longer reach you, and you no longer hear how "
            "it goes.\n"
            "This cannot be undone."
        )
    )
    n = len(open_cases)
    buttons = (
        (Button(t("Stop and delete everything"), f"{FORGET_PREFIX}stop:{n}"),),
        (Button(t("Let it go on without my data"), f"{FORGET_PREFIX}keep:{n}"),),
        cancel,
    )
    return Reply(parts[0], buttons=buttons, extra=tuple(parts[1:]))


def erased(kept: tuple[str, ...]) -> Reply:
    """The last message to a person who is forgotten."""
    extra: list[Msg] = []
    if kept:
        extra.append(
            t(
                "The municipality goes on with {references}, without your data.",
                references=", ".join(kept),
            )
        )
    extra.append(t("Do you want to share an idea again later? Then send /start."))
    return Reply(t("Done. I deleted your data. I no longer know you."), extra=tuple(extra))


def erasure_told_staff(reference: str, *, stopped: bool) -> Reply:
    """What the broker (or the wijk's coordinators) hear when the resident of an open case is forgotten."""
    if stopped:
        return Reply(
            t(
                "The initiator of {reference} asked us to delete their data. "
                "So the initiative is stopped, and their name, contact details and messages are gone.",
                reference=reference,
            )
        )
    return Reply(
        t(
            "The initiator of {reference} asked us to delete their data. The initiative goes on, "
            "but their name, contact details and messages are gone: you can no longer reach them.",
            reference=reference,
        )
    )


# What takes the place of an erased text in what is kept (a title, a staff note that quoted it).
ERASED_TEXT = "[verwijderd]"
# The Telegram id left on a case whose resident is forgotten: no chat has it, so nothing reaches it.
ERASED_ID = 0
# Timeline notes, stored in the municipality's language like other system entries.
ERASED_ON_REQUEST = "Gegevens van de indiener verwijderd op verzoek"
ERASED_BY_RETENTION = "Gegevens van de indiener verwijderd: de bewaartermijn is voorbij"
STOPPED_ON_REQUEST = "op verzoek van de inwoner"
# Shorter traces are left alone: scrubbing "Jo" or "12" out of staff notes would mangle other words.
MIN_TRACE = 3


def _trace_pattern(trace: str) -> str:
    digits = re.sub(r"\D", "", trace)
    if len(digits) >= 6 and len(digits) >= len(trace.replace(" ", "")) - 4:
        # A phone number matches however it is written: 06-1234 5678, +31 6 12345678, …
        national = digits[2:] if digits.startswith("31") else digits.lstrip("0")
        return r"(?:\+31|0031|0)?[\s\-().]*" + r"[\s\-().]*".join(national)
    escaped = re.escape(trace)
    return rf"(?<!\w){escaped}(?!\w)" if trace[:1].isalnum() and trace[-1:].isalnum() else escaped


# Parts of a name that are no name on their own ("van der Berg" is found by "Berg").
_NAME_PARTICLES = frozenset(
    {"van", "von", "der", "den", "ter", "ten", "het", "les", "ben", "bin", "abu", "dos", "das"}
)


def name_parts(name: str | None) -> tuple[str, ...]:
    """The words of a name that identify someone on their own ("Fatima el Amrani" → Fatima, Amrani), so
    "mevrouw Amrani" in a staff note is scrubbed too."""
    words = re.split(r"[\s\-]+", name or "")
    return tuple(w for w in words if len(w) >= MIN_TRACE and w.lower() not in _NAME_PARTICLES)


@dataclass(frozen=True)
class Traces:
    """What identifies one person in text kept about them: their name, contact details, photo and the
    words they wrote. ``scrub`` puts ERASED_TEXT in their place."""

    texts: frozenset[str]

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Traces:
        return cls(frozenset(v.strip() for v in values if v and len(v.strip()) >= MIN_TRACE))

    def __bool__(self) -> bool:
        return bool(self.texts)

    def __or__(self, other: Traces) -> Traces:
        return Traces(self.texts | other.texts)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.texts:
            return None
        # Longest first, so a message that contains the name is replaced whole, not around the name.
        ordered = sorted(self.texts, key=len, reverse=True)
        return re.compile("|".join(_trace_pattern(t) for t in ordered), re.IGNORECASE)

    def scrub(self, text: str) -> str:
        """``text`` with every trace replaced by ERASED_TEXT."""
        pattern = self._pattern
        return pattern.sub(ERASED_TEXT, text) if pattern is not None and text else text

    def found_in(self, text: str) -> bool:
        pattern = self._pattern
        return pattern is not None and bool(text) and pattern.search(text) is not None
