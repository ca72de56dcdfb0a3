"""The staff web's case list: filtered by scope and the viewer's choices, sorted, 50 a page, and what a
case page adds to the row (who is responsible now, the next norm date, the status history).

"Stalled" is decided in SQL with the same rule as ``flows.stalls.is_stalled`` (a clock has reached the
first step of its ladder at ``now``): for each norm the latest moment a clock may have started and be
due by now is worked out once, so the filter is a plain comparison of timestamps, no row is loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.lifecycle import FINAL, OPEN_STATUSES, Status, is_final
from flows.municipality import STATUS_CODES, STATUSES_WITHOUT_NORM, Municipality
from flows.stalls import (
    AMSTERDAM,
    Level,
    StallFacts,
    Standing,
    due_at,
    ladder,
    norm_for,
    standings,
    threshold,
)
from storage.reports import CaseFilter, Scope, filter_clauses, scope_clause
from storage.tables import initiative_events, initiatives, staff

PAGE_SIZE = 50
EXPORT_BATCH = 1000
STALLED = "stalled"


class SortKey(StrEnum):
    """The columns the list can be sorted on."""

    REFERENCE = "reference"
    SUBMITTED = "submitted"
    STATUS = "status"
    WIJK = "wijk"
    THEME = "theme"
    DAYS = "days"  # working days in the current status
    BROKER = "broker"


@dataclass(frozen=True)
class Sort:
    """A sort column and direction; ``parse`` reads ``"submitted"`` or ``"-submitted"`` (descending)."""

    key: SortKey = SortKey.SUBMITTED
    descending: bool = True

    @classmethod
    def parse(cls, value: str | None) -> Sort:
        """The sort in a query string; anything unknown gives the default (newest first)."""
        raw = (value or "").strip()
        descending = raw.startswith("-")
        try:
            return cls(SortKey(raw.lstrip("-")), descending)
        except ValueError:
            return cls()

    @property
    def param(self) -> str:
        return ("-" if self.descending else "") + self.key.value


@dataclass(frozen=True, slots=True)
class CaseListRow:
    """One line of the case list (no contact details: the list never shows them)."""

    id: int
    reference: str
    title: str
    wijk_code: str | None
    theme_code: str
    status: str
    status_changed_at: datetime
    created_at: datetime
    department: str | None
    broker_id: int | None
    broker_name: str | None
    assigned_at: datetime | None
    last_broker_action_at: datetime | None
    amount_cents: int | None
    neighbours: int | None

    @property
    def facts(self) -> StallFacts:
        return StallFacts.of(self)


@dataclass(frozen=True)
class CasePage:
    """One page of the list with the total number of matching cases."""

    rows: tuple[CaseListRow, ...]
    total: int
    page: int
    page_size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first(self) -> int:
        """The position of the first row on this page (1-based), 0 when the list is empty."""
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * self.page_size + len(self.rows)


_COLUMNS = (
    initiatives.c.id,
    initiatives.c.reference,
    initiatives.c.title,
    initiatives.c.wijk_code,
    initiatives.c.theme_code,
    initiatives.c.status,
    initiatives.c.status_changed_at,
    initiatives.c.created_at,
    initiatives.c.department,
    initiatives.c.broker_id,
    staff.c.name,
    initiatives.c.assigned_at,
    initiatives.c.last_broker_action_at,
    initiatives.c.amount_cents,
    initiatives.c.neighbours,
)
_CLOCKED = sorted(s.value for s in OPEN_STATUSES)
_FROM = initiatives.outerjoin(staff, staff.c.id == initiatives.c.broker_id)


# --- stalled: the watchdog's rule as timestamps ------------------------------------------------


@lru_cache(maxsize=4096)
def _latest_due_start(norm: int, now: datetime, closing_days: tuple[date, ...]) -> datetime:
    """The moment before which a clock of ``norm`` working days must have started to have reached its
    first ladder step (the reminder) at ``now``: midnight (Amsterdam) after the latest such start day."""
    days = threshold(norm, Level.REMINDER)
    day = now.astimezone(AMSTERDAM).date()
    # due_at only grows with the start day, so walk back from today to the first day that is due.
    while due_at(datetime.combine(day, time(12), tzinfo=AMSTERDAM), days, closing_days) > now:
        day -= timedelta(days=1)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=AMSTERDAM)


def stalled_clause(m: Municipality, now: datetime) -> ColumnElement[bool]:
    """Cases with a clock past its norm at ``now``: exactly those ``flows.stalls.is_stalled`` finds."""
    # Truncated to the minute so the cached cut-offs serve a minute's requests.
    now = now.replace(second=0, microsecond=0)
    closed = tuple(m.closing_days)
    parts: list[ColumnElement[bool]] = []
    for status in STATUS_CODES:
        norm = norm_for(m, status, None)
        # bij_gemeente has no status clock: the department's runs on its question (flows.department).
        if norm is None or status == Status.BIJ_GEMEENTE:
            continue
        in_status = initiatives.c.status == status
        parts.append(and_(in_status, initiatives.c.status_changed_at < _latest_due_start(norm, now, closed)))
    # No sign of life: the latest of the broker's last action and the assignment (else the status change).
    cut = _latest_due_start(m.no_sign_of_life_days, now, closed)
    action, assigned = initiatives.c.last_broker_action_at, initiatives.c.assigned_at
    no_clock = [s.value for s in FINAL] + [Status.AFGEWEZEN.value]
    parts.append(
        and_(
            initiatives.c.broker_id.is_not(None),
            initiatives.c.status.not_in(no_clock),
            or_(action.is_(None), action < cut),
            or_(assigned.is_(None), assigned < cut),
            or_(action.is_not(None), assigned.is_not(None), initiatives.c.status_changed_at < cut),
        )
    )
    # Only open statuses have a clock; saying so first lets the (status, status_changed_at) index
    # leave out the closed cases, most of a municipality's history.
    return and_(initiatives.c.status.in_(_CLOCKED), or_(false(), *parts))


# --- the list ---------------------------------------------------------------------------------


def where_clauses(scope: Scope, f: CaseFilter, m: Municipality, now: datetime) -> list[ColumnElement[bool]]:
    """Scope, the viewer's filter (wijk, theme, status, period) and, for status "stalled", the clock."""
    clauses = [scope_clause(scope), *filter_clauses(f)]
    if f.status == STALLED:
        clauses.append(stalled_clause(m, now))
    return clauses


def _rank(column: Any, codes: Sequence[str]) -> Any:
    """Sort ``column`` in the order of ``codes`` (names as shown), unknown and NULL codes last."""
    if not codes:
        return column
    return case({code: i for i, code in enumerate(codes)}, value=column, else_=len(codes))


_STATUS_ORDER = tuple(s.value for s in Status)


def order_by(sort: Sort, *, wijk_order: Sequence[str] = (), theme_order: Sequence[str] = ()) -> list[Any]:
    """The ORDER BY of ``sort``, the id last so pages never overlap. The reference sorts on the unique
    (municipality, year, number) index, so 10000 comes after 9999; the submission date on created_at
    (indexed by the overview's migration 0011); the other columns are a top-N sort of the matching rows.
    Wijk and theme sort in the order of ``wijk_order``/``theme_order`` (codes by their shown names)."""
    keys: list[Any]
    if sort.key is SortKey.REFERENCE:
        keys = [initiatives.c.municipality_code, initiatives.c.year, initiatives.c.seq]
    elif sort.key is SortKey.SUBMITTED:
        keys = [initiatives.c.created_at]
    elif sort.key is SortKey.STATUS:
        keys = [_rank(initiatives.c.status, _STATUS_ORDER), initiatives.c.status_changed_at]
    elif sort.key is SortKey.WIJK:
        keys = [_rank(initiatives.c.wijk_code, wijk_order)]
    elif sort.key is SortKey.THEME:
        keys = [_rank(initiatives.c.theme_code, theme_order)]
    elif sort.key is SortKey.DAYS:
        # More working days in the status means an earlier change: ascending days is descending time.
        keys = [
            initiatives.c.status_changed_at.desc() if not sort.descending else initiatives.c.status_changed_at
        ]
        return [*keys, initiatives.c.id.desc() if not sort.descending else initiatives.c.id]
    else:
        # Cases without a broker come last in either direction.
        keys = [case((staff.c.name.is_(None), 1), else_=0), func.lower(staff.c.name)]
        direction = [keys[0], keys[1].desc() if sort.descending else keys[1]]
        return [*direction, initiatives.c.id.desc() if sort.descending else initiatives.c.id]
    if sort.descending:
        return [k.desc() for k in keys] + [initiatives.c.id.desc()]
    return [*keys, initiatives.c.id]


def _select(clauses: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return select(*_COLUMNS).select_from(_FROM).where(*clauses)


async def count_cases(
    session: AsyncSession, scope: Scope, f: CaseFilter, m: Municipality, now: datetime
) -> int:
    """How many cases the viewer may see match the filter."""
    conn = await session.connection()
    stmt = select(func.count()).select_from(initiatives).where(*where_clauses(scope, f, m, now))
    return int((await conn.execute(stmt)).scalar_one())


async def case_page(
    session: AsyncSession,
    scope: Scope,
    f: CaseFilter,
    m: Municipality,
    *,
    sort: Sort,
    page: int,
    now: datetime,
    wijk_order: Sequence[str] = (),
    theme_order: Sequence[str] = (),
) -> CasePage:
    """One page of the filtered, sorted list: two statements, a count and a LIMIT, whatever the size.
    A page past the end gives the last page."""
    total = await count_cases(session, scope, f, m, now)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    stmt = (
        _select(where_clauses(scope, f, m, now))
        .order_by(*order_by(sort, wijk_order=wijk_order, theme_order=theme_order))
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    conn = await session.connection()
    rows = tuple(CaseListRow(*row) for row in await conn.execute(stmt))
    return CasePage(rows, total, page)


async def iter_cases(
    session: AsyncSession,
    scope: Scope,
    f: CaseFilter,
    m: Municipality,
    *,
    now: datetime,
    batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[CaseListRow]]:
    """Every matching case in batches, in order of submission (by id, keyset-paged: no OFFSET, so the
    last batch costs what the first does)."""
    clauses = where_clauses(scope, f, m, now)
    conn = await session.connection()
    after = 0
    while True:
        stmt = _select([*clauses, initiatives.c.id > after]).order_by(initiatives.c.id).limit(batch)
        rows = [CaseListRow(*row) for row in await conn.execute(stmt)]
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = rows[-1].id


@dataclass(frozen=True, slots=True)
class StatusStep:
    """A status change or hand-over on a case's history, for the days per status and department."""

    initiative_id: int
    at: datetime
    status: str
    department: str | None


async def status_history(session: AsyncSession, initiative_ids: Sequence[int]) -> dict[int, list[StatusStep]]:
    """The status changes of these cases, oldest first, by case id."""
    out: dict[int, list[StatusStep]] = {i: [] for i in initiative_ids}
    if not initiative_ids:
        return out
    conn = await session.connection()
    stmt = (
        select(
            initiative_events.c.initiative_id,
            initiative_events.c.at,
            initiative_events.c.status,
            initiative_events.c.department,
        )
        .where(
            initiative_events.c.initiative_id.in_(list(initiative_ids)),
            initiative_events.c.kind == "status",
            initiative_events.c.status.is_not(None),
        )
        .order_by(initiative_events.c.initiative_id, initiative_events.c.at, initiative_events.c.id)
    )
    for row in await conn.execute(stmt):
        out[row[0]].append(StatusStep(*row))
    return out


# --- what the case page shows beyond the row ---------------------------------------------------


class Holder(StrEnum):
    """Who has to act on a case now."""

    BROKER = "broker"
    DEPARTMENT = "department"
    COORDINATORS = "coordinators"  # no broker yet (or any more)
    NOBODY = "nobody"  # closed, or not approved: nobody is expected to act


@dataclass(frozen=True)
class Responsible:
    """Who is responsible for the case now, and since when."""

    holder: Holder
    since: datetime
    name: str | None = None  # the broker's name, or the department's code


def responsible(
    status: str,
    status_changed_at: datetime,
    created_at: datetime,
    *,
    broker_id: int | None,
    broker_name: str | None,
    assigned_at: datetime | None,
    department: str | None,
    unassigned_at: datetime | None = None,
) -> Responsible:
    """The department while the case waits on it (since the change to bij_gemeente); else the broker
    since the assignment; without one the coordinators since the broker left, or since submission."""
    if is_final(status) or status == Status.AFGEWEZEN:
        return Responsible(Holder.NOBODY, status_changed_at)
    if status == Status.BIJ_GEMEENTE and department:
        return Responsible(Holder.DEPARTMENT, status_changed_at, department)
    if broker_id is not None:
        return Responsible(Holder.BROKER, assigned_at or status_changed_at, broker_name)
    return Responsible(Holder.COORDINATORS, unassigned_at or created_at)


@dataclass(frozen=True)
class NormDate:
    """The status clock of a case: when its norm runs out (the reminder), where it stands, and the next
    ladder step still to come; ``stalled`` lists every clock past its norm (status and no sign of life)."""

    norm: int
    due: datetime
    standing: Standing
    next_step: tuple[Level, datetime] | None
    stalled: tuple[Standing, ...]


def norm_date(facts: StallFacts, m: Municipality, now: datetime) -> NormDate | None:
    """The case's norm date as the watchdog will act on it, or None for a status without a norm."""
    if facts.status in STATUSES_WITHOUT_NORM:
        return None
    found = [s for s in standings(facts, m, now)]
    status_clock = next((s for s in found if s.track.value == "status"), None)
    if status_clock is None:
        return None
    steps = ladder(status_clock.clock, m.closing_days)
    upcoming = next(((level, at) for level, at in steps if at > now), None)
    return NormDate(
        norm=status_clock.norm,
        due=steps[0][1],
        standing=status_clock,
        next_step=upcoming,
        stalled=tuple(s for s in found if s.level is not None),
    )
