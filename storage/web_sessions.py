"""The staff web's one-time login links and sessions; the database keeps only hashes of their secrets."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import staff, staff_login_links, staff_web_sessions

LOGIN_LINK_VALIDITY = timedelta(minutes=15)
SESSION_VALIDITY = timedelta(hours=8)
_TOKEN_BYTES = 32


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_login_link(
    session: AsyncSession, staff_id: int, *, now: datetime, valid: timedelta = LOGIN_LINK_VALIDITY
) -> str:
    """A new login token for ``staff_id``, usable once until ``now + valid``."""
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    conn = await session.connection()
    await conn.execute(
        staff_login_links.insert().values(
            token_hash=_hash(token), staff_id=staff_id, created_at=now, expires_at=now + valid, used_at=None
        )
    )
    return token


async def login_link_usable(session: AsyncSession, token: str, *, now: datetime) -> bool:
    """Whether ``token`` can still start a session (unused, not expired, its staff member not removed)."""
    conn = await session.connection()
    row = (
        await conn.execute(
            select(staff_login_links.c.staff_id)
            .select_from(staff_login_links.join(staff, staff.c.id == staff_login_links.c.staff_id))
            .where(
                staff_login_links.c.token_hash == _hash(token),
                staff_login_links.c.used_at.is_(None),
                staff_login_links.c.expires_at > now,
                staff.c.removed_at.is_(None),
            )
        )
    ).first()
    return row is not None


async def redeem_login_link(session: AsyncSession, token: str, *, now: datetime) -> int | None:
    """Use ``token`` once: the staff id it was made for, or None when unknown, used or expired."""
    conn = await session.connection()
    # The WHERE clause makes this atomic: a second use finds used_at set and updates nothing.
    row = (
        await conn.execute(
            update(staff_login_links)
            .where(
                staff_login_links.c.token_hash == _hash(token),
                staff_login_links.c.used_at.is_(None),
                staff_login_links.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(staff_login_links.c.staff_id)
        )
    ).first()
    return None if row is None else int(row[0])


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session: whose it is (the staff member's Telegram id) and the token its forms carry."""

    telegram_user_id: int
    csrf_token: str


async def start_session(
    session: AsyncSession, staff_id: int, *, now: datetime, valid: timedelta = SESSION_VALIDITY
) -> str:
    """A new session for ``staff_id`` until ``now + valid``; returns its secret id (for the cookie)."""
    session_id = secrets.token_urlsafe(_TOKEN_BYTES)
    conn = await session.connection()
    await conn.execute(
        staff_web_sessions.insert().values(
            id_hash=_hash(session_id),
            staff_id=staff_id,
            csrf_token=secrets.token_urlsafe(_TOKEN_BYTES),
            created_at=now,
            expires_at=now + valid,
            ended_at=None,
        )
    )
    return session_id


async def load_session(session: AsyncSession, session_id: str, *, now: datetime) -> WebSession | None:
    """The live session with this id; None when unknown, logged out, expired, or its staff was removed."""
    conn = await session.connection()
    row = (
        await conn.execute(
            select(staff.c.telegram_user_id, staff_web_sessions.c.csrf_token)
            .select_from(staff_web_sessions.join(staff, staff.c.id == staff_web_sessions.c.staff_id))
            .where(
                staff_web_sessions.c.id_hash == _hash(session_id),
                staff_web_sessions.c.ended_at.is_(None),
                staff_web_sessions.c.expires_at > now,
                staff.c.removed_at.is_(None),
            )
        )
    ).first()
    return None if row is None else WebSession(int(row[0]), str(row[1]))


async def end_session(session: AsyncSession, session_id: str, *, now: datetime) -> None:
    """Log out: the session is never valid again."""
    conn = await session.connection()
    await conn.execute(
        update(staff_web_sessions)
        .where(staff_web_sessions.c.id_hash == _hash(session_id), staff_web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
