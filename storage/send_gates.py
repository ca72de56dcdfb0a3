"""Send gates: Telegram's budgets and the per-chat sender claim, shared by all processes."""

from __future__ import annotations

from sqlalchemy import Double, case, literal, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.tables import send_gates


def chat_gate_key(chat_id: int) -> str:
    return f"chat:{chat_id}"


GLOBAL_GATE_KEY = "global"


async def claim_chat(
    session: AsyncSession, chat_id: int, *, holder: str, now: float, until: float
) -> float | None:
    """Make ``holder`` the only sender to a chat until ``until`` (Unix seconds), if nobody else is;
    return the chat's budget time (``tat``), or None when another holder's claim still runs."""
    conn, dialect = await sql.connection(session)
    stmt = sql.insert(dialect, send_gates).values(
        key=chat_gate_key(chat_id), tat=0.0, holder=holder, held_until=until
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[send_gates.c.key],
        set_={"holder": holder, "held_until": until},
        where=or_(
            send_gates.c.holder.is_(None),
            send_gates.c.holder == holder,
            send_gates.c.held_until < now,
        ),
    ).returning(send_gates.c.tat)
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return None if value is None else float(value)


async def release_chat(session: AsyncSession, chat_id: int, *, holder: str, tat: float) -> bool:
    """Give up the claim on a chat and store its budget time; False if the claim had been taken over."""
    conn = await session.connection()
    result = await conn.execute(
        update(send_gates)
        .where(send_gates.c.key == chat_gate_key(chat_id), send_gates.c.holder == holder)
        .values(holder=None, held_until=None, tat=tat)
    )
    return bool(result.rowcount)


async def extend_claim(session: AsyncSession, chat_id: int, *, holder: str, until: float) -> bool:
    """Keep the claim on a chat until ``until``; False if it had run out and someone else took it."""
    conn = await session.connection()
    result = await conn.execute(
        update(send_gates)
        .where(send_gates.c.key == chat_gate_key(chat_id), send_gates.c.holder == holder)
        .values(held_until=until)
    )
    return bool(result.rowcount)


async def take_budget(
    session: AsyncSession, key: str, *, now: float, interval: float, tolerance: float, token: str
) -> float:
    """Take a slot of a shared budget at ``now`` if it has one (GCRA, one statement): 0.0 when taken,
    else how many seconds until it has one. Nothing is reserved ahead: a slot is used when taken.

    ``token`` (unique per call) marks the row when this call took the slot; that is how it knows.
    """
    conn, dialect = await sql.connection(session)
    at = literal(now, Double)
    conforms = send_gates.c.tat - literal(tolerance, Double) <= at
    start = case((send_gates.c.tat > at, send_gates.c.tat), else_=at)
    stmt = sql.insert(dialect, send_gates).values(key=key, tat=now + interval, holder=token)
    stmt = stmt.on_conflict_do_update(
        index_elements=[send_gates.c.key],
        set_={
            "tat": case((conforms, start + literal(interval, Double)), else_=send_gates.c.tat),
            "holder": case((conforms, literal(token)), else_=send_gates.c.holder),
        },
    ).returning(send_gates.c.tat, send_gates.c.holder)
    tat, holder = (await conn.execute(stmt)).one()
    if holder == token:
        return 0.0
    return max(float(tat) - tolerance - now, 0.001)  # never 0.0: that would mean "taken"
