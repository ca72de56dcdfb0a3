"""Messages for other people than the one who acted: rendered in each recipient's language, then queued.

The dispatcher (after an update) and the watchdog (after a sweep) both send through here, so a broker
reads a reminder in the same language as a relayed message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from bot.outbox import SEND_LEASE
from bot.telegram_io import ApiCall, render_reply
from flows.cases import Notification
from flows.privacy import ERASED_ID
from flows.resident import DEFAULT_LANGUAGE, language_for
from storage import outbox as outbox_store
from storage import people as people_store
from storage.outbox import NewOutboxMessage, OutboxRow, OutboxStatus
from storage.people import PersonRow
from storage.sql import Db


def language_of(person: PersonRow | None) -> str:
    """The language to write to someone in: their choice, else Telegram's, else Dutch."""
    if person is None:
        return DEFAULT_LANGUAGE
    return language_for(person.language, person.telegram_language)


def render_notifications(
    notifications: Sequence[Notification], *, tr: Translator, people: Mapping[int, PersonRow]
) -> list[tuple[int, ApiCall]]:
    """The Bot API calls for ``notifications``, each in its recipient's language (``people`` by user id)."""
    calls: list[tuple[int, ApiCall]] = []
    for note in notifications:
        if note.chat_id == ERASED_ID:
            continue  # the initiator asked to be forgotten: nothing reaches them any more
        language = language_of(people.get(note.user_id))
        rendered = render_reply(note.reply, chat_id=note.chat_id, message_id=None, tr=tr, language=language)
        calls.extend((note.chat_id, call) for call in rendered)
    return calls


async def notification_calls(
    session: AsyncSession, notifications: Sequence[Notification], tr: Translator
) -> list[tuple[int, ApiCall]]:
    """Load the recipients' languages and render ``notifications``."""
    people = await people_store.load_people(session, {note.user_id for note in notifications})
    return render_notifications(notifications, tr=tr, people=people)


async def enqueue_calls(
    session: Db,
    calls: Sequence[tuple[int, ApiCall]],
    now: datetime,
    *,
    lease: timedelta = SEND_LEASE,
) -> list[OutboxRow]:
    """Queue the calls and return them as outbox rows, ready to send after commit; for ``lease`` only
    the caller's process sends them."""
    messages = [NewOutboxMessage(chat_id, c.method, c.payload) for chat_id, c in calls]
    # This process sends them right after commit; the sweep only takes them if that did not happen.
    ids = await outbox_store.enqueue_many(session, messages, now=now, not_before=now + lease)
    return [
        OutboxRow(
            row_id, chat_id, c.method, c.payload, OutboxStatus.PENDING.value, 0, now, now, None, None, None
        )
        for row_id, (chat_id, c) in zip(ids, calls, strict=True)
    ]


async def enqueue_for_sweep(
    session: AsyncSession, notifications: Sequence[Notification], tr: Translator, now: datetime
) -> None:
    """Render ``notifications`` and queue them with no lease: nobody sends them right after commit,
    the outbox sweep of any process does (for messages queued outside an update, e.g. by the outbox
    itself or the command line)."""
    await enqueue_calls(
        session, await notification_calls(session, notifications, tr), now, lease=timedelta(0)
    )
