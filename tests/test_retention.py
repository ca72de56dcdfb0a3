"""The retention sweep keeps the consent text's promises, on both databases: what is due goes (a day
before its cutoff it stays), the rest is untouched, a second sweep finds nothing, a dry run changes nothing.

Every sweep runs ``as_of`` a chosen moment; the clock is injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.i18n import Translator
from bot.privacy_sweep import PrivacyReport, PrivacySweep
from bot.settings import BUNDLED_CONFIG_DIR, load_municipality
from bot.watchdog import Watchdog
from flows.engine import FlowState
from flows.events import Event, EventKind
from flows.intake import _consent_prompt, intake_context
from flows.privacy import Retention, months_before
from flows.resident import HOME, LANGUAGES, Context, Conversation, handle
from storage import conversations as conversations_store
from storage import initiatives as initiatives_store
from storage import mail_outbox as mail_store
from storage import outbox as outbox_store
from storage import people as people_store
from storage import retention as retention_store
from storage import staff as staff_store
from storage import tables
from storage import updates as updates_store
from storage.db import session_factory
from storage.explain import explain
from storage.outbox import NewOutboxMessage
from tests.test_config import edit, load_error, marked_line, write
from tests.test_watchdog import change_status, new_initiative

ZUTPHEN = load_municipality(BUNDLED_CONFIG_DIR / "zutphen.toml")
TRANSLATOR = Translator(tuple(LANGUAGES))
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
RESIDENT, OTHER, STRANGER = 1001, 1002, 1003


class World:
    """A database, a sweep on it, and ways to look at what it holds."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self.now = T0

    def sweeper(self, m: Any = ZUTPHEN) -> PrivacySweep:
        return PrivacySweep(self.sessions, m, TRANSLATOR, lambda: self.now)

    async def sweep(self, as_of: datetime, *, dry_run: bool = False, m: Any = ZUTPHEN) -> PrivacyReport:
        self.now = as_of
        return await self.sweeper(m).sweep(as_of=as_of, dry_run=dry_run, batch=2)

    async def person(self, user_id: int, *, at: datetime = T0, language: str = "en") -> None:
        async with self.sessions() as session, session.begin():
            await people_store.upsert_person(
                session,
                user_id=user_id,
                chat_id=user_id,
                first_name="Fatima",
                telegram_language=language,
                now=at,
            )

    async def chat(
        self, user_id: int, *, at: datetime, title: str | None = "Bankjes in het park", draft: bool = True
    ) -> None:
        """The chat as the dispatcher saves it after an update: with a draft (titled or not), or none."""
        answers = {"title": title} if title is not None else {}
        draft = (
            {"step": "idea", "answers": answers, "history": ["title"], "editing": False} if draft else None
        )
        async with self.sessions() as session, session.begin():
            await conversations_store.save_conversation(
                session,
                chat_id=user_id,
                user_id=user_id,
                flow="intake" if draft else "home",
                step="idea" if draft else "",
                data={"draft": draft, "pending": None},
                history=["title"] if draft else [],
                now=at,
            )

    async def ended_case(self, at: datetime, status: str = "gerealiseerd", resident: int = RESIDENT) -> int:
        async with self.sessions() as session, session.begin():
            new = dataclasses.replace(
                new_initiative("WK030101"), resident_user_id=resident, resident_chat_id=resident
            )
            created = await initiatives_store.create_initiative(session, new, at - 30 * DAY)
            if status == "gerealiseerd":
                for step in (
                    "toegewezen",
                    "in_gesprek",
                    "plan_in_uitwerking",
                    "goedgekeurd",
                    "in_uitvoering",
                ):
                    await change_status(session, created.id, step, at - DAY)
            await change_status(session, created.id, status, at)
            return created.id

    async def count(self, table: Any, *where: Any) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    async def rows(self, *columns: Any, where: Any = True) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(select(*columns).where(where))]

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the tables the sweep may change, to compare before and after a dry run."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with self.engine.connect() as conn:
            for table in (
                tables.initiatives,
                tables.conversations,
                tables.people,
                tables.outbox,
                tables.mail_outbox,
                tables.processed_updates,
                tables.staff_invites,
                tables.send_gates,
            ):
                rows = await conn.execute(select(table))
                out[table.name] = sorted((tuple(map(repr, row)) for row in rows), key=repr)
        return out


@pytest_asyncio.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    yield World(engine)


# --- drafts ------------------------------------------------------------------------------------------


async def test_an_untouched_draft_gets_one_reminder_then_goes_with_the_person(world: World) -> None:
    await world.person(RESIDENT)
    await world.chat(RESIDENT, at=T0)
    remind_at = T0 + 90 * DAY

    assert (await world.sweep(remind_at - DAY)).reminded == 0
    report = await world.sweep(remind_at + timedelta(minutes=1))
    assert (report.reminded, report.queued, report.drafts_deleted) == (1, 1, 0)
    [(chat, payload)] = await world.rows(tables.outbox.c.chat_id, tables.outbox.c.payload)
    assert chat == RESIDENT
    assert payload["text"] == (
        "You have not worked on your idea “Bankjes in het park” for 90 days.\n\n"
        "Do you want to continue? If you do nothing, I will delete your answers in 14 days."
    )
    buttons = [b["callback_data"] for row in payload["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["menu:continue", "menu:discard"]

    # Once: the next rounds send nothing more, also on the day before it is deleted.
    assert (await world.sweep(remind_at + 2 * DAY)).reminded == 0
    report = await world.sweep(remind_at + 14 * DAY)
    assert (report.reminded, report.drafts_deleted) == (0, 0)
    assert await world.count(tables.outbox) == 1

    report = await world.sweep(remind_at + 14 * DAY + timedelta(minutes=2))
    assert (report.drafts_deleted, report.people_forgotten) == (1, 1)
    assert await world.count(tables.conversations) == 0
    assert await world.count(tables.people) == 0  # a stranger again
    assert (await world.sweep(remind_at + 30 * DAY)).total == 0


async def test_the_reminder_is_in_dutch_for_a_dutch_resident(world: World) -> None:
    await world.person(RESIDENT, language="nl")
    await world.chat(RESIDENT, at=T0, title=None)
    await world.sweep(T0 + 91 * DAY)
    [(payload,)] = await world.rows(tables.outbox.c.payload)
    assert payload["text"] == (
        "Je hebt al 90 dagen niet meer gewerkt aan je nieuwe idee.\n\n"
        "Wil je verder gaan? Als je niets doet, verwijder ik je antwoorden over 14 dagen."
    )
    labels = [b["text"] for row in payload["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Verdergaan", "Verwijder mijn antwoorden"]


async def test_any_update_after_the_reminder_keeps_the_draft(world: World) -> None:
    await world.person(RESIDENT)
    await world.chat(RESIDENT, at=T0)
    await world.sweep(T0 + 91 * DAY)
    assert await world.count(tables.conversations, tables.conversations.c.draft_reminded_at.is_not(None)) == 1

    await world.chat(RESIDENT, at=T0 + 95 * DAY)  # the resident wrote: the dispatcher saved the chat
    assert await world.count(tables.conversations, tables.conversations.c.draft_reminded_at.is_not(None)) == 0
    report = await world.sweep(T0 + 110 * DAY)
    assert (report.drafts_deleted, report.reminded) == (0, 0)
    assert await world.count(tables.conversations) == 1
    # Untouched again for the whole period: a new reminder, the first since the resident came back.
    assert (await world.sweep(T0 + 186 * DAY)).reminded == 1


async def test_a_person_with_an_initiative_is_kept_when_their_draft_goes(world: World) -> None:
    await world.person(RESIDENT)
    await world.ended_case(T0)
    await world.chat(RESIDENT, at=T0)
    await world.sweep(T0 + 91 * DAY)
    report = await world.sweep(T0 + 106 * DAY)
    assert (report.drafts_deleted, report.people_forgotten) == (1, 0)
    assert await world.count(tables.people) == 1


async def test_an_idle_chat_without_a_draft_goes_and_so_does_its_stranger(world: World) -> None:
    await world.person(STRANGER)
    await world.chat(STRANGER, at=T0, draft=False)
    await world.person(OTHER, at=T0 + 10 * DAY)
    await world.chat(OTHER, at=T0 + 10 * DAY, draft=False)
    report = await world.sweep(T0 + 91 * DAY)
    assert (report.conversations_deleted, report.people_forgotten, report.reminded, report.queued) == (
        1,
        1,
        0,
        0,
    )
    assert await world.rows(tables.people.c.telegram_user_id) == [(OTHER,)]


async def test_staff_stay_people_when_their_chat_goes_idle(world: World) -> None:
    await world.person(OTHER)
    await world.chat(OTHER, at=T0, draft=False)
    async with world.sessions() as session, session.begin():
        await staff_store.add_staff(
            session, telegram_user_id=OTHER, name="Anna", role="broker", wijken=[], themes=[], now=T0
        )
    report = await world.sweep(T0 + 91 * DAY)
    assert (report.conversations_deleted, report.people_forgotten) == (1, 0)
    assert await world.count(tables.people) == 1


# --- ended initiatives ---------------------------------------------------------------------------------


async def test_a_dry_run_counts_the_ended_initiatives_due_and_changes_nothing(world: World) -> None:
    await world.person(RESIDENT)
    await world.ended_case(T0)
    await world.ended_case(T0 + DAY, status="gestopt")  # a day later: not due yet
    as_of = _after_months(T0, 24)
    before = await world.snapshot()
    report = await world.sweep(as_of, dry_run=True)
    assert report.anonymised == 1 and report.dry_run
    assert await world.snapshot() == before


def _after_months(moment: datetime, months: int) -> datetime:
    """A moment a little more than ``months`` months after ``moment`` (less than a day)."""
    later = moment
    while months_before(later, months) <= moment:
        later += timedelta(hours=6)
    return later


async def test_ended_initiatives_are_anonymised_exactly_when_due_and_once(world: World) -> None:
    await world.person(RESIDENT)
    done = await world.ended_case(T0)
    stopped = await world.ended_case(T0 + DAY, status="gestopt")
    as_of = _after_months(T0, 24)
    report = await world.sweep(as_of)
    assert report.anonymised == 1
    marks = dict(await world.rows(tables.initiatives.c.id, tables.initiatives.c.anonymised_at))
    assert marks[done] is not None and marks[stopped] is None
    assert (await world.sweep(as_of)).anonymised == 0  # idempotent
    report = await world.sweep(as_of + 2 * DAY)
    assert report.anonymised == 1
    assert (await world.sweep(as_of + 3 * DAY)).anonymised == 0


async def test_a_rejected_initiative_counts_as_ended_too(world: World) -> None:
    await world.person(RESIDENT)
    rejected = await world.ended_case(T0, status="afgewezen")
    assert (await world.sweep(_after_months(T0, 24) - DAY)).anonymised == 0
    assert (await world.sweep(_after_months(T0, 24) + DAY)).anonymised == 1
    assert await world.rows(tables.initiatives.c.title, where=tables.initiatives.c.id == rejected) == [
        ("[verwijderd]",)
    ]


async def test_a_forgotten_person_leaves_no_chat_id_in_the_outbox_or_the_send_gates(world: World) -> None:
    await world.person(STRANGER)
    await world.chat(STRANGER, at=T0, draft=False)
    async with world.sessions() as session, session.begin():
        sent = await outbox_store.enqueue(
            session,
            chat_id=STRANGER,
            method="sendMessage",
            payload={"chat_id": STRANGER, "text": "Hoi"},
            now=T0,
        )
        await outbox_store.mark_sent(session, [(sent, 1)], T0)
        await session.execute(tables.send_gates.insert().values(key=f"chat:{STRANGER}", tat=0.0))
    report = await world.sweep(T0 + 91 * DAY)
    assert report.people_forgotten == 1
    assert await world.rows(tables.outbox.c.chat_id, tables.outbox.c.payload) == [(0, {})]
    assert await world.count(tables.send_gates, tables.send_gates.c.key == f"chat:{STRANGER}") == 0


# --- message contents and bookkeeping -------------------------------------------------------------------


async def test_sent_messages_lose_their_contents_and_keep_their_rows(world: World) -> None:
    async with world.sessions() as session, session.begin():
        ids = await outbox_store.enqueue_many(
            session,
            [
                NewOutboxMessage(RESIDENT, "sendMessage", {"chat_id": RESIDENT, "text": f"Hallo {i}"})
                for i in range(4)
            ],
            now=T0,
        )
        await outbox_store.mark_sent(session, [(ids[0], 11), (ids[1], 12)], T0)
        await outbox_store.mark_failed(session, ids[2], "blocked", now=T0)  # ids[3] stays pending
        [mail] = await mail_store.enqueue(
            session,
            [
                mail_store.NewMail(
                    "groen@zutphen.example", "Groen", "Vraag over INI-1", "Fatima belt je", "question"
                )
            ],
            now=T0,
            domain="zutphen.example",
        )
        await mail_store.mark_sent(session, mail.id, T0)
        later = await outbox_store.enqueue(
            session, chat_id=OTHER, method="sendMessage", payload={"text": "later"}, now=T0 + 2 * DAY
        )
        await outbox_store.mark_sent(session, [(later, 13)], T0 + 2 * DAY)

    report = await world.sweep(T0 + 31 * DAY)
    assert (report.payloads_cleared, report.mails_cleared) == (3, 1)
    rows = dict(await world.rows(tables.outbox.c.id, tables.outbox.c.payload))
    assert [rows[i] for i in ids] == [{}, {}, {}, {"chat_id": RESIDENT, "text": "Hallo 3"}]
    assert rows[later] == {"text": "later"}
    assert await world.count(tables.outbox) == 5
    [(subject, body, cleared)] = await world.rows(
        tables.mail_outbox.c.subject, tables.mail_outbox.c.body, tables.mail_outbox.c.body_cleared_at
    )
    assert (subject, body, cleared) == ("", "", T0 + 31 * DAY)
    assert (await world.sweep(T0 + 31 * DAY)).total == 0


async def test_old_update_ids_expired_invites_and_idle_gates_are_removed(world: World) -> None:
    async with world.sessions() as session, session.begin():
        await updates_store.claim_update(session, 1, T0)
        await updates_store.claim_update(session, 2, T0 + 2 * DAY)
        expired = await staff_store.create_invite(
            session, role="broker", name="Anna", wijken=[], themes=[], now=T0, valid=DAY
        )
        await staff_store.create_invite(
            session, role="broker", name="Bert", wijken=[], themes=[], now=T0, valid=30 * DAY
        )
        conn = await session.connection()
        old, new = (T0 - DAY).timestamp(), (T0 + 7 * DAY).timestamp()
        await conn.execute(
            insert(tables.send_gates),
            [
                {"key": "chat:1", "tat": old, "holder": None, "held_until": None},
                {"key": "chat:2", "tat": 0.0, "holder": "w1", "held_until": old},  # a crashed claim
                {"key": "chat:3", "tat": old, "holder": "w2", "held_until": new},  # held right now
                {"key": "chat:4", "tat": new, "holder": None, "held_until": None},
                {"key": "global", "tat": old, "holder": None, "held_until": None},
            ],
        )
    report = await world.sweep(T0 + 7 * DAY + timedelta(hours=1))
    assert (report.updates_removed, report.invites_removed, report.gates_removed) == (1, 1, 2)
    assert await world.rows(tables.processed_updates.c.update_id) == [(2,)]
    assert expired.code not in {code for (code,) in await world.rows(tables.staff_invites.c.code)}
    gates = sorted(key for (key,) in await world.rows(tables.send_gates.c.key))
    assert gates == ["chat:3", "chat:4", "global"]


async def test_a_dry_run_reports_everything_due_and_changes_nothing(world: World) -> None:
    await world.person(RESIDENT)
    await world.chat(RESIDENT, at=T0)
    await world.person(STRANGER)
    await world.chat(STRANGER, at=T0, draft=False)
    async with world.sessions() as session, session.begin():
        await updates_store.claim_update(session, 1, T0)
        [row_id] = await outbox_store.enqueue_many(
            session, [NewOutboxMessage(RESIDENT, "sendMessage", {"text": "x"})], now=T0
        )
        await outbox_store.mark_sent(session, [(row_id, 1)], T0)
    before = await world.snapshot()
    report = await world.sweep(T0 + 91 * DAY, dry_run=True)
    expected = (1, 1, 1, 1, 1, 0)
    assert (
        report.reminded,
        report.conversations_deleted,
        report.people_forgotten,
        report.payloads_cleared,
        report.updates_removed,
        report.queued,
    ) == expected
    assert await world.snapshot() == before
    assert "dry run: nothing changed or sent" in report.table()
    real = await world.sweep(T0 + 91 * DAY)
    assert (real.reminded, real.conversations_deleted, real.people_forgotten) == (1, 1, 1)


async def test_configured_periods_are_the_ones_swept(world: World) -> None:
    short = dataclasses.replace(ZUTPHEN, retention=Retention(draft_reminder_days=10, draft_delete_days=2))
    await world.person(RESIDENT)
    await world.chat(RESIDENT, at=T0)
    assert (await world.sweep(T0 + 9 * DAY, m=short)).reminded == 0
    assert (await world.sweep(T0 + 10 * DAY + timedelta(minutes=1), m=short)).reminded == 1
    [(payload,)] = await world.rows(tables.outbox.c.payload)
    assert "for 10 days" in payload["text"] and "in 2 days" in payload["text"]
    assert (await world.sweep(T0 + 12 * DAY + timedelta(minutes=2), m=short)).drafts_deleted == 1


# --- the plans: every due query reads its index --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(retention_store.DUE_INDEXES))
async def test_each_due_query_is_an_index_range_scan(engine: AsyncEngine, name: str) -> None:
    query = retention_store.DUE_QUERIES[name]
    index = retention_store.DUE_INDEXES[name]
    cutoff: Any = 1.0 if name == "idle_gates" else T0
    params: dict[str, Any] = {"cutoff": cutoff, "limit": 500}
    if name == "ended_initiatives":
        params["status"] = "gerealiseerd"
    after = {**params, "after_at": cutoff, "after_key": "chat:1" if name == "idle_gates" else 7}
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A tiny table is read whole; switching that off shows the index can serve the query.
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plans = [
            await explain(conn, query.statement(after=False, lock=True), params),
            await explain(conn, query.statement(after=True, lock=True), after),
        ]
    for plan in plans:
        assert index in plan, plan
        assert "Seq Scan" not in plan and f"SCAN {query.key.table.name}\n" not in plan + "\n", plan


# --- config and consent -------------------------------------------------------------------------------


def test_the_consent_text_states_the_configured_periods() -> None:
    m = dataclasses.replace(
        ZUTPHEN,
        retention=Retention(
            retention_months=12, draft_reminder_days=30, draft_delete_days=7, sent_message_days=10
        ),
    )
    prompt = _consent_prompt({}, intake_context(m))
    english = TRANSLATOR.render(prompt, "en")
    assert "We delete them 12 months after your initiative has ended." in english
    assert "we delete your answers after 37 days. You get one reminder before that." in english
    assert "messages the bot sends after 10 days." in english
    dutch = TRANSLATOR.render(prompt, "nl")
    assert "12 maanden nadat je initiatief is afgelopen" in dutch
    assert "na 37 dagen. Je krijgt eerst één herinnering." in dutch
    assert "verwijderen we na 10 dagen." in dutch
    default = TRANSLATOR.render(_consent_prompt({}, intake_context(ZUTPHEN)), "en")
    assert "24 months" in default and "after 104 days" in default and "after 30 days" in default


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("retention_months = 0", "privacy.retention_months", "at least 1 months, got 0"),
        ("draft_reminder_days = 2", "privacy.draft_reminder_days", "at least 7 days, got 2"),
        ("draft_delete_days = 0", "privacy.draft_delete_days", "at least 1 days, got 0"),
        ("sent_message_days = 1", "privacy.sent_message_days", "outbox may still retry"),
        (
            "processed_update_days = 1",
            "privacy.processed_update_days",
            "Telegram may deliver an update again",
        ),
        ("send_gate_idle_days = 0", "privacy.send_gate_idle_days", "at least 1 days"),
        ("expired_invite_days = -1", "privacy.expired_invite_days", "cannot be negative"),
        ('sent_message_days = "30"', "privacy.sent_message_days", "must be a whole number, got a string"),
        ("draft_delete_days = 1.5", "privacy.draft_delete_days", "must be a whole number, got 1.5"),
        ("draft_delete_days = true", "privacy.draft_delete_days", "must be a whole number, got a boolean"),
        ("sent_message_days = 800", "privacy.sent_message_days", "would outlive the initiative"),
    ],
)
def test_a_period_below_its_lower_bound_is_refused_at_its_line(
    tmp_path: Path, line: str, field: str, expected: str
) -> None:
    text = edit("retention_months = 24\n", f"retention_months = 24\n{line}  # <-\n").replace(
        "retention_months = 24\nretention_months", "retention_months"
    )
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (marked_line(text), field)
    assert expected in err.message


def test_every_period_can_be_set_in_the_privacy_section(tmp_path: Path) -> None:
    periods = (
        "retention_months = 12\ndraft_reminder_days = 30\ndraft_delete_days = 7\nsent_message_days = 10\n"
        "processed_update_days = 3\nsend_gate_idle_days = 2\nexpired_invite_days = 5\n"
    )
    m = load_municipality(write(tmp_path, edit("retention_months = 24\n", periods)))
    assert m.retention == Retention(12, 30, 7, 10, 3, 2, 5)
    assert m.retention_months == 12
    unset = load_municipality(write(tmp_path, edit("retention_months = 24\n", "")))
    assert unset.retention == Retention()


def test_the_draft_reminders_discard_button_deletes_the_draft() -> None:
    ctx = Context(now=T0, flow=intake_context(ZUTPHEN), first_steps_days=2)
    draft = FlowState(step="idea", answers={"title": "Bankjes"}, history=("title",))
    conv = Conversation(HOME, draft, T0)
    press = Event(
        kind=EventKind.BUTTON,
        user_id=RESIDENT,
        chat_id=RESIDENT,
        button="menu:discard",
        callback_query_id="q",
    )
    out = handle(conv, press, ctx)
    assert out.conversation.draft is None
    assert TRANSLATOR.render(out.replies[0].text, "en") == (
        "OK, I deleted your answers. You can start a new idea at any time."
    )


async def test_the_watchdogs_round_runs_the_retention_sweep(world: World) -> None:
    await world.person(RESIDENT)
    await world.chat(RESIDENT, at=T0)
    swept = asyncio.Event()
    watchdog = Watchdog(world.sessions, ZUTPHEN, TRANSLATOR, lambda: T0 + 91 * DAY)
    sweep = watchdog.privacy.sweep

    async def observed(**kw: Any) -> PrivacyReport:
        report = await sweep(**kw)
        swept.set()
        return report

    watchdog.privacy.sweep = observed  # type: ignore[method-assign]
    task = asyncio.create_task(watchdog.run(3600))
    try:
        await asyncio.wait_for(swept.wait(), 30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await world.count(tables.conversations, tables.conversations.c.draft_reminded_at.is_not(None)) == 1
    assert await world.count(tables.outbox) == 1


async def test_two_sweeps_at_once_remind_each_draft_once(world: World) -> None:
    for user_id in range(2000, 2012):
        await world.person(user_id)
        await world.chat(user_id, at=T0)
    as_of = T0 + 91 * DAY
    world.now = as_of
    first, second = await asyncio.gather(
        world.sweeper().sweep(as_of=as_of, batch=2), world.sweeper().sweep(as_of=as_of, batch=2)
    )
    assert first.reminded + second.reminded == 12
    chats = [chat for (chat,) in await world.rows(tables.outbox.c.chat_id)]
    assert sorted(chats) == list(range(2000, 2012))
