"""Stall alerts: the watchdog's queue of due cases, the escalation steps recorded, coordinators' digests."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.initiatives import NEEDS_INDEX, CaseRow
from storage.tables import coordinator_digests, initiatives, stall_alerts

# (track, clock started at, level): the same shape as flows.stalls.AlertKey.
AlertKey = tuple[str, datetime, int]


@dataclass(frozen=True, slots=True)
class DueCaseRow(CaseRow):
    """A case whose ``next_alert_at`` has come: the watchdog should look at it."""

    next_alert_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewStallAlert:
    """A step of the escalation ladder to record."""

    initiative_id: int
    track: str
    started_at: datetime
    level: int
    skipped: bool


_DUE_CASE_COLUMNS = sql.columns(initiatives, DueCaseRow)
# Served by ix_initiatives_next_alert_at (next_alert_at, id): a batch reads no more than its own rows.
DUE_CASES = sql.DueQueue(initiatives, _DUE_CASE_COLUMNS)


def _due_case_row(row: Sequence[Any]) -> DueCaseRow:
    values = list(row)
    values[NEEDS_INDEX] = tuple(values[NEEDS_INDEX] or ())
    return DueCaseRow(*values)


async def due_cases(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
    lock: bool = True,
) -> list[DueCaseRow]:
    """Up to ``limit`` cases with ``next_alert_at <= now``, earliest first, row-locked (SKIP LOCKED).

    ``after`` is the (next_alert_at, id) of the last case of the previous batch, to page on.
    """
    rows = await DUE_CASES.rows(session, cutoff=now, limit=limit, after=after, lock=lock)
    return [_due_case_row(row) for row in rows]


_SENT_ALERTS = select(
    stall_alerts.c.initiative_id, stall_alerts.c.track, stall_alerts.c.clock_started_at, stall_alerts.c.level
).where(stall_alerts.c.initiative_id.in_(bindparam("ids", expanding=True)))


async def sent_alerts(session: AsyncSession, initiative_ids: Collection[int]) -> dict[int, set[AlertKey]]:
    """The recorded ladder steps (sent or skipped) of these initiatives; every id given is a key."""
    out: dict[int, set[AlertKey]] = {initiative_id: set() for initiative_id in initiative_ids}
    if not out:
        return out
    conn = await session.connection()
    result = await conn.execute(_SENT_ALERTS, {"ids": sorted(out)})
    for initiative_id, track, started_at, level in result:
        out[initiative_id].add((track, started_at, int(level)))
    return out


@cache
def _record_alert_stmt(dialect: str) -> Any:
    stmt = sql.insert(dialect, stall_alerts)
    return stmt.on_conflict_do_nothing(
        index_elements=["initiative_id", "track", "clock_started_at", "level"]
    ).returning(
        stall_alerts.c.initiative_id,
        stall_alerts.c.track,
        stall_alerts.c.clock_started_at,
        stall_alerts.c.level,
    )


def _alert_values(alert: NewStallAlert, now: datetime) -> dict[str, Any]:
    return {
        "initiative_id": alert.initiative_id,
        "track": str(alert.track),
        "clock_started_at": alert.started_at,
        "level": int(alert.level),
        "skipped": alert.skipped,
        "created_at": now,
    }


async def record_alert(
    session: AsyncSession,
    *,
    initiative_id: int,
    track: str,
    started_at: datetime,
    level: int,
    skipped: bool,
    now: datetime,
) -> bool:
    """Record one ladder step; True only for the transaction that inserted it (the one that sends it).

    On PostgreSQL a second transaction inserting the same step waits for the first and then gets False.
    """
    recorded = await record_alerts(
        session, [NewStallAlert(initiative_id, track, started_at, level, skipped)], now=now
    )
    return bool(recorded)


async def record_alerts(
    session: AsyncSession, alerts: Sequence[NewStallAlert], *, now: datetime
) -> set[tuple[int, AlertKey]]:
    """Record several ladder steps in one round trip; returns (initiative id, key) of those inserted here."""
    if not alerts:
        return set()
    conn, dialect = await sql.connection(session)
    result = await conn.execute(_record_alert_stmt(dialect), [_alert_values(a, now) for a in alerts])
    return {
        (initiative_id, (track, started_at, int(level))) for initiative_id, track, started_at, level in result
    }


_SET_NEXT_ALERT = (
    update(initiatives)
    .where(initiatives.c.id == bindparam("initiative_id"))
    .values(next_alert_at=bindparam("at", type_=initiatives.c.next_alert_at.type))
)


async def set_next_alert(session: AsyncSession, initiative_id: int, at: datetime | None) -> None:
    """When the watchdog should look at the case again; None when no clock runs (a final status)."""
    await set_next_alerts(session, [(initiative_id, at)])


async def set_next_alerts(session: AsyncSession, moments: Sequence[tuple[int, datetime | None]]) -> None:
    """:func:`set_next_alert` for several cases in one round trip."""
    if not moments:
        return
    conn = await session.connection()
    await conn.execute(_SET_NEXT_ALERT, [{"initiative_id": i, "at": at} for i, at in moments])


# --- coordinators' weekly digest ---------------------------------------------------------------


async def claim_digest(session: AsyncSession, *, staff_id: int, week_start: date, now: datetime) -> bool:
    """Record that this coordinator gets this week's digest; False when someone already sent it."""
    conn, dialect = await sql.connection(session)
    stmt = (
        sql.insert(dialect, coordinator_digests)
        .values(staff_id=staff_id, week_start=week_start, sent_at=now)
        .on_conflict_do_nothing(index_elements=["staff_id", "week_start"])
        .returning(coordinator_digests.c.staff_id)
    )
    return (await conn.execute(stmt)).first() is not None
