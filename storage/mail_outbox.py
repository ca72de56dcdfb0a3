"""The e-mail outbox: mails queued in the transaction that caused them and sent after commit."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.tables import mail_outbox


@dataclass(frozen=True, slots=True)
class NewMail:
    """An e-mail to queue, already rendered (departments read Dutch)."""

    to_address: str
    to_name: str | None
    subject: str
    body: str
    kind: str
    initiative_id: int | None = None


@dataclass(frozen=True, slots=True)
class MailRow:
    id: int
    message_id: str
    to_address: str
    to_name: str | None
    subject: str
    body: str
    kind: str
    initiative_id: int | None
    status: str
    attempts: int
    not_before: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


_MAIL = sql.columns(mail_outbox, MailRow)


async def enqueue(
    session: AsyncSession,
    mails: Sequence[NewMail],
    *,
    now: datetime,
    domain: str,
    not_before: datetime | None = None,
) -> list[MailRow]:
    """Queue mails; each gets its Message-ID now (``<random@domain>``), so a resend is the same mail."""
    conn = await session.connection()
    out: list[MailRow] = []
    for mail in mails:
        result = await conn.execute(
            mail_outbox.insert()
            .values(
                message_id=f"<{secrets.token_hex(12)}@{domain}>",
                to_address=mail.to_address,
                to_name=mail.to_name,
                subject=mail.subject[:255],
                body=mail.body,
                kind=mail.kind,
                initiative_id=mail.initiative_id,
                status="pending",
                attempts=0,
                not_before=not_before or now,
                created_at=now,
            )
            .returning(*_MAIL)
        )
        out.append(MailRow(*result.one()))
    return out


_PENDING = (
    select(*_MAIL)
    .where(mail_outbox.c.status == "pending", mail_outbox.c.not_before <= bindparam("now"))
    .order_by(mail_outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


async def claim(
    session: AsyncSession, *, now: datetime, limit: int, until: datetime, skip: Collection[int] = ()
) -> list[MailRow]:
    """Take up to ``limit`` due mails, oldest first (but none in ``skip``), and keep them from other
    senders until ``until``."""
    conn = await session.connection()
    stmt = _PENDING.where(mail_outbox.c.id.not_in(list(skip))) if skip else _PENDING
    rows = [MailRow(*row) for row in await conn.execute(stmt, {"now": now, "limit": limit})]
    if rows:
        await conn.execute(
            update(mail_outbox).where(mail_outbox.c.id.in_([r.id for r in rows])).values(not_before=until)
        )
    return rows


async def mark_sent(session: AsyncSession, mail_id: int, now: datetime) -> None:
    conn = await session.connection()
    await conn.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id == mail_id)
        .values(status="sent", sent_at=now, last_error=None)
    )


async def defer(session: AsyncSession, mail_id: int, *, until: datetime, error: str) -> None:
    """Try again no earlier than ``until`` (the server is down, or said "try later")."""
    conn = await session.connection()
    await conn.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id == mail_id)
        .values(not_before=until, attempts=mail_outbox.c.attempts + 1, last_error=error[:500])
    )


async def mark_failed(session: AsyncSession, mail_id: int, error: str) -> None:
    """Give up on a mail for good (the server refused the address)."""
    conn = await session.connection()
    await conn.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id == mail_id)
        .values(status="failed", attempts=mail_outbox.c.attempts + 1, last_error=error[:500])
    )


async def mails(session: AsyncSession, *, initiative_id: int | None = None) -> list[MailRow]:
    """Queued and sent mails, oldest first (of one case, if given): for the case page and tests."""
    conn = await session.connection()
    stmt = select(*_MAIL)
    if initiative_id is not None:
        stmt = stmt.where(mail_outbox.c.initiative_id == initiative_id)
    return [MailRow(*row) for row in await conn.execute(stmt.order_by(mail_outbox.c.id))]


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending mail becomes due, or None when nothing waits."""
    conn = await session.connection()
    result = await conn.execute(
        select(func.min(mail_outbox.c.not_before)).where(mail_outbox.c.status == "pending")
    )
    return result.scalar_one_or_none()
