"""Telegram at the edge: an Update becomes a plain ``Event``; a ``Reply`` becomes Bot API calls."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.constants import ChatType

from bot.i18n import Translator
from bot.inbound import fits_int64, storable
from flows.events import Contact, Document, Event, EventKind, KeyButton, Location, Media, Notice, Photo, Reply
from flows.splitting import MESSAGE_LIMIT, shorten, split_text, utf16_len

CAPTION_LIMIT = 1024
NOTICE_LIMIT = 200  # a toast (answerCallbackQuery) cannot be split: cut at a word, with “…”
BUTTON_LIMIT = 64  # a button label neither


def to_event(update: Update) -> Event | None:
    """The Event an Update stands for, every field cleaned and bounded (``bot.inbound``), or None for
    updates the bot ignores (channel posts, polls …, ids that cannot be Telegram's)."""
    if not fits_int64(update.update_id):
        return None
    event = _read(update)
    return storable(event) if event is not None else None


def _read(update: Update) -> Event | None:
    if update.callback_query is not None:
        query = update.callback_query
        message = query.message
        chat = message.chat if message is not None else None
        return Event(
            kind=EventKind.BUTTON,
            user_id=query.from_user.id,
            chat_id=chat.id if chat is not None else query.from_user.id,
            button=query.data or "",
            language_code=query.from_user.language_code,
            first_name=query.from_user.first_name,
            private_chat=chat is None or chat.type == ChatType.PRIVATE,
            message_id=message.message_id if message is not None else None,
            callback_query_id=query.id,
        )
    edited = update.edited_message
    if edited is not None and edited.from_user is not None:
        return Event(
            kind=EventKind.EDITED,
            user_id=edited.from_user.id,
            chat_id=edited.chat.id,
            language_code=edited.from_user.language_code,
            first_name=edited.from_user.first_name,
            private_chat=edited.chat.type == ChatType.PRIVATE,
        )
    message = update.message
    if message is None or message.from_user is None:
        return None
    user = message.from_user
    base: dict[str, Any] = {
        "user_id": user.id,
        "chat_id": message.chat.id,
        "language_code": user.language_code,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "private_chat": message.chat.type == ChatType.PRIVATE,
    }
    answered = message.reply_to_message
    if answered is not None and answered.from_user is not None and answered.from_user.is_bot:
        base["reply_to_message_id"] = answered.message_id
    if message.text is not None:
        text = message.text
        if text.startswith("/"):
            head, _, args = text.partition(" ")
            name = head[1:].split("@", 1)[0].lower()
            return Event(kind=EventKind.COMMAND, command=name, command_args=args.strip(), text=text, **base)
        return Event(kind=EventKind.TEXT, text=text, **base)
    if message.location is not None:
        loc = Location(message.location.latitude, message.location.longitude)
        return Event(kind=EventKind.LOCATION, location=loc, **base)
    if message.photo:
        biggest = max(message.photo, key=lambda p: p.width * p.height)
        photo = Photo(
            biggest.file_id, biggest.file_unique_id, biggest.width, biggest.height, biggest.file_size
        )
        return Event(kind=EventKind.PHOTO, photo=photo, text=message.caption, **base)
    if message.contact is not None:
        card = message.contact
        contact = Contact(card.phone_number, card.first_name or "", card.last_name or "", card.user_id)
        return Event(kind=EventKind.CONTACT, contact=contact, **base)
    if message.voice is not None:
        voice = message.voice
        seconds = voice.duration
        if isinstance(seconds, timedelta):  # PTB gives a timedelta in newer versions
            seconds = int(seconds.total_seconds())
        media = Media(
            voice.file_id, voice.file_unique_id, seconds, voice.mime_type, file_size=voice.file_size
        )
        return Event(kind=EventKind.VOICE, media=media, text=message.caption, **base)
    if message.document is not None:
        doc = message.document
        media = Media(
            doc.file_id,
            doc.file_unique_id,
            mime_type=doc.mime_type,
            file_name=doc.file_name,
            file_size=doc.file_size,
        )
        return Event(kind=EventKind.DOCUMENT, media=media, text=message.caption, **base)
    return Event(kind=EventKind.UNSUPPORTED, **base)


@dataclass(frozen=True)
class ApiCall:
    """One Bot API call, as stored in the outbox."""

    method: str
    payload: dict[str, Any]


def render_reply(
    reply: Reply, *, chat_id: int, message_id: int | None, tr: Translator, language: str
) -> list[ApiCall]:
    """Translate a reply and turn it into the Bot API calls that show it.

    A text longer than one message goes out in several (``flows.splitting``), the buttons under the
    last; an edit changes the pressed message to the first part and sends the rest after it.
    """
    parts = [tr.render(reply.text, language), *(tr.render(m, language) for m in reply.extra)]
    text = "\n\n".join(p for p in parts if p)
    markup: dict[str, Any] | None = None
    keyboard_after: ApiCall | None = None
    if reply.keyboard and reply.buttons:
        # One message carries one kind of markup: the keyboard goes with a short second message.
        hint = tr.render(reply.keyboard_hint, language) if reply.keyboard_hint is not None else "⌨️"
        keyboard_after = ApiCall(
            "sendMessage",
            {"chat_id": chat_id, "text": hint, "reply_markup": _keyboard(reply, tr=tr, language=language)},
        )
        reply = replace(reply, keyboard=())
    if reply.keyboard:
        markup = _keyboard(reply, tr=tr, language=language)
    elif reply.remove_keyboard:
        markup = {"remove_keyboard": True}
    elif reply.buttons:
        markup = {
            "inline_keyboard": [
                [
                    {"text": shorten(tr.render(b.label, language), BUTTON_LIMIT), "callback_data": b.data}
                    for b in row
                ]
                for row in reply.buttons
            ]
        }
    if reply.edit and message_id is not None and reply.markup_only:
        return [
            ApiCall(
                "editMessageReplyMarkup",
                {
                    "chat_id": chat_id,
                    "message_id": message_id,
                    "reply_markup": markup or {"inline_keyboard": []},
                },
            )
        ]
    # A document cannot be put into an existing message: it is always sent as a new one.
    editing = reply.edit and message_id is not None and reply.document is None
    calls: list[ApiCall] = []
    if reply.document is not None:
        upload: dict[str, Any] = {"chat_id": chat_id, "document": document_payload(reply.document)}
        if utf16_len(text) <= CAPTION_LIMIT:
            if text:
                upload["caption"] = text
            if markup is not None:
                upload["reply_markup"] = markup
            return [ApiCall("sendDocument", upload)]
        calls.append(ApiCall("sendDocument", upload))
    elif (media := _media_of(reply)) is not None and not editing:
        method, field, file_id = media
        caption = {"caption": text, **({"reply_markup": markup} if markup is not None else {})}
        if utf16_len(text) <= CAPTION_LIMIT:
            return [ApiCall(method, {"chat_id": chat_id, field: file_id, **caption})]
        calls.append(ApiCall(method, {"chat_id": chat_id, field: file_id}))
    texts = message_texts(text)
    for i, part in enumerate(texts):
        payload: dict[str, Any] = {"chat_id": chat_id, "text": part}
        if i == len(texts) - 1 and markup is not None:
            payload["reply_markup"] = markup
        if i == 0 and editing:
            calls.append(ApiCall("editMessageText", {**payload, "message_id": message_id}))
        else:
            calls.append(ApiCall("sendMessage", payload))
    if keyboard_after is not None:
        calls.append(keyboard_after)
    return calls


def _media_of(reply: Reply) -> tuple[str, str, str] | None:
    """The Bot API method, its field and the file id of a reply's photo, voice note or document."""
    if reply.photo_file_id is not None:
        return "sendPhoto", "photo", reply.photo_file_id
    if reply.voice_file_id is not None:
        return "sendVoice", "voice", reply.voice_file_id
    if reply.document_file_id is not None:
        return "sendDocument", "document", reply.document_file_id
    return None


def _keyboard(reply: Reply, *, tr: Translator, language: str) -> dict[str, Any]:
    rows = [[_key_button(b, tr=tr, language=language) for b in row] for row in reply.keyboard]
    return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": True}


def _key_button(button: KeyButton, *, tr: Translator, language: str) -> dict[str, Any]:
    key: dict[str, Any] = {"text": shorten(tr.render(button.label, language), BUTTON_LIMIT)}
    if button.request == "contact":
        key["request_contact"] = True
    elif button.request == "location":
        key["request_location"] = True
    return key


def document_payload(document: Document) -> dict[str, str]:
    """How a document is kept in an outbox payload (the transport uploads it as a file): as text, so the
    payload can be searched and scrubbed like a message, and cleared once sent (``storage.outbox``)."""
    return {"file_name": document.file_name, "mime_type": document.mime_type, "content": document.content}


def message_texts(text: str) -> list[str]:
    """The texts of the messages that show ``text``: parts of at most one message each; parts that
    are only whitespace are left out, as Telegram would refuse them (and they show nothing)."""
    parts = [part for part in split_text(text, MESSAGE_LIMIT) if part.strip()]
    return parts or [text]


def render_notice(notice: Notice | None, *, query_id: str, tr: Translator, language: str) -> ApiCall:
    payload: dict[str, Any] = {"callback_query_id": query_id}
    if notice is not None and notice.text is not None:
        payload["text"] = shorten(tr.render(notice.text, language), NOTICE_LIMIT)
    return ApiCall("answerCallbackQuery", payload)
