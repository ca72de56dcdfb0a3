"""Stalled initiatives over Telegram: ``initiatiefbot watchdog --once --as-of …`` as a real process.

A resident submits through the running bot, the broker gets the case; then an operator runs the watchdog
as if it were later dates, against the fake Bot API, and everybody hears what concerns them — once only,
however often the watchdog runs. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio

from storage import repository
from tests.e2e import containing, migrate, press, running_bot
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.test_e2e_cases import NOORDVEEN, TITLE, WATERKWARTIER, add_staff, database, meet, submit, text_of

pytestmark = pytest.mark.timeout(180)

# Monday 2 March 2026, 10:00 in Zutphen. Assigned (toegewezen) has a norm of 5 working days: the reminder
# is due on Monday 9 March at 09:00, the escalation (1.5×: 8 days) on Thursday 12 March, the urgent one
# (3×: 15 days) on Monday 23 March.
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REMINDER, ESCALATION, URGENT = "2026-03-09T09:00", "2026-03-12T09:00", "2026-03-23T09:00"
HONEST = "It is taking longer than usual. We have asked your initiatiefmakelaar to contact you."


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
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "INITIATIEFBOT_CONFIG": "zutphen",
        # Like the bot in these tests, unpaced: 30 reminders to one broker would take 30 s at Telegram's
        # pace per chat (tests/test_sendgate.py shows the sweep waiting for its paced messages).
        "TELEGRAM_MAX_PER_SECOND": "0",
        "TELEGRAM_CHAT_MAX_PER_SECOND": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "watchdog",
        "--once",
        "--as-of",
        as_of,
        *extra,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")
    return stdout.decode()


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
        assert "Initiatiefmakelaar: Bea Bakker" in text_of(escalation)
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
            await repository.set_absent(session, bea_id, date(2026, 3, 13))

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
            await repository.upsert_person(
                session,
                user_id=person.id,
                chat_id=person.id,
                first_name="X",
                telegram_language="en",
                now=START,
            )
        for person in residents:
            created = await repository.create_initiative(session, initiative_of(person.id), START)
            await repository.assign(
                session, created.id, broker_id=bea_id, by_staff_id=None, note=None, now=START
            )
            await repository.change_status(
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


def initiative_of(user_id: int) -> repository.NewInitiative:
    return repository.NewInitiative(
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
