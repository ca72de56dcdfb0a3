"""The retention sweep's due rows and what it does to them: each query an index range scan over what has
come due (the rows it changes leave the range), a batch at a time, row-locked FOR UPDATE SKIP LOCKED on
PostgreSQL so two sweeps never take the same row (SQLite leaves the clause out: one writer at a time).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.erasure import forget_chats
from storage.sql import DueRange
from storage.tables import (
    conversations,
    initiatives,
    mail_outbox,
    outbox,
    people,
    processed_updates,
    send_gates,
    staff,
    staff_invites,
)

# A chat's send gate; the global budget's gate ("global") is never idle and never removed.
CHAT_GATE_PREFIX = "chat:"


# --- ended initiatives -----------------------------------------------------------------------------

# Per final status (``status`` parameter): ended before the cutoff and not yet anonymised
# (ix_initiatives_retention (status, status_changed_at) WHERE anonymised_at IS NULL).
ENDED_INITIATIVES = DueRange(
    initiatives,
    initiatives.c.status_changed_at,
    initiatives.c.id,
    [initiatives.c.status_changed_at, initiatives.c.id, initiatives.c.resident_user_id],
    [initiatives.c.status == bindparam("status"), initiatives.c.anonymised_at.is_(None)],
)


# --- drafts and idle conversations -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdleConversation:
    """A conversation untouched since before the reminder's cutoff; ``data`` holds the draft, if any."""

    updated_at: datetime
    chat_id: int
    user_id: int
    step: str
    data: dict[str, Any]

    @property
    def has_draft(self) -> bool:
        # The dispatcher stores the draft's step, or "" when there is no draft.
        return bool(self.step)


# Untouched since the cutoff and not reminded yet (ix_conversations_updated_at).
IDLE_CONVERSATIONS = DueRange(
    conversations,
    conversations.c.updated_at,
    conversations.c.chat_id,
    [
        conversations.c.updated_at,
        conversations.c.chat_id,
        conversations.c.user_id,
        conversations.c.step,
        conversations.c.data,
    ],
    [conversations.c.draft_reminded_at.is_(None)],
)

# Reminded before the cutoff and untouched since (ix_conversations_draft_reminded_at, partial).
REMINDED_DRAFTS = DueRange(
    conversations,
    conversations.c.draft_reminded_at,
    conversations.c.chat_id,
    [conversations.c.draft_reminded_at, conversations.c.chat_id, conversations.c.user_id],
    [conversations.c.draft_reminded_at.is_not(None)],
)


async def mark_reminded(session: AsyncSession, chat_ids: Collection[int], *, now: datetime) -> None:
    """Remember that these chats got the reminder of their draft (any update of the chat clears it)."""
    if not chat_ids:
        return
    conn = await session.connection()
    await conn.execute(
        update(conversations)
        .where(conversations.c.chat_id.in_(bindparam("ids", expanding=True)))
        .values(draft_reminded_at=now),
        {"ids": sorted(chat_ids)},
    )


async def delete_conversations(session: AsyncSession, chat_ids: Collection[int]) -> int:
    """Delete these chats' conversations (their drafts with them)."""
    if not chat_ids:
        return 0
    conn = await session.connection()
    result = await conn.execute(
        delete(conversations).where(conversations.c.chat_id.in_(bindparam("ids", expanding=True))),
        {"ids": sorted(chat_ids)},
    )
    return int(result.rowcount or 0)


# --- people the bot keeps nothing for ----------------------------------------------------------------


def _kept_for(
    leaving_initiatives: Collection[int], leaving_chats: Collection[int]
) -> list[ColumnElement[bool]]:
    """Why a person stays: an initiative not anonymised, a conversation, or a staff post. Initiatives
    and chats in ``leaving_*`` count as gone already (what a dry run would remove)."""
    initiative = exists().where(
        initiatives.c.resident_user_id == people.c.telegram_user_id,
        initiatives.c.anonymised_at.is_(None),
        initiatives.c.id.not_in(bindparam("leaving_initiatives", expanding=True)),
    )
    chat = exists().where(
        conversations.c.chat_id == people.c.chat_id,
        conversations.c.chat_id.not_in(bindparam("leaving_chats", expanding=True)),
    )
    post = exists().where(staff.c.telegram_user_id == people.c.telegram_user_id, staff.c.removed_at.is_(None))
    return [~initiative, ~chat, ~post]


_FORGETTABLE = select(people.c.telegram_user_id).where(
    people.c.telegram_user_id.in_(bindparam("ids", expanding=True)), *_kept_for((), ())
)


async def forgettable(
    session: AsyncSession,
    user_ids: Collection[int],
    *,
    leaving_initiatives: Collection[int] = (),
    leaving_chats: Collection[int] = (),
) -> list[int]:
    """Of these people, those the bot keeps nothing for any more (no initiative that is not anonymised,
    no conversation, no staff post): they are strangers again."""
    if not user_ids:
        return []
    conn = await session.connection()
    result = await conn.execute(
        _FORGETTABLE,
        {
            "ids": sorted(user_ids),
            "leaving_initiatives": sorted(leaving_initiatives),
            "leaving_chats": sorted(leaving_chats),
        },
    )
    return sorted(int(row[0]) for row in result)


async def forget_people(session: AsyncSession, user_ids: Collection[int], *, now: datetime) -> int:
    """Delete the people among these the bot keeps nothing for, with their chat ids in the outbox and
    the send gates; returns how many went."""
    gone = await forgettable(session, user_ids)
    if not gone:
        return 0
    conn = await session.connection()
    who = people.c.telegram_user_id.in_(bindparam("ids", expanding=True))
    chats = [int(c) for (c,) in await conn.execute(select(people.c.chat_id).where(who), {"ids": gone})]
    await conn.execute(delete(people).where(who), {"ids": gone})
    await forget_chats(session, chats, now=now)
    return len(gone)


# --- message contents --------------------------------------------------------------------------------

# The partial indexes' own predicate, literally: SQLite uses a partial index only when the query's WHERE
# implies it, and a bound 'pending' would not.
_OUTBOX_KEPT = [
    outbox.c.status != literal_column("'pending'"),
    outbox.c.payload_cleared_at.is_(None),
]
_MAIL_KEPT = [
    mail_outbox.c.status != literal_column("'pending'"),
    mail_outbox.c.body_cleared_at.is_(None),
]

# Sent or failed messages queued before the cutoff whose payload is still there (ix_outbox_payload_kept).
SENT_MESSAGES = DueRange(
    outbox, outbox.c.created_at, outbox.c.id, [outbox.c.created_at, outbox.c.id], _OUTBOX_KEPT
)
# The same for e-mail (ix_mail_outbox_body_kept).
SENT_MAILS = DueRange(
    mail_outbox,
    mail_outbox.c.created_at,
    mail_outbox.c.id,
    [mail_outbox.c.created_at, mail_outbox.c.id],
    _MAIL_KEPT,
)


async def clear_payloads(session: AsyncSession, ids: Collection[int], *, now: datetime) -> None:
    """Empty these sent messages' payloads; the rows stay (what was sent when, to which chat)."""
    if not ids:
        return
    conn = await session.connection()
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(bindparam("ids", expanding=True)), *_OUTBOX_KEPT)
        .values(payload={}, payload_cleared_at=now),
        {"ids": sorted(ids)},
    )


async def clear_mail_bodies(session: AsyncSession, ids: Collection[int], *, now: datetime) -> None:
    """Empty these sent e-mails' subject and body; the rows stay (what was sent when, to whom)."""
    if not ids:
        return
    conn = await session.connection()
    await conn.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id.in_(bindparam("ids", expanding=True)), *_MAIL_KEPT)
        .values(subject="", body="", body_cleared_at=now),
        {"ids": sorted(ids)},
    )


# --- bookkeeping: processed updates, invitations, send gates -----------------------------------------

# Update ids handled before the cutoff (ix_processed_updates_processed_at).
PROCESSED_UPDATES = DueRange(
    processed_updates,
    processed_updates.c.processed_at,
    processed_updates.c.update_id,
    [processed_updates.c.processed_at, processed_updates.c.update_id],
)

# Invitations never used that expired before the cutoff. staff_invites has no index on expires_at: the
# table holds a handful of rows (one per invitation ever made), so this reads it whole.
EXPIRED_INVITES = DueRange(
    staff_invites,
    staff_invites.c.expires_at,
    staff_invites.c.code,
    [staff_invites.c.expires_at, staff_invites.c.code],
    [staff_invites.c.used_at.is_(None)],
)

# Chats' send gates last used before the cutoff (Unix seconds) and not held since (ix_send_gates_tat).
IDLE_GATES = DueRange(
    send_gates,
    send_gates.c.tat,
    send_gates.c.key,
    [send_gates.c.tat, send_gates.c.key],
    [
        send_gates.c.key.startswith(CHAT_GATE_PREFIX, autoescape=True),
        or_(
            send_gates.c.held_until.is_(None),
            send_gates.c.held_until < bindparam("cutoff", type_=send_gates.c.tat.type),
        ),
    ],
)


async def delete_rows(session: AsyncSession, table: Table, key: Any, keys: Collection[Any]) -> int:
    """Delete the rows of ``table`` with these keys."""
    if not keys:
        return 0
    conn = await session.connection()
    result = await conn.execute(
        delete(table).where(key.in_(bindparam("keys", expanding=True))), {"keys": sorted(keys)}
    )
    return int(result.rowcount or 0)


async def delete_idle_gates(session: AsyncSession, keys: Collection[str], *, cutoff: float) -> int:
    """Delete these chats' send gates if still idle since before ``cutoff`` (a send may just have
    used one)."""
    if not keys:
        return 0
    conn = await session.connection()
    result = await conn.execute(
        delete(send_gates).where(
            and_(
                send_gates.c.key.in_(bindparam("keys", expanding=True)),
                send_gates.c.tat < bindparam("cutoff"),
                or_(send_gates.c.held_until.is_(None), send_gates.c.held_until < bindparam("cutoff")),
            )
        ),
        {"keys": sorted(keys), "cutoff": cutoff},
    )
    return int(result.rowcount or 0)


# Every due query by name, for EXPLAIN (tests, the benchmark).
DUE_QUERIES: dict[str, DueRange] = {
    "ended_initiatives": ENDED_INITIATIVES,
    "idle_conversations": IDLE_CONVERSATIONS,
    "reminded_drafts": REMINDED_DRAFTS,
    "sent_messages": SENT_MESSAGES,
    "sent_mails": SENT_MAILS,
    "processed_updates": PROCESSED_UPDATES,
    "expired_invites": EXPIRED_INVITES,
    "idle_gates": IDLE_GATES,
}
# The index each due query reads (expired invites read their small table whole).
DUE_INDEXES: dict[str, str] = {
    "ended_initiatives": "ix_initiatives_retention",
    "idle_conversations": "ix_conversations_updated_at",
    "reminded_drafts": "ix_conversations_draft_reminded_at",
    "sent_messages": "ix_outbox_payload_kept",
    "sent_mails": "ix_mail_outbox_body_kept",
    "processed_updates": "ix_processed_updates_processed_at",
    "idle_gates": "ix_send_gates_tat",
}
