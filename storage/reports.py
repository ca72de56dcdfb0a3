"""Read-only queries for coordinators' overviews and the staff web: who may see which cases, the
filters staff pick, and one row per initiative with what the pictures need."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from flows.lifecycle import OPEN_STATUSES, Status
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM
from flows.text import Msg, t
from storage.tables import initiative_events, initiatives, staff


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


_FIRST_CONTACT = (
    select(func.min(initiative_events.c.at))
    .where(
        initiative_events.c.initiative_id == initiatives.c.id,
        or_(
            initiative_events.c.kind == "message_to_resident",
            and_(initiative_events.c.kind == "status", initiative_events.c.status == "in_gesprek"),
        ),
    )
    .correlate(initiatives)
    .scalar_subquery()
)

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
        _FIRST_CONTACT,
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
