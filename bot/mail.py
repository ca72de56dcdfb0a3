"""E-mail to departments: queued in the transaction that causes it, sent after commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from flows.municipality import Municipality
from storage import mail_outbox
from storage.mail_outbox import MailRow, NewMail

# Set in a session's info when it queued mail: whoever commits it kicks the mailer.
QUEUED = "mail_queued"


def sender_domain(m: Municipality) -> str:
    """The domain of the Message-IDs: the sender's, else localhost."""
    return m.mail_from.rpartition("@")[2] or "localhost"


async def queue(
    session: AsyncSession, mails: Sequence[NewMail], m: Municipality, now: datetime
) -> list[MailRow]:
    """Queue ``mails`` in the session's transaction; they go out after commit."""
    if not mails:
        return []
    rows = await mail_outbox.enqueue(session, mails, now=now, domain=sender_domain(m))
    session.info[QUEUED] = True
    return rows


def queued(session: AsyncSession) -> bool:
    """Whether this session queued mail (the mailer should look after commit)."""
    return bool(session.info.get(QUEUED))
