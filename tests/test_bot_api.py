"""The bot's Bot API request class (aiohttp) and the outbox transport on it, against the fake Bot API."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot.app import build_service
from bot.bot_api import AiohttpRequest, environment_proxy
from bot.i18n import Translator
from bot.telegram_io import render_reply
from bot.transport import SendTimeouts, TelegramTransport
from flows.events import Button, Document, Reply
from flows.text import verbatim
from tests import fake_bot_api as fake_module
from tests.e2e import settings_for
from tests.fake_bot_api import FakeBotApi, FakeUser, tiny_jpeg

fake_bot_api = fake_module.fake_bot_api

ANNA = 42
KEYBOARD = {
    "inline_keyboard": [[{"text": "Ja", "callback_data": "ja"}, {"text": "Nee", "callback_data": "nee"}]]
}


def make_bot(fake: FakeBotApi, request: AiohttpRequest | None = None) -> Bot:
    return Bot(
        fake.token,
        base_url=fake.base_url,
        base_file_url=fake.base_file_url,
        request=request or AiohttpRequest(),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    )


@pytest_asyncio.fixture
async def bot(fake_bot_api: FakeBotApi) -> AsyncIterator[Bot]:
    async with make_bot(fake_bot_api) as bot:
        yield bot


@pytest.fixture
def transport(bot: Bot) -> TelegramTransport:
    return TelegramTransport(bot)


@pytest_asyncio.fixture
async def anna(fake_bot_api: FakeBotApi) -> FakeUser:
    anna = fake_bot_api.user(ANNA, first_name="Anna", language_code="nl")
    await anna.send_text("hoi")  # a chat the bot may write to
    return anna


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the outbox's calls, sent as stored -------------------------------------------------------


async def test_a_message_with_an_inline_keyboard_arrives_with_its_buttons(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    message_id = await transport.deliver(
        "sendMessage", {"chat_id": ANNA, "text": "Klopt dit? Ja – €50 ✓", "reply_markup": KEYBOARD}
    )

    message = fake_bot_api.last_message(anna)
    assert message_id == message.message_id
    assert message.text == "Klopt dit? Ja – €50 ✓"
    assert message.button_labels == ["Ja", "Nee"] and message.callback_data == ["ja", "nee"]
    (call,) = fake_bot_api.calls("sendMessage")
    assert call.params == {"chat_id": ANNA, "text": "Klopt dit? Ja – €50 ✓", "reply_markup": KEYBOARD}


async def test_a_photo_goes_out_by_file_id_and_a_url_arrives_as_a_url(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    shared = await anna.send_photo()
    file_id = shared["message"]["photo"][-1]["file_id"]

    message_id = await transport.deliver(
        "sendPhoto", {"chat_id": ANNA, "photo": file_id, "caption": "Je foto", "reply_markup": KEYBOARD}
    )
    message = fake_bot_api.last_message(anna)
    assert message_id == message.message_id
    assert message.photo is not None and message.text == "Je foto" and message.button_labels == ["Ja", "Nee"]

    url = "https://example.org/plein.jpg"
    with pytest.raises(BadRequest, match=r"(?i)failed to get HTTP URL content"):  # the fake fetches no URLs
        await transport.deliver("sendPhoto", {"chat_id": ANNA, "photo": url})
    assert fake_bot_api.calls("sendPhoto")[-1].params["photo"] == url


async def test_a_photo_upload_goes_as_multipart(bot: Bot, fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    jpeg = tiny_jpeg(64, 48)
    message = await bot.send_photo(ANNA, jpeg, caption="Geüpload", reply_markup=KEYBOARD)

    assert message.caption == "Geüpload" and message.photo[-1].width == 64
    (call,) = fake_bot_api.calls("sendPhoto")
    assert jpeg in call.files.values() and call.params["reply_markup"] == KEYBOARD


async def test_a_queued_document_is_uploaded_as_a_file_and_its_payload_stays_as_stored(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    content = '{"naam": "Anna de Vries", "wijk": "Noordveen"}\n'
    reply = Reply(
        verbatim("Je gegevens"),
        buttons=((Button(verbatim("Ja"), "ja"),),),
        document=Document("mijngegevens.json", content),
    )
    (call,) = render_reply(reply, chat_id=ANNA, message_id=None, tr=Translator(("nl",)), language="nl")
    stored = json.loads(json.dumps(call.payload))  # as the outbox keeps it

    message_id = await transport.deliver(call.method, stored)

    message = fake_bot_api.last_message(anna)
    assert message_id == message.message_id and message.text == "Je gegevens"
    assert message.button_labels == ["Ja"]
    assert message.document is not None and message.document["file_name"] == "mijngegevens.json"
    assert message.document["mime_type"] == "application/json"
    assert fake_bot_api.document_data(message) == content.encode()
    (sent,) = fake_bot_api.calls("sendDocument")
    assert sent.files == {"document": content.encode()}
    assert stored == json.loads(json.dumps(call.payload))  # a retry sends the same again


async def test_a_file_downloads_with_a_get(bot: Bot, anna: FakeUser) -> None:
    shared = await anna.send_photo(64, 48)

    file = await bot.get_file(shared["message"]["photo"][-1]["file_id"])
    data = await file.download_as_bytearray()
    assert data.startswith(b"\xff\xd8") and len(data) == file.file_size


async def test_edits_change_the_message_and_give_its_id(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    sent = await transport.deliver(
        "sendMessage", {"chat_id": ANNA, "text": "Eerst", "reply_markup": KEYBOARD}
    )

    edited = await transport.deliver(
        "editMessageText", {"chat_id": ANNA, "message_id": sent, "text": "Daarna", "reply_markup": KEYBOARD}
    )
    cleared = await transport.deliver(
        "editMessageReplyMarkup",
        {"chat_id": ANNA, "message_id": sent, "reply_markup": {"inline_keyboard": []}},
    )

    assert edited == cleared == sent
    message = fake_bot_api.last_message(anna)
    assert message.text == "Daarna" and message.buttons == []
    assert [version.text for version in message.history] == ["Eerst", "Daarna"]


async def test_a_callback_answer_gives_no_message_id(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    sent = await transport.deliver("sendMessage", {"chat_id": ANNA, "text": "Kies", "reply_markup": KEYBOARD})
    assert sent is not None
    press = await anna.press(sent, "ja")
    query_id = press["callback_query"]["id"]

    assert (
        await transport.deliver("answerCallbackQuery", {"callback_query_id": query_id, "text": "Gelukt"})
        is None
    )
    answer = fake_bot_api.callback_answer(query_id)
    assert answer is not None and answer.text == "Gelukt"


async def test_an_unknown_method_is_refused_before_any_call(
    transport: TelegramTransport, fake_bot_api: FakeBotApi
) -> None:
    with pytest.raises(ValueError, match="unknown outbox method deleteMessage"):
        await transport.deliver("deleteMessage", {"chat_id": ANNA, "message_id": 1})
    assert [call.method for call in fake_bot_api.calls()] == ["getMe"]  # the bot's start only


# ---- errors surface as PTB's, as the outbox expects ---------------------------------------------


async def test_flood_wait_is_retry_after(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    fake_bot_api.fail_next("sendMessage", error_code=429, retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        await transport.deliver("sendMessage", {"chat_id": ANNA, "text": "Hallo"})
    assert caught.value.retry_after in (7, timedelta(seconds=7))


async def test_a_blocked_user_is_forbidden(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    fake_bot_api.block_user(ANNA)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await transport.deliver("sendMessage", {"chat_id": ANNA, "text": "Hallo"})


async def test_a_refused_call_is_bad_request(transport: TelegramTransport, anna: FakeUser) -> None:
    with pytest.raises(BadRequest, match="Message text is empty"):
        await transport.deliver("sendMessage", {"chat_id": ANNA, "text": " "})
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await transport.deliver("editMessageText", {"chat_id": ANNA, "message_id": 999, "text": "Nieuw"})


async def test_a_token_revoked_while_running_is_invalid_token(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    fake_bot_api.fail_next("sendMessage", error_code=401)  # what Telegram answers a revoked token

    # Not do_api_request's EndPointNotFound: the method exists, as send_message would have known.
    with pytest.raises(InvalidToken, match="Unauthorized"):
        await transport.deliver("sendMessage", {"chat_id": ANNA, "text": "Hallo"})


async def test_a_slow_answer_times_out(fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    fake_bot_api.hang_next("sendMessage", process=True)

    async with make_bot(fake_bot_api) as bot:
        with pytest.raises(TimedOut):
            await TelegramTransport(bot, SendTimeouts(read=0.2)).deliver(
                "sendMessage", {"chat_id": ANNA, "text": "Verstuurd, antwoord kwijt"}
            )
        fake_bot_api.release_hung()
    assert [message.text for message in fake_bot_api.sent(anna)] == ["Verstuurd, antwoord kwijt"]


async def test_a_full_pool_times_out_without_sending(fake_bot_api: FakeBotApi, anna: FakeUser) -> None:
    fake_bot_api.hang_next("sendMessage")
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.1)

    async with make_bot(fake_bot_api, request) as bot:
        stuck = asyncio.create_task(bot.send_message(ANNA, "Hangt"))
        await fake_bot_api.wait_for_hang("sendMessage")
        with pytest.raises(TimedOut):
            await bot.send_message(ANNA, "Wacht op een verbinding")
        fake_bot_api.release_hung()
        with pytest.raises(NetworkError, match="Bad Gateway"):  # what a released hang answers
            await stuck
    assert len(fake_bot_api.calls("sendMessage")) == 1


async def test_no_server_is_network_error_not_timeout() -> None:
    nobody = f"http://127.0.0.1:{free_port()}/bot"
    bot = Bot("123456:TEST-token", base_url=nobody, request=AiohttpRequest())
    try:
        with pytest.raises(NetworkError, match=r"aiohttp\.ClientConnectorError") as caught:
            await TelegramTransport(bot).deliver("sendMessage", {"chat_id": ANNA, "text": "Hallo"})
    finally:
        await bot.request.shutdown()  # the bot never started (its getMe would fail too)
    assert not isinstance(caught.value, TimedOut)


async def test_a_proxy_error_page_is_network_error(
    transport: TelegramTransport, fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    fake_bot_api.fail_next_http("sendMessage", status=502)

    with pytest.raises(NetworkError, match="Bad Gateway") as caught:
        await transport.deliver("sendMessage", {"chat_id": ANNA, "text": "Hallo"})
    assert not isinstance(caught.value, TimedOut)


# ---- long polling and the session ----------------------------------------------------------------


async def test_a_long_poll_outlasts_the_read_timeout_and_brings_updates(
    fake_bot_api: FakeBotApi, anna: FakeUser
) -> None:
    polls = AiohttpRequest(connection_pool_size=1, read_timeout=0.2)
    async with Bot(fake_bot_api.token, base_url=fake_bot_api.base_url, get_updates_request=polls) as bot:
        (first,) = await bot.get_updates(timeout=0)
        # PTB adds the poll's timeout to the read timeout: an empty second-long poll ends without error.
        assert await bot.get_updates(offset=first.update_id + 1, timeout=1) == ()

        waiting = asyncio.create_task(bot.get_updates(offset=first.update_id + 1, timeout=5))
        await fake_bot_api.wait_for_calls("getUpdates", 3)
        await anna.send_text("Ben je er nog?")
        (update,) = await waiting
    assert update.message is not None and update.message.text == "Ben je er nog?"


async def test_shutdown_closes_the_session_and_initialize_opens_it_again(fake_bot_api: FakeBotApi) -> None:
    request = AiohttpRequest()
    url = f"{fake_bot_api.base_url}{fake_bot_api.token}/getMe"

    async with request:
        status, body = await request.do_request(url, "POST")
        assert status == 200 and b'"ok": true' in body
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST")

    await request.initialize()
    try:
        assert (await request.do_request(url, "POST"))[0] == 200
    finally:
        await request.shutdown()
        await request.shutdown()  # a second time does nothing


async def test_the_application_sends_and_polls_through_aiohttp_unless_given_a_request(
    fake_bot_api: FakeBotApi,
) -> None:
    settings = settings_for(fake_bot_api, "sqlite+aiosqlite://")
    app, _ = build_service(settings)
    polls, sends = app.bot._request  # PTB keeps (getUpdates' request, every other call's)
    assert isinstance(sends, AiohttpRequest) and isinstance(polls, AiohttpRequest)
    assert polls is not sends  # a long poll never holds a connection a send needs

    given = AiohttpRequest()
    app, _ = build_service(settings, request=given)
    assert app.bot._request == (given, given)


def test_the_bot_api_is_reached_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://api.telegram.org/bot") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.gemeente.example:3128")
    assert environment_proxy("https://api.telegram.org/bot") == "http://proxy.gemeente.example:3128"
    assert environment_proxy("http://127.0.0.1:8081/bot") is None  # a local Bot API server: never
    monkeypatch.setenv("NO_PROXY", "api.telegram.org")
    assert environment_proxy("https://api.telegram.org/bot") is None
