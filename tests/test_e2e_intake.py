"""A resident on Telegram: the real PTB Application against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from storage import crypto
from storage.db import create_engine
from tests.e2e import containing, intake_until_summary, press, running_bot, say
from tests.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(60)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def test_resident_submits_an_initiative_with_buttons_location_and_photo(
    fake: FakeBotApi, database_url: str
) -> None:
    anna = fake.user(1001, "Anna", language_code="nl")
    async with running_bot(fake, database_url):
        start = await say(anna, "/start", "Wat wil je doen?")
        assert start.button_labels == ["Nieuw initiatief", "Mijn initiatieven", "Hulp"]
        await anna.press_button("Nieuw initiatief")
        question = await anna.wait_for_message(containing("Wat is je idee?"))
        assert "« Terug" not in question.button_labels and "Stoppen" in question.button_labels
        check = await say(anna, "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.", "Klopt dat?")
        assert "“Drie bankjes bij de speeltuin”" in (check.text or "")
        # Typed at the suggestion, a title of her own replaces it.
        themes = await say(anna, "Bankjes in het park", "thema")
        assert "Groen" in themes.button_labels and "Anders" in themes.button_labels
        await anna.press_button("Groen")
        answered = await fake.wait_for_edit(anna, themes.message_id)
        assert answered.buttons == [] and "✔ Groen" in (answered.text or "")
        await anna.wait_for_message(containing("wijk"))
        hint = await anna.wait_for_message(containing("Deel mijn locatie"))
        assert hint.reply_markup is not None and hint.reply_markup["keyboard"][0][0]["request_location"]
        await anna.tap_keyboard("📍 Deel mijn locatie", location=(52.133, 6.236))  # Warnsveld
        await anna.wait_for_message(containing("✔ Warnsveld"))
        assert anna.reply_keyboard is None
        await say(anna, "Wij verven de bankjes en houden ze schoon.", "buren")
        await say(anna, "ongeveer 12", "Wat heb je nodig?")
        await anna.press_button("▫️ Geld of subsidie")
        await fake.wait_for_calls("editMessageReplyMarkup", 1)
        await anna.press_button("▫️ Hulp van vrijwilligers")
        await fake.wait_for_calls("editMessageReplyMarkup", 2)
        await anna.press_button("Klaar ✔")
        await say(anna, "€ 1.250", "foto")  # asked after choosing money
        await anna.send_photo()
        await anna.wait_for_message(containing("e-mailadres"))
        await say(anna, "anna@example.nl", "naam")
        await say(anna, "Anna de Vries", "Kijk je initiatief nog even na")
        photo = next(m for m in anna.sent() if m.photo is not None)
        summary = anna.last_message()
        shown = (summary.text or "").replace("\xa0", " ")
        assert "Wijk: Warnsveld" in shown and "€ 1.250" in shown, shown
        assert "Laat mijn idee ook zien" in " ".join(summary.button_labels)
        assert photo.photo is not None
        await anna.press_button("☐ Laat mijn idee ook zien op de open-datapagina (zonder naam)")
        ticked = await fake.wait_for_edit(anna, summary.message_id)
        assert "☑ Laat mijn idee ook zien op de open-datapagina (zonder naam)" in ticked.button_labels
        await anna.press_button("✔ Ik ga akkoord, stuur mijn idee")
        done = await anna.wait_for_message(containing("INI-"))
        assert f"INI-{datetime.now(UTC).year}-0001" in (done.text or "")
        assert "ingediend" in (done.text or "")
        await anna.press_button("Mijn initiatieven")
        mine = await anna.wait_for_message(containing("Bankjes in het park"))
        assert "ingediend" in (mine.text or "")

    stored = await rows(
        database_url,
        "select reference, wijk_code, amount_cents, neighbours, contact_email, photo_file_id, status "
        "from initiatives",
    )
    assert len(stored) == 1
    _reference, wijk, amount, neighbours, email, photo_id, status = stored[0]
    assert str(email).startswith(crypto.PREFIX)  # stored encrypted (tests/test_crypto.py)
    assert (wijk, amount, neighbours, crypto.cipher().decrypt(str(email)), status) == (
        "WK030105",
        125_000,
        12,
        "anna@example.nl",
        "ingediend",
    )
    assert photo_id
    # Every callback query got an answer, so no button kept spinning.
    presses = fake.calls("answerCallbackQuery")
    assert presses and all(call.ok for call in presses)


async def test_commands_menu_is_set_in_dutch_and_english(fake: FakeBotApi, database_url: str) -> None:
    async with running_bot(fake, database_url):
        await fake.wait_for_calls("setMyCommands", 3)
    dutch = dict(fake.commands("nl"))
    english = dict(fake.commands("en"))
    assert dutch["nieuw"] != english["nieuw"]
    assert set(dutch) == set(english) >= {"start", "nieuw", "mijn", "taal", "help", "stop", "mijngegevens"}
    assert dutch["mijngegevens"] == "Mijn gegevens"


async def test_back_change_and_stop_over_telegram(fake: FakeBotApi, database_url: str) -> None:
    bob = fake.user(1002, "Bob", language_code="en")
    async with running_bot(fake, database_url):
        await say(bob, "/start", "What do you want to do?")
        await press(bob, "New initiative", "What is your idea?")
        await say(bob, "De speeltuin in Noordveen opknappen, met nieuwe schommels.", "Is that right?")
        await press(bob, "✏️ Other title", "What is the title")
        await say(bob, "Speeltuin opknappen", "Which theme")
        back = await press(bob, "« Back", "What is the title")
        assert "Your answer now: “Speeltuin opknappen”" in (back.text or "")
        await say(bob, "Speeltuin Noordveen opknappen", "Which theme")
        await press(bob, "Stop", "I saved your answers")
        await press(bob, "Continue “Speeltuin Noordveen opknappen”", "Which theme")
        await say(bob, "/stop", "I saved your answers")
    async with running_bot(fake, database_url):
        await say(bob, "/nieuw", "You have already started an idea")


async def test_change_from_the_summary(fake: FakeBotApi, database_url: str) -> None:
    cem = fake.user(1003, "Cem", language_code="en")
    async with running_bot(fake, database_url):
        await intake_until_summary(cem)
        await press(cem, "Change something", "What do you want to change?")
        await press(cem, "Title", "What is the title")
        summary = await say(cem, "Bloembakken in de straat", "Please check your initiative")
        assert "Bloembakken in de straat" in (summary.text or "")
        await press(cem, "✔ I agree, send my idea", "Your reference is")


async def test_an_update_delivered_twice_is_handled_once(fake: FakeBotApi, database_url: str) -> None:
    dirk = fake.user(1004, "Dirk", language_code="en")
    async with running_bot(fake, database_url):
        await intake_until_summary(dirk)
        submit = await dirk.press_button("✔ I agree, send my idea")
        await dirk.wait_for_message(containing("Your reference is"))
        await fake.redeliver(submit)
        await fake.wait_until_consumed()
        await say(dirk, "/help", "/nieuw")  # a barrier: updates are handled in order
    references = [m.text for m in dirk.sent() if m.text and "Your reference is" in m.text]
    assert len(references) == 1
    assert len(await rows(database_url, "select id from initiatives")) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True, ids=["postgresql"])
@pytest.mark.parametrize(("coordination", "claimed"), [(None, False), ("database", True)])
async def test_run_is_the_only_sender_and_asks_the_database_for_no_turns(
    fake: FakeBotApi, database_url: str, coordination: str | None, claimed: bool
) -> None:
    erik = fake.user(1010, "Erik", language_code="nl")
    async with running_bot(fake, database_url, send_coordination=coordination):
        await say(erik, "/start", "Wat wil je doen?")
        await say(erik, "/help", "/nieuw")
    # Polling lets one process in, so by default it keeps the budgets and chats' turns in memory.
    assert bool(await rows(database_url, "select key from send_gates")) == claimed


async def test_garbage_at_a_question_gets_a_kind_reply_and_the_question_again(
    fake: FakeBotApi, database_url: str
) -> None:
    eva = fake.user(1005, "Eva", language_code="en")
    async with running_bot(fake, database_url):
        await say(eva, "/start", "What do you want to do?")
        sent = await eva.send_text("/nieuw")
        await eva.wait_for_message(containing("What is your idea?"))
        await eva.send_sticker()
        await eva.wait_for_message(containing("cannot use that here"))
        await eva.send_document()
        await eva.wait_for_message(containing("cannot use that here"))
        await eva.send_photo()
        again = await eva.wait_for_message(containing("cannot use a photo here"))
        assert "What is your idea?" in (again.text or "")
        await eva.edit_text(sent["message"]["message_id"], "/start")
        await eva.wait_for_message(containing("did not use the change"))
        await eva.send_text("x" * 4096)
        await eva.wait_for_message(containing("too long"))
        await say(eva, "Een boom planten bij de school, voor schaduw.", "Is that right?")


async def test_a_stale_button_gets_a_short_refusal(fake: FakeBotApi, database_url: str) -> None:
    fay = fake.user(1006, "Fay", language_code="en")
    async with running_bot(fake, database_url):
        await say(fay, "/start", "What do you want to do?")
        await press(fay, "New initiative", "What is your idea?")
        await say(fay, "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.", "Is that right?")
        await say(fay, "Bankjes in het park", "Which theme")
        themes = fay.last_message()
        await press(fay, "Greenery", "In which neighbourhood")
        query = await fay.press(themes, "intake:theme:groen", check_button=False)
        await fay.wait_for_message(containing("earlier question"))
        answer = await fake.wait_for_answer(query)
        assert answer is not None and "no longer works" in (answer.text or "")
        await fay.press(themes, "intake:wijk:WK999999", check_button=False)
        await fay.wait_for_message(containing("does not work here"))


async def test_group_chats_get_a_pointer_to_the_private_chat(fake: FakeBotApi, database_url: str) -> None:
    gijs = fake.user(1007, "Gijs", language_code="en")
    group = fake.group()
    async with running_bot(fake, database_url):
        await gijs.in_group(group).send_text("hallo bot")
        message = await fake.wait_for_message(group, containing("private chat"))
        assert message.buttons == []


async def test_language_follows_telegram_and_taal_changes_it(fake: FakeBotApi, database_url: str) -> None:
    hana = fake.user(1008, "Hana", language_code="en")
    async with running_bot(fake, database_url):
        await say(hana, "/start", "What do you want to do?")
        await press(hana, "Help", "/taal")
        await say(hana, "/taal", "Which language")
        await press(hana, "Nederlands", "Nederlands")
        await say(hana, "/start", "Wat wil je doen?")


async def test_a_flood_wait_delays_that_chat_and_the_message_still_arrives(
    fake: FakeBotApi, database_url: str
) -> None:
    ivo = fake.user(1009, "Ivo", language_code="en")
    jet = fake.user(1010, "Jet", language_code="en")
    async with running_bot(fake, database_url):
        await say(jet, "/start", "What do you want to do?")
        fake.fail_next("sendMessage", error_code=429, retry_after=1)
        await ivo.send_text("/start")
        await say(jet, "/help", "/nieuw")  # the other chat goes on meanwhile
        await ivo.wait_for_message(containing("What do you want to do?"), timeout=10)
    assert len([m for m in ivo.sent() if "What do you want to do?" in (m.text or "")]) == 1


async def test_a_blocked_user_is_marked_unreachable_and_not_retried(
    fake: FakeBotApi, database_url: str
) -> None:
    kees = fake.user(1011, "Kees", language_code="en")
    async with running_bot(fake, database_url):
        await say(kees, "/start", "What do you want to do?")
        fake.block_user(kees.id)
        await kees.send_text("/help")
        await fake.wait_until_consumed()
        lisa = fake.user(1012, "Lisa", language_code="en")
        await say(lisa, "/start", "What do you want to do?")  # a barrier
    unreachable = await rows(database_url, "select unreachable_at from people where telegram_user_id = 1011")
    assert unreachable[0][0] is not None
    failed = await rows(
        database_url, "select status, last_error from outbox where chat_id = 1011 and status <> 'sent'"
    )
    assert failed and all(status == "failed" for status, _ in failed)


async def test_coming_back_days_later_offers_to_continue(fake: FakeBotApi, database_url: str) -> None:
    now = [datetime(2026, 11, 25, 9, 0, tzinfo=UTC)]
    mila = fake.user(1013, "Mila", language_code="en")
    async with running_bot(fake, database_url, clock=lambda: now[0]):
        await say(mila, "/start", "What do you want to do?")
        await press(mila, "New initiative", "What is your idea?")
        await say(mila, "Meer groen in de straat: bomen en geveltuinen.", "Is that right?")
        now[0] += timedelta(days=4)
        await say(mila, "hallo", "Do you want to continue?")
        await press(mila, "Continue", "Is that right?")


async def test_a_sticker_at_every_question_gets_a_kind_reply_and_loses_nothing(
    fake: FakeBotApi, database_url: str
) -> None:
    olga = fake.user(1014, "Olga", language_code="en")
    steps = [
        (
            "What is your idea?",
            lambda: olga.send_text("Drie bankjes bij de speeltuin, zodat ouderen rusten."),
        ),
        ("Is that right?", lambda: olga.send_text("Bankjes in het park")),
        ("Which theme", lambda: olga.press_button("Greenery")),
        ("In which neighbourhood", lambda: olga.send_text("7231")),
        ("What can you do yourself", lambda: olga.press_button("Skip")),
        ("How many neighbours", lambda: olga.send_text("12")),
        ("What do you need?", lambda: olga.press_button("▫️ A place")),
        ("What do you need?", lambda: olga.press_button("Done ✔")),
        ("photo", lambda: olga.send_photo()),
        ("phone number or e-mail", lambda: olga.send_text("olga@example.nl")),
        ("What name", lambda: olga.send_text("Olga")),
        ("Please check your initiative", lambda: olga.press_button("✔ I agree, send my idea")),
    ]
    async with running_bot(fake, database_url):
        await say(olga, "/nieuw", "What is your idea?")
        for question, answer in steps:
            await olga.send_sticker()
            again = await olga.wait_for_message(containing("cannot use that here"))
            assert question in (again.text or ""), again.text
            await answer()
        done = await olga.wait_for_message(containing("Your reference is"))
        assert done.text
    stored = await rows(database_url, "select title, wijk_code, needs, contact_email from initiatives")
    assert len(stored) == 1
    title, wijk, needs, email = stored[0]
    assert (title, wijk, crypto.cipher().decrypt(email)) == (
        "Bankjes in het park",
        "WK030105",
        "olga@example.nl",
    )
    assert (json.loads(needs) if isinstance(needs, str) else needs) == ["plek"]


async def test_an_update_polled_while_the_database_is_down_is_handled_when_it_returns(
    fake: FakeBotApi, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anna = fake.user(1901, "Anna", language_code="en")
    async with running_bot(fake, database_url) as app:
        sessions = app.bot_data["runtime"].sessions
        working = sessions.kw["bind"]
        # A database file in a directory that does not exist: every connection fails.
        down = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'bot.db'}")
        sessions.configure(bind=down)
        try:
            await anna.send_text("/start")
            await fake.wait_until_consumed()  # fetched, and so confirmed to Telegram: it must not be lost
            for _ in range(100):
                if any("not stored" in record.getMessage() for record in caplog.records):
                    break
                await asyncio.sleep(0.05)
            assert any("not stored" in record.getMessage() for record in caplog.records)
            assert anna.sent() == []
        finally:
            sessions.configure(bind=working)
            await down.dispose()
        await anna.wait_for_message(containing("What do you want to do?"), timeout=10)
        await press(anna, "New initiative", "What is your idea?")
