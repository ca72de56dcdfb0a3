"""Stalled initiatives over Telegram: ``initiatiefbot watchdog --once --as-of …`` as a real process.

A resident submits through the running bot, the broker gets the case; then an operator runs the watchdog
as if it were later dates, against the fake Bot API, and everybody hears what concerns them — once only,
however often the watchdog runs. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from bot.__main__ import main
from storage import alerts as alerts_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from tests.e2e import containing, migrate, press, run_command, running_bot, say
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.test_e2e_cases import NOORDVEEN, TITLE, WATERKWARTIER, add_staff, database, meet, submit, text_of

pytestmark = pytest.mark.timeout(180)

# Monday 2 March 2026, 10:00 in Zutphen. Assigned (toegewezen) has a norm of 5 working days: the reminder
# is due on Monday 9 March at 09:00, the escalation (1.5×: 8 days) on Thursday 12 March, the urgent one
# (3×: 15 days) on Monday 23 March.
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REMINDER, ESCALATION, URGENT = "2026-03-09T09:00", "2026-03-12T09:00", "2026-03-23T09:00"
HONEST = "It is taking longer than usual. We have asked your initiative broker to contact you."


class Clock:
    """The running bot's clock: it stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def watchdog(fake: FakeBotApi, database_url: str, as_of: str, *extra: str) -> str:
    """Run ``python -m bot watchdog --once --as-of …`` against the fake Bot API; returns what it printed."""
    return await run_command(fake, database_url, "watchdog", "--once", "--as-of", as_of, *extra)


def received(user: FakeUser, text: str) -> list[str]:
    return [text_of(m) for m in user.sent() if text in text_of(m)]


async def test_reminder_escalation_and_urgent_escalation_each_arrive_once(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5101, "Bea", language_code="en")
    carla = fake.user(5102, "Carla", language_code="en")
    dirk = fake.user(5103, "Dirk", language_code="en")
    anna = fake.user(1101, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    await add_staff(database_url, carla.id, "Carla Cornelissen", role="coordinator")
    await add_staff(database_url, dirk.id, "Dirk Dekker", role="coordinator", wijken=[NOORDVEEN])
    clock = Clock()

    async with running_bot(fake, database_url, clock=clock):
        for person in (bea, carla, dirk):
            await meet(person)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))

        # The Friday before the reminder is due: nothing yet.
        assert "0 alerts" in await watchdog(fake, database_url, "2026-03-06T17:00")

        printed = await watchdog(fake, database_url, REMINDER)
        assert f"{reference}  status  1 reminder  broker Bea Bakker" in printed
        reminder = await bea.wait_for_message(containing("Reminder:"))
        assert f"Reminder: {reference} has been 5 working days in Assigned (norm 5)." in text_of(reminder)
        assert "Change status" in reminder.button_labels  # the case card, ready to act on
        await watchdog(fake, database_url, REMINDER)
        await watchdog(fake, database_url, "2026-03-10T09:00")

        await watchdog(fake, database_url, ESCALATION)
        escalation = await carla.wait_for_message(containing("Escalation:"))
        assert f"Escalation: {reference} · {TITLE}" in text_of(escalation)
        assert "3 working days over the norm of 5" in text_of(escalation)
        assert "Initiative broker: Bea Bakker" in text_of(escalation)
        assert escalation.button_labels == ["Open", "Remind broker", "Assign"]
        honest = await anna.wait_for_message(containing(HONEST))
        assert reference in text_of(honest)
        await watchdog(fake, database_url, ESCALATION)

        await watchdog(fake, database_url, URGENT)
        urgent = await carla.wait_for_message(containing("URGENT"))
        assert f"⚠ URGENT escalation: {reference} · {TITLE}" in text_of(urgent)
        await watchdog(fake, database_url, URGENT)
        await watchdog(fake, database_url, "2026-03-24T09:00")

    assert len(received(bea, "Reminder:")) == 1
    assert len(received(carla, "Escalation:")) == 1
    assert len(received(carla, "URGENT")) == 1
    assert len(received(anna, HONEST)) == 1
    assert received(dirk, reference) == []  # he coordinates another wijk


async def test_a_status_change_resets_the_ladder(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5201, "Bea", language_code="en")
    carla = fake.user(5202, "Carla", language_code="en")
    anna = fake.user(1201, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    await add_staff(database_url, carla.id, "Carla Cornelissen", role="coordinator")
    clock = Clock()

    async with running_bot(fake, database_url, clock=clock):
        for person in (bea, carla):
            await meet(person)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await watchdog(fake, database_url, REMINDER)
        await bea.wait_for_message(containing("Reminder:"))

        # Tuesday 10 March: Bea picks the case up from the reminder's card.
        clock.now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
        await press(bea, "Change status", "what is the new status?")
        await bea.press_button("In conversation")
        await bea.wait_for_message(containing("Do you want to add a note for the initiator?"))
        await press(bea, "No note", "Status changed.")

        # The old clock's escalation and urgent steps never come.
        assert "0 alerts" in await watchdog(fake, database_url, ESCALATION)
        assert "0 alerts" in await watchdog(fake, database_url, URGENT)
        # In conversation has a norm of 10 working days: from 10 March, due on Tuesday 24 March.
        printed = await watchdog(fake, database_url, "2026-03-24T09:00")
        assert f"{reference}  status  1 reminder  broker Bea Bakker" in printed
        again = await bea.wait_for_message(containing("10 working days in In conversation"))
        assert f"Reminder: {reference}" in text_of(again)

    assert len(received(bea, "Reminder:")) == 2
    assert received(carla, reference) == []
    assert received(anna, HONEST) == []


async def test_an_absent_brokers_case_reaches_the_coordinator(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5301, "Bea", language_code="en")
    carla = fake.user(5302, "Carla", language_code="en")
    anna = fake.user(1301, "Anna", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
    await add_staff(database_url, carla.id, "Carla Cornelissen", role="coordinator")

    async with running_bot(fake, database_url, clock=Clock()):
        for person in (bea, carla):
            await meet(person)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        # Bea goes on holiday until Friday 13 March.
        async with database(database_url) as session:
            await staff_store.set_absent(session, bea_id, date(2026, 3, 13))

        printed = await watchdog(fake, database_url, REMINDER)
        assert f"{reference}  status  1 reminder  coordinator Carla Cornelissen" in printed
        told = await carla.wait_for_message(containing("is absent until"))
        assert f"Reminder for {reference} · {TITLE}" in text_of(told)
        assert "Bea Bakker is absent until" in text_of(told) and "so this reminder comes to you" in text_of(
            told
        )
        assert told.button_labels == ["Open", "Assign"]
        await watchdog(fake, database_url, REMINDER)

    assert received(bea, "Reminder") == []
    assert len(received(carla, "is absent until")) == 1


async def test_the_running_bot_sweeps_by_itself_at_start(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5401, "Bea", language_code="en")
    anna = fake.user(1401, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    clock = Clock()
    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))

    # The bot comes back a week later: its watchdog finds the case past its norm.
    clock.now = START + timedelta(days=7)
    async with running_bot(fake, database_url, clock=clock):
        reminder = await bea.wait_for_message(containing("Reminder:"))
        assert reference in text_of(reminder)
    assert len(received(bea, "Reminder:")) == 1


async def test_a_dry_run_needs_no_token_and_sends_nothing(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5501, "Bea", language_code="en")
    anna = fake.user(1501, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    async with running_bot(fake, database_url, clock=Clock()):
        await meet(bea)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
    sent = len(fake.calls("sendMessage"))
    env = {**os.environ, "DATABASE_URL": database_url, "INITIATIEFBOT_CONFIG": "zutphen"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot", "watchdog", "--once", "--dry-run", "--as-of", ESCALATION),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")
    printed = stdout.decode()
    assert f"{reference}  status  1 reminder    skipped" in printed
    # Nobody coordinates in this test: the escalation would reach the resident only, and that is said.
    assert f"{reference}  status  2 escalation  resident; no staff member to tell" in printed
    assert "dry run: nothing recorded or sent" in printed
    assert len(fake.calls("sendMessage")) == sent


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_watchdog_processes_at_once_send_every_alert_exactly_once(
    fake: FakeBotApi, database_url: str
) -> None:
    await migrate(database_url)
    bea = fake.user(5601, "Bea", language_code="en")
    carla = fake.user(5602, "Carla", language_code="en")
    bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
    await add_staff(database_url, carla.id, "Carla Cornelissen", role="coordinator")
    residents = [fake.user(1600 + i, f"Bewoner {i}", language_code="en") for i in range(30)]
    for person in (bea, carla, *residents):
        await person.send_text("/start")  # they have opened the chat, so the bot may write to them
    async with database(database_url) as session:
        for person in (bea, carla, *residents):
            await people_store.upsert_person(
                session,
                user_id=person.id,
                chat_id=person.id,
                first_name="X",
                telegram_language="en",
                now=START,
            )
        for person in residents:
            created = await initiatives_store.create_initiative(session, initiative_of(person.id), START)
            await initiatives_store.assign(
                session, created.id, broker_id=bea_id, by_staff_id=None, note=None, now=START
            )
            await initiatives_store.change_status(
                session,
                created.id,
                status="toegewezen",
                now=START,
                actor_role="system",
                actor_user_id=None,
                staff_id=None,
                note=None,
                department=None,
            )

    n = len(residents)
    # On 23 March Bea has also not touched the cases for 15 working days: the silence clock's reminder.
    for as_of, alerts in ((REMINDER, n), (ESCALATION, n), (URGENT, 2 * n)):
        outputs = await asyncio.gather(
            *(watchdog(fake, database_url, as_of, "--batch", "4") for _ in range(2))
        )
        assert sum(int(out.split("\n")[-2].split()[0]) for out in outputs) == alerts, outputs

    # Each case: a reminder and a no-sign-of-life to Bea, an escalation and an urgent one to Carla, and one
    # sentence to the resident; never twice, although two processes swept at the same time.
    assert len(received(bea, "Reminder:")) == n
    assert len(received(bea, "No sign of life")) == n
    assert len(received(carla, "Escalation:")) == n
    assert len(received(carla, "URGENT")) == n
    assert all(len(received(person, HONEST)) == 1 for person in residents)


def initiative_of(user_id: int) -> initiatives_store.NewInitiative:
    return initiatives_store.NewInitiative(
        municipality_code="GM0301",
        prefix="INI",
        resident_user_id=user_id,
        resident_chat_id=user_id,
        title=TITLE,
        description="Drie bankjes bij de speeltuin.",
        theme_code="groen",
        wijk_code=WATERKWARTIER,
        own_contribution=None,
        needs=(),
        amount_cents=None,
        neighbours=None,
        photo_file_id=None,
        contact_name="Anna",
        contact_phone=None,
        contact_email=None,
        consent_at=START,
        language="en",
    )


# --- what the operator sees, and what the coordinators see after a sweep -------------------------

NO_BROKER_YET = (
    "It is taking longer than usual. Your initiative has no initiative broker at the moment. "
    "We have asked a coordinator to find one for you."
)
STEP = re.compile(r"^(INI-\d{4}-\d{4})\s+(status|silence)\s+(\d) [a-z]+\s+(.*)$", re.MULTILINE)


async def cases_in_the_database(
    database_url: str, people: list[tuple[int, str]], cases: list[tuple[int, str | None, str, datetime]]
) -> dict[str, int]:
    """People (Telegram id, language) and initiatives (resident, broker's name or None, status with an
    optional department, since); returns the staff ids by name. Bea brokers in Waterkwartier, Carla
    coordinates every wijk; a case without a broker is in Noordveen."""
    async with database(database_url) as session:
        for user_id, language in people:
            await people_store.upsert_person(
                session,
                user_id=user_id,
                chat_id=user_id,
                first_name="X",
                telegram_language=language,
                now=START,
            )
        staff = {
            "Bea Bakker": await staff_store.add_staff(
                session, telegram_user_id=5701, name="Bea Bakker", role="broker", wijken=[WATERKWARTIER],
                themes=[], now=START,
            ),
            "Carla Cornelissen": await staff_store.add_staff(
                session, telegram_user_id=5702, name="Carla Cornelissen", role="coordinator", wijken=[],
                themes=[], now=START,
            ),
        }  # fmt: skip
        for resident, broker, status, since in cases:
            wijk = WATERKWARTIER if broker else NOORDVEEN
            new = dataclasses.replace(
                initiative_of(resident), wijk_code=wijk, contact_name=f"Bewoner {resident}"
            )
            created = await initiatives_store.create_initiative(session, new, since)
            if broker is not None:
                staff_id = staff[broker].id
                await initiatives_store.assign(
                    session, created.id, broker_id=staff_id, by_staff_id=None, note=None, now=since
                )
            status_code, _, department = status.partition(" ")  # "bij_gemeente verkeer"
            if status_code != "ingediend":
                await initiatives_store.change_status(
                    session,
                    created.id,
                    status=status_code,
                    now=since,
                    actor_role="system",
                    actor_user_id=None,
                    staff_id=None,
                    note=None,
                    department=department or None,
                )
        return {name: row.id for name, row in staff.items()}


async def run_cli(database_url: str, *args: str) -> tuple[int, str, str]:
    """``python -m bot …`` without a Telegram token: (exit code, stdout, stderr)."""
    env = {**os.environ, "DATABASE_URL": database_url, "INITIATIEFBOT_CONFIG": "zutphen"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot", *args),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


# The rendering does not depend on the database; tests/test_watchdog.py runs the dry run on both.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_dry_run_with_show_prints_each_message_as_its_reader_would_get_it(database_url: str) -> None:
    # Carla reads Dutch. As of Monday 9 March: Bea's case reaches its reminder; the case nobody took
    # (submitted 2 March, norm 2) its escalation, with the sentence for the resident.
    await cases_in_the_database(
        database_url,
        [(5701, "en"), (5702, "nl"), (1701, "en"), (1702, "en")],
        [(1701, "Bea Bakker", "toegewezen", START), (1702, None, "ingediend", START)],
    )
    code, printed, stderr = await run_cli(
        database_url, "watchdog", "--once", "--dry-run", "--show", "--as-of", REMINDER
    )
    assert code == 0, stderr
    assert re.search(r"^INI-2026-0001\s+status\s+1 reminder\s+broker Bea Bakker$", printed, re.MULTILINE)
    assert (
        "  → broker Bea Bakker (en):\n"
        "      Reminder: INI-2026-0001 has been 5 working days in Assigned (norm 5).\n"
        f"      INI-2026-0001 · {TITLE}\n"
    ) in printed
    assert re.search(r"^INI-2026-0002\s+status\s+1 reminder\s+skipped", printed, re.MULTILINE)
    assert "  → coordinator Carla Cornelissen (nl):\n      Escalatie: INI-2026-0002 · " in printed
    assert "      Initiatiefmakelaar: nog niemand\n" in printed and "[Openen]  [Toewijzen]" in printed
    assert (
        f"  → resident Bewoner 1702 (en):\n      INI-2026-0002 · {TITLE}\n\n      {NO_BROKER_YET}" in printed
    )
    assert printed.endswith(
        "2 alerts for 2 initiatives (1 lower step skipped); 2 due initiatives checked as of "
        "2026-03-09 09:00 Europe/Amsterdam; dry run: nothing recorded or sent\n"
    )
    async with database(database_url) as session:
        assert await alerts_store.sent_alerts(session, [1, 2]) == {1: set(), 2: set()}  # nothing recorded


def test_show_without_a_dry_run_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setattr("bot.__main__.setup_logging", lambda level: None)  # keep pytest's logging
    assert main(["watchdog", "--once", "--show"]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "--show prints the messages instead of sending them, so it needs --dry-run" in printed.err
    assert not (tmp_path / "bot.db").exists()  # refused before touching the database


async def test_vastgelopen_and_overzicht_show_exactly_what_the_watchdog_just_alerted_on(
    fake: FakeBotApi, database_url: str
) -> None:
    carla = fake.user(5702, "Carla", language_code="en")
    residents = [fake.user(1711 + i, f"Bewoner {i}", language_code="en") for i in range(6)]
    for person in (carla, *residents):
        await person.send_text("/start")  # they have opened the chat, so the bot may write to them
    as_of = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)  # Thursday 2 April, 09:00 in Zutphen: 23 working days on
    staff = await cases_in_the_database(
        database_url,
        [(5701, "en"), (5702, "en"), *((r.id, "en") for r in residents)],
        [
            (residents[0].id, "Bea Bakker", "toegewezen", START),  # urgent; and no sign of life since
            (residents[1].id, "Bea Bakker", "bij_gemeente vergunningen", START),  # its own norm: 40
            # bij_gemeente has no status clock: a department's runs on a question (none asked here).
            (residents[2].id, "Bea Bakker", "bij_gemeente verkeer", START),
            (residents[3].id, "Bea Bakker", "in_uitvoering", START),  # norm 40, but Bea is silent
            (residents[4].id, None, "ingediend", datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),  # nobody took it
            (residents[5].id, "Bea Bakker", "in_gesprek", as_of - timedelta(days=1)),  # fine
        ],
    )
    async with database(database_url) as session:
        for initiative_id in (2, 3):  # Bea keeps these two going: she wrote a note yesterday
            await initiatives_store.add_event(
                session,
                initiative_id,
                kind="note",
                now=as_of - timedelta(days=1),
                actor_role="broker",
                staff_id=staff["Bea Bakker"],
                touch_broker_action=True,
            )

    printed = await watchdog(fake, database_url, "2026-04-02T09:00")
    alerted = {
        (reference, track, int(level))
        for reference, track, level, who in STEP.findall(printed)
        if "skipped" not in who
    }
    assert alerted == {
        ("INI-2026-0001", "status", 3),
        ("INI-2026-0001", "silence", 2),
        ("INI-2026-0004", "silence", 2),
        ("INI-2026-0005", "status", 2),
    }, printed
    assert printed.splitlines()[-1].startswith("4 alerts for 3 initiatives (")
    told = await residents[4].wait_for_message(containing(NO_BROKER_YET))
    assert "INI-2026-0005" in text_of(told)

    async with running_bot(fake, database_url, clock=lambda: as_of):
        worst = await say(carla, "/vastgelopen", "stalled initiatives, worst first")
        blocks = text_of(worst).split("\n\n")
        steps = {"reminder": 1, "escalation": 2, "urgent escalation": 3}
        shown = {
            (
                block[:13],
                "silence" if row.startswith("No sign of life") else "status",
                steps[row.split("step: ")[1]],
            )
            for block in blocks[1:]
            for row in block.splitlines()
            if "step: " in row
        }
        assert shown == alerted, text_of(worst)
        assert blocks[0] == "3 stalled initiatives, worst first:"
        picture = await say(carla, "/overzicht", "Overview per neighbourhood")
        stalled = [int(n) for n in re.findall(r"Stalled: (\d+)", text_of(picture))]
        assert sum(stalled) == 3, text_of(picture)
    assert received(residents[4], NO_BROKER_YET) == [text_of(told)]
