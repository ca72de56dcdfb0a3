"""Coordinators on Telegram: the picture per wijk, stalled and unassigned initiatives, the brokers' load."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from tests.e2e import containing, press, running_bot, say
from tests.e2e import submit as agree_and_send
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.test_e2e_cases import add_staff, meet, submit

pytestmark = pytest.mark.timeout(60)

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def submit_without_wijk(resident: FakeUser) -> None:
    await say(resident, "/start", "What do you want to do?")
    await press(resident, "New initiative", "What is your idea?")
    await say(resident, "Bomen en struiken langs het schoolplein, voor schaduw.", "Is that right?")
    await press(resident, "✏️ Other title", "What is the title")
    await say(resident, "Meer groen bij de school", "Which theme")
    await press(resident, "Greenery", "In which neighbourhood")
    await press(resident, "I don't know", "What can you do yourself?")
    await press(resident, "Skip", "How many neighbours")
    await press(resident, "I don't know yet", "What do you need?")
    await resident.press_button("▫️ A place")
    await resident.press_button("Done ✔")
    await resident.wait_for_message(containing("photo"))
    await press(resident, "No photo", "phone number or e-mail")
    await press(resident, "Only via Telegram", "What name")
    await say(resident, "Sem", "Please check your initiative")
    await agree_and_send(resident)


async def test_coordinator_sees_the_picture_stalled_and_unassigned_initiatives_and_reminds_a_broker(
    fake: FakeBotApi, database_url: str
) -> None:
    now = [MONDAY]
    anna = fake.user(6001, "Anna", language_code="en")
    cor = fake.user(6002, "Cor", language_code="en")
    resident = fake.user(6003, "Ria", language_code="en")
    other = fake.user(6004, "Sem", language_code="en")
    await add_staff(database_url, anna.id, "Anna de Vries")
    await add_staff(database_url, cor.id, "Cor Dinator", role="coordinator", wijken=())

    async with running_bot(fake, database_url, clock=lambda: now[0]):
        await meet(anna)
        await meet(cor)
        reference = await submit(resident)  # goes to Anna: "toegewezen", norm 5 working days
        await submit_without_wijk(other)  # nobody can take it: the coordinator is told
        await cor.wait_for_message(containing("without an initiatiefmakelaar"))

        now[0] = MONDAY + timedelta(days=14)  # 10 working days later: 5 over the norm
        picture = await say(cor, "/overzicht", "Overview per wijk")
        assert "Waterkwartier (1)" in (picture.text or "")
        assert "Wijk unknown (1)" in (picture.text or "")
        assert "Stalled: 1" in (picture.text or "")

        worst = await say(cor, "/vastgelopen", "stalled initiative")
        assert reference in (worst.text or "") and "Anna de Vries" in (worst.text or "")
        assert "5 working days over the norm" in (worst.text or "")
        await cor.press_button("Remind broker")
        reminded = await anna.wait_for_message(containing("asks you to look at"))
        assert reference in (reminded.text or "") and "Change status" in reminded.button_labels
        await cor.wait_for_message(containing("Reminder sent to Anna de Vries"))

        waiting = await say(cor, "/onverdeeld", "without an initiatiefmakelaar")
        assert "Meer groen bij de school" in (waiting.text or "") and "waiting 10 working days" in (
            waiting.text or ""
        )
        assert "Assign" in waiting.button_labels

        load = await say(cor, "/makelaars", "Initiatiefmakelaars and their open initiatives")
        assert "Anna de Vries: 1 open · Waterkwartier" in (load.text or "")


async def test_coordinator_commands_are_refused_for_brokers_and_residents(
    fake: FakeBotApi, database_url: str
) -> None:
    anna = fake.user(6101, "Anna", language_code="en")
    resident = fake.user(6102, "Ria", language_code="en")
    await add_staff(database_url, anna.id, "Anna de Vries")
    async with running_bot(fake, database_url, clock=lambda: MONDAY):
        await meet(anna)
        await meet(resident)
        for command in ("/overzicht", "/vastgelopen", "/onverdeeld", "/makelaars"):
            await say(anna, command, "only for coordinators")
            await say(resident, command, "only for staff of the municipality")
