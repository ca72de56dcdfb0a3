"""The stall watchdog: each step of the escalation ladder reaches the right people once, on both databases.

The sweeps run ``as_of`` chosen moments, computed from the norms with ``flows.stalls.due_at``; messages are
read from the outbox table (or from a recording transport where sending itself matters).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.casework import Casework
from bot.i18n import Translator
from bot.outbox import Outbox
from bot.settings import BUNDLED_CONFIG_DIR, load_municipality
from bot.watchdog import SweepReport, Watchdog
from flows import stalls
from flows.municipality import Municipality
from flows.resident import LANGUAGES
from flows.stalls import AMSTERDAM, Level
from storage import alerts as alerts_store
from storage import departments as departments_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage import tables
from storage.db import create_engine, session_factory
from storage.explain import explain_due_cases
from storage.migrate import upgrade
from storage.models import OutboxMessage, StallAlert

ZUTPHEN = load_municipality(BUNDLED_CONFIG_DIR / "zutphen.toml")
# Without the silence clock getting in the way: tests of the status ladder use this one.
QUIET = dataclasses.replace(ZUTPHEN, no_sign_of_life_days=200)
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday morning
WATERKWARTIER, NOORDVEEN = "WK030101", "WK030102"
RESIDENT, ANNA, BERT, CARLA, DIRK = 1001, 2001, 2002, 3001, 3002
TRANSLATOR = Translator(tuple(LANGUAGES))
# The resident's one sentence at 1.5× the norm, per situation.
WITH_BROKER = "It is taking longer than usual. We have asked your initiative broker to contact you."
NO_BROKER_YET = (
    "It is taking longer than usual. Your initiative has no initiative broker at the moment. "
    "We have asked a coordinator to find one for you."
)
BROKER_AWAY = (
    "It is taking longer than usual. Your initiative broker is away for a while. "
    "We have asked a coordinator to help you further."
)
AT_VERGUNNINGEN = "Your initiative is waiting for an answer from Vergunningen."


def only_on(backend: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("database_url", [backend], indirect=True, ids=[backend])


def due(started: datetime, norm: int, level: Level, m: Municipality = ZUTPHEN) -> datetime:
    """When ``level`` of a clock with this norm, started at ``started``, is due."""
    return stalls.due_at(started, stalls.threshold(norm, level), m.closing_days)


@dataclass
class World:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    anna: int = 0  # broker in Waterkwartier
    bert: int = 0  # broker in Noordveen
    carla: int = 0  # coordinator of Waterkwartier
    dirk: int = 0  # coordinator of Noordveen

    def watchdog(self, m: Municipality = QUIET, outbox: Outbox | None = None) -> Watchdog:
        return Watchdog(self.sessions, m, TRANSLATOR, lambda: datetime.now(UTC), outbox=outbox)

    async def sweep(self, as_of: datetime, m: Municipality = QUIET, **kw: Any) -> SweepReport:
        return await self.watchdog(m).sweep(as_of=as_of, **kw)

    async def case(self, *, wijk: str = WATERKWARTIER, broker: int | None = None, at: datetime = T0) -> int:
        """A submitted initiative; with ``broker``, assigned to them (toegewezen) at the same moment."""
        async with self.sessions() as session, session.begin():
            created = await initiatives_store.create_initiative(session, new_initiative(wijk), at)
            if broker is not None:
                await initiatives_store.assign(
                    session, created.id, broker_id=broker, by_staff_id=None, note=None, now=at
                )
                await change_status(session, created.id, "toegewezen", at)
            return created.id

    async def messages(self) -> list[tuple[int, str]]:
        """(chat id, text) of every queued message, oldest first."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(OutboxMessage.chat_id, OutboxMessage.payload).order_by(OutboxMessage.id)
            )
            return [(chat, payload.get("text") or payload.get("caption") or "") for chat, payload in result]

    async def alerts(self) -> list[tuple[int, str, int, bool]]:
        """(initiative id, track, level, skipped) of every recorded ladder step."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(
                    StallAlert.initiative_id, StallAlert.track, StallAlert.level, StallAlert.skipped
                ).order_by(
                    StallAlert.initiative_id, StallAlert.clock_started_at, StallAlert.track, StallAlert.level
                )
            )
            return [tuple(row) for row in result]  # type: ignore[misc]

    async def next_alert_at(self, initiative_id: int) -> datetime | None:
        async with self.sessions() as session, session.begin():
            rows = await alerts_store.due_cases(session, now=datetime(2100, 1, 1, tzinfo=UTC), limit=1000)
            found = [row.next_alert_at for row in rows if row.id == initiative_id]
            return found[0] if found else None


def new_initiative(wijk: str) -> initiatives_store.NewInitiative:
    return initiatives_store.NewInitiative(
        municipality_code="GM0301",
        prefix="INI",
        resident_user_id=RESIDENT,
        resident_chat_id=RESIDENT,
        title="Bankjes in het park",
        description="Drie bankjes bij de speeltuin.",
        theme_code="groen",
        wijk_code=wijk,
        own_contribution=None,
        needs=("geld",),
        amount_cents=None,
        neighbours=None,
        photo_file_id=None,
        contact_name="Fatima",
        contact_phone=None,
        contact_email=None,
        consent_at=T0,
        language="en",
    )


async def change_status(
    session: AsyncSession, initiative_id: int, status: str, at: datetime, department: str | None = None
) -> None:
    await initiatives_store.change_status(
        session,
        initiative_id,
        status=status,
        now=at,
        actor_role="system",
        actor_user_id=None,
        staff_id=None,
        note=None,
        department=department,
    )


@pytest_asyncio.fixture
async def world(engine: AsyncEngine) -> World:
    sessions = session_factory(engine)
    w = World(engine, sessions)
    async with sessions() as session, session.begin():
        for user_id in (RESIDENT, ANNA, BERT, CARLA, DIRK):
            # Everybody reads English, so the texts here do not depend on the Dutch catalog.
            await people_store.upsert_person(
                session, user_id=user_id, chat_id=user_id, first_name="X", telegram_language="en", now=T0
            )
        staff = (
            ("anna", ANNA, "Anna Jansen", "broker", [WATERKWARTIER]),
            ("bert", BERT, "Bert de Vries", "broker", [NOORDVEEN]),
            ("carla", CARLA, "Carla Smit", "coordinator", [WATERKWARTIER]),
            ("dirk", DIRK, "Dirk Bos", "coordinator", [NOORDVEEN]),
        )
        for attr, user_id, name, role, wijken in staff:
            row = await staff_store.add_staff(
                session, telegram_user_id=user_id, name=name, role=role, wijken=wijken, themes=[], now=T0
            )
            setattr(w, attr, row.id)
    return w


def chats(messages: list[tuple[int, str]]) -> list[int]:
    return [chat for chat, _ in messages]


# --- the ladder ----------------------------------------------------------------------------------


async def test_each_step_of_the_ladder_arrives_once_across_repeated_sweeps(world: World) -> None:
    case = await world.case(broker=world.anna)
    norm = QUIET.norm("toegewezen")
    assert norm == 5

    report = await world.sweep(due(T0, norm, Level.REMINDER) - timedelta(minutes=1))
    assert report.lines == () and await world.messages() == []

    reminder = due(T0, norm, Level.REMINDER)
    report = await world.sweep(reminder)
    assert [(line.track, line.level, line.skipped) for line in report.lines] == [("status", 1, False)]
    assert [r.name for r in report.lines[0].recipients] == ["Anna Jansen"]
    messages = await world.messages()
    assert chats(messages) == [ANNA]
    assert "Reminder: INI-2026-0001 has been 5 working days in Assigned (norm 5)." in messages[0][1]
    assert "Bankjes in het park" in messages[0][1]  # the case card comes with it
    for _ in range(2):
        assert (await world.sweep(reminder + timedelta(hours=3))).lines == ()
    assert len(await world.messages()) == 1

    escalation = due(T0, norm, Level.ESCALATION)
    report = await world.sweep(escalation)
    assert [(line.level, [r.audience.value for r in line.recipients]) for line in report.lines] == [
        (2, ["coordinator", "resident"])
    ]
    new = (await world.messages())[1:]
    assert chats(new) == [CARLA, RESIDENT]
    assert new[0][1].startswith("Escalation: INI-2026-0001 · Bankjes in het park")
    assert "8 working days in Assigned: 3 working days over the norm of 5." in new[0][1]
    assert "Initiative broker: Anna Jansen" in new[0][1]
    assert "It is taking longer than usual. We have asked your initiative broker to contact you." in new[1][1]
    assert (await world.sweep(escalation + timedelta(days=1))).lines == ()

    urgent = due(T0, norm, Level.URGENT)
    report = await world.sweep(urgent)
    assert [(line.level, [r.name for r in line.recipients]) for line in report.lines] == [(3, ["Carla Smit"])]
    new = (await world.messages())[3:]
    assert chats(new) == [CARLA]
    assert new[0][1].startswith("⚠ URGENT escalation: INI-2026-0001")
    for _ in range(2):
        assert (await world.sweep(urgent + timedelta(days=30))).lines == ()
    assert len(await world.messages()) == 4
    assert await world.alerts() == [
        (case, "status", 1, False),
        (case, "status", 2, False),
        (case, "status", 3, False),
    ]
    # Nothing left on the status clock: the watchdog looks again when the (long) silence clock runs out.
    assert await world.next_alert_at(case) == due(T0, QUIET.no_sign_of_life_days, Level.REMINDER)


async def test_the_escalation_buttons_open_assign_and_remind(world: World) -> None:
    await world.case(broker=world.anna)
    await world.sweep(due(T0, 5, Level.ESCALATION))
    async with world.engine.connect() as conn:
        payload = (
            await conn.execute(select(OutboxMessage.payload).where(OutboxMessage.chat_id == CARLA))
        ).scalar_one()
    buttons = [b["callback_data"] for row in payload["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["c:INI-2026-0001:open", "c:INI-2026-0001:remind", "c:INI-2026-0001:as"]


async def test_a_status_change_starts_a_new_ladder(world: World) -> None:
    case = await world.case(broker=world.anna)
    await world.sweep(due(T0, 5, Level.REMINDER))
    assert chats(await world.messages()) == [ANNA]

    # The broker has talked to the initiators: a new status, a new clock (norm 10).
    moved = due(T0, 5, Level.REMINDER) + timedelta(hours=2)
    async with world.sessions() as session, session.begin():
        await change_status(session, case, "in_gesprek", moved)
    assert await world.next_alert_at(case) == moved  # "recheck me"

    # The old clock's escalation never comes.
    assert (await world.sweep(due(T0, 5, Level.ESCALATION))).lines == ()
    assert (await world.sweep(due(moved, 10, Level.REMINDER) - timedelta(minutes=1))).lines == ()
    report = await world.sweep(due(moved, 10, Level.REMINDER))
    assert [(line.level, line.skipped) for line in report.lines] == [(1, False)]
    messages = await world.messages()
    assert chats(messages) == [ANNA, ANNA]
    assert "10 working days in In conversation (norm 10)" in messages[1][1]


async def test_steps_overtaken_by_a_higher_one_are_recorded_but_not_sent(world: World) -> None:
    # The watchdog was not running for weeks: the urgent step is due, and so are the two before it.
    case = await world.case(broker=world.anna)
    report = await world.sweep(due(T0, 5, Level.URGENT))
    assert [(line.level, line.skipped) for line in report.lines] == [(1, True), (2, True), (3, False)]
    assert "skipped" in report.table()
    # Only the urgent escalation goes out, and with it the resident's sentence of the skipped escalation:
    # the resident is told once, however late.
    messages = await world.messages()
    assert chats(messages) == [CARLA, RESIDENT]
    assert WITH_BROKER in messages[1][1]
    assert await world.alerts() == [
        (case, "status", 1, True),
        (case, "status", 2, True),
        (case, "status", 3, False),
    ]
    assert (await world.sweep(due(T0, 5, Level.URGENT) + timedelta(days=1))).lines == ()
    assert chats(await world.messages()) == [CARLA, RESIDENT]


async def test_the_silence_clock_reminds_the_broker_and_restarts_when_they_act(world: World) -> None:
    m = dataclasses.replace(ZUTPHEN, no_sign_of_life_days=3)
    case = await world.case(broker=world.anna)
    async with world.sessions() as session, session.begin():
        await change_status(session, case, "in_uitvoering", T0)  # norm 40: that clock stays quiet
    reminder = due(T0, 3, Level.REMINDER, m)
    report = await world.sweep(reminder, m)
    assert [(line.track, line.level) for line in report.lines] == [("silence", 1)]
    ((chat, text_),) = await world.messages()
    assert chat == ANNA
    assert "No sign of life on INI-2026-0001 for 3 working days." in text_

    # Anna writes a note: the silence clock starts again from there.
    noted = reminder + timedelta(hours=1)
    async with world.sessions() as session, session.begin():
        await initiatives_store.add_event(
            session,
            case,
            kind="note",
            now=noted,
            actor_role="broker",
            staff_id=world.anna,
            touch_broker_action=True,
        )
    assert (await world.sweep(due(T0, 3, Level.ESCALATION, m), m)).lines == ()
    report = await world.sweep(due(noted, 3, Level.REMINDER, m), m)
    assert [(line.track, line.level) for line in report.lines] == [("silence", 1)]
    assert chats(await world.messages()) == [ANNA, ANNA]


async def test_an_absent_brokers_reminder_goes_to_the_wijks_coordinator(world: World) -> None:
    await world.case(broker=world.anna)
    reminder = due(T0, 5, Level.REMINDER)
    back = reminder.date() + timedelta(days=4)
    async with world.sessions() as session, session.begin():
        await staff_store.set_absent(session, world.anna, back)
    report = await world.sweep(reminder)
    assert [(r.audience.value, r.name) for r in report.lines[0].recipients] == [("coordinator", "Carla Smit")]
    ((chat, text_),) = await world.messages()
    assert chat == CARLA  # not Dirk: he coordinates another wijk
    assert text_.startswith("Reminder for INI-2026-0001 · Bankjes in het park")
    assert "Anna Jansen is absent until" in text_ and "so this reminder comes to you" in text_


async def test_a_broker_absent_until_yesterday_gets_the_reminder_again(world: World) -> None:
    await world.case(broker=world.anna)
    reminder = due(T0, 5, Level.REMINDER)
    async with world.sessions() as session, session.begin():
        await staff_store.set_absent(session, world.anna, reminder.date() - timedelta(days=1))
    await world.sweep(reminder)
    assert chats(await world.messages()) == [ANNA]


async def test_an_initiative_without_a_broker_alerts_the_coordinators_from_the_first_step(
    world: World,
) -> None:
    await world.case(wijk=NOORDVEEN)  # nobody took it: still ingediend, norm 2
    report = await world.sweep(due(T0, 2, Level.REMINDER))
    assert [(line.level, [r.name for r in line.recipients]) for line in report.lines] == [(1, ["Dirk Bos"])]
    ((chat, text_),) = await world.messages()
    assert chat == DIRK
    assert "Initiative broker: nobody yet" in text_ and "Please assign an initiative broker." in text_
    # No broker to ask: at 1.5× the resident hears that a coordinator looks for one.
    await world.sweep(due(T0, 2, Level.ESCALATION))
    messages = await world.messages()
    assert chats(messages) == [DIRK, DIRK, RESIDENT]
    assert NO_BROKER_YET in messages[2][1]


async def _with_broker(world: World) -> tuple[int, int]:
    return await world.case(broker=world.anna), 5


async def _without_broker(world: World) -> tuple[int, int]:
    return await world.case(wijk=NOORDVEEN), 2  # ingediend


async def _broker_away(world: World) -> tuple[int, int]:
    case = await world.case(broker=world.anna)
    async with world.sessions() as session, session.begin():
        await staff_store.set_absent(session, world.anna, (T0 + timedelta(days=365)).date())
    return case, 5


async def ask_department(world: World, case: int, department: str, at: datetime) -> None:
    """Put the case to ``department`` with a question at ``at``: the department's clock starts (bij_gemeente
    has no status clock of its own)."""
    async with world.sessions() as session, session.begin():
        await change_status(session, case, "bij_gemeente", at, department=department)
        row = await initiatives_store.load_case_by_id(session, case)
        assert row is not None
        desk = Casework(QUIET, web_url="http://localhost:8080", translator=TRANSLATOR).desk
        await desk.ask(
            session,
            await Casework(QUIET).view(session, row),
            department=department,
            question="Mag dit?",
            staff_id=None,
            now=at,
        )


async def _at_vergunningen(world: World) -> tuple[int, int]:
    case = await world.case(broker=world.anna)
    await ask_department(world, case, "vergunningen", T0)
    return case, 40  # the department's own norm


async def _at_vergunningen_unstaffed(world: World) -> tuple[int, int]:
    case, norm = await _at_vergunningen(world)
    async with world.sessions() as session, session.begin():
        await staff_store.remove_staff(session, staff_id=world.anna, now=T0)
    return case, norm


@pytest.mark.parametrize(
    ("situation", "sentence"),
    [
        (_with_broker, WITH_BROKER),
        (_without_broker, NO_BROKER_YET),
        (_broker_away, BROKER_AWAY),
        # On the department's clock the coordinators (and the department's manager) were asked.
        (_at_vergunningen, f"{AT_VERGUNNINGEN} We have asked a coordinator to ask them about it."),
        (_at_vergunningen_unstaffed, f"{AT_VERGUNNINGEN} We have asked a coordinator to ask them about it."),
    ],
    ids=["with-broker", "without-broker", "broker-away", "at-a-department", "at-a-department-no-broker"],
)
async def test_every_resident_hears_one_true_sentence_at_one_and_a_half_times_the_norm(
    world: World, situation: Any, sentence: str
) -> None:
    _, norm = await situation(world)
    escalation = due(T0, norm, Level.ESCALATION)
    await world.sweep(due(T0, norm, Level.REMINDER))
    assert RESIDENT not in chats(await world.messages())  # not at the reminder
    for moment in (escalation, escalation + timedelta(days=1), due(T0, norm, Level.URGENT)):
        await world.sweep(moment)
    told = [text_ for chat, text_ in await world.messages() if chat == RESIDENT]
    assert len(told) == 1, told  # once per status entry: the escalation's unique key
    assert sentence in told[0] and "INI-2026-0001 · Bankjes in het park" in told[0]


async def test_the_resident_hears_again_only_after_the_case_enters_its_status_anew(world: World) -> None:
    case = await world.case(broker=world.anna)
    await ask_department(world, case, "verkeer", T0)  # norm 20
    first = due(T0, 20, Level.ESCALATION)
    for moment in (first, first + timedelta(hours=5)):
        await world.sweep(moment)
    # The department asks for changes; the plan goes back to Verkeer the next day: a new entry.
    back = first + timedelta(days=1)
    async with world.sessions() as session, session.begin():
        await change_status(session, case, "plan_in_uitwerking", back - timedelta(hours=2))
        await departments_store.withdraw_active(session, case, now=back - timedelta(hours=2))
    await ask_department(world, case, "verkeer", back)
    for moment in (due(back, 20, Level.ESCALATION), due(back, 20, Level.ESCALATION) + timedelta(days=2)):
        await world.sweep(moment)
    told = [text_ for chat, text_ in await world.messages() if chat == RESIDENT]
    assert len(told) == 2
    assert all("waiting for an answer from Verkeer" in text_ for text_ in told)


async def test_a_wijk_without_its_own_coordinator_alerts_all_coordinators(world: World) -> None:
    await world.case(wijk="WK030104")  # Leesten
    await world.sweep(due(T0, 2, Level.REMINDER))
    assert sorted(chats(await world.messages())) == [CARLA, DIRK]


async def test_coordinators_each_read_the_escalation_in_their_own_language_in_their_own_chat(
    world: World,
) -> None:
    async def payloads() -> dict[int, dict[str, Any]]:
        async with world.engine.connect() as conn:
            result = await conn.execute(select(OutboxMessage.chat_id, OutboxMessage.payload))
            return {chat: payload for chat, payload in result}

    # Leesten has no coordinator of its own, so Carla and Dirk both hear; both read English.
    await world.case(wijk="WK030104")
    await world.sweep(due(T0, 2, Level.REMINDER))
    sent = await payloads()
    assert sorted(sent) == [CARLA, DIRK]
    assert sent[CARLA]["chat_id"] == CARLA and sent[DIRK]["chat_id"] == DIRK
    assert {**sent[CARLA], "chat_id": 0} == {**sent[DIRK], "chat_id": 0}
    assert sent[CARLA]["text"].startswith("Reminder for ")

    async with world.sessions() as session, session.begin():
        await session.execute(delete(OutboxMessage))
        await people_store.set_language(session, DIRK, "nl")
    later = T0 + timedelta(days=7)
    await world.case(wijk="WK030104", at=later)
    await world.sweep(due(later, 2, Level.REMINDER))
    sent = await payloads()
    assert sent[CARLA]["text"].startswith("Reminder for ")
    assert sent[DIRK]["text"].startswith("Herinnering voor ")
    assert sent[CARLA]["reply_markup"] != sent[DIRK]["reply_markup"]  # the buttons are translated too


async def test_the_resident_sentence_can_be_switched_off(world: World) -> None:
    m = dataclasses.replace(QUIET, stall_resident_notice=False)
    await world.case(broker=world.anna)
    await world.sweep(due(T0, 5, Level.ESCALATION), m)
    assert RESIDENT not in chats(await world.messages())


async def test_final_statuses_have_no_clock(world: World) -> None:
    case = await world.case(broker=world.anna)
    async with world.sessions() as session, session.begin():
        await change_status(session, case, "gestopt", T0 + timedelta(hours=1))
    report = await world.sweep(T0 + timedelta(days=400), ZUTPHEN)
    assert report.cases == 1 and report.lines == ()
    assert await world.next_alert_at(case) is None


async def test_a_dry_run_reports_but_records_queues_and_changes_nothing(world: World) -> None:
    case = await world.case(broker=world.anna)
    await world.case(wijk=NOORDVEEN)
    before = await world.next_alert_at(case)
    escalation = due(T0, 5, Level.ESCALATION)
    for _ in range(2):
        report = await world.sweep(escalation, dry_run=True)
        assert report.dry_run and report.queued == 0
        assert [(line.reference, line.level, line.skipped) for line in report.lines] == [
            ("INI-2026-0001", 1, True),
            ("INI-2026-0001", 2, False),
            # Nobody took this one (ingediend, norm 2): it is past the urgent step already.
            ("INI-2026-0002", 1, True),
            ("INI-2026-0002", 2, True),
            ("INI-2026-0002", 3, False),
        ]
    table = report.table()
    assert "coordinator Carla Smit, resident" in table and "dry run" in table
    assert await world.messages() == [] and await world.alerts() == []
    assert await world.next_alert_at(case) == before


async def test_the_summary_counts_the_alerts_and_initiatives_it_lists(world: World) -> None:
    await world.case(broker=world.anna)
    reminder = due(T0, 5, Level.REMINDER)
    # Submitted an hour ago: the watchdog looks at it (a fresh case asks for a first look), nothing is due.
    await world.case(wijk=NOORDVEEN, at=reminder - timedelta(hours=1))
    for dry_run in (True, False):
        report = await world.sweep(reminder, dry_run=dry_run)
        assert [line.reference for line in report.lines] == ["INI-2026-0001"]
        assert report.summary() == "1 alert for 1 initiative; 2 due initiatives checked"
    assert report.table().splitlines()[-1].endswith("Europe/Amsterdam; 1 message queued")


async def test_two_clocks_of_one_initiative_are_two_alerts_for_one_initiative(world: World) -> None:
    m = dataclasses.replace(ZUTPHEN, no_sign_of_life_days=5)  # due together with toegewezen's norm
    await world.case(broker=world.anna)
    report = await world.sweep(due(T0, 5, Level.REMINDER), m)
    assert [(line.track, line.level) for line in report.lines] == [("status", 1), ("silence", 1)]
    assert report.summary() == "2 alerts for 1 initiative; 1 due initiative checked"
    report = await world.sweep(due(T0, 5, Level.URGENT), m)
    assert [(line.track, line.level, line.skipped) for line in report.lines] == [
        ("status", 2, True),
        ("silence", 2, True),
        ("status", 3, False),
        ("silence", 3, False),
    ]
    assert report.summary() == "2 alerts for 1 initiative (2 lower steps skipped); 1 due initiative checked"


async def test_a_dry_run_with_show_prints_each_message_as_its_recipient_would_read_it(world: World) -> None:
    await world.case(broker=world.anna)
    async with world.sessions() as session, session.begin():
        await people_store.set_language(session, CARLA, "nl")  # Carla reads Dutch, the resident English
    report = await world.sweep(due(T0, 5, Level.ESCALATION), dry_run=True, show=True)
    escalation = report.sent[0]
    assert [(m.recipient.audience.value, m.recipient.name, m.language) for m in escalation.messages] == [
        ("coordinator", "Carla Smit", "nl"),
        ("resident", "Fatima", "en"),
    ]
    carla, resident = escalation.messages
    assert carla.text.startswith("Escalatie: INI-2026-0001 · Bankjes in het park")
    assert "Initiatiefmakelaar: Anna Jansen" in carla.text and "[Openen]" in carla.text
    assert WITH_BROKER in resident.text
    table = report.table()
    assert "  → coordinator Carla Smit (nl):\n      Escalatie: INI-2026-0001 · Bankjes in het park" in table
    assert "  → resident Fatima (en):" in table and WITH_BROKER in table
    assert await world.messages() == [] and await world.alerts() == []
    # Without show, a dry run renders nothing; a real sweep sends what show would print.
    assert (await world.sweep(due(T0, 5, Level.ESCALATION), dry_run=True)).sent[0].messages == ()
    with pytest.raises(ValueError, match="dry run"):
        await world.sweep(due(T0, 5, Level.ESCALATION), show=True)
    await world.sweep(due(T0, 5, Level.ESCALATION))
    sent = [text_ for _, text_ in await world.messages()]
    assert sent == [m.text.split("\n[")[0] for m in (carla, resident)]  # the same texts, without the buttons


async def test_a_dry_run_pages_through_more_due_cases_than_one_batch(world: World) -> None:
    for _ in range(7):
        await world.case(broker=world.anna)
    report = await world.sweep(due(T0, 5, Level.REMINDER), dry_run=True, batch=3)
    assert report.cases == 7
    assert sorted({line.reference for line in report.lines}) == [f"INI-2026-{n:04d}" for n in range(1, 8)]
    report = await world.sweep(due(T0, 5, Level.REMINDER), batch=3)
    assert report.cases == 7 and len(report.sent) == 7 and len(await world.messages()) == 7


async def test_the_watchdog_sends_through_the_outbox_after_commit(world: World) -> None:
    delivered: list[tuple[str, dict[str, Any]]] = []

    class Transport:
        async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
            delivered.append((method, payload))
            return len(delivered)

    await world.case(broker=world.anna)
    outbox = Outbox(world.sessions, Transport(), lambda: datetime.now(UTC))
    report = await world.watchdog(outbox=outbox).sweep(as_of=due(T0, 5, Level.ESCALATION))
    assert report.queued == 2
    assert [payload["chat_id"] for _, payload in delivered] == [CARLA, RESIDENT]
    async with world.engine.connect() as conn:
        statuses = (await conn.execute(select(OutboxMessage.status))).scalars().all()
    assert statuses == ["sent", "sent"]


# --- storage -------------------------------------------------------------------------------------


async def test_every_write_that_moves_a_clock_asks_for_a_recheck(world: World) -> None:
    case = await world.case()
    assert await world.next_alert_at(case) == T0
    for minutes, write in enumerate(("set", "assign", "status", "note", "touch"), start=1):
        now = T0 + timedelta(minutes=minutes)
        async with world.sessions() as session, session.begin():
            await alerts_store.set_next_alert(session, case, T0 + timedelta(days=30))
            if write == "assign":
                await initiatives_store.assign(
                    session, case, broker_id=world.anna, by_staff_id=None, note=None, now=now
                )
            elif write == "status":
                await change_status(session, case, "in_gesprek", now)
            elif write in ("note", "touch"):
                await initiatives_store.add_event(
                    session,
                    case,
                    kind="note",
                    now=now,
                    actor_role="broker",
                    touch_broker_action=write == "touch",
                )
        expected = {"set": T0 + timedelta(days=30), "note": T0 + timedelta(days=30)}.get(write, now)
        assert await world.next_alert_at(case) == expected, write


async def test_record_alert_is_true_only_for_the_first_and_sent_alerts_reads_the_keys(world: World) -> None:
    case = await world.case()
    key = {"initiative_id": case, "track": "status", "started_at": T0, "level": 1, "skipped": False}
    async with world.sessions() as session, session.begin():
        assert await alerts_store.record_alert(session, **key, now=T0) is True
        assert await alerts_store.record_alert(session, **key, now=T0) is False
        assert await alerts_store.record_alert(session, **{**key, "level": 2}, now=T0) is True
    async with world.sessions() as session, session.begin():
        assert await alerts_store.record_alert(session, **key, now=T0) is False
        sent = await alerts_store.sent_alerts(session, [case, case + 1])
    assert sent == {case: {("status", T0, 1), ("status", T0, 2)}, case + 1: set()}


async def test_the_due_query_uses_the_index(world: World) -> None:
    async with world.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A tiny table is read whole; switching that off shows the index can serve the query.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = await explain_due_cases(conn, {"now": T0, "limit": 500})
        after = await explain_due_cases(conn, {"now": T0, "limit": 500, "after_at": T0, "after_key": 7})
    for shown in (plan, after):
        assert "ix_initiatives_next_alert_at" in shown, shown
        assert "SCAN initiatives" not in shown and "Seq Scan" not in shown, shown


async def test_the_migration_asks_for_a_first_look_at_every_open_initiative(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0002")
        values = {
            field: getattr(new_initiative(WATERKWARTIER), field)
            for field in initiatives_store.NewInitiative.__dataclass_fields__
            if field not in ("prefix", *initiatives_store.LATER_COLUMNS)
        }
        async with session_factory(engine)() as session, session.begin():
            for seq, status in enumerate(("in_gesprek", "gestopt"), start=1):
                row = {
                    **values,
                    "needs": ["geld"],
                    "reference": f"INI-2026-{seq:04d}",
                    "year": 2026,
                    "seq": seq,
                    "status": status,
                    "status_changed_at": T0,
                    "created_at": T0,
                    "updated_at": T0,
                }
                await session.execute(tables.initiatives.insert(), row)
        await upgrade(engine)
        async with engine.connect() as conn:
            found = dict((await conn.execute(text("select status, next_alert_at from initiatives"))).all())
        assert found["gestopt"] is None
        assert found["in_gesprek"] is not None
    finally:
        await engine.dispose()


# --- several watchdogs at once -------------------------------------------------------------------


@only_on("postgresql")
async def test_two_watchdogs_sweeping_at_once_send_every_alert_exactly_once(
    world: World, database_url: str
) -> None:
    many = 40
    for i in range(many):
        await world.case(
            broker=world.anna if i % 2 else world.bert, wijk=WATERKWARTIER if i % 2 else NOORDVEEN
        )
    other = create_engine(database_url)
    try:
        first = world.watchdog()
        second = Watchdog(session_factory(other), QUIET, TRANSLATOR, lambda: datetime.now(UTC))
        for level in Level:
            at = due(T0, 5, level)
            # Small batches, so the two take turns on the queue and meet on locked rows.
            reports = await asyncio.gather(
                *(w.sweep(as_of=at, batch=3) for w in (first, second, first, second))
            )
            lines = [(line.reference, line.level) for report in reports for line in report.lines]
            assert sum(1 for report in reports if report.lines) >= 2  # they really shared the work
            assert sorted(lines) == sorted((f"INI-2026-{n:04d}", int(level)) for n in range(1, many + 1))
    finally:
        await other.dispose()
    messages = await world.messages()
    # Per case: the broker's reminder, the escalation with the resident's sentence, the urgent one.
    assert len(messages) == many * 4
    assert len(await world.alerts()) == many * 3


@only_on("postgresql")
async def test_the_unique_key_lets_only_one_of_two_racing_transactions_record_a_step(world: World) -> None:
    case = await world.case()
    key = {"initiative_id": case, "track": "status", "started_at": T0, "level": 1, "skipped": False}
    async with world.sessions() as first, first.begin():
        assert await alerts_store.record_alert(first, **key, now=T0) is True

        async def second() -> bool:
            async with world.sessions() as session, session.begin():
                return await alerts_store.record_alert(session, **key, now=T0)

        racing = asyncio.create_task(second())
        await wait_until_blocked(world.engine)
    # The first committed: the second, which waited on the key, inserts nothing.
    assert await racing is False
    assert len(await world.alerts()) == 1


async def wait_until_blocked(engine: AsyncEngine) -> None:
    """Until some other backend of this role waits for a lock (polling: no fixed sleep)."""
    query = text(
        "select count(*) from pg_stat_activity where usename = current_user and wait_event_type = 'Lock'"
    )
    async with engine.connect() as conn:
        for _ in range(500):
            if (await conn.execute(query)).scalar_one():
                return
            await conn.rollback()
            await asyncio.sleep(0.01)
    raise AssertionError("the second transaction never waited for the first")


# --- the coordinators' weekly digest -------------------------------------------------------------


async def test_each_coordinator_gets_the_weekly_digest_once_on_monday_morning(world: World) -> None:
    monday = datetime(2026, 3, 9, 9, 30, tzinfo=AMSTERDAM)  # the Monday after T0's week
    await world.case(broker=world.anna, at=monday - timedelta(days=4))  # new last week, in Waterkwartier
    await world.case(wijk=NOORDVEEN, at=monday - timedelta(days=3))  # new last week, nobody took it
    watchdog = world.watchdog()
    assert await watchdog.digests(as_of=monday - timedelta(hours=1)) == 0  # 08:30: not yet
    assert await watchdog.digests(as_of=monday) == 2
    assert await watchdog.digests(as_of=monday + timedelta(hours=2)) == 0  # once a week
    digests = {chat: text for chat, text in await world.messages() if text.startswith("Weekly overview")}
    assert set(digests) == {CARLA, DIRK}
    assert "Waterkwartier: 1 new" in digests[CARLA] and "Noordveen" not in digests[CARLA]
    assert "Noordveen: 1 new" in digests[DIRK] and "1 without an initiative broker" in digests[DIRK]
    assert await watchdog.digests(as_of=monday + timedelta(days=7)) == 2  # and again the next week
