"""Staff (brokers and coordinators), their one-time invites, brokers' loads and coordinators by wijk."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.tables import initiatives, people, staff, staff_invites


class StaffRole(StrEnum):
    """What a staff member does; the database refuses any other value."""

    BROKER = "broker"
    COORDINATOR = "coordinator"


@dataclass(frozen=True, slots=True)
class StaffRow:
    """A row of ``staff``; empty ``wijken`` or ``themes`` mean all of them."""

    id: int
    telegram_user_id: int
    name: str
    role: str
    wijken: tuple[str, ...]
    themes: tuple[str, ...]
    absent_until: date | None
    created_at: datetime
    removed_at: datetime | None

    @property
    def active(self) -> bool:
        """False once the person has been removed as staff."""
        return self.removed_at is None


_STAFF_COLUMNS = sql.columns(staff, StaffRow)


def _staff_row(row: Sequence[Any]) -> StaffRow:
    (staff_id, user_id, name, role, wijken, themes, absent_until, created_at, removed_at) = row
    return StaffRow(
        staff_id, user_id, name, role, tuple(wijken), tuple(themes), absent_until, created_at, removed_at
    )


def _codes(values: Collection[str]) -> list[str]:
    """Wijk or theme codes as stored: a JSON list in the given order, without repeats."""
    if isinstance(values, str):
        raise TypeError(f"expected a collection of codes, not the string {values!r}")
    return list(dict.fromkeys(str(value) for value in values))


@cache
def _add_staff_stmt(dialect: str) -> Any:
    stmt = sql.insert(dialect, staff)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["telegram_user_id"],
        set_={
            "name": excluded.name,
            "role": excluded.role,
            "wijken": excluded.wijken,
            "themes": excluded.themes,
            # Someone added again after removal starts present; an active person keeps a planned absence.
            "absent_until": case((staff.c.removed_at.is_(None), staff.c.absent_until)),
            "removed_at": None,
        },
    ).returning(*_STAFF_COLUMNS)


async def add_staff(
    session: AsyncSession,
    *,
    telegram_user_id: int,
    name: str,
    role: str,
    wijken: Collection[str],
    themes: Collection[str],
    now: datetime,
) -> StaffRow:
    """Make someone a staff member; a removed or existing one is reactivated with these details.

    A reactivated row keeps its id and ``created_at``, so the timeline keeps pointing at the same person.
    """
    conn, dialect = await sql.connection(session)
    result = await conn.execute(
        _add_staff_stmt(dialect),
        {
            "telegram_user_id": telegram_user_id,
            "name": name,
            "role": StaffRole(role).value,
            "wijken": _codes(wijken),
            "themes": _codes(themes),
            "absent_until": None,
            "created_at": now,
            "removed_at": None,
        },
    )
    return _staff_row(result.one())


_LOAD_ACTIVE_STAFF = select(*_STAFF_COLUMNS).where(
    staff.c.telegram_user_id == bindparam("user_id"), staff.c.removed_at.is_(None)
)


async def load_staff(session: AsyncSession, telegram_user_id: int) -> StaffRow | None:
    """Return the active staff member with this Telegram user id, or None (also for removed staff)."""
    conn = await session.connection()
    row = (await conn.execute(_LOAD_ACTIVE_STAFF, {"user_id": telegram_user_id})).first()
    return None if row is None else _staff_row(row)


async def staff_by_id(session: AsyncSession, staff_id: int) -> StaffRow | None:
    """Return the staff member with this id, removed or not (see ``StaffRow.active``)."""
    conn = await session.connection()
    row = (await conn.execute(select(*_STAFF_COLUMNS).where(staff.c.id == staff_id))).first()
    return None if row is None else _staff_row(row)


async def list_staff(session: AsyncSession, *, role: str | None = None) -> list[StaffRow]:
    """List the active staff, ordered by role and name; only one role when ``role`` is given."""
    stmt = select(*_STAFF_COLUMNS).where(staff.c.removed_at.is_(None))
    if role is not None:
        stmt = stmt.where(staff.c.role == StaffRole(role).value)
    conn = await session.connection()
    result = await conn.execute(stmt.order_by(staff.c.role, staff.c.name, staff.c.id))
    return [_staff_row(row) for row in result]


async def remove_staff(
    session: AsyncSession,
    *,
    staff_id: int | None = None,
    telegram_user_id: int | None = None,
    now: datetime,
) -> bool:
    """Remove an active staff member, found by id or by Telegram user id; False if there was none.

    The row stays (soft delete), so their timeline entries keep their name; their open cases are left to
    the caller (see ``hand_back_cases``).
    """
    if (staff_id is None) == (telegram_user_id is None):
        raise TypeError("give exactly one of staff_id and telegram_user_id")
    key = staff.c.id == staff_id if staff_id is not None else staff.c.telegram_user_id == telegram_user_id
    conn = await session.connection()
    result = await conn.execute(
        update(staff).where(key, staff.c.removed_at.is_(None)).values(removed_at=now).returning(staff.c.id)
    )
    return result.first() is not None


async def set_absent(session: AsyncSession, staff_id: int, until: date | None) -> None:
    """Record the last day of someone's absence; None means they are present again."""
    conn = await session.connection()
    await conn.execute(update(staff).where(staff.c.id == staff_id).values(absent_until=until))


# --- staff invites -----------------------------------------------------------------------------

INVITE_VALIDITY = timedelta(days=7)
# secrets.token_urlsafe(24) gives 32 characters from A-Z a-z 0-9 _ -, as a deep-link payload allows.
_INVITE_BYTES = 24


@dataclass(frozen=True, slots=True)
class InviteRow:
    """A row of ``staff_invites``: who the code makes staff member, and whether it was used."""

    code: str
    role: str
    name: str
    wijken: tuple[str, ...]
    themes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_user_id: int | None


_INVITE_COLUMNS = sql.columns(staff_invites, InviteRow)


def _invite_row(row: Sequence[Any]) -> InviteRow:
    (code, role, name, wijken, themes, created_at, expires_at, used_at, used_by) = row
    return InviteRow(code, role, name, tuple(wijken), tuple(themes), created_at, expires_at, used_at, used_by)


async def create_invite(
    session: AsyncSession,
    *,
    role: str,
    name: str,
    wijken: Collection[str],
    themes: Collection[str],
    now: datetime,
    valid: timedelta = INVITE_VALIDITY,
) -> InviteRow:
    """Store a new one-time invite with a random code that can be redeemed until ``now + valid``."""
    if valid <= timedelta(0):
        raise ValueError(f"an invite must be valid for some time, not {valid}")
    conn = await session.connection()
    result = await conn.execute(
        staff_invites.insert().returning(*_INVITE_COLUMNS),
        {
            "code": secrets.token_urlsafe(_INVITE_BYTES),
            "role": StaffRole(role).value,
            "name": name,
            "wijken": _codes(wijken),
            "themes": _codes(themes),
            "created_at": now,
            "expires_at": now + valid,
            "used_at": None,
            "used_by_user_id": None,
        },
    )
    return _invite_row(result.one())


async def load_invite(session: AsyncSession, code: str) -> InviteRow | None:
    """Return the invite with this code, used or expired or not, so the bot can say which."""
    conn = await session.connection()
    row = (await conn.execute(select(*_INVITE_COLUMNS).where(staff_invites.c.code == code))).first()
    return None if row is None else _invite_row(row)


# The WHERE clause makes redeeming atomic: on PostgreSQL a second transaction waits for the first's row
# lock, then re-checks used_at and updates nothing; SQLite's BEGIN IMMEDIATE runs them one after another.
_REDEEM_INVITE = (
    update(staff_invites)
    .where(
        staff_invites.c.code == bindparam("invite_code"),
        staff_invites.c.used_at.is_(None),
        staff_invites.c.expires_at > bindparam("now"),
    )
    .values(
        used_at=bindparam("used_now", type_=staff_invites.c.used_at.type),
        used_by_user_id=bindparam("user_id", type_=staff_invites.c.used_by_user_id.type),
    )
    .returning(staff_invites.c.role, staff_invites.c.name, staff_invites.c.wijken, staff_invites.c.themes)
)


async def redeem_invite(
    session: AsyncSession, code: str, *, telegram_user_id: int, now: datetime
) -> StaffRow | None:
    """Use an invite: the person becomes staff as the invite says; None if unknown, used or expired."""
    conn = await session.connection()
    result = await conn.execute(
        _REDEEM_INVITE, {"invite_code": code, "now": now, "used_now": now, "user_id": telegram_user_id}
    )
    row = result.first()
    if row is None:
        return None
    role, name, wijken, themes = row
    return await add_staff(
        session,
        telegram_user_id=telegram_user_id,
        name=name,
        role=role,
        wijken=wijken,
        themes=themes,
        now=now,
    )


# --- routing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerLoadRow:
    """An active broker with how busy they are: open cases and when they last got one."""

    staff_id: int
    name: str
    wijken: tuple[str, ...]
    themes: tuple[str, ...]
    open_cases: int
    last_assigned_at: datetime | None
    absent_until: date | None
    reachable: bool  # the bot can write to them: they sent it something and did not block it since


# A staff member the bot can write to: Telegram lets a bot message only people who opened it (any update
# makes a ``people`` row), and a 403 since then sets ``unreachable_at`` until they write again.
_REACHABLE = (
    exists()
    .where(people.c.telegram_user_id == staff.c.telegram_user_id, people.c.unreachable_at.is_(None))
    .correlate(staff)
)

# One row per active broker. The open cases are counted in the aggregate rather than in the join, so
# last_assigned_at covers all of a broker's cases: a broker with only finished cases still got one lately.
_BROKER_LOADS = (
    select(
        staff.c.id,
        staff.c.name,
        staff.c.wijken,
        staff.c.themes,
        func.count(
            case((initiatives.c.status.in_(bindparam("open_statuses", expanding=True)), initiatives.c.id))
        ),
        func.max(initiatives.c.assigned_at),
        staff.c.absent_until,
        _REACHABLE,
    )
    .select_from(staff.outerjoin(initiatives, initiatives.c.broker_id == staff.c.id))
    .where(staff.c.role == StaffRole.BROKER.value, staff.c.removed_at.is_(None))
    # Grouping by the primary key is enough: the other staff columns depend on it.
    .group_by(staff.c.id)
    .order_by(staff.c.name, staff.c.id)
)


async def broker_loads(session: AsyncSession, *, open_statuses: Collection[str]) -> list[BrokerLoadRow]:
    """Every active broker with their number of cases in ``open_statuses`` and their last assignment."""
    conn = await session.connection()
    result = await conn.execute(_BROKER_LOADS, {"open_statuses": sql.statuses(open_statuses)})
    return [
        BrokerLoadRow(
            staff_id,
            name,
            tuple(wijken),
            tuple(themes),
            int(count),
            last_assigned_at,
            absent_until,
            bool(reachable),
        )
        for (staff_id, name, wijken, themes, count, last_assigned_at, absent_until, reachable) in result
    ]


async def all_coordinators(session: AsyncSession) -> list[StaffRow]:
    """The active coordinators, ordered by name."""
    return await list_staff(session, role=StaffRole.COORDINATOR)


async def coordinators_for_wijk(session: AsyncSession, wijk_code: str | None) -> list[StaffRow]:
    """The coordinators who cover ``wijk_code`` (it is in their wijken, or their wijken are empty).

    All coordinators when the wijk is None or nobody covers it, so an alert always reaches someone.
    """
    return covering_coordinators(await all_coordinators(session), wijk_code)


def covering_coordinators(coordinators: Sequence[StaffRow], wijk_code: str | None) -> list[StaffRow]:
    """Those of ``coordinators`` who cover ``wijk_code``; all when the wijk is None or nobody does."""
    if wijk_code is None:
        return list(coordinators)
    covering = [c for c in coordinators if not c.wijken or wijk_code in c.wijken]
    return covering or list(coordinators)
