"""Privacy rules: what is personal data, how long each kind is kept, what erasure and retention do, and
the guard that keeps contact details and BSNs out of free text. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import cached_property

from flows.events import Button, Reply
from flows.text import t, tn

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


# --- the guard for free text: phone numbers, e-mail addresses, BSN (issue 13, "less personal data") --


# --- access: what a resident is told about their data (/mijngegevens) ----------------------------


# --- erasure: what /vergeetmij asks, does and says -----------------------------------------------

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
