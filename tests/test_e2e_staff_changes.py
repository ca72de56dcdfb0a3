"""Staff changes lose no case: removed or unreachable brokers, and coordinators who cover some wijken.

The real PTB Application against the fake Bot API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot import staff_cli
from bot.__main__ import _parser
from tests.e2e import containing, press, running_bot, say
from tests.fake_bot_api import FakeBotApi
from tests.test_e2e_cases import NOORDVEEN, add_staff, case_row, clock, meet, submit, text_of, timeline_rows
from tests.test_staff_cli import settings

pytestmark = pytest.mark.timeout(60)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def test_initiatives_go_only_to_brokers_the_bot_can_reach_and_back_to_the_coordinators_on_a_403(
    fake: FakeBotApi, database_url: str
) -> None:
    cora = fake.user(7001, "Cora", language_code="en")
    fien = fake.user(7002, "Fien", language_code="en")
    bea = fake.user(7003, "Bea", language_code="en")
    dirk = fake.user(7004, "Dirk", language_code="en")
    anna = fake.user(7101, "Anna", language_code="en")
    karel = fake.user(7102, "Karel", language_code="en")
    cora_id = await add_staff(database_url, cora.id, "Cora Claassen", role="coordinator", wijken=[])
    # Added with `staff add`, but she never opened the bot: Telegram would refuse every message to her.
    await add_staff(database_url, fien.id, "Fien Fransen")

    async with running_bot(fake, database_url, clock=clock):
        await meet(cora)
        first = await submit(anna)
        alert = await cora.wait_for_message(containing("New initiative without an initiative broker"))
        assert first in text_of(alert)
        assert "The bot cannot reach the initiative brokers of this neighbourhood" in text_of(alert)

        bea_id = await add_staff(database_url, bea.id, "Bea Bakker")
        dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker")
        await meet(bea)
        await meet(dirk)
        fake.block_user(bea.id)  # the bot does not know yet

        # Bea has room and had no case for the longest time: the case goes to her, and Telegram says 403.
        second = await submit(karel)
        told = await cora.wait_for_message(containing("The bot cannot reach Bea Bakker"), timeout=10)
        assert "So 1 open initiative has no initiative broker now:" in text_of(told)
        assert second in text_of(told) and first not in text_of(told)
        assert "Ask Bea Bakker to open the invitation link" in text_of(told)
        assert told.button_labels == [f"Reassign {second}"]
        await karel.wait_for_message(containing("gets a new initiative broker soon"), timeout=10)
        assert await case_row(database_url, second) == ("toegewezen", None, None)

        await cora.press(told, told.callback_data[0])
        menu = await cora.wait_for_message(containing(f"Who becomes the initiative broker of {second}?"))
        assert menu.button_labels == ["Dirk Dekker (0 open)", "Cancel"]  # not Bea, not Fien
        # A forged button for someone the bot cannot reach is refused.
        query = await cora.press(menu, f"c:{second}:as:{bea_id}", check_button=False)
        await cora.wait_for_message(containing("The bot cannot reach Bea Bakker"))
        await fake.wait_for_answer(query)
        await press(cora, "Dirk Dekker (0 open)", f"{second} is assigned to Dirk Dekker.")
        await dirk.wait_for_message(containing("Cora Claassen assigned this initiative to you."))
        await karel.wait_for_message(containing("has a new initiative broker: Dirk Dekker."))

    assert fien.sent() == []
    assert await case_row(database_url, first) == ("ingediend", None, None)
    assert await case_row(database_url, second) == ("toegewezen", dirk_id, None)
    steps = [
        (kind, role, staff, to, note, visible)
        for kind, _, role, staff, to, note, _, visible in await timeline_rows(database_url, second)
        if kind != "status"
    ]
    assert steps == [
        ("assigned", "system", None, bea_id, None, True),
        ("unassigned", "system", bea_id, None, "unreachable", False),
        ("assigned", "coordinator", cora_id, dirk_id, None, True),
    ]


async def test_a_removed_brokers_initiative_waits_unassigned_for_a_coordinator_of_its_wijk(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(7201, "Bea", language_code="en")
    dirk = fake.user(7202, "Dirk", language_code="en")
    cora = fake.user(7203, "Cora", language_code="en")
    cees = fake.user(7204, "Cees", language_code="en")
    anna = fake.user(7301, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    dirk_id = await add_staff(database_url, dirk.id, "Dirk Dekker")
    await add_staff(database_url, cora.id, "Cora Claassen", role="coordinator", wijken=[])
    await add_staff(database_url, cees.id, "Cees Claassen", role="coordinator", wijken=[NOORDVEEN])

    async with running_bot(fake, database_url, clock=clock):
        for person in (bea, dirk, cora, cees):
            await meet(person)
        reference = await submit(anna)
        await bea.wait_for_message(containing("A new initiative for you."))
        await anna.wait_for_message(containing("Bea Bakker is your initiative broker"))

        args = _parser().parse_args(["staff", "remove", "--telegram-id", str(bea.id)])
        assert await staff_cli.run(settings(database_url), args) == 0

        # Queued by the command; it goes out before the answer to Cora's next update (or with the sweep).
        listed = await say(cora, "/zaken", "Initiatives without an initiative broker:")
        assert reference in text_of(listed) and f"Open {reference}" in listed.button_labels
        (told,) = [m for m in cora.sent() if "Bea Bakker is no longer an initiative broker." in text_of(m)]
        assert reference in text_of(told) and told.button_labels == [f"Reassign {reference}"]
        waiting = await say(cora, "/onverdeeld", "without an initiative broker")
        assert reference in text_of(waiting)

        # Cees covers Noordveen only: he is not told, does not see it, and cannot open it.
        await say(cees, "/zaken", "Every open initiative has an initiative broker.")
        await say(cees, "/onverdeeld", "Every open initiative has an initiative broker.")
        refused = await say(cees, f"/zaak {reference}", "which is not one of your neighbourhoods")
        assert "This initiative is in Waterkwartier" in text_of(refused) and "Contact:" not in text_of(
            refused
        )
        await say(cees, f"/toewijzen {reference}", "which is not one of your neighbourhoods")

        await say(anna, "/mijn", "Your initiatives:")
        heard = [m for m in anna.sent() if "gets a new initiative broker soon" in text_of(m)]
        assert len(heard) == 1 and reference in text_of(heard[0])

        await cora.press(told, told.callback_data[0])
        menu = await cora.wait_for_message(containing(f"Who becomes the initiative broker of {reference}?"))
        assert menu.button_labels == ["Dirk Dekker (0 open)", "Cancel"]
        await press(cora, "Dirk Dekker (0 open)", f"{reference} is assigned to Dirk Dekker.")
        await anna.wait_for_message(containing("has a new initiative broker: Dirk Dekker."))
        await say(cora, "/onverdeeld", "Every open initiative has an initiative broker.")

    assert not [m for m in cees.sent() if reference in text_of(m)]
    assert await case_row(database_url, reference) == ("toegewezen", dirk_id, None)
    kinds = [(kind, note) for kind, _, _, _, _, note, *_ in await timeline_rows(database_url, reference)]
    # (The command ran on the real clock, the bot on a stopped one: so no order between them here.)
    assert ("unassigned", "removed") in kinds and kinds.count(("assigned", None)) == 2
