"""The periodic stall sweep: cases past their norm get a reminder, an escalation and an urgent escalation.

Only due cases are loaded (``initiatives.next_alert_at <= now``, an index range scan), a batch per
transaction. Every ladder step is recorded under a unique key before its messages are queued, and only
the transaction that inserted the key queues them: so each step happens once, also with several
watchdogs on one PostgreSQL database. The messages go out through the outbox after commit. A second pass
does the same for the questions put to departments, on each department's own clock (``bot.department_sweep``).
Each round of ``run`` also runs the retention sweep (``bot.privacy_sweep``), whose cost follows what is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.casework import Casework, staff_view
from bot.department_sweep import DepartmentStep, DepartmentSweep, case_view
from bot.departments import MAIL_LANGUAGE, DepartmentDesk
from bot.i18n import Translator
from bot.mail import Mailer
from bot.notifications import enqueue_calls, language_of, notification_calls, render_notifications
from bot.outbox import SEND_LEASE, Outbox
from bot.privacy_sweep import PrivacySweep
from bot.telegram_io import ApiCall
from flows import coordinator
from flows.alerts import Audience, Recipient, plan_alert
from flows.broker import StaffContext
from flows.cases import Notification, StaffRole, StaffView
from flows.lifecycle import OPEN_STATUSES
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, Level, StallFacts, sweep_steps
from storage import alerts as alerts_store
from storage import departments as departments_store
from storage import people as people_store
from storage import reports
from storage import staff as staff_store
from storage.alerts import DueCaseRow, NewStallAlert
from storage.departments import QuestionRow
from storage.outbox import OutboxRow
from storage.people import PersonRow

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
# A due department question costs about ten times a due case (its case, people, links and e-mails are
# looked up one by one): smaller batches keep each transaction, and SQLite's one writer, short.
DEPARTMENT_BATCH_SHARE = 5
# The staff web's address when no department desk is given (as bot.settings.Settings.web_url defaults).
DEFAULT_WEB_URL = "http://localhost:8080"
LEVEL_NAMES = {Level.REMINDER: "reminder", Level.ESCALATION: "escalation", Level.URGENT: "urgent"}


@dataclass(frozen=True, slots=True)
class ShownMessage:
    """A message a dry run would send (``show``): to whom, in which language, and its text as rendered."""

    recipient: Recipient
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class SweepLine:
    """One ladder step a sweep handled: sent (or, in a dry run, would be sent) or skipped."""

    reference: str
    track: str
    level: int
    skipped: bool
    recipients: tuple[Recipient, ...] = ()
    messages: tuple[ShownMessage, ...] = ()  # only in a dry run with ``show``


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did; in a dry run, what it would have done."""

    as_of: datetime
    dry_run: bool
    cases: int = 0  # due cases looked at
    lines: tuple[SweepLine, ...] = ()
    queued: int = 0  # outbox messages queued
    questions: int = 0  # due department questions looked at
    mails: int = 0  # e-mails queued (to departments)

    @property
    def sent(self) -> tuple[SweepLine, ...]:
        return tuple(line for line in self.lines if not line.skipped)

    def summary(self) -> str:
        """One line that counts what the table lists: the alerts, their initiatives, the skipped steps."""
        initiatives = len({line.reference for line in self.lines})
        skipped = len(self.lines) - len(self.sent)
        text = f"{_count(len(self.sent), 'alert')} for {_count(initiatives, 'initiative')}"
        if skipped:
            text += f" ({_count(skipped, 'lower step')} skipped)"
        text += f"; {_count(self.cases, 'due initiative')}"
        if self.questions:
            text += f" and {_count(self.questions, 'due department question')}"
        return text + " checked"

    def table(self) -> str:
        """A plain-text table for operators: one line per ladder step (with the messages of a dry run
        with ``show`` beneath it), then the summary."""
        rows = [("reference", "track", "level", "recipients")]
        for line in self.lines:
            level = f"{line.level} {LEVEL_NAMES.get(Level(line.level), '')}".strip()
            who = "skipped: a higher step is due" if line.skipped else _recipients(line.recipients)
            rows.append((line.reference, line.track, level, who))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        text = [
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
            for row in rows
        ]
        shown = [_shown(line.messages) for line in self.lines]
        text = [text[0], *(row + block for row, block in zip(text[1:], shown, strict=True))]
        moment = self.as_of.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")
        summary = f"{self.summary()} as of {moment} Europe/Amsterdam"
        if self.dry_run:
            summary += "; dry run: nothing recorded or sent"
        else:
            summary += f"; {_count(self.queued, 'message')} queued"
            if self.mails:
                summary += f", {_count(self.mails, 'e-mail')}"
        return "\n".join([*text, summary]) if self.lines else summary


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _shown(messages: Sequence[ShownMessage]) -> str:
    """The messages under a table line: who gets each (role, name, language), then its text indented."""
    out: list[str] = []
    for message in messages:
        r = message.recipient
        out.append(f"  → {r.audience.value} {r.name or r.user_id} ({message.language}):")
        out.extend(f"      {row}" if row else "" for row in message.text.splitlines())
    return "".join(f"\n{row}" for row in out)


def _recipients(recipients: Sequence[Recipient]) -> str:
    who = ", ".join(
        r.audience.value if r.audience is Audience.RESIDENT else f"{r.audience.value} {r.name}"
        for r in recipients
    )
    if not _reaches_staff(recipients):
        who = f"{who}; no staff member to tell" if who else "no staff member to tell"
    return who


def _reaches_staff(recipients: Sequence[Recipient]) -> bool:
    return any(r.audience is not Audience.RESIDENT for r in recipients)


@dataclass
class _Batch:
    lines: list[SweepLine] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    mails: int = 0


@dataclass
class _Pass:
    """What one pass of a sweep (the cases, or the department questions) did over all its batches."""

    rows: int = 0
    lines: list[SweepLine] = field(default_factory=list)
    queued: int = 0
    mails: int = 0


class Watchdog:
    """Sweeps for due ladder steps and sends them; ``outbox`` sends after commit (None: leave it queued)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        municipality: Municipality,
        translator: Translator,
        clock: Callable[[], datetime],
        *,
        outbox: Outbox | None = None,
        lease: timedelta = SEND_LEASE,
        desk: DepartmentDesk | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self._sessions = sessions
        self._m = municipality
        self._tr = translator
        self._clock = clock
        self._outbox = outbox
        self._lease = lease
        self._mailer = mailer  # kicked after a batch that queued e-mail (its own sweep finds it anyway)
        desk = desk or Casework(municipality, web_url=DEFAULT_WEB_URL, translator=translator).desk
        self._departments = DepartmentSweep(municipality, translator, desk)
        self.privacy = PrivacySweep(sessions, municipality, translator, clock, outbox=outbox, lease=lease)

    async def sweep(
        self,
        *,
        as_of: datetime | None = None,
        dry_run: bool = False,
        show: bool = False,
        batch: int = DEFAULT_BATCH,
    ) -> SweepReport:
        """One sweep as if it were ``as_of`` (default: now). ``dry_run`` records, queues and sends nothing;
        with ``show`` its report holds the messages, rendered in each recipient's language."""
        if show and not dry_run:
            raise ValueError("show is for a dry run: a real sweep sends the messages")
        as_of = as_of if as_of is not None else self._clock()
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")

        async def cases(session: AsyncSession, after: tuple[datetime, int] | None) -> list[DueCaseRow]:
            return await alerts_store.due_cases(
                session, now=as_of, limit=batch, after=after, lock=not dry_run
            )

        question_batch = max(1, batch // DEPARTMENT_BATCH_SHARE)

        async def questions(session: AsyncSession, after: tuple[datetime, int] | None) -> list[QuestionRow]:
            return await departments_store.due_questions(
                session, now=as_of, limit=question_batch, after=after, lock=not dry_run
            )

        async def department_batch(session: AsyncSession, rows: Sequence[QuestionRow]) -> _Batch:
            return await self._department_batch(session, rows, as_of, dry_run=dry_run, show=show)

        async def case_batch(session: AsyncSession, rows: Sequence[DueCaseRow]) -> _Batch:
            return await self._batch(session, rows, as_of, dry_run=dry_run, show=show)

        on_cases = await self._pass(cases, case_batch, batch)
        on_questions = await self._pass(questions, department_batch, question_batch)
        return SweepReport(
            as_of,
            dry_run,
            on_cases.rows,
            tuple(on_cases.lines + on_questions.lines),
            on_cases.queued + on_questions.queued,
            questions=on_questions.rows,
            mails=on_questions.mails,
        )

    async def _pass(
        self,
        fetch: Callable[[AsyncSession, tuple[datetime, int] | None], Awaitable[Sequence[Any]]],
        handle: Callable[[AsyncSession, Sequence[Any]], Awaitable[_Batch]],
        batch: int,
    ) -> _Pass:
        """Due rows a batch per transaction (locked, SKIP LOCKED), paging on by (next_alert_at, id);
        each batch's messages are sent after its commit."""
        done = _Pass()
        after: tuple[datetime, int] | None = None
        while True:
            async with self._sessions() as session, session.begin():
                rows = await fetch(session, after)
                result = await handle(session, rows) if rows else _Batch()
            done.rows += len(rows)
            done.lines.extend(result.lines)
            done.queued += len(result.outbox)
            done.mails += result.mails
            if result.mails and self._mailer is not None:
                self._mailer.kick()
            if result.outbox and self._outbox is not None:
                await self._outbox.send(result.outbox)
            if len(rows) < batch:
                return done
            last = rows[-1]
            assert last.next_alert_at is not None
            after = (last.next_alert_at, last.id)

    async def run(self, interval: float) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failed sweep is logged and tried again."""
        while True:
            try:
                report = await self.sweep()
                if report.lines:
                    log.info("watchdog: %s", report.summary())
                sent = await self.digests()
                if sent:
                    log.info("watchdog: weekly digest sent to %d coordinators", sent)
            except Exception:
                log.exception("watchdog sweep failed")
            try:
                # Every round, on its own: its cost follows what has come due, like the stall sweep's,
                # and a failing stall sweep must not keep data past its retention period (nor the other
                # way round).
                retention = await self.privacy.sweep()
                if retention.total:
                    log.info("watchdog: retention: %s", retention.summary())
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(interval)

    async def digests(self, *, as_of: datetime | None = None) -> int:
        """Once the week's digest moment has come, send each coordinator the weekly digest, once."""
        now = as_of if as_of is not None else self._clock()
        if not coordinator.digest_due(now, self._m):
            return 0
        week = coordinator.week_start(now)
        since = datetime.combine(week - timedelta(days=7), time(), AMSTERDAM)
        async with self._sessions() as session, session.begin():
            claimed = [
                c
                for c in await staff_store.all_coordinators(session)
                if await alerts_store.claim_digest(session, staff_id=c.id, week_start=week, now=now)
            ]
            if not claimed:
                return 0
            rows = await reports.overview_rows(session, statuses=OPEN_STATUSES, or_changed_since=since)
            lines = [coordinator.CaseLine.of(row) for row in rows]
            notes = [
                Notification(
                    person.telegram_user_id,
                    person.telegram_user_id,
                    coordinator.weekly_digest(
                        [line for line in lines if not person.wijken or line.wijk_code in person.wijken],
                        self._m,
                        now,
                    ),
                )
                for person in claimed
            ]
            queued = await enqueue_calls(
                session, await notification_calls(session, notes, self._tr), self._clock(), lease=self._lease
            )
        if self._outbox is not None:
            await self._outbox.send(queued)
        return len(claimed)

    async def _batch(
        self,
        session: AsyncSession,
        rows: Sequence[DueCaseRow],
        as_of: datetime,
        *,
        dry_run: bool,
        show: bool = False,
    ) -> _Batch:
        sent = await alerts_store.sent_alerts(session, [row.id for row in rows])
        facts = {row.id: _facts(row) for row in rows}
        # Each case's ladders read once: what is due now, and when the next step is once that is recorded.
        steps = {row.id: sweep_steps(facts[row.id], self._m, as_of, sent[row.id]) for row in rows}
        due = {row_id: alerts for row_id, (alerts, _) in steps.items()}
        if dry_run:
            mine = {(row.id, alert.key) for row in rows for alert in due[row.id]}
        else:
            now = self._clock()
            new = [
                NewStallAlert(row.id, alert.track.value, alert.started_at, int(alert.level), alert.skipped)
                for row in rows
                for alert in due[row.id]
            ]
            # Only the alerts this transaction inserted are its to send; another watchdog sends the rest.
            mine = await alerts_store.record_alerts(session, new, now=now)
            await alerts_store.set_next_alerts(session, [(row_id, at) for row_id, (_, at) in steps.items()])
        ours = [(row, alert) for row in rows for alert in due[row.id] if (row.id, alert.key) in mine]
        if not ours:
            return _Batch()
        staff = await staff_store.list_staff(session)
        people = await people_store.load_people(
            session,
            {row.resident_user_id for row, _ in ours} | {s.telegram_user_id for s in staff},
        )
        views = {s.id: staff_view(s) for s in staff}
        brokers = {s.id: views[s.id] for s in staff if s.role == StaffRole.BROKER}
        coordinators = [s for s in staff if s.role == StaffRole.COORDINATOR]
        covering: dict[str | None, list[StaffView]] = {}
        ctx = StaffContext(self._m, as_of)
        done = _Batch()
        calls: list[tuple[int, ApiCall]] = []
        for row, alert in ours:
            if row.wijk_code not in covering:
                chosen = staff_store.covering_coordinators(coordinators, row.wijk_code)
                covering[row.wijk_code] = [views[c.id] for c in chosen]
            broker = brokers.get(row.broker_id) if row.broker_id is not None else None
            plan = plan_alert(
                case_view(row, broker, people.get(row.resident_user_id)),
                alert,
                facts=facts[row.id],
                broker=broker,
                coordinators=covering[row.wijk_code],
                ctx=ctx,
                messages=not dry_run or show,
            )
            shown = self._show(plan.recipients, plan.notifications, people) if dry_run else ()
            done.lines.append(
                SweepLine(
                    row.reference, alert.track.value, int(alert.level), alert.skipped, plan.recipients, shown
                )
            )
            if not dry_run:
                # Rendered at once: the case's message objects are gone before the next case's are built,
                # instead of thousands of them living on (and being traversed by the garbage collector).
                calls.extend(self._render(plan.notifications, people))
            if not alert.skipped and not _reaches_staff(plan.recipients):
                log.warning(
                    "stall alert for %s reaches no staff member: there is no coordinator", row.reference
                )
        if calls:
            done.outbox = await enqueue_calls(session, calls, self._clock(), lease=self._lease)
        return done

    async def _department_batch(
        self,
        session: AsyncSession,
        rows: Sequence[QuestionRow],
        as_of: datetime,
        *,
        dry_run: bool,
        show: bool = False,
    ) -> _Batch:
        """The department clocks' due steps of these questions: e-mails queued by the department sweep,
        the Telegram messages rendered here in each recipient's language."""
        steps = await self._departments.batch(
            session, rows, as_of, now=self._clock(), dry_run=dry_run, show=show
        )
        if not steps:
            return _Batch()
        users = {note.user_id for step in steps for note in step.notifications}
        people = await people_store.load_people(session, users) if users else {}
        done = _Batch()
        calls: list[tuple[int, ApiCall]] = []
        for step in steps:
            shown: tuple[ShownMessage, ...] = ()
            if dry_run and show:
                shown = tuple(ShownMessage(r, MAIL_LANGUAGE, text) for r, text in step.mails)
                shown += self._show(step.recipients, step.notifications, people)
            done.lines.append(_department_line(step, shown))
            done.mails += step.mails_queued
            if not dry_run:
                calls.extend(self._render(step.notifications, people))
        if calls:
            done.outbox = await enqueue_calls(session, calls, self._clock(), lease=self._lease)
        return done

    def _render(
        self, notifications: Sequence[Notification], people: Mapping[int, PersonRow]
    ) -> list[tuple[int, ApiCall]]:
        """The Bot API calls of one plan, each in its recipient's language. A reply that several people
        read in one language (an escalation to the wijk's coordinators) is rendered once, then addressed."""
        calls: list[tuple[int, ApiCall]] = []
        rendered: dict[tuple[int, str], tuple[int, list[tuple[int, ApiCall]]]] = {}
        for note in notifications:
            key = (id(note.reply), language_of(people.get(note.user_id)))
            if key in rendered:
                first_chat, first_calls = rendered[key]
                # A new message's payload names its chat and nothing else of it: address a copy.
                if all(call.payload.get("chat_id") == first_chat for _, call in first_calls):
                    calls.extend(
                        (note.chat_id, ApiCall(call.method, {**call.payload, "chat_id": note.chat_id}))
                        for _, call in first_calls
                    )
                    continue
            mine = render_notifications([note], tr=self._tr, people=people)
            rendered.setdefault(key, (note.chat_id, mine))
            calls.extend(mine)
        return calls

    def _show(
        self,
        recipients: Sequence[Recipient],
        notifications: Sequence[Notification],
        people: Mapping[int, PersonRow],
    ) -> tuple[ShownMessage, ...]:
        """The notifications as the recipients would read them: the same rendering the outbox would send."""
        by_user = {r.user_id: r for r in recipients}
        shown: list[ShownMessage] = []
        for note in notifications:
            language = language_of(people.get(note.user_id))
            for _, call in render_notifications([note], tr=self._tr, people=people):
                shown.append(ShownMessage(by_user[note.user_id], language, _call_text(call.payload)))
        return tuple(shown)


def _call_text(payload: Mapping[str, Any]) -> str:
    """A Bot API call's text or caption, with its buttons as [labels] on the last line."""
    text = str(payload.get("text") or payload.get("caption") or "")
    keyboard = payload.get("reply_markup", {}).get("inline_keyboard", [])
    buttons = "  ".join(f"[{button['text']}]" for row in keyboard for button in row)
    return f"{text}\n{buttons}" if buttons else text


def _facts(row: DueCaseRow) -> StallFacts:
    return StallFacts.of(row)


def _department_line(step: DepartmentStep, shown: tuple[ShownMessage, ...]) -> SweepLine:
    alert = step.alert
    return SweepLine(
        step.reference, alert.track.value, int(alert.level), alert.skipped, step.recipients, shown
    )
