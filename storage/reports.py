"""Read-only queries for coordinators' overviews and the staff web: who may see which cases, the
filters staff pick, and one row per initiative with what the pictures need."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import True_

from flows import reports
from flows.department import ACTIVE_STATES, QuestionFacts, QuestionState
from flows.lifecycle import OPEN_STATUSES, Status
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, StallFacts, norm_for
from flows.text import Msg, t
from storage import sql
from storage.tables import department_questions, initiatives, staff, status_spells, working_day_ordinals


@dataclass(frozen=True, slots=True)
class Scope:
    """The cases a viewer may see: a broker their own (``broker_id``); a coordinator without wijken all
    (``wijken`` None); a coordinator with wijken those, plus the cases without a wijk or in a wijk no
    coordinator has, as their alerts go to every coordinator (``flows.cases.StaffView.covers``)."""

    broker_id: int | None = None
    wijken: frozenset[str] | None = None
    # Wijken some coordinator has; a case in any other wijk (or none) is every coordinator's.
    # None: no such extra cases (the coverage is unknown, or someone covers everything anyway).
    uncovered_too: frozenset[str] | None = None


def scope_clause(scope: Scope) -> ColumnElement[bool]:
    """The WHERE clause on ``initiatives`` that keeps what ``scope`` may see."""
    if scope.broker_id is not None:
        return initiatives.c.broker_id == scope.broker_id
    if scope.wijken is None:
        return true()
    wijk = initiatives.c.wijk_code
    allowed: list[ColumnElement[bool]] = [wijk.is_(None)]
    if scope.wijken:
        allowed.append(wijk.in_(sorted(scope.wijken)))
    if scope.uncovered_too is not None:
        allowed.append(wijk.not_in(sorted(scope.uncovered_too)) if scope.uncovered_too else true())
    return or_(*allowed)


# The status filter's groups beside single statuses: "stalled" needs the clock, so the callers apply it.
STATUS_GROUPS = ("open", "closed", "stalled")
CLOSED_STATUSES: frozenset[str] = frozenset(Status) - OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """What a viewer picked: a wijk, a theme, a status (or "open", "closed", "stalled") and the period
    of submission (Amsterdam dates, both ends included). None: no restriction."""

    wijk: str | None = None
    theme: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None

    def query(self) -> dict[str, str]:
        """The filter as query-string parameters, for links that keep it."""
        values = {
            "wijk": self.wijk,
            "theme": self.theme,
            "status": self.status,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {key: value for key, value in values.items() if value}


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in Amsterdam, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=AMSTERDAM)


def filter_clauses(f: CaseFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses on ``initiatives`` for ``f``, except the "stalled" status (it needs the clock)."""
    clauses: list[ColumnElement[bool]] = []
    if f.wijk is not None:
        clauses.append(initiatives.c.wijk_code == f.wijk)
    if f.theme is not None:
        clauses.append(initiatives.c.theme_code == f.theme)
    if f.status == "open":
        clauses.append(initiatives.c.status.in_(sorted(OPEN_STATUSES)))
    elif f.status == "closed":
        clauses.append(initiatives.c.status.in_(sorted(CLOSED_STATUSES)))
    elif f.status is not None and f.status != "stalled":
        clauses.append(initiatives.c.status == f.status)
    if f.since is not None:
        clauses.append(initiatives.c.created_at >= day_start(f.since))
    if f.until is not None:
        clauses.append(initiatives.c.created_at < day_start(f.until + timedelta(days=1)))
    return clauses


def parse_filter(query: Mapping[str, str], m: Municipality) -> tuple[CaseFilter, list[Msg]]:
    """The filter in a query string; what cannot be read is left out and explained in the list."""
    problems: list[Msg] = []
    wijk = query.get("wijk") or None
    if wijk is not None and m.wijk(wijk) is None:
        problems.append(t("There is no wijk with code {code}; showing all wijken.", code=wijk[:20]))
        wijk = None
    theme = query.get("theme") or None
    if theme is not None and m.theme(theme) is None:
        problems.append(t("There is no theme {code}; showing all themes.", code=theme[:20]))
        theme = None
    status = query.get("status") or None
    if status is not None and status not in STATUS_GROUPS and status not in set(Status):
        problems.append(t("There is no status {code}; showing every status.", code=status[:20]))
        status = None
    since, until = _date(query, "since", problems), _date(query, "until", problems)
    if since is not None and until is not None and since > until:
        problems.append(t("The period ends before it starts; the two dates are swapped."))
        since, until = until, since
    return CaseFilter(wijk, theme, status, since, until), problems


def _date(query: Mapping[str, str], name: str, problems: list[Msg]) -> date | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(t("{value} is not a date like 2026-03-31; that date is left out.", value=raw[:20]))
        return None


@dataclass(frozen=True, slots=True)
class OverviewRow:
    reference: str
    title: str
    wijk_code: str | None
    status: str
    status_changed_at: datetime
    department: str | None
    broker_id: int | None
    broker_name: str | None
    broker_absent_until: date | None
    assigned_at: datetime | None
    last_broker_action_at: datetime | None
    created_at: datetime
    first_contact_at: datetime | None  # first talk with the initiators: in_gesprek, or a first message


_OVERVIEW = (
    select(
        initiatives.c.reference,
        initiatives.c.title,
        initiatives.c.wijk_code,
        initiatives.c.status,
        initiatives.c.status_changed_at,
        initiatives.c.department,
        initiatives.c.broker_id,
        staff.c.name,
        staff.c.absent_until,
        initiatives.c.assigned_at,
        initiatives.c.last_broker_action_at,
        initiatives.c.created_at,
        # Kept on write by storage.initiatives (the first message to the initiators, or in_gesprek).
        initiatives.c.first_contact_at,
    )
    .select_from(initiatives.outerjoin(staff, staff.c.id == initiatives.c.broker_id))
    .order_by(initiatives.c.id)
)


async def overview_rows(
    session: AsyncSession,
    *,
    statuses: Collection[str] | None = None,
    or_changed_since: datetime | None = None,
) -> list[OverviewRow]:
    """Every initiative, or those in ``statuses`` plus any created or changed since a moment."""
    stmt = _OVERVIEW
    if statuses is not None:
        wanted = initiatives.c.status.in_(list(statuses))
        if or_changed_since is not None:
            wanted = or_(
                wanted,
                initiatives.c.status_changed_at >= or_changed_since,
                initiatives.c.created_at >= or_changed_since,
            )
        stmt = stmt.where(wanted)
    conn = await session.connection()
    return [OverviewRow(*row) for row in await conn.execute(stmt)]


# --- the overview per wijk: the figures added up in SQL ------------------------------------------
# Each query takes the viewer's Scope and the CaseFilter and returns a few dozen rows at most, whatever
# the number of initiatives: the database groups, flows.reports turns the groups into figures.

# Ordinals count from this day, so any stretch of the calendar agrees with any other.
CALENDAR_BASE = date(2000, 1, 1)


def _where(scope: Scope, f: CaseFilter) -> list[ColumnElement[bool]]:
    """``scope_clause`` and ``filter_clauses``, the period on the Amsterdam day of submission: the same
    cases, found in ix_initiatives_overview alone."""
    clauses = [scope_clause(scope), *filter_clauses(replace(f, since=None, until=None))]
    if f.since is not None:
        clauses.append(initiatives.c.submitted_on >= f.since)
    if f.until is not None:
        clauses.append(initiatives.c.submitted_on <= f.until)
    return clauses


async def calendar_starts(session: AsyncSession) -> date | None:
    """The Amsterdam date of the first submission, where the overview's calendar has to start."""
    conn = await session.connection()
    first = (await conn.execute(select(func.min(initiatives.c.created_at)))).scalar_one_or_none()
    return None if first is None else first.astimezone(AMSTERDAM).date()


async def refresh_calendar(session: AsyncSession, m: Municipality, first: date, last: date) -> None:
    """Write the municipality's working-day ordinals for ``first``..``last`` (holidays and its closing
    days as they are now), and the working days of spells and first contacts that were waiting for
    them; where the closing days changed, those are worked out again."""
    first = max(first, CALENDAR_BASE)
    wanted = {day: n for day, n in reports.calendar_ordinals(m, CALENDAR_BASE, last) if day >= first}
    conn = await session.connection()
    cal = working_day_ordinals
    stored = {
        day: n
        for day, n in await conn.execute(
            select(cal.c.day, cal.c.ordinal).where(
                cal.c.municipality_code == m.code, cal.c.day >= first, cal.c.day <= last
            )
        )
    }
    rows = [
        {"municipality_code": m.code, "day": day, "ordinal": n}
        for day, n in wanted.items()
        if stored.get(day) != n
    ]
    stmt = sql.insert(conn.dialect.name, cal)
    stmt = stmt.on_conflict_do_update(
        index_elements=["municipality_code", "day"], set_={"ordinal": stmt.excluded.ordinal}
    )
    for start in range(0, len(rows), 2_000):
        await conn.execute(stmt, rows[start : start + 2_000])
    moved = [day for day, n in wanted.items() if day in stored and stored[day] != n]
    if moved:  # the closing days changed: what was counted across them is counted again
        since = min(moved)
        await conn.execute(
            update(status_spells).where(status_spells.c.ended_on >= since).values(working_days=None)
        )
        await conn.execute(
            update(initiatives).where(initiatives.c.first_contact_on >= since).values(first_contact_days=None)
        )
    await conn.execute(
        update(status_spells)
        .where(status_spells.c.working_days.is_(None))
        .values(working_days=_ordinal(m, status_spells.c.ended_on) - _ordinal(m, status_spells.c.started_on))
    )
    await conn.execute(
        update(initiatives)
        .where(initiatives.c.first_contact_days.is_(None), initiatives.c.first_contact_on.is_not(None))
        .values(
            first_contact_days=_ordinal(m, initiatives.c.first_contact_on)
            - _ordinal(m, initiatives.c.submitted_on)
        )
    )


def _ordinal(m: Municipality, day: Any) -> Any:
    cal = working_day_ordinals
    return select(cal.c.ordinal).where(cal.c.municipality_code == m.code, cal.c.day == day).scalar_subquery()


def _joined(clauses: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """The clauses that restrict anything: everyone's overview without filters needs no join."""
    return [c for c in clauses if not isinstance(c, True_)]


def _calendar(name: str) -> Any:
    return working_day_ordinals.alias(name)


async def open_counts(session: AsyncSession, scope: Scope, f: CaseFilter) -> dict[str, int]:
    """Open cases per status."""
    stmt = (
        select(initiatives.c.status, func.count())
        .where(*_where(scope, f), initiatives.c.status.in_(sorted(OPEN_STATUSES)))
        .group_by(initiatives.c.status)
    )
    conn = await session.connection()
    return {status: n for status, n in await conn.execute(stmt)}


async def submitted_per_day(session: AsyncSession, scope: Scope, f: CaseFilter) -> list[tuple[date, int]]:
    """New initiatives per Amsterdam day of submission."""
    day = initiatives.c.submitted_on
    stmt = select(day, func.count()).where(*_where(scope, f), day.is_not(None)).group_by(day)
    conn = await session.connection()
    return [(d, n) for d, n in await conn.execute(stmt)]


async def realised_per_day(
    session: AsyncSession, scope: Scope, f: CaseFilter, since: date | None, until: date | None
) -> list[tuple[date, int]]:
    """Initiatives that reached gerealiseerd per Amsterdam day, for days in ``since``..``until``; the
    filter's own period (of submission) is not applied."""
    day = initiatives.c.status_on
    clauses = [
        *_where(scope, replace(f, since=None, until=None)),
        initiatives.c.status == Status.GEREALISEERD,
    ]
    if since is not None:
        clauses.append(day >= since)
    if until is not None:
        clauses.append(day <= until)
    stmt = select(day, func.count()).where(*clauses).group_by(day)
    conn = await session.connection()
    return [(d, n) for d, n in await conn.execute(stmt) if d is not None]


async def first_contact_histogram(
    session: AsyncSession, scope: Scope, f: CaseFilter, m: Municipality
) -> tuple[dict[int, int], int]:
    """Working days from submission to first contact -> cases; and the open cases not contacted yet."""
    days = initiatives.c.first_contact_days
    stmt = select(days, func.count()).where(*_where(scope, f), days.is_not(None)).group_by(days)
    waiting = select(func.count()).where(
        *_where(scope, f),
        initiatives.c.first_contact_on.is_(None),
        initiatives.c.status.in_(sorted(OPEN_STATUSES)),
    )
    conn = await session.connection()
    histogram = {int(d): int(n) for d, n in await conn.execute(stmt)}
    return histogram, int((await conn.execute(waiting)).scalar_one())


_WAITING_STATUSES = sorted(status.value for status in reports.WAITS_ON)


async def spell_totals(
    session: AsyncSession, scope: Scope, f: CaseFilter, m: Municipality, today: date
) -> list[reports.SpellTotals]:
    """Per (status, department): the waiting periods of the filtered cases, finished and running, and
    their working days (a running one up to ``today``)."""
    spells = status_spells
    finished_totals = select(
        spells.c.status, spells.c.department, func.count(), func.sum(spells.c.working_days)
    ).group_by(spells.c.status, spells.c.department)
    if _joined(_where(scope, replace(f, since=None, until=None))):
        # The cases first, then their spells (the statuses nobody waits in are dropped by flows.reports):
        # a join lets SQLite walk all spells in status order instead.
        picked = select(initiatives.c.id).where(*_where(scope, f))
        finished_totals = finished_totals.where(spells.c.initiative_id.in_(picked))
    elif f.since is None and f.until is None:  # everyone's cases, all of them
        finished_totals = finished_totals.where(spells.c.status.in_(_WAITING_STATUSES))
    else:  # everyone's cases of a period: the spells know their day of submission (ix_status_spells_period;
        # a clause on the status would send SQLite through ix_status_spells_waits to every row)
        if f.since is not None:
            finished_totals = finished_totals.where(spells.c.submitted_on >= f.since)
        if f.until is not None:
            finished_totals = finished_totals.where(spells.c.submitted_on <= f.until)
    running = (
        select(
            initiatives.c.status,
            initiatives.c.department,
            initiatives.c.status_on,
            func.count().label("n"),
        )
        .where(*_where(scope, f), initiatives.c.status.in_(_WAITING_STATUSES))
        .group_by(initiatives.c.status, initiatives.c.department, initiatives.c.status_on)
        .subquery()
    )
    now_ordinal = (
        select(working_day_ordinals.c.ordinal)
        .where(working_day_ordinals.c.municipality_code == m.code, working_day_ordinals.c.day == today)
        .scalar_subquery()
    )
    cs = _calendar("rs")
    running_totals = (
        select(
            running.c.status,
            running.c.department,
            func.sum(running.c.n),
            func.sum(running.c.n * (now_ordinal - cs.c.ordinal)),
        )
        .select_from(
            running.join(cs, and_(cs.c.municipality_code == m.code, cs.c.day == running.c.status_on))
        )
        .group_by(running.c.status, running.c.department)
    )
    conn = await session.connection()
    out = [
        reports.SpellTotals(status, department, int(n), int(days or 0))
        for status, department, n, days in await conn.execute(finished_totals)
    ]
    out.extend(
        reports.SpellTotals(status, department, int(n), int(days or 0), running=int(n))
        for status, department, n, days in await conn.execute(running_totals)
    )
    return out


def _questions_of(scope: Scope, f: CaseFilter) -> Any:
    """Department questions about the cases in ``scope`` and ``f`` (its period left aside)."""
    q = department_questions
    cases = _joined([scope_clause(scope), *filter_clauses(replace(f, since=None, until=None))])
    if not cases:
        return q
    return q.join(initiatives, and_(initiatives.c.id == q.c.initiative_id, *cases))


async def department_answers(
    session: AsyncSession, scope: Scope, f: CaseFilter
) -> list[reports.AnswerTotals]:
    """The answers departments gave in the filter's period (final, or forwarded as not theirs) about the
    filtered cases, per department, working days and verdict."""
    q = department_questions
    answered = func.coalesce(q.c.answered_at, q.c.closed_at)
    clauses = [
        q.c.state.in_((QuestionState.ANSWERED.value, QuestionState.FORWARDED.value)),
        q.c.answer_working_days.is_not(None),
    ]
    if f.since is not None:
        clauses.append(answered >= day_start(f.since))
    if f.until is not None:
        clauses.append(answered < day_start(f.until + timedelta(days=1)))
    keys = (q.c.department, q.c.state, q.c.answer_working_days, q.c.answered_within_norm)
    stmt = select(*keys, func.count()).select_from(_questions_of(scope, f)).where(*clauses).group_by(*keys)
    conn = await session.connection()
    return [
        reports.AnswerTotals(department, state == QuestionState.ANSWERED, int(days), within, int(n))
        for department, state, days, within, n in await conn.execute(stmt)
    ]


async def open_department_questions(
    session: AsyncSession, scope: Scope, f: CaseFilter
) -> list[QuestionFacts]:
    """The questions about the filtered cases that wait on a department or its broker now."""
    q = department_questions
    stmt = (
        select(q.c.id, q.c.department, q.c.state, q.c.clock_started_at, q.c.promised_on)
        .select_from(_questions_of(scope, f))
        .where(q.c.state.in_(sorted(ACTIVE_STATES)))
    )
    conn = await session.connection()
    return [QuestionFacts(*row) for row in await conn.execute(stmt)]


def _stall_candidates(m: Municipality, now: datetime) -> ColumnElement[bool]:
    """Open cases whose status clock or silence clock has run long enough for the first step of the
    smallest norm that could apply: a necessary condition for a stall, so few rows reach Python."""

    def started_before(n: int) -> datetime:
        return day_start(reports.latest_start(m, n, now) + timedelta(days=1))

    quiet = started_before(m.no_sign_of_life_days)
    status_clauses: list[ColumnElement[bool]] = []
    for status in sorted(OPEN_STATUSES):
        norms = [norm_for(m, status, None)]
        if status == Status.BIJ_GEMEENTE:
            norms += [norm_for(m, status, d.code) for d in m.departments]
        known = [n for n in norms if n is not None]
        if known:
            status_clauses.append(
                and_(
                    initiatives.c.status == status,
                    initiatives.c.status_changed_at < started_before(min(known)),
                )
            )
    acted, assigned = initiatives.c.last_broker_action_at, initiatives.c.assigned_at
    silence = and_(
        initiatives.c.broker_id.is_not(None),
        or_(assigned.is_(None), assigned < quiet),
        or_(acted.is_(None), acted < quiet),
        or_(assigned.is_not(None), acted.is_not(None), initiatives.c.status_changed_at < quiet),
    )
    return and_(initiatives.c.status.in_(sorted(OPEN_STATUSES)), or_(*status_clauses, silence))


async def stall_candidates(
    session: AsyncSession, scope: Scope, f: CaseFilter, m: Municipality, now: datetime
) -> list[reports.CaseFacts]:
    """The open cases that may be stalled at ``now`` (``flows.reports.stalled`` decides)."""
    stmt = (
        select(
            initiatives.c.reference,
            initiatives.c.title,
            initiatives.c.wijk_code,
            staff.c.name,
            initiatives.c.status,
            initiatives.c.status_changed_at,
            initiatives.c.department,
            initiatives.c.broker_id,
            initiatives.c.assigned_at,
            initiatives.c.last_broker_action_at,
        )
        .select_from(initiatives.outerjoin(staff, staff.c.id == initiatives.c.broker_id))
        .where(*_where(scope, f), _stall_candidates(m, now))
    )
    conn = await session.connection()
    return [
        reports.CaseFacts(
            reference,
            title,
            wijk,
            broker,
            StallFacts(status, changed, department, broker_id, assigned, acted),
        )
        for reference, title, wijk, broker, status, changed, department, broker_id, assigned, acted in (
            await conn.execute(stmt)
        )
    ]
