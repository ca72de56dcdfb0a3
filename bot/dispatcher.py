"""One transaction per update: claim it, load the chat, step the flow, run commands, queue replies, save."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.casework import Casework
from bot.command_menus import staff_menu_calls
from bot.data_export import export_replies
from bot.erasure import Erasure
from bot.flood import FloodGuard
from bot.i18n import Translator
from bot.logs import Pseudonyms
from bot.mail import queued as queued_mail
from bot.notifications import enqueue_calls, notification_calls
from bot.outbox import SEND_LEASE
from bot.telegram_io import ApiCall, render_notice, render_reply
from flows import broker, resident, stalls
from flows.cases import referenced_case
from flows.commands import (
    Command,
    ErasePerson,
    ExplainErasure,
    ExportMyData,
    RedeemInvite,
    SetLanguage,
    ShowMyInitiatives,
    SubmitInitiative,
    SyncStaffMenu,
)
from flows.events import Event, EventKind, Reply
from flows.flood import Verdict, slow_down
from flows.intake import intake_context
from flows.municipality import Municipality
from flows.resident import Context, Conversation, InitiativeLine, Outcome
from flows.resident_messages import MESSAGE_KINDS
from flows.text import t
from storage import conversations as conversations_store
from storage import erasure as erasure_store
from storage import initiatives as initiatives_store
from storage import outbox as outbox_store
from storage import people as people_store
from storage import staff as staff_store
from storage import updates as updates_store
from storage.db import transaction
from storage.initiatives import NewInitiative
from storage.outbox import OutboxRow
from storage.people import PersonRow
from storage.sql import Tx

log = logging.getLogger(__name__)

# people.last_seen_at is refreshed at most this often, to save a write on most updates.
LAST_SEEN_PRECISION = timedelta(hours=1)


@dataclass
class _Trace:
    """What the per-update log line says about an update, filled in while it is handled."""

    outcome: str = "ok"
    flow: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class Handled:
    """What one update led to: the queued messages to send after commit, the chats for which these
    were the whole queue when committed (``alone``: nothing older was waiting for them), and whether
    it queued e-mail (``mail``)."""

    outbox: tuple[OutboxRow, ...] = ()
    duplicate: bool = False
    alone: frozenset[int] = frozenset()
    mail: bool = False  # the transaction queued e-mail: kick the mailer after commit


class Dispatcher:
    """Runs the flows for incoming events, inside one database transaction each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        municipality: Municipality,
        translator: Translator,
        clock: Callable[[], datetime],
        flood: FloodGuard | None = None,
        *,
        lease: timedelta = SEND_LEASE,
        pseudonyms: Pseudonyms | None = None,
        sends_alone: bool = False,
        web_url: str = "http://localhost:8080",
    ) -> None:
        self._sessions = sessions
        # Whether this process is the bot's only sender: then it may send a chat's fresh messages
        # without reading the chat's queue again, if nothing older waits (see ``Handled.alone``).
        self._sends_alone = sends_alone
        self._pseudonym = pseudonyms if pseudonyms is not None else Pseudonyms()
        self._municipality = municipality
        self._tr = translator
        self._clock = clock
        self._lease = lease
        self._flood = flood if flood is not None else FloodGuard()  # an empty guard is falsy (__len__)
        self._flow_ctx = intake_context(municipality)
        self._casework = Casework(municipality, self._pseudonym, web_url=web_url, translator=translator)
        self._erasure = Erasure(self._casework)
        self._first_steps_days = stalls.first_contact_days(municipality)
        # At start-up, not in the first submission: the holiday calendars take a while to load.
        stalls.load_calendar(clock().year)

    @property
    def casework(self) -> Casework:
        """The case rules the flows' commands run through (the staff web uses the same)."""
        return self._casework

    async def handle(self, event: Event, update_id: int | None = None) -> Handled:
        """Process one event; an ``update_id`` seen before is skipped (Telegram may deliver twice)."""
        started = time.perf_counter()
        trace = _Trace()
        try:
            # The hot statements run on the connection itself (on SQLite: straight on sqlite3).
            async with transaction(self._sessions) as (tx, session):
                now = self._clock()
                if update_id is not None and not await updates_store.claim_update(tx, update_id, now):
                    trace.outcome = "duplicate"
                    return Handled(duplicate=True)
                verdict = self._flood.check(event.user_id, now)
                # Staff are never limited; asked only when over the limit, so residents' normal
                # traffic costs no extra query.
                flooding = verdict is not Verdict.ALLOW
                if flooding and await staff_store.load_staff(session, event.user_id) is None:
                    trace.outcome = "flood_notice" if verdict is Verdict.NOTIFY else "flood_dropped"
                    # Claimed above, so not redelivered; the flow and the draft are not touched.
                    if verdict is Verdict.DROP:
                        return Handled()
                    return await self._handled(tx, await self._slow_down(tx, event, now))
                handled = await self._handled(tx, await self._process(session, tx, event, now, trace))
                return replace(handled, mail=queued_mail(session))
        except Exception:
            trace.outcome = "error"
            # Only the id: never the event or the Update, which hold what the person typed.
            log.exception("update failed", extra={"event": "update_error", "update_id": update_id})
            return await self._apologise(event, update_id)
        finally:
            if log.isEnabledFor(logging.INFO):  # the pseudonym is an HMAC: not for a line nobody reads
                self._log_update(event, update_id, trace, started)

    def _log_update(self, event: Event, update_id: int | None, trace: _Trace, started: float) -> None:
        ms = round((time.perf_counter() - started) * 1000, 1)
        # Never the text, the name or contact details: only what helps to trace a problem.
        log.info(
            "update=%s kind=%s flow=%s step=%s outcome=%s ms=%.1f",
            update_id,
            event.kind.value,
            trace.flow,
            trace.step,
            trace.outcome,
            ms,
            extra={
                "event": "update",
                "update_id": update_id,
                "user": self._pseudonym(event.user_id),
                "kind": event.kind.value,
                "flow": trace.flow,
                "step": trace.step,
                "outcome": trace.outcome,
                "ms": ms,
            },
        )

    async def _handled(self, tx: Tx, rows: list[OutboxRow]) -> Handled:
        if not rows or not self._sends_alone:
            return Handled(outbox=tuple(rows))
        firsts: dict[int, int] = {}
        for row in rows:  # in id order: the first row of each chat
            firsts.setdefault(row.chat_id, row.id)
        older = await outbox_store.backlogged(tx, firsts)
        return Handled(outbox=tuple(rows), alone=frozenset(firsts.keys() - older))

    async def _slow_down(self, tx: Tx, event: Event, now: datetime) -> list[OutboxRow]:
        language = resident.language_for(None, event.language_code)
        calls = render_reply(
            slow_down(), chat_id=event.chat_id, message_id=None, tr=self._tr, language=language
        )
        return await enqueue_calls(tx, [(event.chat_id, c) for c in calls], now, lease=self._lease)

    async def _process(
        self, session: AsyncSession, tx: Tx, event: Event, now: datetime, trace: _Trace
    ) -> list[OutboxRow]:
        row, person = await conversations_store.load_chat(tx, event.chat_id, event.user_id)
        if person is None or _outdated(person, event, now):
            person = await people_store.upsert_person(
                tx,
                user_id=event.user_id,
                chat_id=event.chat_id,
                first_name=event.first_name,
                telegram_language=event.language_code,
                now=now,
            )
        conv = (
            Conversation.from_row(row.flow, row.data, row.updated_at) if row is not None else Conversation()
        )
        ctx = Context(now=now, flow=self._flow_ctx, first_steps_days=self._first_steps_days)
        staff = None
        if broker.may_concern_staff(event, conv.pending) or resident.may_start_an_idea(conv, event):
            # Free text outside a question starts an idea, but not for staff (their chat is for cases).
            staff = await self._casework.staff(session, event.user_id)
            ctx = replace(ctx, is_staff=staff is not None)
        reference = referenced_case(event, conv.pending)
        if reference is None and conv.pending is not None and event.kind in MESSAGE_KINDS:
            reference = conv.pending.reference  # a photo, voice note or document after "Reply"
        case = await self._casework.case(session, reference) if reference else None
        out = broker.handle(conv, event, staff, case, self._casework.context(now)) if staff else None
        if out is None:
            if staff is None and broker.may_concern_staff(event, None):
                log.warning("staff action refused: user=%s is not staff", self._pseudonym(event.user_id))
            talk = (
                await self._casework.talk(session, event, now) if resident.needs_talk(conv, event) else None
            )
            out = resident.handle(conv, event, ctx, case, talk)
        language = resident.language_for(person.language, person.telegram_language)
        forget = False
        menus: list[tuple[int, ApiCall]] = []  # a staff member's command menu, after the replies
        for command in out.commands:
            if isinstance(command, SetLanguage | ShowMyInitiatives | SubmitInitiative | ExportMyData):
                out, language = await self._run(session, command, out, event, ctx, language, now)
                if isinstance(command, SetLanguage):  # a staff member's menu follows their language
                    member = await staff_store.load_staff(session, event.user_id)
                    if member is not None:
                        menus += await staff_menu_calls(session, event.user_id, member.role, self._tr)
            elif isinstance(command, ExplainErasure):
                out = replace(
                    out, replies=(*out.replies, await self._erasure.explain(session, event.user_id))
                )
            elif isinstance(command, ErasePerson):
                erased = await self._erasure.erase(session, command, user_id=event.user_id, now=now)
                notes = (*out.notifications, *erased.notifications)
                out = replace(out, replies=(*out.replies, erased.reply), notifications=notes)
                forget = erased.forgotten
            elif isinstance(command, SyncStaffMenu):
                if staff is not None:
                    menus += await staff_menu_calls(session, event.user_id, staff.role, self._tr)
            else:
                out = await self._casework.run(
                    session, command, out, event=event, staff=staff, case=case, now=now
                )
                if isinstance(command, RedeemInvite):
                    # A redeemed invitation may have made them staff or changed their role.
                    became = await staff_store.load_staff(session, event.user_id)
                    if became is not None:
                        menus += await staff_menu_calls(session, event.user_id, became.role, self._tr)
        conv = out.conversation
        trace.flow, trace.step = conv.mode, conv.draft.step if conv.draft else None
        if forget:
            # Last, but before the goodbye is queued: it is the only message the chat keeps, and the
            # outbox wipes it once sent. Nothing is saved for the chat: the person is a stranger now.
            await erasure_store.forget_person(tx, user_id=event.user_id, chat_id=event.chat_id, now=now)
        else:
            await conversations_store.save_conversation(
                tx,
                chat_id=event.chat_id,
                user_id=event.user_id,
                flow=conv.mode,
                step=conv.draft.step if conv.draft else "",
                data=conv.to_json(),
                history=list(conv.draft.history) if conv.draft else [],
                now=now,
            )
        calls = [(event.chat_id, call) for call in self._calls(out, event, language)] + menus
        # Messages for other people, each in their own language.
        if out.notifications:
            calls.extend(await notification_calls(session, out.notifications, self._tr))
        rows = await enqueue_calls(tx, calls, now, lease=self._lease)
        if forget:
            await outbox_store.forget_when_settled(tx, [r.id for r in rows if r.chat_id == event.chat_id])
        return rows

    async def _run(
        self,
        session: AsyncSession,
        command: Command,
        out: Outcome,
        event: Event,
        ctx: Context,
        language: str,
        now: datetime,
    ) -> tuple[Outcome, str]:
        if isinstance(command, SetLanguage):
            await people_store.set_language(session, event.user_id, command.language)
            return out, command.language
        if isinstance(command, ShowMyInitiatives):
            items = await initiatives_store.initiatives_of_resident(session, event.user_id)
            lines = [
                InitiativeLine(i.reference, i.title, i.status, i.status_changed_at.date()) for i in items
            ]
            reply = resident.my_initiatives(out.conversation, lines)
            return replace(out, replies=(*out.replies, reply)), language
        if isinstance(command, ExportMyData):
            conv = out.conversation
            replies = await export_replies(
                session,
                user_id=event.user_id,
                draft=conv.draft,
                draft_changed_at=conv.updated_at,
                municipality=self._municipality,
                translator=self._tr,
                language=language,
                now=now,
            )
            return replace(out, replies=(*out.replies, *replies)), language
        if isinstance(command, SubmitInitiative):
            created = await initiatives_store.create_initiative(
                session,
                NewInitiative(
                    municipality_code=self._municipality.code,
                    prefix=self._municipality.reference_prefix,
                    resident_user_id=event.user_id,
                    resident_chat_id=event.chat_id,
                    language=language,
                    # The draft's fields are named as the initiative's.
                    **{f.name: getattr(command.draft, f.name) for f in fields(command.draft)},
                ),
                now,
            )
            done = resident.submitted(created.reference, ctx)
            routed = await self._casework.route_new(session, created, now)
            return replace(
                done, replies=(*out.replies, *done.replies), notice=out.notice, notifications=tuple(routed)
            ), language
        raise TypeError(f"unknown command {command!r}")

    def _calls(self, out: Outcome, event: Event, language: str) -> list[ApiCall]:
        calls: list[ApiCall] = []
        if event.kind is EventKind.BUTTON and event.callback_query_id:
            calls.append(
                render_notice(out.notice, query_id=event.callback_query_id, tr=self._tr, language=language)
            )
        for reply in out.replies:
            calls.extend(
                render_reply(
                    reply, chat_id=event.chat_id, message_id=event.message_id, tr=self._tr, language=language
                )
            )
        return calls

    async def _apologise(self, event: Event, update_id: int | None) -> Handled:
        """After a programming error: apologise, keep earlier answers, and never loop on the update."""
        sorry = Reply(
            t("Sorry, something went wrong on our side. Your earlier answers are saved. Please try again.")
        )
        language = resident.language_for(None, event.language_code)
        calls = render_reply(sorry, chat_id=event.chat_id, message_id=None, tr=self._tr, language=language)
        try:
            async with self._sessions() as session, session.begin():
                now = self._clock()
                if update_id is not None:
                    await updates_store.claim_update(session, update_id, now)
                return Handled(
                    outbox=tuple(
                        await enqueue_calls(
                            session, [(event.chat_id, c) for c in calls], now, lease=self._lease
                        )
                    )
                )
        except Exception:
            log.exception("could not queue an apology for update %s", update_id)
            raise


def _outdated(person: PersonRow, event: Event, now: datetime) -> bool:
    """Whether the stored person differs from what this update says (or was last seen a while ago)."""
    return (
        person.first_name != event.first_name
        or person.chat_id != event.chat_id
        or (event.language_code is not None and person.telegram_language != event.language_code)
        or person.unreachable_at is not None
        or now - person.last_seen_at > LAST_SEEN_PRECISION
    )
