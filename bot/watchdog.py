"""The periodic stall sweep: cases past their norm get a reminder, an escalation and an urgent escalation.

Only due cases are loaded (``initiatives.next_alert_at <= now``, an index range scan), a batch per
transaction. Every ladder step is recorded under a unique key before its messages are queued, and only
the transaction that inserted the key queues them: so each step happens once, also with several
watchdogs on one PostgreSQL database. The messages go out through the outbox after commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, time, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.casework import staff_view
from bot.i18n import Translator
from bot.notifications import enqueue_calls, language_of, notification_calls, render_notifications
from bot.outbox import SEND_LEASE, Outbox
from bot.telegram_io import ApiCall
from flows import coordinator
from flows.alerts import Audience, Recipient, plan_alert
from flows.broker import StaffContext
from flows.cases import CaseView, Notification, StaffRole, StaffView
from flows.lifecycle import OPEN_STATUSES
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, Level, StallFacts, sweep_steps
from storage import alerts as alerts_store
from storage import people as people_store
from storage import reports
from storage import staff as staff_store
from storage.alerts import DueCaseRow, NewStallAlert
from storage.outbox import OutboxRow
from storage.people import PersonRow

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
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
        text += f"; {_count(self.cases, 'due initiative')} checked"
        return text

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
    ) -> None:
        self._sessions = sessions
        self._m = municipality
        self._tr = translator
        self._clock = clock
        self._outbox = outbox
        self._lease = lease

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
        lines: list[SweepLine] = []
        cases = queued = 0
        after: tuple[datetime, int] | None = None
        while True:
            async with self._sessions() as session, session.begin():
                rows = await alerts_store.due_cases(
                    session, now=as_of, limit=batch, after=after, lock=not dry_run
                )
                done = (
                    await self._batch(session, rows, as_of, dry_run=dry_run, show=show) if rows else _Batch()
                )
            cases += len(rows)
            lines.extend(done.lines)
            queued += len(done.outbox)
            if done.outbox and self._outbox is not None:
                await self._outbox.send(done.outbox)
            if len(rows) < batch:
                break
            last = rows[-1]
            assert last.next_alert_at is not None
            after = (last.next_alert_at, last.id)
        return SweepReport(as_of, dry_run, cases, tuple(lines), queued)

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
                _case_view(row, broker, people.get(row.resident_user_id)),
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


_VIEW_FIELDS = tuple(f.name for f in fields(CaseView) if f.name in DueCaseRow.__dataclass_fields__)
_VIEW_VALUES = attrgetter(*_VIEW_FIELDS)


def _case_view(row: DueCaseRow, broker: StaffView | None, resident: PersonRow | None) -> CaseView:
    """The case as the flows see it, as ``Casework`` builds it, from rows loaded for the whole batch."""
    return CaseView(
        **dict(zip(_VIEW_FIELDS, _VIEW_VALUES(row), strict=True)),
        broker_name=broker.name if broker else None,
        broker_telegram_id=broker.telegram_user_id if broker else None,
        resident_unreachable=resident is not None and resident.unreachable_at is not None,
    )
