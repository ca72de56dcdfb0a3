"""The figures of the overview per wijk, from plain rows: open cases by status, new initiatives per month,
time to first contact, stalled cases, who cases waited on, initiatives realised per quarter, and how
departments answer the questions put to them.

Working days are counted as ``flows.stalls.working_days_between`` counts them: the days after the start's
Amsterdam date up to and including the end's, Monday to Friday, minus Dutch public holidays and the
municipality's closing days. The database counts them with a calendar of working-day ordinals
(``calendar_ordinals``): the working days between two dates are the difference of their ordinals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType

from flows.department import QuestionFacts, department_norm, standing
from flows.lifecycle import OPEN_STATUSES, Status
from flows.municipality import Municipality
from flows.stalls import (
    AMSTERDAM,
    Level,
    StallClock,
    StallFacts,
    Track,
    clocks,
    due_at,
    first_contact_days,
    is_working_day,
    ladder,
    working_days_between,
)


class Party(StrEnum):
    """Whom a case waits on while it is in a status."""

    RESIDENT = "resident"
    BROKER = "broker"
    DEPARTMENT = "department"


# Who is expected to move the case in each status. Before a broker is assigned (ingediend) the case waits
# on the municipality's side of the table, counted with the broker. The resident works out and carries
# out the plan; a department decides while the case is bij_gemeente. Nobody waits in the final statuses
# nor in afgewezen (the resident may try again, but nobody is expected to).
WAITS_ON: Mapping[Status, Party] = MappingProxyType(
    {
        Status.INGEDIEND: Party.BROKER,
        Status.TOEGEWEZEN: Party.BROKER,
        Status.IN_GESPREK: Party.BROKER,
        Status.GOEDGEKEURD: Party.BROKER,
        Status.PLAN_IN_UITWERKING: Party.RESIDENT,
        Status.IN_UITVOERING: Party.RESIDENT,
        Status.BIJ_GEMEENTE: Party.DEPARTMENT,
    }
)


@dataclass(frozen=True, slots=True, order=True)
class Waiter:
    """One party a case can wait on; ``department`` names the department (None: not recorded)."""

    party: Party
    department: str | None = None


def waiter(status: str, department: str | None) -> Waiter | None:
    """Whom a case in ``status`` waits on, or None when nobody is expected to act."""
    try:
        party = WAITS_ON.get(Status(status))
    except ValueError:
        return None
    if party is None:
        return None
    return Waiter(party, department if party is Party.DEPARTMENT else None)


# --- working days in the database ---------------------------------------------------------------


def calendar_ordinals(m: Municipality, first: date, last: date) -> list[tuple[date, int]]:
    """Every day from ``first`` to ``last`` with the number of working days after ``first`` up to and
    including it, so that ``ordinal(b) - ordinal(a) == working_days_between(a, b)`` for days in range."""
    closed = frozenset(m.closing_days)
    out: list[tuple[date, int]] = []
    count = 0
    day = first
    while day <= last:
        if day != first and is_working_day(day, closed):
            count += 1
        out.append((day, count))
        day += timedelta(days=1)
    return out


# --- open cases by status -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusCount:
    status: str
    count: int


def open_by_status(counts: Mapping[str, int]) -> list[StatusCount]:
    """Open cases per open status in the lifecycle's order, zeros included."""
    return [StatusCount(s.value, counts.get(s.value, 0)) for s in Status if s in OPEN_STATUSES]


# --- counts per month and per quarter -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodCount:
    """A count for a month or a quarter starting on ``start``."""

    start: date
    count: int

    @property
    def quarter(self) -> int:
        return (self.start.month - 1) // 3 + 1


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _quarter_start(day: date) -> date:
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def _buckets(per_day: Iterable[tuple[date, int]], first: date, last: date, months: int) -> list[PeriodCount]:
    def start_of(day: date) -> date:
        return _month_start(day) if months == 1 else _quarter_start(day)

    totals: dict[date, int] = {}
    for day, n in per_day:
        if first <= day <= last:
            totals[start_of(day)] = totals.get(start_of(day), 0) + n
    out: list[PeriodCount] = []
    start = start_of(first)
    while start <= last:
        out.append(PeriodCount(start, totals.get(start, 0)))
        for _ in range(months):
            start = _next_month(start)
    return out


def per_month(per_day: Iterable[tuple[date, int]], first: date, last: date) -> list[PeriodCount]:
    """Counts per calendar month from ``first``'s month to ``last``'s, zeros included; days outside
    ``first``..``last`` are left out."""
    return _buckets(per_day, first, last, 1)


def per_quarter(per_day: Iterable[tuple[date, int]], first: date, last: date) -> list[PeriodCount]:
    """Counts per calendar quarter from ``first``'s quarter to ``last``'s, zeros included."""
    return _buckets(per_day, first, last, 3)


# --- time to first contact ------------------------------------------------------------------------


def percentile(histogram: Mapping[int, int], q: float) -> int | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of the values counted in ``histogram``."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the total")


@dataclass(frozen=True, slots=True)
class FirstContact:
    """Working days from submission to the first contact, over the cases that had one."""

    contacted: int
    waiting: int  # no contact yet
    median: int | None
    p90: int | None
    norm: int
    within_norm: int
    histogram: tuple[tuple[int, int], ...]  # (working days, cases), ascending

    @property
    def within_norm_share(self) -> int | None:
        """Percentage of the contacted cases contacted within the norm, rounded down."""
        return None if not self.contacted else self.within_norm * 100 // self.contacted


def first_contact(histogram: Mapping[int, int], waiting: int, m: Municipality) -> FirstContact:
    """The first-contact figure from a histogram of working days (days -> cases) and the count of cases
    not contacted yet; the norm is ``flows.stalls.first_contact_days``."""
    norm = first_contact_days(m)
    counts = {days: n for days, n in histogram.items() if n}
    return FirstContact(
        contacted=sum(counts.values()),
        waiting=waiting,
        median=percentile(counts, 50),
        p90=percentile(counts, 90),
        norm=norm,
        within_norm=sum(n for days, n in counts.items() if days <= norm),
        histogram=tuple(sorted(counts.items())),
    )


def contact_buckets(fc: FirstContact, top: int = 20) -> list[tuple[str, int]]:
    """The histogram for a chart: one bar per working day up to ``top``, the rest in ``"top+"``."""
    counts = dict(fc.histogram)
    last = min(top, max(counts, default=0))
    bars = [(str(days), counts.get(days, 0)) for days in range(last + 1)]
    rest = sum(n for days, n in counts.items() if days > top)
    if rest:
        bars.append((f"{top + 1}+", rest))
    return bars


# --- whom cases waited on -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpellTotals:
    """What the database adds up for one (status, department): waiting periods, their working days,
    and how many of them are still running."""

    status: str
    department: str | None
    spells: int
    days: int
    running: int = 0


@dataclass(frozen=True, slots=True)
class Wait:
    """How long cases waited on one party: ``spells`` waiting periods of ``days`` working days in all."""

    waiter: Waiter
    spells: int
    days: int
    running: int

    @property
    def average(self) -> float:
        return self.days / self.spells if self.spells else 0.0


def waits(totals: Iterable[SpellTotals]) -> list[Wait]:
    """Waiting time per party (departments one by one), longest average wait first; statuses in which
    nobody is expected to act are left out."""
    sums: dict[Waiter, list[int]] = {}
    for row in totals:
        who = waiter(row.status, row.department)
        if who is None:
            continue
        acc = sums.setdefault(who, [0, 0, 0])
        acc[0] += row.spells
        acc[1] += row.days
        acc[2] += row.running
    out = [Wait(who, spells, days, running) for who, (spells, days, running) in sums.items()]
    out.sort(key=lambda w: (-w.average, w.waiter.party.value, w.waiter.department or ""))
    return out


# --- departments ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerTotals:
    """What the database adds up for one department: ``count`` answers given in the period with the same
    working days and verdict. ``final``: ja, voorwaarden or nee (else forwarded as not theirs);
    ``within_norm`` is None where no verdict was recorded."""

    department: str
    final: bool
    days: int
    within_norm: bool | None
    count: int


@dataclass(frozen=True, slots=True)
class DepartmentFigures:
    """How one department answers: questions open and overdue now; of the answers in the period, how
    many final ones came within the norm, and the median working days to any answer."""

    department: str
    norm: int
    open: int
    overdue: int
    judged: int  # final answers with a verdict on the norm
    within_norm: int
    answered: int  # answers with their working days (final or forwarded)
    median_days: int | None

    @property
    def within_norm_share(self) -> int | None:
        """Percentage of the judged final answers that came within the norm, rounded down."""
        return None if not self.judged else self.within_norm * 100 // self.judged


def department_figures(
    m: Municipality, answers: Iterable[AnswerTotals], active: Iterable[QuestionFacts], now: datetime
) -> list[DepartmentFigures]:
    """Per department (the configuration's order, zeros included; codes it does not know after them):
    the figures from the period's answers and the questions open now (overdue: their department's clock
    reached a ladder step, ``flows.department.standing``)."""
    open_now: dict[str, int] = {}
    overdue: dict[str, int] = {}
    for facts in active:
        open_now[facts.department] = open_now.get(facts.department, 0) + 1
        stand = standing(facts, m, now)
        if stand is not None and stand.level is not None:
            overdue[facts.department] = overdue.get(facts.department, 0) + 1
    days: dict[str, dict[int, int]] = {}
    judged: dict[str, list[int]] = {}
    for row in answers:
        histogram = days.setdefault(row.department, {})
        histogram[row.days] = histogram.get(row.days, 0) + row.count
        if row.final and row.within_norm is not None:
            acc = judged.setdefault(row.department, [0, 0])
            acc[0] += row.count
            acc[1] += row.count if row.within_norm else 0
    known = [d.code for d in m.departments]
    codes = known + sorted((set(open_now) | set(days)) - set(known))
    return [
        DepartmentFigures(
            department=code,
            norm=department_norm(m, code),
            open=open_now.get(code, 0),
            overdue=overdue.get(code, 0),
            judged=judged.get(code, [0, 0])[0],
            within_norm=judged.get(code, [0, 0])[1],
            answered=sum(days.get(code, {}).values()),
            median_days=percentile(days.get(code, {}), 50),
        )
        for code in codes
    ]


# --- stalled now ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """An open case as the stalled list needs it."""

    reference: str
    title: str
    wijk_code: str | None
    broker_name: str | None
    facts: StallFacts


@dataclass(frozen=True, slots=True)
class StalledCase:
    """A case past a norm: the highest ladder step reached, on which clock, and the working days."""

    reference: str
    title: str
    wijk_code: str | None
    broker_name: str | None
    status: str
    department: str | None
    level: Level
    track: Track
    days: int
    norm: int

    @property
    def over(self) -> int:
        return max(0, self.days - self.norm)


def stalled(cases: Iterable[CaseFacts], m: Municipality, now: datetime) -> list[StalledCase]:
    """The cases that reached a ladder step at ``now`` (``flows.stalls.stalled_standings``), worst first:
    highest step, then most working days beyond a norm, then longest in the status. Each case shows its
    worst clock."""
    closed = m.closing_days
    memo: dict[tuple[Track, date, int], tuple[Level | None, int]] = {}

    def standing(clock: StallClock) -> tuple[Level | None, int]:
        # A clock stands where its Amsterdam start day and its norm put it, so cases share the work.
        key = (clock.track, clock.started_at.astimezone(AMSTERDAM).date(), clock.norm)
        known = memo.get(key)
        if known is None:
            due = [level for level, at in ladder(clock, closed) if at <= now]
            known = memo[key] = (
                due[-1] if due else None,
                working_days_between(clock.started_at, now, closed),
            )
        return known

    found: list[tuple[tuple[int, int, datetime, str], StalledCase]] = []
    for case in cases:
        reached = []
        for clock in clocks(case.facts, m):
            level, days = standing(clock)
            if level is not None:
                reached.append((level, max(0, days - clock.norm), clock.track == Track.STATUS, days, clock))
        if not reached:
            continue
        level, _, _, days, clock = max(reached, key=lambda r: r[:3])
        # As the bot's /vastgelopen list: highest step, most days over, longest in the status.
        order = (-level, -max(r[1] for r in reached), case.facts.status_changed_at, case.reference)
        found.append(
            (
                order,
                StalledCase(
                    reference=case.reference,
                    title=case.title,
                    wijk_code=case.wijk_code,
                    broker_name=case.broker_name,
                    status=case.facts.status,
                    department=case.facts.department,
                    level=level,
                    track=clock.track,
                    days=days,
                    norm=clock.norm,
                ),
            )
        )
    found.sort(key=lambda pair: pair[0])
    return [case for _, case in found]


def latest_start(m: Municipality, working_days: int, now: datetime) -> date:
    """The last Amsterdam day on which a clock could start and have run ``working_days`` by ``now``
    (its step due at 09:00 on that working day, as ``flows.stalls.due_at``)."""
    day = now.astimezone(AMSTERDAM).date()
    while due_at(datetime.combine(day, time(12), tzinfo=AMSTERDAM), working_days, m.closing_days) > now:
        day -= timedelta(days=1)
    return day


def level_counts(cases: Iterable[StalledCase]) -> list[tuple[Level, int]]:
    """How many stalled cases reached each ladder step (their highest), every step included."""
    counts = dict.fromkeys(Level, 0)
    for case in cases:
        counts[case.level] += 1
    return list(counts.items())


def default_period(today: date) -> tuple[date, date]:
    """The overview's period when none is picked: the last 12 calendar months, this month included."""
    start = _month_start(today)
    for _ in range(11):
        start = _month_start(start - timedelta(days=1))
    return start, today
