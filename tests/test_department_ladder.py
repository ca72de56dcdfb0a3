"""The department's clock in the watchdog: a question to a department brings its contacts a reminder at 1×
the norm, its manager and the wijk's coordinators an escalation at 1.5×, and everybody an urgent one at 3×;
each once, on the injected clock, on both databases.

Mails are read from the mail outbox, Telegram messages from the outbox table. Staff read English, so the
Telegram texts do not depend on the Dutch catalog; e-mails are checked for what they carry, not their words.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from bot.casework import Casework
from bot.departments import DepartmentDesk
from bot.watchdog import SweepReport, Watchdog
from flows.municipality import Department, Municipality
from flows.stalls import AMSTERDAM, Level
from storage import departments as departments_store
from storage import initiatives as initiatives_store
from storage import mail_outbox
from storage.db import create_engine, session_factory
from storage.explain import explain_due_questions
from storage.models import StallAlert
from tests.test_watchdog import (
    ANNA,
    CARLA,
    DIRK,
    NOORDVEEN,
    QUIET,
    RESIDENT,
    T0,
    TRANSLATOR,
    WATERKWARTIER,
    World,
    change_status,
    due,
    only_on,
)
from tests.test_watchdog import world as world

WEB = "https://initiatief.example"
LINK = re.compile(re.escape(WEB) + r"/afdeling/\d+-[0-9a-f]{40}")
NORM = 20  # Verkeer has no norm of its own: bij_gemeente's
TEAM, MANAGER = "verkeer@zutphen.example", "manager.verkeer@zutphen.example"
SECOND = "j.devries@zutphen.example"  # a contact added on the command line
LADDER_KINDS = ("reminder", "escalation", "urgent")


def desk(m: Municipality = QUIET) -> DepartmentDesk:
    return Casework(m, web_url=WEB, translator=TRANSLATOR).desk


def watchdog(world: World, m: Municipality = QUIET) -> Watchdog:
    """A new watchdog on the world's database: every sweep here is also a restart."""
    return Watchdog(world.sessions, m, TRANSLATOR, lambda: T0, desk=desk(m))


async def sweep(world: World, as_of: datetime, m: Municipality = QUIET, **kw: object) -> SweepReport:
    return await watchdog(world, m).sweep(as_of=as_of, **kw)  # type: ignore[arg-type]


async def ask(world: World, *, at: datetime = T0, m: Municipality = QUIET, wijk: str = WATERKWARTIER) -> int:
    """A case with Anna (or Bert) at Verkeer since ``at``, with a question put to Verkeer then."""
    case = await world.case(broker=world.anna if wijk == WATERKWARTIER else world.bert, wijk=wijk, at=at)
    async with world.sessions() as session, session.begin():
        await change_status(session, case, "bij_gemeente", at, department="verkeer")
        await departments_store.add_contact(
            session, department="verkeer", name="Jan de Vries", email=SECOND, now=at
        )
        row = await initiatives_store.load_case_by_id(session, case)
        assert row is not None
        await desk(m).ask(
            session,
            await Casework(QUIET).view(session, row),
            department="verkeer",
            question="Mogen er bloembakken op de stoep?",
            staff_id=world.anna,
            now=at,
        )
    return case


async def ladder_mails(world: World) -> list[mail_outbox.MailRow]:
    async with world.sessions() as session:
        return [m for m in await mail_outbox.mails(session) if m.kind in LADDER_KINDS]


def sent(mails: list[mail_outbox.MailRow]) -> list[tuple[str, str]]:
    return [(m.kind, m.to_address) for m in mails]


async def department_alerts(world: World) -> list[tuple[datetime, int, bool]]:
    async with world.engine.connect() as conn:
        result = await conn.execute(
            select(StallAlert.clock_started_at, StallAlert.level, StallAlert.skipped)
            .where(StallAlert.track == "department")
            .order_by(StallAlert.clock_started_at, StallAlert.level)
        )
        return [tuple(row) for row in result]  # type: ignore[misc]


async def question(world: World, case: int) -> departments_store.QuestionRow:
    async with world.sessions() as session:
        found = await departments_store.latest_question(session, case)
        assert found is not None
        return found


REMINDER, ESCALATION, URGENT = (due(T0, NORM, level) for level in Level)
ESCALATION_DAYS = 30  # 1.5 × 20


# --- the ladder ----------------------------------------------------------------------------------


async def test_nothing_before_the_norm_then_one_reminder_per_contact_each_with_their_own_link(
    world: World,
) -> None:
    await ask(world)
    report = await sweep(world, REMINDER - timedelta(minutes=1))
    assert report.lines == () and await ladder_mails(world) == []

    report = await sweep(world, REMINDER)
    assert [(line.track, line.level, line.skipped) for line in report.lines] == [("department", 1, False)]
    mails = await ladder_mails(world)
    assert sent(mails) == [("reminder", TEAM), ("reminder", SECOND)]
    links = [LINK.findall(m.body) for m in mails]
    assert all(len(found) == 1 for found in links) and links[0] != links[1]
    async with world.sessions() as session:
        asked = [m for m in await mail_outbox.mails(session) if m.kind == "question"]
    # The same personal link as in the question's e-mail.
    assert [LINK.findall(m.body) for m in asked] == links
    assert all("INI-2026-0001" in m.subject and "Mogen er bloembakken" in m.body for m in mails)
    assert "20" in mails[0].body  # the norm
    assert await world.messages() == []  # no Telegram at 1×
    assert report.mails == 2


async def test_at_one_and_a_half_times_the_manager_and_coordinators_hear_and_the_contacts_get_a_copy(
    world: World,
) -> None:
    await ask(world)
    await sweep(world, REMINDER)
    report = await sweep(world, ESCALATION)
    assert [(line.track, line.level) for line in report.lines] == [("department", 2)]
    mails = [m for m in await ladder_mails(world) if m.kind == "escalation"]
    assert sent(mails) == [("escalation", MANAGER), ("escalation", TEAM), ("escalation", SECOND)]
    manager, *contacts = mails
    assert LINK.search(manager.body) and manager.to_name == "Marieke Jansen"
    assert all(LINK.search(m.body) and "Marieke Jansen" in m.body for m in contacts)  # their manager was told
    assert LINK.findall(manager.body) != LINK.findall(contacts[0].body)  # the manager's own link
    messages = await world.messages()
    # Waterkwartier's coordinator (not Dirk, not Anna), and the initiator's one sentence.
    assert [chat for chat, _ in messages] == [CARLA, RESIDENT]
    assert "waiting for an answer from Verkeer. We have asked a coordinator" in messages[1][1]
    text = messages[0][1]
    for part in ("Escalation: Verkeer", "INI-2026-0001", "Marieke Jansen", f"{ESCALATION_DAYS} working days"):
        assert part in text, text


async def test_at_three_times_it_is_urgent_for_manager_contacts_coordinators_and_broker(world: World) -> None:
    await ask(world)
    for moment in (REMINDER, ESCALATION):
        await sweep(world, moment)
    before = len(await world.messages())
    report = await sweep(world, URGENT)
    assert [(line.track, line.level) for line in report.lines] == [("department", 3)]
    mails = [m for m in await ladder_mails(world) if m.kind == "urgent"]
    assert sent(mails) == [("urgent", MANAGER), ("urgent", TEAM), ("urgent", SECOND)]
    assert all(m.subject.startswith(("Urgent:", "Dringend:")) for m in mails)
    urgent = (await world.messages())[before:]
    assert sorted(chat for chat, _ in urgent) == sorted([CARLA, ANNA])
    assert all("URGENT: Verkeer has not answered about INI-2026-0001" in text for _, text in urgent)


async def test_each_step_once_across_repeated_sweeps_and_restarts(world: World) -> None:
    await ask(world)
    for moment in (REMINDER, REMINDER, ESCALATION, ESCALATION, URGENT, URGENT, URGENT + timedelta(days=30)):
        first = watchdog(world)
        await first.sweep(as_of=moment)
        await first.sweep(as_of=moment)
        await sweep(world, moment)  # a new process
    kinds = [kind for kind, _ in sent(await ladder_mails(world))]
    assert kinds == ["reminder"] * 2 + ["escalation"] * 3 + ["urgent"] * 3
    assert [(level, skipped) for _, level, skipped in await department_alerts(world)] == [
        (1, False),
        (2, False),
        (3, False),
    ]
    # Carla and the initiator at 1.5×; Carla and Anna at 3×.
    assert [chat for chat, _ in await world.messages()] == [CARLA, RESIDENT, CARLA, ANNA]
    assert (await question(world, 1)).next_alert_at is None  # nothing left on this clock


@only_on("postgresql")
async def test_two_watchdogs_sweeping_at_once_send_each_step_exactly_once(
    world: World, database_url: str
) -> None:
    many = 12
    for i in range(many):
        await ask(world, wijk=WATERKWARTIER if i % 2 else NOORDVEEN)
    other = create_engine(database_url)
    try:
        second = Watchdog(session_factory(other), QUIET, TRANSLATOR, lambda: T0, desk=desk())
        for moment in (REMINDER, ESCALATION, URGENT):
            reports = await asyncio.gather(
                *(w.sweep(as_of=moment, batch=2) for w in (watchdog(world), second, watchdog(world), second))
            )
            lines = [(line.reference, line.level) for report in reports for line in report.lines]
            assert sum(1 for report in reports if report.lines) >= 2  # they really shared the work
            assert len(lines) == len(set(lines)) == many
    finally:
        await other.dispose()
    kinds = [kind for kind, _ in sent(await ladder_mails(world))]
    # Two contacts each; the manager too from 1.5× on.
    assert kinds.count("reminder") == many * 2
    assert kinds.count("escalation") == kinds.count("urgent") == many * 3
    assert len(await department_alerts(world)) == many * 3
    by_chat = [chat for chat, _ in await world.messages()]
    assert by_chat.count(CARLA) == by_chat.count(DIRK) == many  # half of the cases each, twice
    assert by_chat.count(ANNA) + by_chat.count(2002) == many  # the brokers at 3×


async def test_a_sweep_far_past_three_times_sends_only_the_highest_step(world: World) -> None:
    await ask(world)
    report = await sweep(world, URGENT + timedelta(days=10))
    assert [(line.level, line.skipped) for line in report.lines] == [(1, True), (2, True), (3, False)]
    assert {kind for kind, _ in sent(await ladder_mails(world))} == {"urgent"}
    # The urgent step overtook the escalation: the initiator's sentence comes with it.
    assert RESIDENT in [chat for chat, _ in await world.messages()]
    assert [(level, skipped) for _, level, skipped in await department_alerts(world)] == [
        (1, True),
        (2, True),
        (3, False),
    ]
    assert "skipped: a higher step is due" in report.table()


@pytest.mark.parametrize("state", ["answered", "info", "withdrawn", "forwarded"])
async def test_a_question_not_waiting_on_the_department_gets_no_steps(world: World, state: str) -> None:
    case = await ask(world)
    q = await question(world, case)
    async with world.sessions() as session, session.begin():
        await departments_store.update_question(session, q.id, state=state)  # next_alert_at left as it was
    report = await sweep(world, URGENT)
    assert report.lines == () and report.questions == 1
    assert await ladder_mails(world) == [] and await department_alerts(world) == []
    assert (await question(world, case)).next_alert_at is None  # not looked at again


async def test_after_the_brokers_reply_the_clock_starts_again_with_new_steps(world: World) -> None:
    case = await ask(world)
    await sweep(world, REMINDER)
    q = await question(world, case)
    asked_back = REMINDER + timedelta(days=1)
    async with world.sessions() as session, session.begin():
        await departments_store.update_question(session, q.id, state="info", next_alert_at=None)
    replied = asked_back + timedelta(days=7)
    async with world.sessions() as session, session.begin():
        row = await initiatives_store.load_case_by_id(session, case)
        assert row is not None
        await desk().reply(
            session,
            await Casework(QUIET).view(session, row),
            staff_id=world.anna,
            text="De stoep is 2 meter.",
            now=replied,
        )
    # The old clock's escalation moment passes quietly: that clock stopped.
    assert (await sweep(world, ESCALATION)).lines == ()
    again = due(replied, NORM, Level.REMINDER)
    assert (await sweep(world, again - timedelta(minutes=1))).lines == ()
    report = await sweep(world, again)
    assert [(line.level, line.skipped) for line in report.lines] == [(1, False)]
    assert [kind for kind, _ in sent(await ladder_mails(world))] == ["reminder"] * 4
    starts = [(start, level) for start, level, _ in await department_alerts(world)]
    assert [level for _, level in starts] == [1, 1] and starts[0][0] != starts[1][0]
    # The same links as before the reply.
    mails = await ladder_mails(world)
    assert LINK.findall(mails[0].body) == LINK.findall(mails[2].body)


async def test_a_promised_decision_date_brings_the_reminder_the_working_day_after_it(world: World) -> None:
    case = await ask(world)  # Monday 2 March 2026
    q = await question(world, case)
    async with world.sessions() as session, session.begin():
        await departments_store.update_question(session, q.id, promised_on=date(2026, 3, 5))  # a Thursday
    thursday_night = datetime(2026, 3, 5, 23, 0, tzinfo=AMSTERDAM)
    friday = datetime(2026, 3, 6, 9, 0, tzinfo=AMSTERDAM)
    assert (await sweep(world, thursday_night)).lines == ()
    report = await sweep(world, friday)
    assert [(line.level, line.skipped) for line in report.lines] == [(1, False)]
    assert friday < REMINDER  # long before the norm
    assert len(await ladder_mails(world)) == 2


async def test_holidays_weekends_and_closing_days_around_christmas_move_the_steps(world: World) -> None:
    # Verkeer answers within 2 working days; 24 December is a closing day.
    quick = dataclasses.replace(
        QUIET,
        departments=tuple(
            dataclasses.replace(d, norm_days=2) if d.code == "verkeer" else d for d in QUIET.departments
        ),
        closing_days=(date(2026, 12, 24),),
    )
    asked = datetime(2026, 12, 23, 10, 0, tzinfo=AMSTERDAM)  # a Wednesday
    await ask(world, at=asked, m=quick)
    moments = {
        # 24 Dec closed, 25 and 26 Christmas, 27 a Sunday: Mon 28 is day 1, Tue 29 day 2.
        Level.REMINDER: datetime(2026, 12, 29, 9, 0, tzinfo=AMSTERDAM),
        Level.ESCALATION: datetime(2026, 12, 30, 9, 0, tzinfo=AMSTERDAM),  # day 3
        # 31 Dec day 4, New Year's day, a weekend, Mon 4 Jan day 5, Tue 5 Jan day 6.
        Level.URGENT: datetime(2027, 1, 5, 9, 0, tzinfo=AMSTERDAM),
    }
    for level, moment in moments.items():
        assert (await sweep(world, moment - timedelta(minutes=1), quick)).lines == ()
        report = await sweep(world, moment, quick)
        assert [(line.level, line.skipped) for line in report.lines] == [(int(level), False)]


async def test_a_promise_for_christmas_eve_brings_the_reminder_on_the_monday_after(world: World) -> None:
    asked = datetime(2026, 12, 14, 10, 0, tzinfo=AMSTERDAM)
    case = await ask(world, at=asked)
    q = await question(world, case)
    async with world.sessions() as session, session.begin():
        await departments_store.update_question(session, q.id, promised_on=date(2026, 12, 24))
    # 25 and 26 December are holidays, 27 a Sunday.
    assert (await sweep(world, datetime(2026, 12, 27, 23, 0, tzinfo=AMSTERDAM))).lines == ()
    report = await sweep(world, datetime(2026, 12, 28, 9, 0, tzinfo=AMSTERDAM))
    assert [(line.level, line.skipped) for line in report.lines] == [(1, False)]


async def test_without_a_manager_the_escalation_goes_to_the_contacts_with_a_warning(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = dataclasses.replace(
        QUIET,
        departments=tuple(
            Department(d.code, d.name, d.norm_days, d.contacts, None) if d.code == "verkeer" else d
            for d in QUIET.departments
        ),
    )
    await ask(world, m=nobody)
    with caplog.at_level(logging.WARNING):
        await sweep(world, ESCALATION, nobody)
    assert sent(await ladder_mails(world)) == [("escalation", TEAM), ("escalation", SECOND)]
    assert "has no manager" in caplog.text
    (chat, text), (resident, _) = await world.messages()
    assert chat == CARLA and "Verkeer has no manager" in text and resident == RESIDENT


# --- a dry run -----------------------------------------------------------------------------------


async def test_a_dry_run_shows_the_messages_without_recording_or_sending(world: World) -> None:
    case = await ask(world)
    before = (await question(world, case)).next_alert_at
    report = await sweep(world, ESCALATION, dry_run=True, show=True)
    assert [(line.track, line.level, line.skipped) for line in report.lines] == [
        ("department", 1, True),
        ("department", 2, False),
    ]
    shown = report.lines[1].messages
    assert [(m.recipient.audience.value, m.language) for m in shown] == [
        ("manager", "nl"),
        ("contact", "nl"),
        ("contact", "nl"),
        ("coordinator", "en"),
        ("resident", "en"),
    ]
    assert "[personal link]" in shown[0].text and "Mogen er bloembakken" in shown[0].text
    assert "Escalation: Verkeer" in shown[3].text
    table = report.table()
    assert re.search(
        r"INI-2026-0001\s+department\s+2 escalation\s+"
        r"manager Marieke Jansen <manager.verkeer@zutphen.example>, "
        r"contact Team Verkeer <verkeer@zutphen.example>, contact Jan de Vries <j.devries@zutphen.example>, "
        r"coordinator Carla Smit",
        table,
    ), table
    assert "1 due department question checked" in table and "dry run" in table
    assert await ladder_mails(world) == [] and await department_alerts(world) == []
    assert await world.messages() == []
    assert (await question(world, case)).next_alert_at == before
    # The real sweep afterwards sends what the dry run showed.
    assert len((await sweep(world, ESCALATION)).sent) == 1
    assert len(await ladder_mails(world)) == 3


async def test_the_due_questions_query_uses_its_index(world: World) -> None:
    async with world.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A tiny table is read whole; switching that off shows the index can serve the query.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = await explain_due_questions(conn, {"now": T0, "limit": 500})
        after = await explain_due_questions(conn, {"now": T0, "limit": 500, "after_at": T0, "after_key": 7})
    for shown in (plan, after):
        assert "ix_department_questions_next_alert_at" in shown, shown
        assert "SCAN department_questions" not in shown and "Seq Scan" not in shown, shown
