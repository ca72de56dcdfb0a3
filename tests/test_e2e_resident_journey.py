"""A first-time resident's whole intake over the fake Bot API, counted as the resident lives it.

Every message or tap of the resident is one action; the time is what a person needs to read every word
the bot shows (texts and buttons, at 200 words a minute) and to type their own words (20 words a minute
on a phone), plus two seconds per tap. Word counts, not clocks: the figures are the same on any machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from sqlalchemy import text

from storage.db import create_engine
from tests.e2e import containing, running_bot
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage

pytestmark = pytest.mark.timeout(90)

READ_WPM = 200
TYPE_WPM = 20
TAP_SECONDS = 2
LEESTEN = (52.1295, 6.2215)  # the middle of the wijk Leesten in Zutphen


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@dataclass
class Journey:
    """A resident's actions, counted: what they typed and how often they tapped or shared."""

    fake: FakeBotApi
    user: FakeUser
    actions: list[str] = field(default_factory=list)
    typed_words: int = 0
    taps: int = 0

    async def type(self, words: str, expect: str) -> SentMessage:
        self.actions.append(f"type: {words}")
        self.typed_words += len(words.split())
        await self.user.send_text(words)
        return await self.user.wait_for_message(containing(expect))

    async def tap(self, label: str, expect: str) -> SentMessage:
        self.actions.append(f"tap: {label}")
        self.taps += 1
        await self.user.press_button(label)
        return await self.user.wait_for_message(containing(expect))

    async def toggle(self, label: str) -> None:
        """Tap a button that ticks a choice: the bot changes the buttons of its message, no new message."""
        self.actions.append(f"tap: {label}")
        self.taps += 1
        edits = len(self.fake.calls("editMessageReplyMarkup"))
        await self.user.press_button(label)
        await self.fake.wait_for_calls("editMessageReplyMarkup", edits + 1)

    async def key(self, label: str, expect: str, **shared: object) -> SentMessage:
        """Tap a button of Telegram's keyboard under the text field (share number or location)."""
        self.actions.append(f"keyboard: {label}")
        self.taps += 1
        await self.user.tap_keyboard(label, **shared)  # type: ignore[arg-type]
        return await self.user.wait_for_message(containing(expect))

    async def photo(self, expect: str) -> SentMessage:
        self.actions.append("photo")
        self.taps += 1
        await self.user.send_photo()
        return await self.user.wait_for_message(containing(expect))

    def read_words(self) -> int:
        """Every word of every message the bot showed (the final state of edited ones) and its buttons."""
        words = 0
        for message in self.fake.sent(self.user):
            words += len((message.text or "").split())
            words += sum(len(label.split()) for label in message.button_labels)
            keyboard = (message.reply_markup or {}).get("keyboard") or []
            words += sum(len(button["text"].split()) for row in keyboard for button in row)
        return words

    def seconds(self) -> float:
        return self.read_words() * 60 / READ_WPM + self.typed_words * 60 / TYPE_WPM + self.taps * TAP_SECONDS

    def report(self) -> str:
        return (
            f"{len(self.actions)} actions, {self.read_words()} words read, {self.typed_words} typed, "
            f"{self.taps} taps: {self.seconds() / 60:.1f} minutes\n" + "\n".join(self.actions)
        )


async def initiative_row(database_url: str) -> dict[str, object]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT title, description, theme_code, wijk_code, own_contribution, needs,"
                        " amount_cents, amount_max_cents, neighbours, photo_file_id, contact_name,"
                        " contact_phone, publish_consent FROM initiatives"
                    )
                )
            ).one()
            return dict(row._mapping)
    finally:
        await engine.dispose()


IDEA = (
    "Ik wil een moestuin in het park in de Leesten. "
    "Dan leren kinderen hoe groente groeit en ontmoeten de buren elkaar."
)


async def test_a_first_time_resident_submits_in_at_most_12_actions_and_4_minutes(
    fake: FakeBotApi, database_url: str
) -> None:
    fatima = fake.user(3001, "Fatima", language_code="nl", last_name="Amrani")
    me = Journey(fake, fatima)
    async with running_bot(fake, database_url):
        await me.type("/start", "Wat wil je doen?")
        # The idea typed straight into the menu starts the intake; the bot suggests a title and theme.
        check = await me.type(IDEA, "Klopt dat?")
        assert "Een moestuin in het park in de Leesten" in (check.text or "")
        assert "Thema: Groen" in (check.text or "")
        await me.tap("✔ Ja, dat klopt", "Deel mijn locatie")
        assert fatima.reply_keyboard == [["📍 Deel mijn locatie"]]
        await me.key("📍 Deel mijn locatie", "✔ Leesten", location=LEESTEN)
        assert fatima.reply_keyboard is None  # Telegram's keyboard is gone again
        await me.type("Ik zorg met 4 buren voor water geven en onderhoud.", "Wat heb je nodig?")
        await me.toggle("▫️ Geld of subsidie")
        await me.tap("Klaar ✔", "Hoeveel geld")
        await me.type("ongeveer 800 euro", "foto")
        await me.photo("Deel mijn nummer")
        assert fatima.reply_keyboard == [["📱 Deel mijn nummer"]]
        summary = await me.key("📱 Deel mijn nummer", "Ga je akkoord?", phone_number="31612345678")
        shown = (summary.text or "").replace("\xa0", " ")
        assert "Fatima Amrani" in shown and "+31612345678" in shown and "ongeveer € 800" in shown
        assert "Buren die meedoen: 4" in shown
        await me.tap("✔ Ik ga akkoord, stuur mijn idee", "INI-")

    print(me.report())
    assert len(me.actions) <= 12, me.report()
    assert me.seconds() <= 4 * 60, me.report()
    row = await initiative_row(database_url)
    assert row["title"] == "Een moestuin in het park in de Leesten"
    assert row["description"] == IDEA
    assert (row["theme_code"], row["wijk_code"]) == ("groen", "WK030104")
    assert row["amount_cents"] == 80_000 and row["amount_max_cents"] is None
    assert row["neighbours"] == 4 and row["photo_file_id"]
    assert (row["contact_name"], row["publish_consent"]) == ("Fatima Amrani", False)


async def test_a_resident_with_slips_still_submits_in_at_most_16_actions(
    fake: FakeBotApi, database_url: str
) -> None:
    """A postcode with a letter O, an amount in words, one « Terug and one change from the summary."""
    bram = fake.user(3002, "Bram", language_code="nl")
    me = Journey(fake, bram)
    async with running_bot(fake, database_url):
        await me.type("/start", "Wat wil je doen?")
        await me.type(
            "Wij willen een speeltuin op het grasveld bij de Houtwal, want de kinderen kunnen nergens "
            "spelen.",
            "Klopt dat?",
        )
        await me.tap("✔ Ja, dat klopt", "In welke wijk")
        await me.type("72O1 AB", "✔ Centrum–De Hoven")
        await me.type("Ik maak met 3 buren een plan en we vragen de school mee.", "Wat heb je nodig?")
        own = await me.tap("« Terug", "Wat kun je zelf doen")
        # Terug shows the earlier answer, with a button to keep it instead of typing it again.
        assert "Ik maak met 3 buren een plan" in (own.text or "")
        await me.tap("✔ Dit antwoord houden", "Wat heb je nodig?")
        await me.toggle("▫️ Geld of subsidie")
        await me.tap("Klaar ✔", "Hoeveel geld")
        await me.type("ongeveer 800 à 1000 euro", "foto")
        await me.photo("Deel mijn nummer")
        await me.key("📱 Deel mijn nummer", "Ga je akkoord?", phone_number="31687654321")
        await me.tap("✏️ Iets aanpassen", "Wat wil je aanpassen?")
        title = await me.tap("Titel", "titel")
        assert "Een speeltuin op het grasveld bij de Houtwal" in (title.text or "")  # Aanpassen shows it
        summary = await me.type("Speeltuin bij de Houtwal", "Ga je akkoord?")
        shown = (summary.text or "").replace("\xa0", " ")
        assert "Speeltuin bij de Houtwal" in shown and "€ 800 tot € 1.000" in shown
        await me.tap("✔ Ik ga akkoord, stuur mijn idee", "INI-")

    print(me.report())
    assert len(me.actions) <= 16, me.report()
    row = await initiative_row(database_url)
    assert row["title"] == "Speeltuin bij de Houtwal"
    assert (row["theme_code"], row["wijk_code"]) == ("spelen_sport", "WK030100")
    assert (row["amount_cents"], row["amount_max_cents"]) == (80_000, 100_000)
    assert row["neighbours"] == 3
