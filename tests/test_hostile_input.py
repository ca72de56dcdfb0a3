"""Hostile input at every question: nothing crashes, nothing formats, nothing invisible reaches a broker.

The bot sends plain text only (never a ``parse_mode``), so Markdown or HTML typed by a resident is shown
as typed and cannot change what a broker sees. Bidi overrides are cleaned away before anything is stored.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update

from bot.dispatcher import Dispatcher
from bot.i18n import Translator
from bot.telegram_io import MESSAGE_LIMIT, render_reply, to_event
from flows import broker
from flows.cases import CaseView
from flows.commands import SubmitInitiative
from flows.events import EventKind, Photo, Reply
from flows.intake import INTAKE
from flows.resident import LANGUAGES
from flows.text import t
from flows.validators import clean_text
from storage.db import session_factory
from tests.e2e import containing, press, running_bot, say
from tests.fake_bot_api import FakeBotApi
from tests.test_e2e_cases import add_staff
from tests.test_intake_flow import TR, ZUTPHEN, Chat, answer_until

# Overrides, embeddings, isolates and marks: they can make a text read differently from what it holds.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
BIDI_RE = re.compile(f"[{BIDI}]")
MARKUP = '*_[]()~`>#+-=|{}.!\\<b></b><a href="https://evil.example">klik</a>&amp;\n'
STEPS = [step.name for step in INTAKE.steps]

right_to_left = st.text(st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), min_size=1, max_size=40)
hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from(list(BIDI) + list("abc שלום مرحبا 12")), max_size=80),
    st.lists(st.sampled_from([*MARKUP, "<b>", "</b>", "<a href=x>", "</a>", "**", "__", "||"])).map("".join),
    st.lists(st.one_of(right_to_left, st.text(max_size=20), st.sampled_from(list(BIDI))), max_size=8).map(
        "".join
    ),
    # The longest message Telegram delivers.
    st.text(min_size=1, max_size=12).map(lambda s: (s * MESSAGE_LIMIT)[:MESSAGE_LIMIT]),
    st.sampled_from(
        [
            "*vet* _schuin_ [link](https://evil.example) `code` ~doorgestreept~ ||spoiler||",
            '<b>vet</b> <a href="tg://user?id=1">klik</a> <script>alert(1)</script>',
            "\u202eBankjes in het park\u202c",
            "\u2067שלום\u2069 Bankjes",
            "a" * MESSAGE_LIMIT,
            "\u202e" * MESSAGE_LIMIT,
        ]
    ),
)

actions = st.one_of(
    st.tuples(st.just("text"), hostile_text),
    st.tuples(st.just("caption"), hostile_text),  # a photo with a caption
    st.tuples(st.just("command"), hostile_text),  # "/start <args>" and unknown commands
    st.tuples(st.just("data"), st.text(max_size=70)),  # forged callback data
    st.tuples(st.just("stale"), st.integers(0, 200)),  # a button from an earlier message
    st.tuples(st.sampled_from(["sticker", "voice", "document", "edited"]), st.just("")),
)


def rendered(reply: Reply) -> list[dict[str, object]]:
    return [
        call.payload
        for lang in ("nl", "en")
        for call in render_reply(reply, chat_id=7, message_id=1, tr=TR, language=lang)
    ]


def assert_plain_and_clean(reply: Reply) -> None:
    for payload in rendered(reply):
        assert "parse_mode" not in payload and "entities" not in payload
        text = str(payload.get("text", payload.get("caption", "")))
        assert len(text) <= MESSAGE_LIMIT
        assert not BIDI_RE.search(text), text
        markup = payload.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):  # type: ignore[union-attr]
            for button in row:
                assert not BIDI_RE.search(button["text"])
                assert len(button["callback_data"].encode()) <= 64


def act(chat: Chat, kind: str, value: object, seen: list[str]) -> None:
    if kind == "text":
        chat.text(str(value))
    elif kind == "caption":
        chat._event(EventKind.PHOTO, photo=Photo("f", "u", 10, 10, 10), text=str(value))
    elif kind == "command":
        name, _, args = str(value).partition(" ")
        chat._event(EventKind.COMMAND, command=name.lower() or "start", command_args=args, text=f"/{value}")
    elif kind == "data":
        chat.data(str(value))
    elif kind == "stale":
        if seen:
            chat.data(seen[int(value) % len(seen)])  # type: ignore[call-overload]
    elif kind == "edited":
        chat.other(EventKind.EDITED)
    else:  # stickers, voice and documents all arrive as an unsupported message
        chat.other(EventKind.UNSUPPORTED)


def reach(chat: Chat, step: str) -> None:
    if step == "change":
        answer_until(chat, "confirm")
        chat.press("Change something")
    elif step == "decline":
        answer_until(chat, "confirm")
        chat.press("I do not agree")
    else:
        answer_until(chat, step)
    assert chat.step == step


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STEPS), st.lists(actions, min_size=1, max_size=12))
def test_hostile_input_at_every_step_is_answered_in_plain_clean_text(
    step: str, seq: list[tuple[str, object]]
) -> None:
    chat = Chat()
    reach(chat, step)
    seen = [data for _, data in chat.buttons()]
    for kind, value in seq:
        before = len(chat.replies)
        act(chat, kind, value, seen)
        assert len(chat.replies) > before or kind in ("stale", "data"), "every message gets an answer"
        for reply in chat.replies[before:]:
            assert_plain_and_clean(reply)
        seen.extend(data for _, data in chat.buttons())
        if chat.conv.draft is not None:
            for value_ in chat.conv.draft.answers.values():
                assert not BIDI_RE.search(str(value_))


# --- what a broker sees ------------------------------------------------------------------------------


def case_from(chat: Chat) -> CaseView:
    submitted = [c for c in chat.commands if isinstance(c, SubmitInitiative)]
    assert submitted, chat.last()
    draft = submitted[-1].draft
    stored = {
        f.name: getattr(draft, f.name)
        for f in fields(draft)
        if f.name
        not in (
            "consent_at",
            "publish_consent",
            "amount_max_cents",
            "idea_voice_file_id",
            "own_voice_file_id",
        )
    }
    moment = datetime(2026, 11, 25, tzinfo=UTC)
    return CaseView(
        id=1,
        reference="INI-2026-0001",
        status="ingediend",
        status_changed_at=moment,
        created_at=moment,
        resident_user_id=7,
        resident_chat_id=7,
        **stored,
    )


def card_text(case: CaseView, language: str) -> str:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    *_photo, card = broker.case_card(case, broker.StaffContext(ZUTPHEN, now))
    assert_plain_and_clean(card)
    calls = render_reply(card, chat_id=9, message_id=None, tr=TR, language=language)
    return "".join(str(call.payload["text"]) for call in calls)  # a long card comes in parts


IDEA_OK = "Drie bankjes bij de speeltuin, zodat ouderen rusten."


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text, hostile_text, hostile_text)
def test_the_card_shows_the_residents_cleaned_text_verbatim(title: str, idea: str, own: str) -> None:
    chat = Chat()
    answer_until(chat, "idea")
    chat.text(idea)
    cleaned_idea = clean_text(idea, keep_newlines=True)
    expected_idea = cleaned_idea if chat.step == "check" else IDEA_OK
    if chat.step == "idea":
        chat.text(expected_idea)
    if chat.step == "check":
        chat.press("Other title")
    chat.text(title)
    expected_title = clean_text(title, keep_newlines=False) if chat.step == "theme" else "Bankjes in het park"
    if chat.step == "title":
        chat.text("Bankjes in het park")
    answer_until(chat, "own")
    chat.text(own)
    expected_own = clean_text(own, keep_newlines=True) if chat.step in ("neighbours", "needs") else None
    if chat.step == "own":
        chat.press("Skip")
    answer_until(chat, "confirm")
    chat.press("I agree")
    case = case_from(chat)
    assert (case.title, case.description, case.own_contribution) == (
        expected_title,
        expected_idea,
        expected_own,
    )
    for language in ("nl", "en"):
        text = card_text(case, language)
        assert expected_title in text and expected_idea in text
        if expected_own:
            assert expected_own in text


# --- end to end: the card a broker gets over Telegram -------------------------------------------------

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TITLE = "\u202e<b>Tuin</b> *vet* _[x](https://evil.example)_\u202c"
IDEA = (
    "\u2067שלום\u2069 مرحبا — *vet* _schuin_ [link](https://evil.example) "
    '<a href="tg://user?id=1">klik</a> `code` ~x~ ||y|| > # + - = | { } . !\n\n\u202eTweede regel'
)
OWN = "<b>Wij</b> verven \u202ede\u202c bankjes & <i>meer</i>"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.mark.timeout(60)
async def test_a_broker_sees_markup_and_right_to_left_text_as_typed_without_overrides(
    fake: FakeBotApi, database_url: str
) -> None:
    await add_staff(database_url, 2001, "Bea Bakker")
    bea = fake.user(2001, "Bea", language_code="en")
    anna = fake.user(1001, "Anna", language_code="en")
    async with running_bot(fake, database_url, clock=lambda: NOW):
        await say(bea, "/start", "What do you want to do?")
        await say(anna, "/nieuw", "What is your idea?")
        await anna.send_sticker()
        await anna.wait_for_message(containing("cannot use that here"))
        await say(anna, IDEA, "Is that right?")
        await press(anna, "✏️ Other title", "What is the title")
        await say(anna, TITLE, "Which theme")
        await press(anna, "Greenery", "In which neighbourhood")
        await press(anna, "Waterkwartier", "What can you do yourself")
        await say(anna, OWN, "How many neighbours")
        await anna.send_document()
        await anna.wait_for_message(containing("cannot use that here"))
        await say(anna, "12", "What do you need?")
        await anna.press_button("▫️ A place")
        await press(anna, "Done ✔", "photo")
        await press(anna, "No photo", "phone number or e-mail")
        await press(anna, "Only via Telegram", "What name")
        await say(anna, "Anna", "Please check your initiative")
        await press(anna, "✔ I agree, send my idea", "Your reference is")
        card = await bea.wait_for_message(containing("What do they want?"))
    text = card.text or ""
    for raw, keep in ((TITLE, False), (IDEA, True), (OWN, True)):
        assert clean_text(raw, keep_newlines=keep) in text
    assert not BIDI_RE.search(text)
    assert "<b>Tuin</b>" in text and "[link](https://evil.example)" in text
    # Telegram still finds links and /commands in plain text itself, but nothing typed becomes formatting.
    kinds = {entity["type"] for entity in card.raw.get("entities", [])}
    assert kinds <= {"url", "bot_command", "email", "phone_number", "hashtag", "mention", "cashtag"}, kinds
    for call in fake.calls():
        assert "parse_mode" not in call.params, call


# --- raw Updates from Telegram, through the real dispatcher, on SQLite and PostgreSQL -------------------

APOLOGY = t("Sorry, something went wrong on our side. Your earlier answers are saved. Please try again.")
APOLOGIES = {Translator(tuple(LANGUAGES)).render(APOLOGY, language) for language in LANGUAGES}
# Surrogates (from JSON escapes like "\\ud800") and NUL are what PostgreSQL's text refuses.
nasty_char = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\u202e", "\ufeff", "\u0085", "\U000e0041"]),
)
nasty_text = st.one_of(
    st.text(nasty_char, max_size=80),
    st.text(nasty_char, min_size=1, max_size=8).map(lambda s: (s * 5000)[:5000]),  # over every limit
    st.sampled_from(["", " ", "\x00", "INI-2026-0001\x00", "a\udc80b"]),
)
nasty_language = st.one_of(
    st.none(),
    nasty_text,
    st.sampled_from(
        ["en", "nl", "EN-gb", "pt-br", "zh-hans-cn", "x" * 17, "en\x00", "nl-" + "x" * 40, "../"]
    ),
)
telegram_id = st.integers(1, 2**52)


@st.composite
def hostile_updates(draw: st.DrawFn) -> dict[str, object]:
    """An Update as Telegram's JSON, with hostile text in every string a person can choose."""
    user: dict[str, object] = {"id": draw(telegram_id), "is_bot": False, "first_name": draw(nasty_text)}
    for key, value in (
        ("last_name", nasty_text),
        ("username", nasty_text),
        ("language_code", nasty_language),
    ):
        if draw(st.booleans()):
            user[key] = draw(value)
    chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    message: dict[str, object] = {"message_id": draw(st.integers(1, 2**31)), "date": 1764000000, "chat": chat}
    message["from"] = user
    kind = draw(
        st.sampled_from(["text", "command", "case", "caption", "contact", "location", "edited", "button"])
    )
    if kind == "button":
        query = {"id": draw(nasty_text), "from": user, "chat_instance": "1", "data": draw(nasty_text)}
        if draw(st.booleans()):
            query["message"] = {**message, "text": "?"}
        return {"update_id": 1, "callback_query": query}
    if kind in ("text", "edited"):
        message["text"] = draw(nasty_text) or "x"
    elif kind == "command":
        message["text"] = "/" + draw(st.sampled_from(["start", "nieuw", "taal", "zaak", "x\x00"])) + " "
        message["text"] += draw(nasty_text)
    elif kind == "case":
        message["text"] = "/zaak " + draw(st.sampled_from(["INI-2026-0001", "X"])) + draw(nasty_text)
    elif kind == "caption":
        file_id = draw(st.one_of(st.just("AgACAgQAAxkBAAI"), nasty_text.filter(bool)))
        message["photo"] = [
            {
                "file_id": file_id,
                "file_unique_id": draw(nasty_text) or "u",
                "width": 90,
                "height": 90,
                "file_size": draw(st.integers(0, 2**62)),
            }
        ]
        message["caption"] = draw(nasty_text)
    elif kind == "contact":
        message["contact"] = {
            "phone_number": draw(nasty_text),
            "first_name": draw(nasty_text),
            "last_name": draw(nasty_text),
            "user_id": draw(telegram_id),
            "vcard": draw(nasty_text),
        }
    elif kind == "location":
        message["location"] = {"latitude": draw(st.floats()), "longitude": draw(st.floats())}
    return {"update_id": 1, ("edited_message" if kind == "edited" else "message"): message}


@pytest_asyncio.fixture
async def live_dispatcher(engine: AsyncEngine) -> Dispatcher:
    return Dispatcher(session_factory(engine), ZUTPHEN, Translator(tuple(LANGUAGES)), lambda: NOW)


@pytest.mark.timeout(120)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(hostile_updates(), min_size=1, max_size=3))
async def test_a_person_sending_anything_gets_a_normal_answer_never_the_apology(
    live_dispatcher: Dispatcher, updates: list[dict[str, object]]
) -> None:
    for raw in updates:
        raw["update_id"] = next(UPDATE_IDS)
        # Telegram's JSON as the webhook and polling decode it (lone surrogates survive json.loads).
        update = Update.de_json(json.loads(json.dumps(raw)), None)
        event = to_event(update)
        assert event is not None
        handled = await live_dispatcher.handle(event, update.update_id)
        texts = [str(row.payload.get("text", "")) for row in handled.outbox]
        assert not APOLOGIES & set(texts), raw
        assert handled.outbox or event.kind is EventKind.BUTTON, raw


UPDATE_IDS = itertools.count(1)


@pytest.mark.parametrize(
    "user",
    [
        {"language_code": "x" * 17},
        {"language_code": "nl\x00"},
        {"first_name": "An\x00na"},
        {"first_name": "An\ud800na"},
        {"first_name": "A" * 300},
    ],
)
async def test_a_name_or_language_the_database_cannot_hold_does_not_block_the_person(
    live_dispatcher: Dispatcher, user: dict[str, object]
) -> None:
    sender = {"id": 4242, "is_bot": False, "first_name": "Anna", **user}
    chat = {"id": 4242, "type": "private"}
    for update_id, text in enumerate(["/start", "/zaak X\x00", "/help"], start=1):
        raw = {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1764000000,
                "chat": chat,
                "from": sender,
                "text": text,
            },
        }
        event = to_event(Update.de_json(raw, None))
        assert event is not None
        handled = await live_dispatcher.handle(event, update_id)
        texts = [str(row.payload.get("text", "")) for row in handled.outbox]
        assert texts and not APOLOGIES & set(texts), (text, texts)
