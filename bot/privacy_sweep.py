"""The retention sweep: what the consent text promises, done. Ended initiatives are anonymised after the
retention period; an untouched draft gets one reminder and is deleted some days later, and a person the bot
then keeps nothing for is forgotten; sent messages lose their contents; old update ids, expired invitations
and idle send gates go.

Every kind is a range scan over what has come due (``storage.retention``), a batch per transaction; the
reminders go out through the outbox after their batch's commit. The watchdog runs it on every round.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Translator
from bot.notifications import enqueue_calls, language_of
from bot.outbox import SEND_LEASE, Outbox
from bot.telegram_io import ApiCall, render_reply
from flows.municipality import Municipality
from flows.privacy import ENDED_STATUSES, cutoffs, draft_reminder
from flows.resident import Conversation
from flows.stalls import AMSTERDAM
from storage import people as people_store
from storage import retention as store
from storage.erasure import anonymise_initiatives
from storage.outbox import OutboxRow
from storage.retention import IdleConversation
from storage.sql import DueRange
from storage.tables import processed_updates, staff_invites

DEFAULT_BATCH = 500
# Anonymising a case touches its timeline, notes, mails and outbox rows: smaller batches keep each
# transaction (and SQLite's one writer) short.
INITIATIVE_BATCH = 100


@dataclass(frozen=True)
class PrivacyReport:
    """What one retention sweep did, per kind; in a dry run, what it would have done."""

    as_of: datetime
    dry_run: bool
    anonymised: int = 0  # ended initiatives anonymised
    reminded: int = 0  # drafts reminded
    drafts_deleted: int = 0  # reminded drafts deleted
    conversations_deleted: int = 0  # idle conversations without a draft deleted
    people_forgotten: int = 0  # people deleted: the bot kept nothing else for them
    payloads_cleared: int = 0  # sent Telegram messages whose contents were cleared
    mails_cleared: int = 0  # sent e-mails whose subject and body were cleared
    updates_removed: int = 0  # processed update ids removed
    invites_removed: int = 0  # expired, unused staff invitations removed
    gates_removed: int = 0  # idle chats' send gates removed
    queued: int = 0  # reminder messages queued
    # Wall time of each pass in milliseconds, by the table it reads (for the log and the benchmark).
    pass_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> int:
        """Rows changed (or, in a dry run, to change), all kinds together."""
        return sum(getattr(self, name) for name, _ in LABELS)

    def summary(self) -> str:
        """One line for the log: the kinds with something done."""
        done = [f"{getattr(self, name)} {label}" for name, label in LABELS if getattr(self, name)]
        return "; ".join(done) if done else "nothing due"

    def table(self) -> str:
        """A plain-text table for operators: one line per kind, then what the sweep was."""
        width = max(len(label) for _, label in LABELS)
        lines = [f"{'what':<{width}}  {'count':>7}"]
        lines += [f"{label:<{width}}  {getattr(self, name):>7,}" for name, label in LABELS]
        moment = self.as_of.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")
        tail = f"retention sweep as of {moment} Europe/Amsterdam"
        tail += "; dry run: nothing changed or sent" if self.dry_run else f"; {self.queued} reminders queued"
        return "\n".join([*lines, tail])


LABELS: tuple[tuple[str, str], ...] = (
    ("anonymised", "ended initiatives anonymised"),
    ("reminded", "drafts reminded"),
    ("drafts_deleted", "reminded drafts deleted"),
    ("conversations_deleted", "idle conversations deleted"),
    ("people_forgotten", "people forgotten"),
    ("payloads_cleared", "sent messages cleared"),
    ("mails_cleared", "sent e-mails cleared"),
    ("updates_removed", "update ids removed"),
    ("invites_removed", "expired invitations removed"),
    ("gates_removed", "idle send gates removed"),
)
assert {name for name, _ in LABELS} | {"as_of", "dry_run", "queued", "pass_ms"} == {
    f.name for f in fields(PrivacyReport)
}

Handler = Callable[[AsyncSession, Sequence[tuple[Any, ...]]], Awaitable[list[OutboxRow]]]


class PrivacySweep:
    """Sweeps for data past its retention period; ``outbox`` sends the reminders after commit (None:
    they stay queued for the outbox's own sweep)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        municipality: Municipality,
        translator: Translator,
        clock: Callable[[], datetime],
        *,
        outbox: Outbox | None = None,
        lease: timedelta = SEND_LEASE,
    ) -> None:
        self._sessions = sessions
        self._m = municipality
        self._tr = translator
        self._clock = clock
        self._outbox = outbox
        self._lease = lease

    async def sweep(
        self, *, as_of: datetime | None = None, dry_run: bool = False, batch: int = DEFAULT_BATCH
    ) -> PrivacyReport:
        """One sweep as if it were ``as_of`` (default: now); the marks it sets (anonymised, reminded,
        cleared) carry that moment. ``dry_run`` changes, queues and sends nothing and reports what a
        sweep would do."""
        as_of = as_of if as_of is not None else self._clock()
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")
        due = cutoffs(self._m.retention, as_of)
        counts: dict[str, int] = {name: 0 for name, _ in LABELS} | {"queued": 0}
        timings: dict[str, float] = {}

        async def ended(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[OutboxRow]:
            ids = [int(row[1]) for row in rows]
            residents = {int(row[2]) for row in rows if row[2]}
            if dry_run:
                counts["anonymised"] += len(ids)
                gone = await store.forgettable(session, residents, leaving_initiatives=ids)
                counts["people_forgotten"] += len(gone)
                return []
            counts["anonymised"] += await anonymise_initiatives(session, ids, now=as_of, reason="retention")
            counts["people_forgotten"] += await store.forget_people(session, residents, now=as_of)
            return []

        async def drop_chats(session: AsyncSession, chats: list[int], users: set[int]) -> None:
            """Delete these conversations and forget the people the bot then keeps nothing for (a dry
            run counts who would go)."""
            if dry_run:
                gone = await store.forgettable(session, users, leaving_chats=chats)
                counts["people_forgotten"] += len(gone)
                return
            await store.delete_conversations(session, chats)
            counts["people_forgotten"] += await store.forget_people(session, users, now=as_of)

        async def idle(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[OutboxRow]:
            found = [IdleConversation(*row) for row in rows]
            drafts = [c for c in found if c.has_draft]
            bare = [c for c in found if not c.has_draft]
            counts["reminded"] += len(drafts)
            counts["conversations_deleted"] += len(bare)
            await drop_chats(session, [c.chat_id for c in bare], {c.user_id for c in bare})
            if dry_run:
                return []
            await store.mark_reminded(session, [c.chat_id for c in drafts], now=as_of)
            return await self._remind(session, drafts, counts)

        async def reminded(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[OutboxRow]:
            chats = [int(row[1]) for row in rows]
            counts["drafts_deleted"] += len(chats)
            await drop_chats(session, chats, {int(row[2]) for row in rows})
            return []

        def cleared(name: str, clear: Callable[..., Awaitable[None]]) -> Handler:
            async def handle(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[OutboxRow]:
                counts[name] += len(rows)
                if not dry_run:
                    await clear(session, [row[1] for row in rows], now=as_of)
                return []

            return handle

        def removed(name: str, remove: Callable[[AsyncSession, list[Any]], Awaitable[int]]) -> Handler:
            async def handle(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[OutboxRow]:
                keys = [row[1] for row in rows]
                counts[name] += len(keys) if dry_run else await remove(session, keys)
                return []

            return handle

        async def updates(session: AsyncSession, keys: list[Any]) -> int:
            return await store.delete_rows(session, processed_updates, processed_updates.c.update_id, keys)

        async def invites(session: AsyncSession, keys: list[Any]) -> int:
            return await store.delete_rows(session, staff_invites, staff_invites.c.code, keys)

        async def gates(session: AsyncSession, keys: list[Any]) -> int:
            return await store.delete_idle_gates(session, keys, cutoff=due.gate_idle)

        lock = not dry_run

        async def run(query: DueRange, cutoff: Any, size: int, handle: Handler, **params: Any) -> None:
            started = time.perf_counter()
            await self._pass(query, cutoff, size, lock, handle, **params)
            name = query.key.table.name
            timings[name] = timings.get(name, 0.0) + (time.perf_counter() - started) * 1000

        for status in sorted(ENDED_STATUSES):
            size = min(batch, INITIATIVE_BATCH)
            await run(store.ENDED_INITIATIVES, due.ended, size, ended, status=status.value)
        await run(store.REMINDED_DRAFTS, due.reminded, batch, reminded)
        await run(store.IDLE_CONVERSATIONS, due.untouched, batch, idle)
        await run(store.SENT_MESSAGES, due.sent, batch, cleared("payloads_cleared", store.clear_payloads))
        await run(store.SENT_MAILS, due.sent, batch, cleared("mails_cleared", store.clear_mail_bodies))
        await run(store.PROCESSED_UPDATES, due.processed, batch, removed("updates_removed", updates))
        await run(store.EXPIRED_INVITES, due.invite_expired, batch, removed("invites_removed", invites))
        await run(store.IDLE_GATES, due.gate_idle, batch, removed("gates_removed", gates))
        return PrivacyReport(as_of, dry_run, **counts, pass_ms=timings)

    async def _pass(
        self, query: DueRange, cutoff: Any, batch: int, lock: bool, handle: Handler, **params: Any
    ) -> None:
        """The rows due before ``cutoff``, a batch per transaction, paged on by (moment, key); each
        batch's messages are sent after its commit."""
        after: tuple[Any, Any] | None = None
        while True:
            async with self._sessions() as session, session.begin():
                rows = await query.fetch(
                    session, cutoff=cutoff, limit=batch, after=after, lock=lock, **params
                )
                queued = await handle(session, rows) if rows else []
            if queued and self._outbox is not None:
                await self._outbox.send(queued)
            if len(rows) < batch:
                return
            after = (rows[-1][0], rows[-1][1])

    async def _remind(
        self, session: AsyncSession, drafts: Sequence[IdleConversation], counts: dict[str, int]
    ) -> list[OutboxRow]:
        """Queue the reminder of each draft, in its resident's language (none to a person who blocked
        the bot: the draft is still deleted on time)."""
        if not drafts:
            return []
        people = await people_store.load_people(session, {c.user_id for c in drafts})
        calls: list[tuple[int, ApiCall]] = []
        for conv in drafts:
            person = people.get(conv.user_id)
            if person is not None and person.unreachable_at is not None:
                continue
            draft = Conversation.from_row("", conv.data, conv.updated_at).draft
            title = draft.answers.get("title") if draft is not None else None
            reply = draft_reminder(str(title) if title else None, self._m.retention)
            rendered = render_reply(
                reply, chat_id=conv.chat_id, message_id=None, tr=self._tr, language=language_of(person)
            )
            calls.extend((conv.chat_id, call) for call in rendered)
        if not calls:
            return []
        queued = await enqueue_calls(session, calls, self._clock(), lease=self._lease)
        counts["queued"] += len(queued)
        return queued
