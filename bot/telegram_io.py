"""Telegram at the edge: an Update becomes a plain ``Event``; a ``Reply`` becomes Bot API calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.constants import ChatType

from bot.i18n import Translator
from bot.inbound import fits_int64, storable
from flows.events import Event, EventKind, Location, Notice, Photo, Reply

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
NOTICE_LIMIT = 200


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
        "private_chat": message.chat.type == ChatType.PRIVATE,
    }
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
    return Event(kind=EventKind.UNSUPPORTED, **base)


@dataclass(frozen=True)
class ApiCall:
    """One Bot API call, as stored in the outbox."""

    method: str
    payload: dict[str, Any]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_reply(
    reply: Reply, *, chat_id: int, message_id: int | None, tr: Translator, language: str
) -> list[ApiCall]:
    """Translate a reply and turn it into the Bot API calls that show it."""
    parts = [tr.render(reply.text, language), *(tr.render(m, language) for m in reply.extra)]
    text = _clip("\n\n".join(p for p in parts if p), MESSAGE_LIMIT)
    markup: dict[str, Any] | None = None
    if reply.buttons:
        markup = {
            "inline_keyboard": [
                [{"text": _clip(tr.render(b.label, language), 64), "callback_data": b.data} for b in row]
                for row in reply.buttons
            ]
        }
    if reply.edit and message_id is not None:
        target = {"chat_id": chat_id, "message_id": message_id}
        if reply.markup_only:
            return [
                ApiCall(
                    "editMessageReplyMarkup", {**target, "reply_markup": markup or {"inline_keyboard": []}}
                )
            ]
        payload = {**target, "text": text}
        if markup is not None:
            payload["reply_markup"] = markup
        return [ApiCall("editMessageText", payload)]
    with_markup = {"reply_markup": markup} if markup is not None else {}
    if reply.photo_file_id is not None:
        if len(text) <= CAPTION_LIMIT:
            return [
                ApiCall(
                    "sendPhoto",
                    {"chat_id": chat_id, "photo": reply.photo_file_id, "caption": text, **with_markup},
                )
            ]
        return [
            ApiCall("sendPhoto", {"chat_id": chat_id, "photo": reply.photo_file_id}),
            ApiCall("sendMessage", {"chat_id": chat_id, "text": text, **with_markup}),
        ]
    return [ApiCall("sendMessage", {"chat_id": chat_id, "text": text, **with_markup})]


def render_notice(notice: Notice | None, *, query_id: str, tr: Translator, language: str) -> ApiCall:
    payload: dict[str, Any] = {"callback_query_id": query_id}
    if notice is not None and notice.text is not None:
        payload["text"] = _clip(tr.render(notice.text, language), NOTICE_LIMIT)
    return ApiCall("answerCallbackQuery", payload)
