"""Privacy rules: what is personal data, how long each kind is kept, what erasure and retention do, and
the guard that keeps contact details and BSNs out of free text. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, fields

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


# --- the guard for free text: phone numbers, e-mail addresses, BSN (issue 13, "less personal data") --


# --- access: what a resident is told about their data (/mijngegevens) ----------------------------


# --- erasure: what /vergeetmij asks, does and says -----------------------------------------------
