"""Norms in Dutch working days (Monday to Friday, minus public holidays and the closing days) and the
escalation ladder that turns a case past its norm into a reminder, an escalation and an urgent one."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import IntEnum, StrEnum
from fractions import Fraction
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from flows.lifecycle import Status, is_final
from flows.municipality import STATUS_CODES, STATUSES_WITHOUT_NORM, Municipality

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# A clock runs out at the start of the office day, so alerts reach people while they are at work.
DUE_TIME = time(9, 0)


@cache
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NL", years=year))


def load_calendar(year: int) -> None:
    """Work out this year's and next year's public holidays now (the calendars load on first use)."""
    _public_holidays(year)
    _public_holidays(year + 1)


def is_working_day(day: date, closing_days: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in _public_holidays(day.year) and day not in closing_days


def _frozen(closing_days: Collection[date]) -> frozenset[date]:
    if isinstance(closing_days, frozenset):
        return closing_days
    if isinstance(closing_days, tuple):  # a municipality's: the same few for every case
        return _frozen_tuple(closing_days)
    return frozenset(closing_days)


@lru_cache(maxsize=64)
def _frozen_tuple(closing_days: tuple[date, ...]) -> frozenset[date]:
    return frozenset(closing_days)


def working_days_between(start: datetime, end: datetime, closing_days: Collection[date] = ()) -> int:
    """Whole working days after ``start``'s day up to and including ``end``'s day (Amsterdam time)."""
    closed = _frozen(closing_days)
    return _working_days(start.astimezone(AMSTERDAM).date(), end.astimezone(AMSTERDAM).date(), closed)


@lru_cache(maxsize=65_536)
def _working_days(first: date, last: date, closing_days: frozenset[date]) -> int:
    # Cached: the overviews count up to today for every open case, from a few hundred distinct days.
    count = 0
    day = first + timedelta(days=1)
    while day <= last:
        count += is_working_day(day, closing_days)
        day += timedelta(days=1)
    return count


def _require_aware(moment: datetime, name: str) -> None:
    # astimezone() would read a naive datetime as the server's local time: silently wrong in UTC containers.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def due_at(started: datetime, working_days: int, closing_days: Collection[date] = ()) -> datetime:
    """09:00 Amsterdam time on the ``working_days``-th working day after ``started``'s Amsterdam date,
    so that ``working_days_between(started, due_at(started, n)) == n``."""
    if working_days < 1:
        raise ValueError(f"working_days must be at least 1, got {working_days}")
    _require_aware(started, "started")
    return _due_on(started.astimezone(AMSTERDAM).date(), working_days, _frozen(closing_days))


@lru_cache(maxsize=65_536)
def _due_on(start: date, working_days: int, closed: frozenset[date]) -> datetime:
    # Cached: a sweep asks the same few (day, norm) pairs for many initiatives.
    day = start
    remaining = working_days
    while remaining:
        day += timedelta(days=1)
        remaining -= is_working_day(day, closed)
    return datetime.combine(day, DUE_TIME, tzinfo=AMSTERDAM)


class Track(StrEnum):
    """Which clock an alert belongs to: time in the current status, or time since the broker last acted."""

    STATUS = "status"
    SILENCE = "silence"
    # A department's time to answer a question (flows.department); bij_gemeente has no status clock.
    DEPARTMENT = "department"


class Level(IntEnum):
    """A step on the ladder: a reminder to the broker, an escalation to the wijk's coordinators, urgent."""

    REMINDER = 1
    ESCALATION = 2
    URGENT = 3


# Multiples of the norm at which each level is due.
LADDER: Mapping[Level, Fraction] = MappingProxyType(
    {Level.REMINDER: Fraction(1), Level.ESCALATION: Fraction(3, 2), Level.URGENT: Fraction(3)}
)

AlertKey = tuple[str, datetime, int]
"""(track, started_at, level): the unique key that makes each alert happen once."""


def norm_for(m: Municipality, status: str, department: str | None) -> int | None:
    """Working days an initiative may stay in ``status``; for bij_gemeente the department's own norm wins.
    None for statuses without a norm and for unknown ones."""
    if status in STATUSES_WITHOUT_NORM or status not in STATUS_CODES:
        return None
    if status == Status.BIJ_GEMEENTE and department is not None:
        dept = m.department(department)
        if dept is not None and dept.norm_days is not None:
            return dept.norm_days
    return m.norm(status)


@cache
def threshold(norm: int, level: Level) -> int:
    """Working days after the clock started at which ``level`` is due: the norm times the level's multiple,
    rounded up."""
    if norm < 1:
        raise ValueError(f"a norm is at least 1 working day, got {norm}")
    return math.ceil(LADDER[level] * norm)


@dataclass(frozen=True, slots=True)
class StallFacts:
    """What the stall rules need to know about one initiative; all moments timezone-aware."""

    status: str
    status_changed_at: datetime
    department: str | None = None
    broker_id: int | None = None
    assigned_at: datetime | None = None
    last_broker_action_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> StallFacts:
        """The facts of any case row with these field names (a case, a due row, an overview line)."""
        return cls(
            row.status,
            row.status_changed_at,
            row.department,
            row.broker_id,
            row.assigned_at,
            row.last_broker_action_at,
        )


@dataclass(frozen=True, slots=True)
class StallClock:
    """A running clock: ``norm`` working days from ``started_at``."""

    track: Track
    started_at: datetime
    norm: int


@dataclass(frozen=True, slots=True)
class DueAlert:
    """A ladder step that is due. A ``skipped`` step was overtaken by a higher one: record it, don't send.
    ``overtook`` lists the steps this one skipped, so what belonged to them (the resident's sentence)
    can go with it."""

    track: Track
    started_at: datetime
    level: Level
    due_at: datetime
    skipped: bool = False
    overtook: tuple[Level, ...] = field(default=(), compare=False)

    @property
    def key(self) -> AlertKey:
        return (self.track.value, self.started_at, int(self.level))


def _silence_started(facts: StallFacts) -> datetime:
    moments = [t for t in (facts.last_broker_action_at, facts.assigned_at) if t is not None]
    # Without either moment (old data), the status change is the latest thing known to have happened.
    return max(moments) if moments else facts.status_changed_at


def clocks(facts: StallFacts, m: Municipality) -> tuple[StallClock, ...]:
    """The status clock when the status has a norm; the silence clock while a broker is expected to act.
    While bij_gemeente the department's own clock (on its question, ``flows.department``) replaces the
    status clock: it stops while the department waits for the broker, whose silence clock runs on."""
    out: list[StallClock] = []
    norm = _status_norm(facts, m)
    if norm is not None:
        out.append(StallClock(Track.STATUS, facts.status_changed_at, norm))
    if facts.broker_id is not None and not is_final(facts.status) and facts.status != Status.AFGEWEZEN:
        out.append(StallClock(Track.SILENCE, _silence_started(facts), m.no_sign_of_life_days))
    return tuple(out)


Ladder = tuple[tuple[Level, datetime], ...]
"""Every step of a clock's ladder with the moment it is due, lowest first."""


def ladder(clock: StallClock, closing_days: Collection[date]) -> Ladder:
    """When each step of ``clock``'s ladder is due: ``due_at`` of the started moment and the step's
    threshold, worked out once per (start day, norm) for all cases that share them."""
    _require_aware(clock.started_at, "started")
    return _ladder_on(clock.started_at.astimezone(AMSTERDAM).date(), clock.norm, _frozen(closing_days))


@lru_cache(maxsize=65_536)
def _ladder_on(start: date, norm: int, closed: frozenset[date]) -> Ladder:
    return tuple((level, _due_on(start, threshold(norm, level), closed)) for level in Level)


def _reached(clock: StallClock, closing_days: Collection[date], now: datetime) -> Ladder:
    """The ladder steps of ``clock`` that are due at ``now``: the one rule behind alerts and overviews."""
    steps = ladder(clock, closing_days)
    for i, (_, at) in enumerate(steps):  # the steps rise, so the first one not due ends the search
        if at > now:
            return steps[:i]
    return steps


def _key(clock: StallClock, level: Level) -> AlertKey:
    return (clock.track.value, clock.started_at, int(level))


def due_alerts(
    facts: StallFacts, m: Municipality, now: datetime, sent: Collection[AlertKey]
) -> list[DueAlert]:
    """The ladder steps due at ``now`` and not in ``sent``, earliest first. Of one clock only the highest
    due step is sent; lower unsent ones come back with ``skipped=True``, so they never fire later."""
    return sweep_steps(facts, m, now, sent)[0]


def next_due(facts: StallFacts, m: Municipality, sent: Collection[AlertKey]) -> datetime | None:
    """The earliest moment a step not in ``sent`` is due (possibly past), or None when nothing is left."""
    closed = _frozen(m.closing_days)
    pending = [
        at
        for clock in clocks(facts, m)
        for level, at in ladder(clock, closed)
        if _key(clock, level) not in sent
    ]
    return min(pending, default=None)


def _status_norm(facts: StallFacts, m: Municipality) -> int | None:
    if facts.status == Status.BIJ_GEMEENTE:
        return None
    return norm_for(m, facts.status, facts.department)


def sweep_steps(
    facts: StallFacts, m: Municipality, now: datetime, sent: Collection[AlertKey]
) -> tuple[list[DueAlert], datetime | None]:
    """What the watchdog does with one case, from one reading of its ladders: ``due_alerts`` at ``now``,
    and ``next_due`` once those are recorded as sent too."""
    return clock_steps(clocks(facts, m), m, now, sent)


def clock_steps(
    running: Collection[StallClock], m: Municipality, now: datetime, sent: Collection[AlertKey]
) -> tuple[list[DueAlert], datetime | None]:
    """``sweep_steps`` for any clocks: a case's, or a department question's (``flows.department``)."""
    _require_aware(now, "now")
    closed = _frozen(m.closing_days)
    alerts: list[DueAlert] = []
    later: list[datetime] = []
    for clock in running:
        steps = ladder(clock, closed)
        due = [(level, at) for level, at in steps if at <= now]
        if sent:
            later.extend(at for level, at in steps[len(due) :] if _key(clock, level) not in sent)
            unsent = [(level, at) for level, at in due if _key(clock, level) not in sent]
        else:  # nothing recorded yet, as for most cases: no keys to build
            later.extend(at for _, at in steps[len(due) :])
            unsent = due
        if not due:
            continue
        top = due[-1][0]
        overtook = tuple(level for level, _ in unsent if level < top)
        alerts.extend(
            DueAlert(clock.track, clock.started_at, level, at, skipped=level < top)
            if level < top
            else DueAlert(clock.track, clock.started_at, level, at, overtook=overtook)
            for level, at in unsent
        )
    alerts.sort(key=_alert_order)
    return alerts, min(later, default=None)


_TRACK_ORDER = {track: i for i, track in enumerate(Track)}


def _alert_order(alert: DueAlert) -> tuple[datetime, int, Level]:
    return (alert.due_at, _TRACK_ORDER[alert.track], alert.level)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one clock stands at a moment: its working days so far and the highest ladder step reached
    (None while within the norm). The watchdog sends that step; the overviews show it."""

    clock: StallClock
    days: int
    level: Level | None

    @property
    def track(self) -> Track:
        return self.clock.track

    @property
    def norm(self) -> int:
        return self.clock.norm

    @property
    def over(self) -> int:
        """Working days beyond the norm (0 while within it)."""
        return max(0, self.days - self.clock.norm)


def standings(facts: StallFacts, m: Municipality, now: datetime) -> tuple[Standing, ...]:
    """Every running clock of the case with its days and the ladder step it has reached at ``now``."""
    _require_aware(now, "now")
    closed = _frozen(m.closing_days)
    return tuple(_standing(clock, closed, now) for clock in clocks(facts, m))


def clock_standing(clock: StallClock, m: Municipality, now: datetime) -> Standing:
    """Where one clock stands at ``now``: its working days and the highest step reached."""
    _require_aware(now, "now")
    return _standing(clock, _frozen(m.closing_days), now)


def _standing(clock: StallClock, closed: frozenset[date], now: datetime) -> Standing:
    reached = _reached(clock, closed, now)
    days = working_days_between(clock.started_at, now, closed)
    return Standing(clock, days, reached[-1][0] if reached else None)


def stalled_standings(facts: StallFacts, m: Municipality, now: datetime) -> tuple[Standing, ...]:
    """The clocks that have reached a ladder step: exactly those the watchdog has alerted on by ``now``."""
    return tuple(s for s in standings(facts, m, now) if s.level is not None)


def status_standing(facts: StallFacts, m: Municipality, now: datetime) -> Standing | None:
    """The status clock's standing, None without a norm (and while bij_gemeente: the department's clock
    is on its question, ``flows.department.standing``)."""
    # The status clock alone (as ``clocks`` makes it): a case card shows no other.
    _require_aware(now, "now")
    norm = _status_norm(facts, m)
    if norm is None:
        return None
    return _standing(StallClock(Track.STATUS, facts.status_changed_at, norm), _frozen(m.closing_days), now)


def days_over(facts: StallFacts, m: Municipality, now: datetime) -> int | None:
    """Working days spent in the status beyond its norm (0 while within it), or None without a norm."""
    standing = status_standing(facts, m, now)
    return standing.over if standing is not None else None


def is_stalled(facts: StallFacts, m: Municipality, now: datetime) -> bool:
    """True once any clock (the status, or no sign of life) has reached its norm: the watchdog's reminder."""
    _require_aware(now, "now")
    closed = _frozen(m.closing_days)
    return any(_reached(clock, closed, now) for clock in clocks(facts, m))


def first_contact_days(m: Municipality) -> int:
    """Working days until a broker's first contact, as promised to a resident: ingediend plus toegewezen."""
    return sum(norm_for(m, status, None) or 0 for status in (Status.INGEDIEND, Status.TOEGEWEZEN))
