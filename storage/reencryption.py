"""Re-encrypting stored contact details: once for plaintext written before encryption (at start-up), and
for a key rotation (``initiatiefbot privacy rotate-key``). Batches of one transaction each; a row that
changed meanwhile is left alone (whoever changed it wrote it under the newest key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, and_, bindparam, cast, func, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import crypto
from storage.models import JSONDocument, map_draft_contacts
from storage.tables import conversations, initiatives

# The columns as stored, without the encrypting column types in between.
_PHONE = type_coerce(initiatives.c.contact_phone, Text())
_EMAIL = type_coerce(initiatives.c.contact_email, Text())
_DATA = type_coerce(conversations.c.data, JSONDocument)

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class Counts:
    """How many initiatives and drafts got their contact details (re-)encrypted."""

    initiatives: int = 0
    drafts: int = 0


async def encrypt_plaintext(
    sessions: async_sessionmaker[AsyncSession], *, batch: int = DEFAULT_BATCH
) -> Counts:
    """Encrypt every contact detail still stored as plaintext; idempotent, and cheap once done."""
    return await _reencrypt(sessions, crypto.PREFIX, lambda stored: not crypto.is_encrypted(stored), batch)


async def rotate(sessions: async_sessionmaker[AsyncSession], *, batch: int = DEFAULT_BATCH) -> Counts:
    """Re-encrypt every contact detail that is not under the newest key (plaintext included); raises
    crypto.MissingKeyError for a value under a key this process lacks."""
    cipher = crypto.cipher()
    return await _reencrypt(
        sessions, cipher.current_prefix, lambda stored: not cipher.is_current(stored), batch
    )


async def _reencrypt(
    sessions: async_sessionmaker[AsyncSession], done_prefix: str, due: Callable[[str], bool], batch: int
) -> Counts:
    pattern = done_prefix + "%"
    rows = await _initiatives(sessions, pattern, due, batch)
    drafts = await _drafts(sessions, due, batch)
    return Counts(rows, drafts)


def _pending(column: Any, pattern: str) -> Any:
    return and_(column.is_not(None), column != "", column.not_like(pattern))


async def _initiatives(
    sessions: async_sessionmaker[AsyncSession], pattern: str, due: Callable[[str], bool], batch: int
) -> int:
    find = (
        select(initiatives.c.id, _PHONE, _EMAIL)
        .where(
            initiatives.c.id > bindparam("after"), or_(_pending(_PHONE, pattern), _pending(_EMAIL, pattern))
        )
        .order_by(initiatives.c.id)
        .limit(batch)
    )
    # Only while the row still holds what was read: an erasure meanwhile is not undone.
    change = (
        update(initiatives)
        .where(
            initiatives.c.id == bindparam("b_id"),
            func.coalesce(_PHONE, "") == func.coalesce(bindparam("b_old_phone", type_=Text()), ""),
            func.coalesce(_EMAIL, "") == func.coalesce(bindparam("b_old_email", type_=Text()), ""),
        )
        .values(contact_phone=bindparam("b_phone"), contact_email=bindparam("b_email"))
    )
    cipher = crypto.cipher()
    done, after = 0, 0
    while True:
        async with sessions() as session, session.begin():
            found = (await session.execute(find, {"after": after})).all()
            for row_id, phone, email in found:
                result = await session.execute(
                    change,
                    {
                        "b_id": row_id,
                        "b_old_phone": phone,
                        "b_old_email": email,
                        "b_phone": _redo(cipher, phone, due),
                        "b_email": _redo(cipher, email, due),
                    },
                )
                done += result.rowcount  # type: ignore[attr-defined]
        if len(found) < batch:
            return done
        after = found[-1][0]


def _redo(cipher: crypto.Cipher, stored: str | None, due: Callable[[str], bool]) -> str | None:
    if not stored or not due(stored):
        return stored
    return cipher.reencrypt(stored)


async def _drafts(sessions: async_sessionmaker[AsyncSession], due: Callable[[str], bool], batch: int) -> int:
    # Only drafts that hold a contact detail at all; Python decides which need work.
    find = (
        select(conversations.c.chat_id, conversations.c.version, _DATA)
        .where(
            conversations.c.chat_id > bindparam("after"),
            cast(_DATA, Text()).like('%"contact\\_%', escape="\\"),
        )
        .order_by(conversations.c.chat_id)
        .limit(batch)
    )
    change = (
        update(conversations)
        .where(
            conversations.c.chat_id == bindparam("b_chat"), conversations.c.version == bindparam("b_version")
        )
        .values(data=bindparam("b_data"))
    )
    cipher = crypto.cipher()
    done: int = 0
    after: int = -(2**63)
    while True:
        async with sessions() as session, session.begin():
            found = (await session.execute(find, {"after": after})).all()
            for chat_id, version, data in found:
                redone = map_draft_contacts(
                    data, lambda stored: cipher.reencrypt(stored) if due(stored) else stored
                )
                if redone == data:
                    continue
                result = await session.execute(
                    change, {"b_chat": chat_id, "b_version": version, "b_data": redone}
                )
                done += result.rowcount  # type: ignore[attr-defined]
        if len(found) < batch:
            return done
        after = found[-1][0]
