"""Residents in Turkish, Arabic, Polish and Ukrainian: Telegram's language from the first message, and /taal
offering every language by its own name, over the real PTB Application and the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.i18n import DOMAIN, LOCALES_DIR, load_translations
from flows.resident import LANGUAGES, language_for
from tests.e2e import containing, running_bot, say
from tests.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(60)


def _shipped(language: str) -> bool:
    return (LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").exists()


def needs_catalog(language: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not _shipped(language), reason=f"no {language} catalog yet")


def _in(code: str, msgid: str, **params: str) -> str:
    """The catalog's text for ``msgid``, which the test expects the bot to send."""
    text = load_translations(code).gettext(msgid).format(**params)
    assert text not in (msgid, load_translations("nl").gettext(msgid).format(**params)), (
        f"{code} has no own text for {msgid!r}"
    )
    return text


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.mark.parametrize(
    ("explicit", "telegram", "expected"),
    [
        (None, "tr", "tr"),
        (None, "ar", "ar"),
        (None, "pl-PL", "pl"),
        (None, "uk", "uk"),
        (None, "de", "nl"),
        (None, None, "nl"),
        ("en", "tr", "en"),  # an explicit /taal choice wins over Telegram's
        ("xx", "uk", "uk"),
    ],
)
def test_language_for_follows_telegram_for_every_offered_language(
    explicit: str | None, telegram: str | None, expected: str
) -> None:
    assert language_for(explicit, telegram) == expected


@needs_catalog("tr")
async def test_a_turkish_resident_is_greeted_in_turkish(fake: FakeBotApi, database_url: str) -> None:
    ayse = fake.user(1401, "Ayşe", language_code="tr")
    async with running_bot(fake, database_url):
        start = await say(ayse, "/start", _in("tr", "What do you want to do?"))
    assert _in("tr", "New initiative") in start.button_labels
    assert _in("tr", "Help") in start.button_labels


async def test_taal_offers_every_language_by_its_own_name_two_to_a_row(
    fake: FakeBotApi, database_url: str
) -> None:
    piet = fake.user(1402, "Piet", language_code="nl")
    async with running_bot(fake, database_url):
        question = await say(piet, "/taal", "Welke taal")
    assert question.button_labels == list(LANGUAGES.values())
    assert question.button_labels[:6] == [
        "Nederlands",
        "English",
        "Türkçe",
        "العربية",
        "Polski",
        "Українська",
    ]
    assert [len(row) for row in question.buttons] == [2, 2, 2]


@needs_catalog("tr")
async def test_choosing_turkish_confirms_in_turkish_and_stays(fake: FakeBotApi, database_url: str) -> None:
    piet = fake.user(1403, "Piet", language_code="nl")
    async with running_bot(fake, database_url):
        await say(piet, "/taal", "Welke taal")
        await piet.press_button("Türkçe")
        await piet.wait_for_message(
            containing(_in("tr", "OK. From now on I write in {language}.", language="Türkçe"))
        )
        await say(piet, "/start", _in("tr", "What do you want to do?"))


@needs_catalog("ar")
async def test_choosing_arabic_answers_in_arabic(fake: FakeBotApi, database_url: str) -> None:
    sam = fake.user(1404, "Sam", language_code="en")
    async with running_bot(fake, database_url):
        await say(sam, "/taal", "Which language")
        await sam.press_button("العربية")
        await sam.wait_for_message(
            containing(_in("ar", "OK. From now on I write in {language}.", language="العربية"))
        )
        await say(sam, "/start", _in("ar", "What do you want to do?"))


@pytest.mark.parametrize("language", ["pl", "uk"])
async def test_polish_and_ukrainian_follow_telegram(
    fake: FakeBotApi, database_url: str, language: str
) -> None:
    if not _shipped(language):
        pytest.skip(f"no {language} catalog yet")
    olek = fake.user(1405, "Olek", language_code=language)
    async with running_bot(fake, database_url):
        await say(olek, "/start", _in(language, "What do you want to do?"))
