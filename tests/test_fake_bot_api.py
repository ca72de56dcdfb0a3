"""The fake Bot API speaks Telegram's dialect, checked with a real PTB ``Bot`` and ``Application``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp.web
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from tests import fake_bot_api as fake_module
from tests.fake_bot_api import FakeBotApi, FakeUser, tiny_jpeg

fake_bot_api = fake_module.fake_bot_api

ANNA = 42


def make_bot(fake: FakeBotApi, **kwargs: Any) -> Bot:
    return Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url, **kwargs)


@pytest_asyncio.fixture
async def bot(fake_bot_api: FakeBotApi) -> AsyncIterator[Bot]:
    async with make_bot(fake_bot_api) as bot:
        yield bot


@pytest.fixture
def anna(fake_bot_api: FakeBotApi) -> FakeUser:
    return fake_bot_api.user(ANNA, first_name="Anna", language_code="nl", username="anna_utrecht")


@contextlib.asynccontextmanager
async def running_app(fake: FakeBotApi, *handlers: BaseHandler[Any, Any, Any]) -> AsyncIterator[Application]:
    """A real PTB Application polling the fake; fails the test if a handler raised."""
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handlers(list(handlers))
    errors: list[object] = []

    async def collect(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)

    app.add_error_handler(collect)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling()
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()
    assert not errors, errors


async def raw_call(fake: FakeBotApi, method: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{token or fake.token}/{method}", **kwargs) as response,
    ):
        return response.status, await response.json(content_type=None)


def unknown_fields(obj: object, path: str = "update") -> list[str]:
    """Paths of every object PTB parsed with fields it did not know (``api_kwargs``)."""
    found = []
    if isinstance(obj, TelegramObject):
        if obj.api_kwargs:
            found.append(f"{path}: {dict(obj.api_kwargs)}")
        for name, value in obj._get_attrs(recursive=False).items():
            found.extend(unknown_fields(value, f"{path}.{name}"))
    elif isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            found.extend(unknown_fields(item, f"{path}[{index}]"))
    return found


# ---- the bot itself -------------------------------------------------------------------------


async def test_get_me_is_parsed_by_ptb_without_unknown_fields(bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username) == (123456, True, "initiatiefbot_test_bot")
    assert unknown_fields(me) == []


async def test_wrong_token_is_unauthorized(fake_bot_api: FakeBotApi) -> None:
    async with make_bot(fake_bot_api) as good_bot:
        await good_bot.get_me()
    with pytest.raises(InvalidToken):
        async with Bot("123456:wrong", base_url=fake_bot_api.base_url):
            pass  # initialize() calls getMe, which fails

    status, body = await raw_call(fake_bot_api, "getMe", token="654321:other")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})


async def test_unknown_method_is_not_found_and_missing_ones_say_so(fake_bot_api: FakeBotApi) -> None:
    status, body = await raw_call(fake_bot_api, "noSuchMethod")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})

    status, body = await raw_call(fake_bot_api, "sendPoll")
    assert status == 501
    assert "sendPoll" in body["description"]


@pytest.mark.parametrize("encoding", ["query", "form", "multipart", "json"])
async def test_parameters_arrive_in_every_encoding_telegram_accepts(
    fake_bot_api: FakeBotApi, anna: FakeUser, encoding: str
) -> None:
    await anna.send_text("hoi")
    markup = {"inline_keyboard": [[{"text": "Ja", "callback_data": "ja"}]]}
    fields = {"chat_id": str(ANNA), "text": "Kies", "reply_markup": json.dumps(markup)}
    if encoding == "query":
        kwargs: dict[str, Any] = {"params": fields}
    elif encoding == "form":
        kwargs = {"data": fields}
    elif encoding == "multipart":
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("unused", b"x", filename="unused.bin")
        kwargs = {"data": form}
    else:
        kwargs = {"json": {"chat_id": ANNA, "text": "Kies", "reply_markup": markup}}

    status, body = await raw_call(fake_bot_api, "sendMessage", **kwargs)

    assert status == 200, body
    assert body["result"]["reply_markup"] == markup
    assert fake_bot_api.calls("sendMessage")[0].params["chat_id"] == ANNA
    assert fake_bot_api.last_message(anna).buttons == [[("Ja", "ja")]]


# ---- users talking to an Application --------------------------------------------------------


async def test_user_message_reaches_handler_and_reply_is_recorded(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"Je zei: {update.message.text}")

    async with running_app(fake_bot_api, MessageHandler(filters.TEXT & ~filters.COMMAND, echo)):
        await anna.send_text("Hallo")
        reply = await anna.wait_for_message()
        await anna.send_text("Nog een keer")
        second = await fake_bot_api.wait_for_message(ANNA)

    assert reply.text == "Je zei: Hallo"
    assert second.text == "Je zei: Nog een keer"
    assert [message.text for message in fake_bot_api.sent(anna)] == [reply.text, second.text]
    assert fake_bot_api.calls("sendMessage")[0].params == {"chat_id": ANNA, "text": "Je zei: Hallo"}


async def test_start_command_with_payload_reaches_command_handler(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"payload={' '.join(context.args or [])}")

    async with running_app(fake_bot_api, CommandHandler("start", start)):
        update = await anna.send_text("/start buurt-42")
        reply = await anna.wait_for_message()

    assert update["message"]["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert reply.text == "payload=buurt-42"


async def test_buttons_can_be_pressed_and_the_bot_answers_and_edits(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        keyboard = [
            [InlineKeyboardButton("Ja", callback_data="ja"), InlineKeyboardButton("Nee", callback_data="nee")]
        ]
        await update.message.reply_text("Kies maar", reply_markup=InlineKeyboardMarkup(keyboard))

    async def chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer("Gekozen")
        await query.edit_message_text(f"Je koos {query.data}")

    async with running_app(fake_bot_api, CommandHandler("start", ask), CallbackQueryHandler(chosen)):
        await anna.send_text("/start")
        question = await anna.wait_for_message()
        press = await anna.press_button("Ja")
        answer = await fake_bot_api.wait_for_answer(press)
        edited = await fake_bot_api.wait_for_edit(anna, question.message_id)

    assert question.buttons == [[("Ja", "ja"), ("Nee", "nee")]]
    assert press["callback_query"]["message"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "Ja", "callback_data": "ja"}, {"text": "Nee", "callback_data": "nee"}]]
    }
    assert answer.text == "Gekozen"
    assert edited.text == "Je koos ja"
    assert edited.buttons == []  # editing the text without reply_markup drops the keyboard, as in Telegram
    assert [version.text for version in edited.history] == ["Kies maar"]
    assert edited.history[0].buttons == question.buttons


async def test_a_callback_query_can_be_answered_once(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ja", callback_data="ja")]])
    message = await bot.send_message(ANNA, "Kies", reply_markup=markup)
    press = await anna.press(message.message_id, "ja")
    query_id = press["callback_query"]["id"]

    assert await bot.answer_callback_query(query_id, text="Top") is True
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("12345")
    with pytest.raises(AssertionError, match="no button"):
        await anna.press(message.message_id, "nee")


# ---- edits ----------------------------------------------------------------------------------


async def test_edit_with_the_same_content_is_not_modified(bot: Bot, anna: FakeUser) -> None:
    await anna.send_text("hoi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ja", callback_data="ja")]])
    message = await bot.send_message(ANNA, "Kies", reply_markup=markup)

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Kies", chat_id=ANNA, message_id=message.message_id, reply_markup=markup)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(chat_id=ANNA, message_id=message.message_id, reply_markup=markup)

    edited = await bot.edit_message_text("Kies opnieuw", chat_id=ANNA, message_id=message.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "Kies opnieuw"
    assert edited.edit_date is not None
    assert edited.reply_markup is None


async def test_edit_of_a_missing_or_foreign_message_is_refused(bot: Bot, anna: FakeUser) -> None:
    update = await anna.send_text("hoi")

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=ANNA, message_id=999)
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", chat_id=ANNA, message_id=update["message"]["message_id"])
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.edit_message_text("x", chat_id=7, message_id=1)


async def test_user_edits_arrive_as_edited_message(fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    seen: list[str] = []

    async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.edited_message is not None and update.edited_message.text is not None
        seen.append(update.edited_message.text)
        await update.edited_message.reply_text("Aangepast")

    async with running_app(fake_bot_api, MessageHandler(filters.UpdateType.EDITED_MESSAGE, edited)):
        original = await anna.send_text("Lantarenpaal kapot")
        update = await anna.edit_text(original["message"]["message_id"], "Lantarenpaal bij de school kapot")
        await anna.wait_for_message()

    assert seen == ["Lantarenpaal bij de school kapot"]
    assert update["edited_message"]["edit_date"] >= update["edited_message"]["date"]


# ---- errors ---------------------------------------------------------------------------------


async def test_flood_limit_becomes_retry_after_with_the_right_seconds(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    await anna.send_text("hoi")
    fake_bot_api.fail_next("sendMessage", error_code=429, retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ANNA, "Hallo")
    await bot.send_message(ANNA, "Hallo")

    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    first, second = fake_bot_api.calls("sendMessage")
    assert first.response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert second.ok
    assert [message.text for message in fake_bot_api.sent(anna)] == ["Hallo"]


async def test_blocked_user_makes_sends_forbidden(bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    await anna.send_text("hoi")
    member_update = fake_bot_api.block_user(ANNA, notify=True)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ANNA, "Hallo?")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(ANNA, "typing")
    fake_bot_api.unblock_user(ANNA)
    await bot.send_message(ANNA, "Welkom terug")

    assert member_update is not None
    parsed = Update.de_json(member_update, bot)
    assert parsed.my_chat_member is not None
    assert parsed.my_chat_member.new_chat_member.status == "kicked"
    assert unknown_fields(parsed) == []


async def test_chat_that_never_talked_to_the_bot_is_not_found(bot: Bot, fake_bot_api: FakeBotApi) -> None:
    fake_bot_api.user(7)

    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(7, "Hallo")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "Hallo")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message("@iemand", "Hallo")


async def test_text_and_button_limits_are_enforced(bot: Bot, anna: FakeUser) -> None:
    await anna.send_text("hoi")

    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ANNA, "   \n ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ANNA, "a" * 4097)
    assert (await bot.send_message(ANNA, "a" * 4096 + "  ")).text == "a" * 4096
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ja", callback_data="x" * 65)]])
        await bot.send_message(ANNA, "Kies", reply_markup=markup)
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(ANNA, "Kies", reply_markup={"inline_keyboard": [[{"text": "Ja"}]]})
    with pytest.raises(BadRequest, match=r"(?i)exactly one of the optional fields"):
        both = {"inline_keyboard": [[{"text": "Ja", "callback_data": "ja", "url": "https://example.org"}]]}
        await bot.send_message(ANNA, "Kies", reply_markup=both)
    with pytest.raises(BadRequest, match="Unsupported parse_mode"):
        await bot.send_message(ANNA, "Hallo", parse_mode="Shouting")


async def test_bad_gateway_becomes_network_error(bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    await anna.send_text("hoi")
    fake_bot_api.fail_next_http("sendMessage", status=502)

    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(ANNA, "Hallo")
    await bot.send_message(ANNA, "Hallo")


async def test_hanging_call_times_out_and_may_still_take_effect(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")
    fake_bot_api.hang_next("sendMessage", process=True)
    fake_bot_api.hang_next("sendMessage")

    async with make_bot(fake_bot_api, request=HTTPXRequest(read_timeout=0.2)) as impatient:
        with pytest.raises(TimedOut):
            await impatient.send_message(ANNA, "Verstuurd, antwoord kwijt")
        with pytest.raises(TimedOut):
            await impatient.send_message(ANNA, "Nooit aangekomen")
        fake_bot_api.release_hung()

    assert [message.text for message in fake_bot_api.sent(anna)] == ["Verstuurd, antwoord kwijt"]


async def test_a_hang_for_one_chat_leaves_other_chats_alone_and_has_no_effect_when_abandoned(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    bert = fake_bot_api.user(43, "Bert")
    await anna.send_text("hoi")
    await bert.send_text("hoi")
    fake_bot_api.hang_next("sendMessage", chat=anna)

    async with make_bot(fake_bot_api, request=HTTPXRequest(read_timeout=5)) as bot:
        stuck = asyncio.create_task(bot.send_message(ANNA, "Nooit aangekomen"))
        (hung,) = await fake_bot_api.wait_for_hang("sendMessage")
        assert hung.params["chat_id"] == ANNA and hung.status is None
        await bot.send_message(bert.chat_id, "Voor Bert")  # another chat: answered as usual
        stuck.cancel()  # the client goes away, as a killed process does
        with contextlib.suppress(asyncio.CancelledError):
            await stuck
        await fake_bot_api.wait_until_none_hang()
        assert hung.status is None  # never answered
        await bot.send_message(ANNA, "Daarna wel")  # the fault was used up

    assert [message.text for message in fake_bot_api.sent(anna)] == ["Daarna wel"]
    assert [message.text for message in fake_bot_api.sent(bert)] == ["Voor Bert"]


async def test_cleared_faults_are_not_used(bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    await anna.send_text("hoi")
    fake_bot_api.hang_next("sendMessage")
    fake_bot_api.fail_next("sendMessage", error_code=500)
    fake_bot_api.fail_next_http("getMe")
    fake_bot_api.clear_faults("sendMessage")
    await bot.send_message(ANNA, "Hallo")
    fake_bot_api.clear_faults()
    await bot.get_me()
    assert [message.text for message in fake_bot_api.sent(anna)] == ["Hallo"]


async def test_a_fault_can_pick_calls_by_their_parameters(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")
    fake_bot_api.fail_next("sendMessage", error_code=500, matching=lambda params: params["text"] == "Twee")

    await bot.send_message(ANNA, "Een")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(ANNA, "Twee")
    await bot.send_message(ANNA, "Twee")
    assert [message.text for message in fake_bot_api.sent(anna)] == ["Een", "Twee"]


async def test_a_second_poller_ends_the_first_with_conflict(bot: Bot, fake_bot_api: FakeBotApi) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await fake_bot_api.wait_for_calls("getUpdates", 1)

    async with make_bot(fake_bot_api) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


# ---- files ----------------------------------------------------------------------------------


async def test_photo_from_a_user_can_be_fetched_and_downloaded(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_photo(width=1280, height=960, caption="Kapotte lamp")
    (update,) = await bot.get_updates()
    assert update.message is not None
    photo = update.message.photo

    file = await bot.get_file(photo[-1].file_id)
    data = await file.download_as_bytearray()

    assert [(size.width, size.height) for size in photo] == [(90, 68), (320, 240), (1280, 960)]
    assert len({size.file_id for size in photo}) == 3
    assert update.message.caption == "Kapotte lamp"
    assert file.file_size == len(data) == photo[-1].file_size
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("AgACnonsense")
    async with aiohttp.ClientSession() as session:
        assert file.file_path is not None
        wrong = file.file_path.replace(fake_bot_api.token, "123456:wrong")
        async with session.get(wrong) as response:
            assert response.status == 401


async def test_bot_uploads_a_photo_and_sends_it_again_by_file_id(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")

    uploaded = await bot.send_photo(
        ANNA, photo=tiny_jpeg(640, 480), caption="<b>Kaart</b>", parse_mode=ParseMode.HTML
    )
    again = await bot.send_photo(ANNA, photo=uploaded.photo[-1].file_id)

    assert (uploaded.photo[-1].width, uploaded.photo[-1].height) == (640, 480)
    assert uploaded.caption == "Kaart"
    assert [entity.type for entity in uploaded.caption_entities] == ["bold"]
    assert [size.file_id for size in again.photo] == [size.file_id for size in uploaded.photo]
    assert "photo" in fake_bot_api.calls("sendPhoto")[0].files  # PTB uploads with multipart/form-data
    assert fake_bot_api.last_message(anna).photo == again.to_dict()["photo"]
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(ANNA, photo=uploaded.photo[-1].file_id, caption="x" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(ANNA, photo=b"not an image")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(ANNA, photo="AgACnonsense")


async def test_bot_uploads_a_document_and_the_test_reads_its_bytes(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")
    data = b'{"naam": "Anna"}'

    sent = await bot.send_document(ANNA, document=data, filename="mijngegevens.json", caption="Je gegevens")
    again = await bot.send_document(ANNA, document=sent.document.file_id)

    assert unknown_fields(sent, "message") == []
    assert sent.document.file_name == "mijngegevens.json"
    assert sent.document.mime_type == "application/json"
    assert sent.document.file_size == len(data) and sent.caption == "Je gegevens"
    assert again.document.file_unique_id == sent.document.file_unique_id
    (upload, _) = fake_bot_api.calls("sendDocument")
    assert upload.files == {"document": data}  # PTB uploads with multipart/form-data
    message = fake_bot_api.sent(anna)[-2]
    assert message.document == sent.to_dict()["document"]
    assert fake_bot_api.document_data(message) == data
    file = await bot.get_file(sent.document.file_id)
    assert bytes(await file.download_as_bytearray()) == data


async def test_send_document_is_as_strict_as_telegram(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")
    status, body = await raw_call(fake_bot_api, "sendDocument", data={"chat_id": str(ANNA)})
    assert (status, body["description"]) == (400, "Bad Request: there is no document in the request")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_document(ANNA, document="BQACnonsense")
    photo = (await anna.send_photo())["message"]["photo"][-1]["file_id"]
    with pytest.raises(BadRequest, match="Type of file mismatch"):
        await bot.send_document(ANNA, document=photo)
    with pytest.raises(BadRequest, match="File must be non-empty"):
        await bot.send_document(ANNA, document=b"", filename="leeg.json")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(ANNA, document=b"{}", filename="a.json", caption="x" * 1025)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_document(99, document=b"{}", filename="a.json")
    assert await bot.send_document(ANNA, document=b"{}", filename="a.json", caption="x" * 1024)

    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANNA))
    form.add_field("document", b"x" * (50 * 1024 * 1024 + 1), filename="groot.json")
    status, body = await raw_call(fake_bot_api, "sendDocument", data=form)
    assert (status, body["description"]) == (413, "Request Entity Too Large")
    # A document given as a plain form field is no file: Telegram reads it as a file id.
    status, body = await raw_call(fake_bot_api, "sendDocument", data={"chat_id": str(ANNA), "document": "{}"})
    assert (status, body["description"]) == (400, "Bad Request: wrong file identifier/HTTP URL specified")


async def test_bot_passes_on_a_voice_note_and_a_document_a_user_sent_by_file_id(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    voice = (await anna.send_voice(duration=12, caption="Luister"))["message"]["voice"]
    document = (await anna.send_document("plan.pdf"))["message"]["document"]
    photo = (await anna.send_photo())["message"]["photo"][-1]["file_id"]

    again = await bot.send_voice(ANNA, voice=voice["file_id"], caption="Van Anna")
    assert unknown_fields(again, "message") == []
    assert (again.voice.file_unique_id, again.voice.duration) == (
        voice["file_unique_id"],
        dtm.timedelta(seconds=12),
    )
    assert again.caption == "Van Anna" and fake_bot_api.last_message(anna).voice == again.to_dict()["voice"]
    passed = await bot.send_document(ANNA, document=document["file_id"])
    assert (passed.document.file_name, passed.document.file_unique_id) == (
        "plan.pdf",
        document["file_unique_id"],
    )

    # As strict as Telegram: a file id of another kind, an unknown one, or nothing at all.
    for wrong in (photo, document["file_id"]):
        with pytest.raises(BadRequest, match="Type of file mismatch"):
            await bot.send_voice(ANNA, voice=wrong)
    with pytest.raises(BadRequest, match="Type of file mismatch"):
        await bot.send_document(ANNA, document=voice["file_id"])
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_voice(ANNA, voice="AwACnonsense")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_voice(ANNA, voice=voice["file_id"], caption="x" * 1025)
    status, body = await raw_call(fake_bot_api, "sendVoice", data={"chat_id": str(ANNA)})
    assert (status, body["description"]) == (400, "Bad Request: there is no voice in the request")


# ---- commands, updates, webhook -------------------------------------------------------------


async def test_commands_are_kept_per_language_and_scope(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await bot.set_my_commands([BotCommand("start", "Beginnen"), BotCommand("help", "Hulp")])
    await bot.set_my_commands([BotCommand("start", "Start")], language_code="en")

    assert fake_bot_api.commands() == [("start", "Beginnen"), ("help", "Hulp")]
    assert fake_bot_api.commands("en") == [("start", "Start")]
    assert fake_bot_api.commands("de") == []
    assert await bot.get_my_commands(language_code="en") == (BotCommand("start", "Start"),)

    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "Hoofdletter")])
    with pytest.raises(BadRequest, match="Command description must be non-empty"):
        await bot.set_my_commands([BotCommand("start", " ")])
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.set_my_commands([BotCommand("start", "x")], scope=BotCommandScopeChat(ANNA))
    await anna.send_text("hoi")
    await bot.set_my_commands([BotCommand("stop", "Stoppen")], scope=BotCommandScopeChat(ANNA))
    assert fake_bot_api.commands(scope={"type": "chat", "chat_id": ANNA}) == [("stop", "Stoppen")]


async def test_get_updates_offset_confirms_and_forgets_earlier_updates(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    sent = [await anna.send_text(text) for text in ("een", "twee", "drie")]
    ids = [update["update_id"] for update in sent]
    assert ids == sorted(ids) and len(set(ids)) == 3

    assert [update.update_id for update in await bot.get_updates()] == ids
    assert [update.update_id for update in await bot.get_updates(limit=1)] == ids[:1]
    assert fake_bot_api.pending_updates == 3
    assert [update.update_id for update in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert [update.update_id for update in await bot.get_updates()] == ids[1:]
    assert [update.update_id for update in await bot.get_updates(offset=-1)] == ids[2:]
    assert fake_bot_api.pending_updates == 1
    assert await bot.get_updates(offset=ids[2] + 1) == ()
    assert fake_bot_api.pending_updates == 0


async def test_long_polling_returns_as_soon_as_an_update_arrives(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=30))
    await fake_bot_api.wait_for_calls("getUpdates", 1)
    await anna.send_text("hoi")

    async with asyncio.timeout(5):
        updates = await polling

    assert [update.effective_message.text for update in updates if update.effective_message] == ["hoi"]


async def test_allowed_updates_filters_new_updates_until_changed(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    first = await anna.send_text("hoi")
    await bot.get_updates(offset=first["update_id"] + 1, allowed_updates=["callback_query"])

    await anna.send_text("niet gezien")
    assert fake_bot_api.pending_updates == 0
    message = await bot.send_message(
        ANNA, "Kies", reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    )
    await anna.press(message.message_id, "a")
    (update,) = await bot.get_updates()
    assert update.callback_query is not None

    await bot.get_updates(offset=update.update_id + 1, allowed_updates=[])
    await anna.send_text("weer gezien")
    assert fake_bot_api.pending_updates == 1


async def test_delete_webhook_can_drop_pending_updates(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("oud")
    assert (await bot.get_webhook_info()).pending_update_count == 1

    assert await bot.delete_webhook(drop_pending_updates=True) is True

    assert fake_bot_api.pending_updates == 0
    assert fake_bot_api.calls("deleteWebhook")[0].response == {
        "ok": True,
        "result": True,
        "description": "Webhook is already deleted",
    }


async def test_set_webhook_is_as_strict_as_telegram(bot: Bot, fake_bot_api: FakeBotApi) -> None:
    refusals = {
        "http://example.org/hook": "an https url must be provided for webhook",
        "https://example.org:8080/hook": "webhook can be set up only on ports 80, 88, 443 or 8443",
    }
    for url, description in refusals.items():  # PTB lowercases the description
        with pytest.raises(BadRequest, match=f"(?i){description}"):
            await bot.set_webhook(url)
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook("https://example.org/hook", secret_token="geen spaties")
    with pytest.raises(BadRequest, match=r"(?i)secret token is too long"):
        await bot.set_webhook("https://example.org/hook", secret_token="x" * 257)
    assert fake_bot_api.webhook is None

    assert await bot.set_webhook("https://example.org:8443/hook", secret_token="s3cret_-", allowed_updates=[])
    info = await bot.get_webhook_info()
    assert info.url == "https://example.org:8443/hook"
    assert fake_bot_api.webhook is not None and fake_bot_api.webhook.secret_token == "s3cret_-"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()

    assert await bot.delete_webhook() is True
    assert (await bot.get_webhook_info()).url == ""
    assert fake_bot_api.calls("deleteWebhook")[-1].description == "Webhook was deleted"


async def test_deliver_webhook_posts_the_update_with_the_secret_header(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return aiohttp.web.Response(status=200 if len(received) > 1 else 503)

    app = aiohttp.web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await bot.set_webhook(str(server.make_url("/hook")), secret_token="geheim")
        update = await anna.send_text("hallo")
        assert await fake_bot_api.deliver_webhook(update) == 503
        assert fake_bot_api.pending_updates == 1  # not confirmed: Telegram tries again later
        assert await fake_bot_api.deliver_webhook(update) == 200
        assert fake_bot_api.pending_updates == 0
    finally:
        await server.close()
    assert received == [("geheim", update), ("geheim", update)]


async def test_redelivered_update_reaches_the_application_again(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)
        assert update.message is not None
        await update.message.reply_text("ontvangen")

    async with running_app(fake_bot_api, MessageHandler(filters.TEXT, record)):
        update = await anna.send_text("Idee: bankje in het park")
        await anna.wait_for_message()
        await fake_bot_api.wait_until_consumed()
        await fake_bot_api.redeliver(update)
        await anna.wait_for_message()
        await fake_bot_api.wait_until_consumed()

    assert seen == [update["update_id"], update["update_id"]]
    assert fake_bot_api.pending_updates == 0


# ---- what users can send --------------------------------------------------------------------


async def test_every_kind_of_user_update_is_understood_by_ptb(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    text = await anna.send_text("Zie https://example.org of mail info@example.org #buurt /help")
    message = await bot.send_message(
        ANNA, "Kies", reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    )
    updates = [
        text,
        await anna.send_location(52.0907, 5.1214),
        await anna.send_photo(),
        await anna.send_sticker(),
        await anna.send_voice(),
        await anna.send_document(),
        await anna.edit_text(text["message"]["message_id"], "Aangepast"),
        await anna.press(message.message_id, "a"),
        await anna.send_text("Antwoord", reply_to=message.message_id),
    ]

    parsed = [Update.de_json(update, bot) for update in updates]

    assert [problem for update in parsed for problem in unknown_fields(update)] == []
    assert [entity["type"] for entity in text["message"]["entities"]] == [
        "url",
        "email",
        "hashtag",
        "bot_command",
    ]
    assert parsed[0].effective_chat is not None and parsed[0].effective_chat.type == "private"
    assert parsed[1].message is not None and parsed[1].message.location is not None
    assert parsed[3].message is not None and parsed[3].message.sticker is not None
    assert parsed[6].edited_message is not None
    assert parsed[8].message is not None and parsed[8].message.reply_to_message is not None


async def test_reply_keyboard_can_ask_for_a_location(bot: Bot, anna: FakeUser) -> None:
    await anna.send_text("hoi")
    keyboard = ReplyKeyboardMarkup(
        [[KeyboardButton("Deel locatie", request_location=True)]], one_time_keyboard=True
    )

    message = await bot.send_message(ANNA, "Waar is het?", reply_markup=keyboard)
    shown = anna.reply_keyboard
    update = await anna.tap_keyboard("Deel locatie", location=(52.0907, 5.1214))
    await bot.send_message(ANNA, "Dank je", reply_markup=ReplyKeyboardRemove())

    assert message.reply_markup is None  # Telegram only echoes inline keyboards
    assert shown == [["Deel locatie"]]
    assert update["message"]["location"] == {"latitude": 52.0907, "longitude": 5.1214}
    assert anna.reply_keyboard is None


async def test_group_messages_come_from_a_group_chat(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    group = fake_bot_api.group("Buurtgroep Lombok")

    update = await anna.in_group(group).send_text("/start@initiatiefbot_test_bot")
    await bot.send_message(group.id, "Hallo buurt")

    chat = update["message"]["chat"]
    assert chat["id"] < 0 and chat["type"] == "group" and chat["title"] == "Buurtgroep Lombok"
    assert update["message"]["from"]["id"] == ANNA
    assert update["message"]["entities"] == [{"offset": 0, "length": 29, "type": "bot_command"}]
    assert [message.text for message in fake_bot_api.sent(group)] == ["Hallo buurt"]
    assert fake_bot_api.sent(anna) == []


async def test_parse_modes_are_parsed_and_checked_like_telegram(bot: Bot, anna: FakeUser) -> None:
    await anna.send_text("hoi")

    html = await bot.send_message(
        ANNA, "<b>Hallo</b> &amp; <a href='https://example.org'>welkom</a>", parse_mode="HTML"
    )
    markdown = await bot.send_message(ANNA, "*Prijs* 5\\.00 ||geheim||", parse_mode=ParseMode.MARKDOWN_V2)

    assert html.text == "Hallo & welkom"
    assert [(entity.type, entity.offset, entity.length) for entity in html.entities] == [
        ("bold", 0, 5),
        ("text_link", 8, 6),
    ]
    assert markdown.text == "Prijs 5.00 geheim"
    assert [entity.type for entity in markdown.entities] == ["bold", "spoiler"]
    with pytest.raises(BadRequest, match="Can't parse entities: can't find end tag"):
        await bot.send_message(ANNA, "<b>Hallo", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"character '\.' is reserved"):
        await bot.send_message(ANNA, "Prijs 5.00", parse_mode=ParseMode.MARKDOWN_V2)


async def test_waiting_for_a_message_that_never_comes_explains_what_was_sent(
    bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    await anna.send_text("hoi")
    await bot.send_message(ANNA, "Eerste")
    with contextlib.suppress(BadRequest):
        await bot.send_message(ANNA, "")

    with pytest.raises(AssertionError) as caught:
        await fake_bot_api.wait_for_message(anna, lambda message: message.text == "Tweede", timeout=0.05)

    assert "'Eerste'" in str(caught.value)
    assert "message text is empty" in str(caught.value)
