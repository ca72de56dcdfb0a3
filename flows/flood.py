"""Per-person flood control: a sliding window of allowed updates, and one gentle notice per burst.

Pure decisions on plain data; the dispatcher keeps one ``Window`` per person in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from flows.events import Reply
from flows.text import t


class Verdict(StrEnum):
    ALLOW = "allow"
    NOTIFY = "notify"  # over the limit: drop, but say once that we slow down
    DROP = "drop"  # over the limit and already told: drop silently


@dataclass(frozen=True)
class FloodRule:
    """At most ``limit`` updates of one person are handled in any ``window``."""

    limit: int = 20
    window: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class Window:
    """What is remembered of one person: when recent updates were allowed, and when one was last dropped."""

    allowed: tuple[datetime, ...] = ()
    last_dropped: datetime | None = None


def decide(window: Window, now: datetime, rule: FloodRule) -> tuple[Verdict, Window]:
    """Whether an update at ``now`` may be handled, and the window to remember afterwards.

    Dropped updates do not count towards the limit, so a person who keeps sending still gets
    ``limit`` updates handled per window. A burst ends after a whole window without drops; only its
    first drop is a ``NOTIFY``, so a flood costs one reply, however long it lasts.
    """
    since = now - rule.window
    recent = tuple(moment for moment in window.allowed if moment > since)
    if len(recent) < rule.limit:
        return Verdict.ALLOW, replace(window, allowed=(*recent, now))
    quiet = window.last_dropped is None or window.last_dropped <= since
    return (Verdict.NOTIFY if quiet else Verdict.DROP), Window(recent, last_dropped=now)


def slow_down() -> Reply:
    """The one reply a flooding person gets."""
    return Reply(t("Slow down a little, please. I will read your next message in a moment."))
