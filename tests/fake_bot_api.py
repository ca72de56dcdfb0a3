"""An in-memory fake of the Telegram Bot API for end-to-end tests.

It serves ``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` on 127.0.0.1 with the real
API's JSON shapes, parameter parsing and error texts (taken from tdlib/telegram-bot-api), and
lets tests play users, inject failures and watch what the bot sends.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import copy
import functools
import html
import itertools
import json
import re
import socket
import struct
import time
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import aiohttp
import pytest_asyncio
from aiohttp import web

__all__ = [
    "ApiCall",
    "BotApiError",
    "CallbackAnswer",
    "FakeBotApi",
    "FakeGroup",
    "FakeUser",
    "MessageVersion",
    "SentMessage",
    "Webhook",
    "fake_bot_api",
    "tiny_jpeg",
]

JSONDict = dict[str, Any]
Buttons = list[list[tuple[str, str | None]]]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_CALLBACK_DATA_BYTES = 64
LONG_POLL_MAX_TIMEOUT = 50
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MAX_UPLOAD_SIZE = 50 * 1024 * 1024  # what a bot may upload with sendDocument and the like

# Update types Telegram sends when allowed_updates is empty or was never set.
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
ALL_UPDATE_TYPES = DEFAULT_UPDATE_TYPES | {"chat_member", "message_reaction", "message_reaction_count"}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "record_audio",
        "upload_audio",
        "upload_document",
        "choose_sticker",
        "find_location",
        "pick_up_location",
        "record_video_note",
        "upload_video_note",
        "cancel",
    }
)

_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_WEBHOOK_PORTS = (80, 88, 443, 8443)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]*")
_BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)


# --------------------------------------------------------------------------------------------
# Errors and request parameters
# --------------------------------------------------------------------------------------------


class BotApiError(Exception):
    """An error answer of the Bot API: HTTP status, ``description`` and optional ``parameters``."""

    def __init__(self, error_code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """The JSON body Telegram answers with."""
        body: JSONDict = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(text: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {text}")


def _lower_first(text: str) -> str:
    # Telegram lowercases the first letter of a message unless it looks like an ERROR_CODE.
    if len(text) >= 2 and (text[1] == "_" or text[1].isupper()):
        return text
    return text[:1].lower() + text[1:]


@dataclass(frozen=True)
class _Upload:
    filename: str | None
    content_type: str | None
    data: bytes


class _Args:
    """Request parameters the way the Bot API server sees them: every value is a string."""

    def __init__(self, values: dict[str, str], files: dict[str, _Upload]) -> None:
        self.values = values
        self.files = files

    def raw(self, name: str) -> str:
        return self.values.get(name, "")

    def has(self, name: str) -> bool:
        return self.raw(name).strip() != ""

    def int_(self, name: str, default: int = 0) -> int:
        value = self.raw(name).strip()
        if not value:
            return default
        if not re.fullmatch(r"[+-]?\d+", value):
            raise _bad_request(f'parameter "{name}" must be an Integer, got {value!r}')
        return int(value)

    def float_(self, name: str) -> float:
        value = self.raw(name).strip()
        if not value:
            raise _bad_request(f"{name} is empty")
        try:
            return float(value)
        except ValueError:
            raise _bad_request(f'parameter "{name}" must be a Float number, got {value!r}') from None

    def bool_(self, name: str) -> bool:
        value = self.raw(name).strip().lower()
        if value in ("", "false", "0", "no"):
            return False
        if value in ("true", "1", "yes"):
            return True
        raise _bad_request(f'parameter "{name}" must be a Boolean, got {value!r}')

    def json_(self, name: str, error: str) -> Any:
        value = self.raw(name)
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _bad_request(error) from None


async def _read_args(request: web.Request) -> _Args:
    values: dict[str, str] = dict(request.query)
    files: dict[str, _Upload] = {}
    if not request.can_read_body:
        return _Args(values, files)
    if request.content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise _bad_request("can't parse JSON encoded request body") from None
            if not isinstance(body, dict):
                raise _bad_request("JSON encoded request body must be an Object")
            for key, value in body.items():
                if value is not None:
                    values[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = _Upload(value.filename, value.content_type, value.file.read())
            else:
                values[key] = str(value)
    return _Args(values, files)


_INT_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "user_id",
        "cache_time",
        "reply_to_message_id",
        "message_thread_id",
        "from_chat_id",
        "duration",
        "width",
        "height",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "has_spoiler",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "show_caption_above_media",
    }
)
_FLOAT_PARAMS = frozenset({"latitude", "longitude", "horizontal_accuracy"})
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "media",
    }
)


def _decode_param(name: str, value: str) -> Any:
    """Turn a raw parameter into the Python value the bot meant, for ``calls()``."""
    stripped = value.strip()
    try:
        if name in _INT_PARAMS and re.fullmatch(r"[+-]?\d+", stripped):
            return int(stripped)
        if name in _BOOL_PARAMS and stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
        if name in _FLOAT_PARAMS:
            return float(stripped)
        if name in _JSON_PARAMS:
            return json.loads(value)
    except ValueError:
        pass
    return value


# --------------------------------------------------------------------------------------------
# Formatted text: parse modes, entities, stripping
# --------------------------------------------------------------------------------------------


class _EntityError(Exception):
    pass


@dataclass
class _Span:
    type: str
    start: int  # code point offsets into the plain text
    end: int
    extra: JSONDict = field(default_factory=dict)


@dataclass
class _Open:
    type: str
    start: int
    byte_offset: int
    extra: JSONDict = field(default_factory=dict)
    tag: str = ""


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's entity offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z_][a-zA-Z0-9_-]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*>"
)
_HTML_ATTR = re.compile(r"([a-zA-Z_][a-zA-Z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")
_HTML_END_TAG = re.compile(r"</\s*([a-zA-Z][a-zA-Z0-9-]*)?\s*>")
_HTML_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")


def _parse_html(text: str) -> tuple[str, list[_Span]]:
    out: list[str] = []
    spans: list[_Span] = []
    stack: list[_Open] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            match = _HTML_CHAR_REF.match(text, i)
            decoded = html.unescape(match.group(0)) if match else "&"
            if match and decoded != match.group(0):
                out.append(decoded)
                i = match.end()
            else:
                out.append("&")
                i += 1
            continue
        if char != "<":
            out.append(char)
            i += 1
            continue
        offset = _byte_offset(text, i)
        if text.startswith("</", i):
            end_match = _HTML_END_TAG.match(text, i)
            if end_match is None:
                raise _EntityError(f"Unclosed end tag at byte offset {offset}")
            if not stack:
                raise _EntityError(f"Unexpected end tag at byte offset {offset}")
            name = (end_match.group(1) or "").lower()
            opened = stack.pop()
            if name and name != opened.tag:
                expected, found = f"</{opened.tag}>", f"</{name}>"
                raise _EntityError(
                    f'Unmatched end tag at byte offset {offset}, expected "{expected}", found "{found}"'
                )
            _close_html(opened, len(out), stack, spans, "".join(out[opened.start :]))
            i = end_match.end()
            continue
        start_match = _HTML_START_TAG.match(text, i)
        if start_match is None:
            name_match = re.match(r"<([a-zA-Z][a-zA-Z0-9-]*)", text[i:])
            if name_match and name_match.group(1).lower() not in _HTML_TAGS:
                raise _EntityError(
                    f'Unsupported start tag "{name_match.group(1).lower()}" at byte offset {offset}'
                )
            raise _EntityError(f"Unclosed start tag at byte offset {offset}")
        name = start_match.group(1).lower()
        if name not in _HTML_TAGS:
            raise _EntityError(f'Unsupported start tag "{name}" at byte offset {offset}')
        attributes = {
            key.lower(): html.unescape(value.strip("\"'")) if value else ""
            for key, value in _HTML_ATTR.findall(start_match.group(2))
        }
        entity_type = _HTML_TAGS[name]
        extra: JSONDict = {}
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise _EntityError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        if name == "a":
            extra["url"] = attributes.get("href", "")
        elif name == "code" and attributes.get("class", "").startswith("language-"):
            extra["language"] = attributes["class"].removeprefix("language-")
        elif name == "blockquote" and "expandable" in attributes:
            entity_type = "expandable_blockquote"
        elif name == "tg-emoji":
            extra["custom_emoji_id"] = attributes.get("emoji-id", "")
        stack.append(_Open(entity_type, len(out), offset, extra, tag=name))
        i = start_match.end()
    if stack:
        raise _EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return "".join(out), spans


def _close_html(opened: _Open, end: int, stack: list[_Open], spans: list[_Span], inner: str) -> None:
    if opened.type == "code" and "language" in opened.extra and stack and stack[-1].type == "pre":
        # <pre><code class="language-x"> is one pre entity with a language.
        stack[-1].extra["language"] = opened.extra["language"]
        return
    extra = dict(opened.extra)
    if opened.type == "code":
        extra.pop("language", None)
    if opened.type == "text_link" and not extra.get("url"):
        return
    spans.append(_Span(opened.type, opened.start, end, extra))


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "blockquote": "BlockQuote",
}
_MDV2_CLOSERS = {
    "bold": "*",
    "italic": "_",
    "underline": "__",
    "strikethrough": "~",
    "spoiler": "||",
    "code": "`",
    "pre": "```",
    "text_link": "]",
}


def _escapable(text: str, i: int) -> bool:
    return text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126


def _parse_markdown_v2(text: str) -> tuple[str, list[_Span]]:
    out: list[str] = []
    spans: list[_Span] = []
    stack: list[_Open] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        top = stack[-1].type if stack else None
        if _escapable(text, i):
            out.append(text[i + 1])
            i += 2
            continue
        if top in ("code", "pre") and not text.startswith(_MDV2_CLOSERS[top], i):
            out.append(char)
            i += 1
            continue
        if char == "\n":
            out.append(char)
            i += 1
            in_quote = any(opened.type == "blockquote" for opened in stack)
            if in_quote and not text.startswith(">", i):
                if stack[-1].type != "blockquote":
                    raise _EntityError(
                        f"Can't find end of {_MDV2_NAMES[stack[-1].type]} entity "
                        f"at byte offset {stack[-1].byte_offset}"
                    )
                opened = stack.pop()
                spans.append(_Span("blockquote", opened.start, len(out) - 1))
            continue
        if char not in _MDV2_RESERVED:
            out.append(char)
            i += 1
            continue
        if top is not None and top in _MDV2_CLOSERS and _mdv2_closes(top, text, i):
            opened = stack.pop()
            i += len(_MDV2_CLOSERS[top])
            extra = dict(opened.extra)
            if top == "text_link":
                if i < n and text[i] == "(":
                    url, i = _mdv2_url(text, i + 1)
                else:
                    url = "".join(out[opened.start :])
                extra["url"] = url
            spans.append(_Span(top, opened.start, len(out), extra))
            continue
        offset = _byte_offset(text, i)
        if char == ">" and (i == 0 or text[i - 1] == "\n"):
            if not any(opened.type == "blockquote" for opened in stack):
                stack.append(_Open("blockquote", len(out), offset))
            i += 1
            continue
        if char == "_" and text.startswith("__", i):
            entity_type, step = "underline", 2
        elif char == "_":
            entity_type, step = "italic", 1
        elif char == "*":
            entity_type, step = "bold", 1
        elif char == "~":
            entity_type, step = "strikethrough", 1
        elif char == "|" and text.startswith("||", i):
            entity_type, step = "spoiler", 2
        elif char == "[":
            entity_type, step = "text_link", 1
        elif char == "`" and text.startswith("```", i):
            entity_type, step = "pre", 3
            newline = text.find("\n", i + 3)
            language = text[i + 3 : newline] if newline != -1 else ""
            extra: JSONDict = {}
            if newline != -1 and language and not re.search(r"[\s`]", language):
                extra["language"] = language
                step = newline + 1 - i
            elif newline == i + 3:
                step = 4
            stack.append(_Open(entity_type, len(out), offset, extra))
            i += step
            continue
        elif char == "`":
            entity_type, step = "code", 1
        else:
            raise _EntityError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        stack.append(_Open(entity_type, len(out), offset))
        i += step
    if stack and stack[-1].type == "blockquote":
        opened = stack.pop()
        spans.append(_Span("blockquote", opened.start, len(out)))
    if stack:
        raise _EntityError(
            f"Can't find end of {_MDV2_NAMES[stack[-1].type]} entity at byte offset {stack[-1].byte_offset}"
        )
    return "".join(out), spans


def _mdv2_closes(entity_type: str, text: str, i: int) -> bool:
    if entity_type == "italic":
        return text[i] == "_" and not text.startswith("__", i)
    return text.startswith(_MDV2_CLOSERS[entity_type], i)


def _mdv2_url(text: str, i: int) -> tuple[str, int]:
    start = i
    url: list[str] = []
    while i < len(text) and text[i] != ")":
        if _escapable(text, i):
            url.append(text[i + 1])
            i += 2
        else:
            url.append(text[i])
            i += 1
    if i >= len(text):
        raise _EntityError(f"Can't find end of a url at byte offset {_byte_offset(text, start)}")
    return "".join(url), i + 1


def _parse_markdown(text: str) -> tuple[str, list[_Span]]:
    out: list[str] = []
    spans: list[_Span] = []
    i = 0
    kinds = {"_": "italic", "*": "bold", "`": "code"}
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            i += 1
            continue
        missing_end = _EntityError(
            f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
        )
        if char == "[":
            close = text.find("]", i + 1)
            if close == -1:
                raise missing_end
            inner = text[i + 1 : close]
            i = close + 1
            if i < len(text) and text[i] == "(":
                end = text.find(")", i + 1)
                if end == -1:
                    raise missing_end
                spans.append(_Span("text_link", len(out), len(out) + len(inner), {"url": text[i + 1 : end]}))
                i = end + 1
            out.extend(inner)
            continue
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end == -1:
                raise missing_end
            inner = text[i + 3 : end]
            extra: JSONDict = {}
            first_line, newline, rest = inner.partition("\n")
            if newline and first_line and not re.search(r"\s", first_line):
                extra["language"] = first_line
                inner = rest
            spans.append(_Span("pre", len(out), len(out) + len(inner), extra))
            out.extend(inner)
            i = end + 3
            continue
        end = text.find(char, i + 1)
        if end == -1:
            raise missing_end
        inner = text[i + 1 : end]
        spans.append(_Span(kinds[char], len(out), len(out) + len(inner)))
        out.extend(inner)
        i = end + 1
    return "".join(out), spans


_AUTO_ENTITIES = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w@])")),
    ("url", re.compile(r"(?<![\w@/.])(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]'}]")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{4,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")),
)
_NO_AUTO_INSIDE = frozenset({"code", "pre", "text_link", "url", "email", "mention", "bot_command", "hashtag"})


def _auto_spans(text: str, spans: list[_Span]) -> list[_Span]:
    """Entities Telegram detects by itself: commands, e-mail addresses, links, mentions, hashtags."""
    taken = [(span.start, span.end) for span in spans if span.type in _NO_AUTO_INSIDE]
    found: list[_Span] = []
    for entity_type, pattern in _AUTO_ENTITIES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < other_end and other_start < end for other_start, other_end in taken):
                continue
            taken.append((start, end))
            found.append(_Span(entity_type, start, end))
    return found


def _spans_from_entities(text: str, raw: Any) -> list[_Span]:
    if not isinstance(raw, list):
        raise _bad_request("can't parse entities JSON object")
    boundaries = [0]
    for char in text:
        boundaries.append(boundaries[-1] + (2 if ord(char) > 0xFFFF else 1))
    spans = []
    for entity in raw:
        if not isinstance(entity, dict):
            raise _bad_request("can't parse MessageEntity: expected an Object")
        kind, offset, length = entity.get("type"), entity.get("offset"), entity.get("length")
        if not isinstance(kind, str) or not isinstance(offset, int) or not isinstance(length, int):
            raise _bad_request(
                'can\'t parse MessageEntity: fields "type", "offset" and "length" are required'
            )
        start = bisect.bisect_left(boundaries, offset)
        end = bisect.bisect_left(boundaries, offset + length)
        extra = {key: value for key, value in entity.items() if key not in ("type", "offset", "length")}
        spans.append(_Span(kind, start, end, extra))
    return spans


def _finish_text(text: str, spans: list[_Span]) -> tuple[str, list[JSONDict]]:
    """Strip surrounding whitespace like Telegram and express entities in UTF-16 code units."""
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    end = lead + len(stripped)
    moved = []
    for span in spans:
        start, stop = min(max(span.start, lead), end) - lead, min(max(span.end, lead), end) - lead
        if stop > start:
            moved.append(_Span(span.type, start, stop, span.extra))
    moved.extend(_auto_spans(stripped, moved))
    boundaries = [0]
    for char in stripped:
        boundaries.append(boundaries[-1] + (2 if ord(char) > 0xFFFF else 1))
    entities = [
        {
            "offset": boundaries[span.start],
            "length": boundaries[span.end] - boundaries[span.start],
            "type": span.type,
            **span.extra,
        }
        for span in moved
    ]
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return stripped, entities


def format_text(text: str, parse_mode: str = "", entities: Any = None) -> tuple[str, list[JSONDict]]:
    """Parse ``text`` like Telegram does: returns the plain text and its entities.

    Raises :class:`BotApiError` with Telegram's texts for unknown parse modes or bad markup.
    """
    mode = parse_mode.strip().lower()
    try:
        if mode in ("", "none"):
            plain, spans = text, ([] if entities is None else _spans_from_entities(text, entities))
        elif mode == "html":
            plain, spans = _parse_html(text)
        elif mode == "markdownv2":
            plain, spans = _parse_markdown_v2(text)
        elif mode == "markdown":
            plain, spans = _parse_markdown(text)
        else:
            raise _bad_request("unsupported parse_mode")
    except _EntityError as exc:
        raise _bad_request(f"can't parse entities: {exc}") from None
    return _finish_text(plain, spans)


# --------------------------------------------------------------------------------------------
# Reply markup
# --------------------------------------------------------------------------------------------


def _field(obj: Mapping[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    if name not in obj:
        if required:
            raise _EntityError(f'Can\'t find field "{name}"')
        return None
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        type_name = {str: "String", bool: "Boolean", int: "Integer", dict: "Object", list: "Array"}[kind]
        raise _EntityError(f'Field "{name}" must be of type {type_name}')
    return value


_INLINE_BUTTON_KINDS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_KEYBOARD_BUTTON_KINDS = (
    "request_contact",
    "request_location",
    "request_poll",
    "web_app",
    "request_users",
    "request_user",
    "request_chat",
)
_URL = re.compile(r"(?:(?:https?|tg)://[^\s]+|(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?:[/?#:][^\s]*)?)")


def _inline_button(button: Any) -> JSONDict:
    if not isinstance(button, dict):
        raise _EntityError("InlineKeyboardButton must be an Object")
    text = _field(button, "text", str, required=True)
    kinds = []
    for kind in _INLINE_BUTTON_KINDS:
        if kind in button and not (kind in ("url", "callback_data") and button[kind] == ""):
            kinds.append(kind)
    if not kinds:
        raise _EntityError("Text buttons are unallowed in the inline keyboard")
    if len(kinds) > 1:
        # Telegram silently uses the first of them; the fake refuses because that is always a bot bug.
        raise _EntityError(f"exactly one of the optional fields must be used, got {', '.join(kinds)}")
    kind = kinds[0]
    if kind in ("url", "callback_data", "switch_inline_query", "switch_inline_query_current_chat"):
        _field(button, kind, str)
    elif kind in ("web_app", "login_url", "switch_inline_query_chosen_chat", "copy_text"):
        _field(button, kind, dict)
    return {"text": text, kind: button[kind]}


def _keyboard_button(button: Any) -> JSONDict:
    if isinstance(button, str):
        return {"text": button}
    if not isinstance(button, dict):
        raise _EntityError("KeyboardButton must be a String or an Object")
    text = _field(button, "text", str, required=True)
    result: JSONDict = {"text": text}
    kinds = [kind for kind in _KEYBOARD_BUTTON_KINDS if button.get(kind) not in (None, False)]
    if len(kinds) > 1:
        raise _EntityError(f"exactly one of the optional fields must be used, got {', '.join(kinds)}")
    for kind in kinds:
        if kind in ("request_contact", "request_location"):
            _field(button, kind, bool)
        else:
            _field(button, kind, dict)
        result[kind] = button[kind]
    return result


def parse_reply_markup(raw: str, *, inline_only: bool = False) -> JSONDict | None:
    """Validate a ``reply_markup`` parameter like Telegram; returns it normalized, or None."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise _bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(value, dict):
        raise _bad_request("object expected as reply markup")
    markup: JSONDict | None = None
    try:
        keyboard = _field(value, "keyboard", list)
        inline_keyboard = _field(value, "inline_keyboard", list)
    except _EntityError as exc:
        raise _bad_request(_lower_first(str(exc))) from None
    if keyboard:
        rows = []
        for row in keyboard:
            if not isinstance(row, list):
                raise _bad_request('field "keyboard" must be an Array of Arrays')
            try:
                rows.append([_keyboard_button(button) for button in row])
            except _EntityError as exc:
                raise _bad_request(f"can't parse keyboard button: {exc}") from None
        markup = {"keyboard": rows}
        for option in ("is_persistent", "resize_keyboard", "one_time_keyboard", "selective"):
            if value.get(option):
                markup[option] = True
        if value.get("input_field_placeholder"):
            markup["input_field_placeholder"] = value["input_field_placeholder"]
    elif inline_keyboard:
        rows = []
        for row in inline_keyboard:
            if not isinstance(row, list):
                raise _bad_request(
                    'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
                )
            try:
                rows.append([_inline_button(button) for button in row])
            except _EntityError as exc:
                raise _bad_request(f"can't parse inline keyboard button: {exc}") from None
        markup = {"inline_keyboard": rows}
    elif value.get("remove_keyboard") or value.get("hide_keyboard"):
        markup = {"remove_keyboard": True}
        if value.get("selective"):
            markup["selective"] = True
    elif value.get("force_reply"):
        markup = {"force_reply": True}
        if value.get("input_field_placeholder"):
            markup["input_field_placeholder"] = value["input_field_placeholder"]
        if value.get("selective"):
            markup["selective"] = True
    if markup is None:
        return None
    if inline_only and "inline_keyboard" not in markup:
        raise _bad_request("inline keyboard expected")
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    buttons = [button for row in rows for button in row]
    if len(buttons) > 100:
        raise _bad_request("reply markup is too long")
    for button in buttons:
        if not button["text"]:
            raise _bad_request("BUTTON_TEXT_INVALID")
        data = button.get("callback_data")
        if data is not None and len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            raise _bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None and not _URL.fullmatch(url):
            raise _bad_request("BUTTON_URL_INVALID")
    return markup


def _buttons_of(markup: JSONDict | None) -> Buttons:
    if not markup or "inline_keyboard" not in markup:
        return []
    return [
        [(button["text"], button.get("callback_data")) for button in row] for row in markup["inline_keyboard"]
    ]


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def tiny_jpeg(width: int, height: int, comment: bytes = b"") -> bytes:
    """A valid baseline greyscale JPEG of the given size; ``comment`` makes each file unique."""

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    blocks = -(-width // 8) * -(-height // 8)
    # Every 8x8 block is "DC difference 0, end of block": two one-bit Huffman codes.
    bits = 2 * blocks
    scan = bytearray(bits // 8)
    if bits % 8:
        scan.append((1 << (8 - bits % 8)) - 1)
    one_code_table = b"\x01" + b"\x00" * 15 + b"\x00"
    return (
        b"\xff\xd8"
        + (segment(0xFE, comment[:60000]) if comment else b"")
        + segment(0xDB, b"\x00" + b"\x01" * 64)
        + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + segment(0xC4, b"\x00" + one_code_table)
        + segment(0xC4, b"\x10" + one_code_table)
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + bytes(scan)
        + b"\xff\xd9"
    )


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _fit(width: int, height: int, limit: int) -> tuple[int, int]:
    scale = min(1.0, limit / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    path: str
    data: bytes
    kind: str

    def json(self) -> JSONDict:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": len(self.data)}


_CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".oga": "audio/ogg",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".txt": "text/plain",
}


# --------------------------------------------------------------------------------------------
# Chats and messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageVersion:
    """An earlier version of a bot message, kept when the bot edits it."""

    text: str | None
    buttons: Buttons
    reply_markup: JSONDict | None
    edit_date: int | None


@dataclass(frozen=True)
class SentMessage:
    """A snapshot of one message the bot sent; ``text`` is the caption for media."""

    chat_id: int
    message_id: int
    text: str | None
    photo: list[JSONDict] | None
    document: JSONDict | None  # file_id, file_unique_id, file_name, mime_type, file_size
    buttons: Buttons
    reply_markup: JSONDict | None
    history: list[MessageVersion]
    deleted: bool
    raw: JSONDict
    voice: JSONDict | None = None  # file_id, file_unique_id, duration, mime_type, file_size

    @property
    def button_labels(self) -> list[str]:
        """Labels of the inline buttons, row by row."""
        return [label for row in self.buttons for label, _ in row]

    @property
    def callback_data(self) -> list[str]:
        """Callback data of the inline buttons, row by row."""
        return [data for row in self.buttons for _, data in row if data is not None]


@dataclass
class _Chat:
    id: int
    type: Literal["private", "group"]
    title: str | None = None
    user: FakeUser | None = None
    known: bool = False
    messages: dict[int, _Message] = field(default_factory=dict)
    keyboard: JSONDict | None = None
    message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def json(self) -> JSONDict:
        if self.user is not None:
            return self.user.private_chat_json()
        return {"id": self.id, "title": self.title, "type": self.type}


@dataclass
class _Message:
    chat: _Chat
    message_id: int
    sender: FakeUser | None  # None: the bot
    date: int
    content: JSONDict
    markup: JSONDict | None = None
    reply_to: _Message | None = None
    edit_date: int | None = None
    history: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False

    @property
    def inline_markup(self) -> JSONDict | None:
        return self.markup if self.markup and "inline_keyboard" in self.markup else None

    @property
    def text(self) -> str | None:
        return self.content.get("text", self.content.get("caption"))


@dataclass
class _CallbackQuery:
    id: str
    user: FakeUser
    message: _Message
    data: str
    answer: CallbackAnswer | None = None


@dataclass(frozen=True)
class CallbackAnswer:
    """How the bot answered a callback query."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass
class ApiCall:
    """One request the bot made; ``status`` and ``response`` are filled in once it is answered."""

    method: str
    params: JSONDict
    files: dict[str, bytes]
    status: int | None = None
    response: JSONDict | None = None
    at: float = 0.0  # when the request arrived (time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        return None if self.response is None else self.response.get("result")

    @property
    def description(self) -> str | None:
        return None if self.response is None else self.response.get("description")


@dataclass
class _QueuedUpdate:
    update: JSONDict
    redelivery: bool = False
    delivered: bool = False

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass(frozen=True)
class Webhook:
    """The registered webhook; ``secret_token`` is visible to tests only, as Telegram never reports it."""

    url: str
    secret_token: str | None
    allowed_updates: frozenset[str]
    max_connections: int = 40


@dataclass
class _Fault:
    kind: Literal["error", "http", "hang"]
    remaining: int
    error: BotApiError | None = None
    status: int = 502
    process: bool = False
    chat: int | None = None  # only calls whose chat_id is this chat; None: any call of the method
    matching: Callable[[JSONDict], bool] | None = None  # only calls whose parameters match


@dataclass
class _Poll:
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    conflict: bool = False


class _Signal:
    """Wakes every waiter whenever the fake's state changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(
        self, condition: Callable[[], bool], seconds: float, describe: Callable[[], str]
    ) -> None:
        try:
            async with asyncio.timeout(seconds):
                while not condition():
                    await self._event.wait()
        except TimeoutError:
            raise AssertionError(describe()) from None


@dataclass(frozen=True)
class _Answer:
    result: Any
    description: str | None = None


# --------------------------------------------------------------------------------------------
# Simulated users
# --------------------------------------------------------------------------------------------


class FakeGroup:
    """A basic group the bot is a member of; users talk in it via :meth:`FakeUser.in_group`."""

    def __init__(self, api: FakeBotApi, chat_id: int, title: str) -> None:
        self._api = api
        self.id = chat_id
        self.chat_id = chat_id
        self.title = title

    def __repr__(self) -> str:
        return f"FakeGroup(id={self.id}, title={self.title!r})"


class FakeUser:
    """A Telegram user talking to the bot, in their private chat or in a group."""

    def __init__(
        self,
        api: FakeBotApi,
        user_id: int,
        first_name: str,
        language_code: str | None,
        username: str | None,
        last_name: str | None,
        chat_id: int | None = None,
    ) -> None:
        self._api = api
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.chat_id = user_id if chat_id is None else chat_id

    def __repr__(self) -> str:
        return f"FakeUser(id={self.id}, first_name={self.first_name!r}, chat_id={self.chat_id})"

    def json(self) -> JSONDict:
        """The User object Telegram shows for this user."""
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def private_chat_json(self) -> JSONDict:
        """The Chat object of this user's private chat with the bot."""
        chat: JSONDict = {"id": self.id, "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        chat["type"] = "private"
        return chat

    def in_group(self, group: FakeGroup) -> FakeUser:
        """This user, speaking in ``group`` instead of the private chat."""
        return FakeUser(
            self._api, self.id, self.first_name, self.language_code, self.username, self.last_name, group.id
        )

    async def send_text(self, text: str, *, reply_to: int | None = None) -> JSONDict:
        """Send a text message; commands get a ``bot_command`` entity like in Telegram."""
        plain, entities = _finish_text(text, [])
        if not plain:
            raise ValueError("Telegram clients do not send empty messages")
        content: JSONDict = {"text": plain}
        if entities:
            content["entities"] = entities
        return self._api._user_message(self, content, reply_to=reply_to)

    async def send_location(self, latitude: float, longitude: float) -> JSONDict:
        """Share a location."""
        return self._api._user_message(self, {"location": {"latitude": latitude, "longitude": longitude}})

    async def send_contact(
        self, phone_number: str, first_name: str, last_name: str | None = None, user_id: int | None = None
    ) -> JSONDict:
        """Share a contact card with 📎 → Contact (someone's, or with ``user_id`` a Telegram user's)."""
        card: JSONDict = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            card["last_name"] = last_name
        if user_id is not None:
            card["user_id"] = user_id
        return self._api._user_message(self, {"contact": card})

    async def send_photo(self, width: int = 1280, height: int = 960, caption: str | None = None) -> JSONDict:
        """Send a photo; it comes in three sizes, each a downloadable JPEG."""
        content: JSONDict = {"photo": self._api._new_photo(width, height)}
        if caption:
            text, entities = _finish_text(caption, [])
            content["caption"] = text
            if entities:
                content["caption_entities"] = entities
        return self._api._user_message(self, content)

    async def send_sticker(self, emoji: str = "👍") -> JSONDict:
        """Send a sticker."""
        file = self._api._new_file("sticker", b"RIFF\x00\x00\x00\x00WEBPVP8 fake sticker", ".webp")
        sticker: JSONDict = {
            "width": 512,
            "height": 512,
            "emoji": emoji,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            **file.json(),
        }
        return self._api._user_message(self, {"sticker": sticker})

    async def send_voice(self, duration: int = 3, caption: str | None = None) -> JSONDict:
        """Send a voice note (with a caption, as Telegram's clients allow)."""
        file = self._api._new_file("voice", b"OggS\x00\x02fake voice note", ".oga")
        self._api._voices[file.file_id] = {"duration": duration, "mime_type": "audio/ogg"}
        voice = {"duration": duration, "mime_type": "audio/ogg", **file.json()}
        content: JSONDict = {"voice": voice}
        if caption:
            content["caption"] = caption
        return self._api._user_message(self, content)

    async def send_document(
        self,
        file_name: str = "plan.pdf",
        mime_type: str = "application/pdf",
        data: bytes = b"%PDF-1.4\n%fake document\n%%EOF\n",
        caption: str | None = None,
    ) -> JSONDict:
        """Send a file as a document."""
        extension = "." + file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        file = self._api._new_file("document", data, extension)
        self._api._documents[file.file_id] = {"file_name": file_name, "mime_type": mime_type}
        content: JSONDict = {"document": {"file_name": file_name, "mime_type": mime_type, **file.json()}}
        if caption:
            content["caption"] = caption
        return self._api._user_message(self, content)

    async def edit_text(self, message_id: int, new_text: str) -> JSONDict:
        """Edit one of this user's own text messages: the bot gets an ``edited_message`` update."""
        return self._api._user_edit(self, message_id, new_text)

    async def press(
        self, message: int | SentMessage | Mapping[str, Any], callback_data: str, *, check_button: bool = True
    ) -> JSONDict:
        """Press the inline button with ``callback_data`` on a bot message: a ``callback_query`` update.

        With ``check_button=False`` the data need not be on the message's current keyboard, as when
        a user taps a button that the bot has just replaced.
        """
        return self._api._press(self, _message_id_of(message), callback_data, check_button)

    async def press_button(self, label: str) -> JSONDict:
        """Press the inline button labelled ``label`` on the newest bot message in this chat that has it."""
        chat = self._api._chat_of(self.chat_id)
        for message in reversed(list(chat.messages.values())):
            if message.sender is not None or message.deleted:
                continue
            for row in _buttons_of(message.inline_markup):
                for text, data in row:
                    if text != label:
                        continue
                    if data is None:
                        raise AssertionError(
                            f"button {label!r} has no callback_data (it is a link or similar)"
                        )
                    return self._api._press(self, message.message_id, data, True)
        labels = [
            text
            for message in chat.messages.values()
            if message.sender is None and not message.deleted
            for row in _buttons_of(message.inline_markup)
            for text, _ in row
        ]
        raise AssertionError(f"no inline button {label!r} in chat {self.chat_id}; buttons there: {labels}")

    async def tap_keyboard(
        self, label: str, *, location: tuple[float, float] | None = None, phone_number: str | None = None
    ) -> JSONDict:
        """Tap a button of the reply keyboard the bot shows: sends its text, a location if it asks one, or
        this user's own contact card (with ``phone_number``, the number Telegram knows) if it asks that."""
        keyboard = self._api._chat_of(self.chat_id).keyboard
        if keyboard is None:
            raise AssertionError(f"the bot shows no reply keyboard in chat {self.chat_id}")
        for row in keyboard["keyboard"]:
            for button in row:
                if button["text"] != label:
                    continue
                if button.get("request_location"):
                    if location is None:
                        raise AssertionError(
                            f"button {label!r} asks for a location: pass location=(lat, lon)"
                        )
                    return await self.send_location(*location)
                if button.get("request_contact"):
                    if phone_number is None:
                        raise AssertionError(f"button {label!r} asks for the contact: pass phone_number")
                    return await self.send_contact(phone_number, self.first_name, self.last_name, self.id)
                if len(button) > 1:
                    raise AssertionError(f"the fake cannot answer keyboard button {button}")
                return await self.send_text(label)
        labels = [button["text"] for row in keyboard["keyboard"] for button in row]
        raise AssertionError(f"no keyboard button {label!r}; the keyboard has {labels}")

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """Labels of the reply keyboard the bot currently shows in this chat, if any."""
        keyboard = self._api._chat_of(self.chat_id).keyboard
        return (
            None if keyboard is None else [[button["text"] for button in row] for row in keyboard["keyboard"]]
        )

    def sent(self) -> list[SentMessage]:
        """The bot's messages in this chat."""
        return self._api.sent(self.chat_id)

    def last_message(self) -> SentMessage:
        """The bot's newest message in this chat."""
        return self._api.last_message(self.chat_id)

    async def wait_for_message(
        self,
        predicate: Callable[[SentMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """See :meth:`FakeBotApi.wait_for_message`."""
        return await self._api.wait_for_message(self.chat_id, predicate, timeout)


ChatRef = int | str | FakeUser | FakeGroup


def _message_id_of(message: int | SentMessage | Mapping[str, Any]) -> int:
    if isinstance(message, int):
        return message
    if isinstance(message, SentMessage):
        return message.message_id
    return int(message["message_id"])


def _chat_id_of(chat: ChatRef) -> int | str:
    if isinstance(chat, FakeUser | FakeGroup):
        return chat.chat_id
    return chat


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeBotApi:
    """A strict in-memory Telegram Bot API server for one bot, with users that tests control."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        bot_username: str = "initiatiefbot_test_bot",
        *,
        bot_first_name: str = "Initiatiefbot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"not a bot token: {token!r}")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = False
        self._internal_errors: list[BaseException] = []

        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, _Chat] = {}
        self._group_ids = itertools.count(4_000_000_001)
        self._blocked: set[int] = set()

        self._update_ids = itertools.count(100_000_001)
        self._queue: list[_QueuedUpdate] = []
        self._allowed_updates = DEFAULT_UPDATE_TYPES
        self._poll: _Poll | None = None
        self.webhook: Webhook | None = None

        self._file_numbers = itertools.count(1)
        self._files: dict[str, _File] = {}
        self._files_by_path: dict[str, _File] = {}
        self._photos: dict[str, list[JSONDict]] = {}
        self._documents: dict[str, JSONDict] = {}  # file_id -> file_name and mime_type of an upload
        self._voices: dict[str, JSONDict] = {}  # file_id -> duration and mime_type of a voice note
        self._query_ids = itertools.count(4_611_686_018_427_388_001)
        self._queries: dict[str, _CallbackQuery] = {}
        self._commands: dict[tuple[tuple[str, int | None, int | None], str], list[JSONDict]] = {}

        self._calls: list[ApiCall] = []
        self._on_next_call: dict[str, list[Callable[[ApiCall], None]]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._hanging: list[ApiCall] = []
        self._release = asyncio.Event()
        self._changed = _Signal()
        self._wait_cursor: dict[int, int] = {}

        handlers: dict[str, Callable[[_Args], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVoice": self._send_voice,
            "sendLocation": self._send_location,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getFile": self._get_file,
        }
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{tail:.*}", self._handle_api)
        app.router.add_route("*", "/file/bot{tail:.*}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self._port = sock.getsockname()[1]
        self._closing = False

    async def stop(self) -> None:
        """Stop listening; raises if a request ever crashed the fake itself."""
        self._closing = True
        if self._poll is not None:
            self._poll.wakeup.set()
        self.release_hung()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._internal_errors:
            raise RuntimeError(
                "the fake Bot API crashed while answering a request"
            ) from self._internal_errors[0]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What PTB's ``base_url`` takes: it appends the token and ``/method``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What PTB's ``base_file_url`` takes."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def bot_json(self) -> JSONDict:
        """The bot's User object as it appears in messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _now(self) -> int:
        return int(self._clock())

    # ---- users and chats -----------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Anna",
        language_code: str | None = "nl",
        username: str | None = None,
        *,
        last_name: str | None = None,
    ) -> FakeUser:
        """The simulated user with this id, created on first use."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        if user_id not in self._users:
            user = FakeUser(self, user_id, first_name, language_code, username, last_name)
            self._users[user_id] = user
            self._chats[user_id] = _Chat(user_id, "private", user=user)
        return self._users[user_id]

    def group(self, title: str = "Buurtgroep", chat_id: int | None = None) -> FakeGroup:
        """A basic group (negative id) with the bot in it."""
        chat_id = -next(self._group_ids) if chat_id is None else chat_id
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        self._chats.setdefault(chat_id, _Chat(chat_id, "group", title=title, known=True))
        return FakeGroup(self, chat_id, title)

    def block_user(self, user_id: int, *, notify: bool = False) -> JSONDict | None:
        """The user blocks the bot: sends to them answer 403. ``notify`` also queues ``my_chat_member``."""
        self._blocked.add(user_id)
        return self._member_update(user_id, "member", "kicked") if notify else None

    def unblock_user(self, user_id: int, *, notify: bool = False) -> JSONDict | None:
        """The user unblocks the bot."""
        self._blocked.discard(user_id)
        return self._member_update(user_id, "kicked", "member") if notify else None

    def _member_update(self, user_id: int, old: str, new: str) -> JSONDict:
        user = self.user(user_id)
        chat = self._chat_of(user_id)
        chat.known = True

        def member(status: str) -> JSONDict:
            return {
                "user": self.bot_json(),
                "status": status,
                **({"until_date": 0} if status == "kicked" else {}),
            }

        payload = {
            "chat": chat.json(),
            "from": user.json(),
            "date": self._now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self._enqueue("my_chat_member", payload)

    def _chat_of(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise AssertionError(f"no chat {chat_id} in the fake; create it with user() or group()")
        return chat

    # ---- user actions --------------------------------------------------------------------

    def _user_message(self, user: FakeUser, content: JSONDict, *, reply_to: int | None = None) -> JSONDict:
        chat = self._chat_of(user.chat_id)
        chat.known = True
        target = None
        if reply_to is not None:
            target = chat.messages.get(reply_to)
            if target is None:
                raise AssertionError(f"no message {reply_to} in chat {chat.id} to reply to")
        message = _Message(chat, next(chat.message_ids), user, self._now(), content, reply_to=target)
        chat.messages[message.message_id] = message
        return self._enqueue("message", self._message_json(message))

    def _user_edit(self, user: FakeUser, message_id: int, new_text: str) -> JSONDict:
        chat = self._chat_of(user.chat_id)
        message = chat.messages.get(message_id)
        if message is None or message.sender is None or message.sender.id != user.id or message.deleted:
            raise AssertionError(f"user {user.id} has no message {message_id} in chat {chat.id}")
        if "text" not in message.content:
            raise AssertionError(f"message {message_id} has no text to edit")
        text, entities = _finish_text(new_text, [])
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        message.history.append(MessageVersion(message.text, [], None, message.edit_date))
        message.content = content
        message.edit_date = self._now()
        return self._enqueue("edited_message", self._message_json(message))

    def _press(self, user: FakeUser, message_id: int, data: str, check_button: bool) -> JSONDict:
        chat = self._chat_of(user.chat_id)
        message = chat.messages.get(message_id)
        if message is None or message.sender is not None or message.deleted:
            raise AssertionError(f"no bot message {message_id} in chat {chat.id} to press a button on")
        available = [button_data for row in _buttons_of(message.inline_markup) for _, button_data in row]
        if check_button and data not in available:
            raise AssertionError(
                f"message {message_id} has no button with callback_data {data!r}; it has {available}"
            )
        query = _CallbackQuery(str(next(self._query_ids)), user, message, data)
        self._queries[query.id] = query
        payload = {
            "id": query.id,
            "from": user.json(),
            "message": self._message_json(message),
            "chat_instance": str(-(7_000_000_000_000_000_000 + abs(chat.id))),
            "data": data,
        }
        return self._enqueue("callback_query", payload)

    # ---- the update queue ----------------------------------------------------------------

    def _enqueue(self, update_type: str, payload: JSONDict) -> JSONDict:
        update = {"update_id": next(self._update_ids), update_type: payload}
        self._queue_update(_QueuedUpdate(update))
        return update

    def _queue_update(self, queued: _QueuedUpdate) -> None:
        update_type = next(key for key in queued.update if key != "update_id")
        # Telegram does not even create updates of types the bot did not ask for.
        if update_type not in self._allowed_updates:
            return
        self._queue.append(queued)
        if self._poll is not None:
            self._poll.wakeup.set()
        self._changed.notify()

    async def redeliver(self, update: JSONDict) -> JSONDict:
        """Queue ``update`` again with the same update_id, as Telegram does when it was not confirmed.

        The copy is delivered once even if the bot already confirmed a higher offset.
        """
        again = copy.deepcopy(update)
        self._queue_update(_QueuedUpdate(again, redelivery=True))
        return again

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a later getUpdates offset."""
        return len(self._queue)

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the bot fetched every queued update and confirmed it with a later offset.

        Confirmed is not handled: the bot may still be working on the last batch.
        """
        await self._changed.wait_until(
            lambda: not self._queue,
            timeout,
            lambda: (
                f"{len(self._queue)} updates still pending after {timeout}s: "
                f"{[queued.update for queued in self._queue]}"
            ),
        )

    def _confirm(self, offset: int) -> None:
        before = len(self._queue)
        ordered = sorted(self._queue, key=lambda queued: queued.update_id)
        if offset < 0:
            self._queue = ordered[offset:]
        elif offset > 0:
            self._queue = [
                queued
                for queued in ordered
                if queued.update_id >= offset or (queued.redelivery and not queued.delivered)
            ]
        if len(self._queue) != before:
            self._changed.notify()

    # ---- observing the bot ---------------------------------------------------------------

    def _snapshot(self, message: _Message) -> SentMessage:
        return SentMessage(
            chat_id=message.chat.id,
            message_id=message.message_id,
            text=message.text,
            photo=copy.deepcopy(message.content.get("photo")),
            document=copy.deepcopy(message.content.get("document")),
            buttons=_buttons_of(message.inline_markup),
            reply_markup=copy.deepcopy(message.markup),
            history=list(message.history),
            deleted=message.deleted,
            raw=self._message_json(message),
            voice=copy.deepcopy(message.content.get("voice")),
        )

    def sent(self, chat: ChatRef) -> list[SentMessage]:
        """The bot's messages in a chat, oldest first, including deleted ones (``deleted=True``)."""
        found = self._chats.get(_resolve_int(_chat_id_of(chat)))
        if found is None:
            return []
        return [self._snapshot(message) for message in found.messages.values() if message.sender is None]

    def last_message(self, chat: ChatRef) -> SentMessage:
        """The bot's newest message in a chat."""
        messages = self.sent(chat)
        if not messages:
            raise AssertionError(f"the bot sent nothing to chat {_chat_id_of(chat)}")
        return messages[-1]

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Requests the bot made, in order; ``method`` is matched case-insensitively."""
        if method is None:
            return list(self._calls)
        return [call for call in self._calls if call.method.lower() == method.lower()]

    def document_data(self, message: SentMessage) -> bytes:
        """The bytes of the document in a message the bot sent, as the user would download them."""
        if message.document is None:
            raise AssertionError(f"message {message.message_id} holds no document")
        return self._files[message.document["file_id"]].data

    def callback_answer(self, query: str | Mapping[str, Any]) -> CallbackAnswer | None:
        """The bot's answer to a callback query (its id or its update), if it answered."""
        found = self._queries.get(_query_id_of(query))
        return None if found is None else found.answer

    def commands(
        self, language_code: str | None = None, scope: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """The bot's command list for a scope (default scope if None) and a language.

        ``language_code`` None or "" is the list for users without a list in their own language.
        """
        key = self._scope_key(dict(scope) if scope else {"type": "default"})
        stored = self._commands.get((key, language_code or ""), [])
        return [(command["command"], command["description"]) for command in stored]

    def commands_seen(self, chat: ChatRef, language_code: str | None = None) -> list[tuple[str, str]]:
        """The command menu a private chat shows in a Telegram app set to ``language_code``: the first
        list that exists of chat + language, chat, all private chats + language, all private chats,
        default + language, default (Telegram's order for private chats)."""
        chat_id = _resolve_int(_chat_id_of(chat))
        language = (language_code or "").split("-")[0].lower()
        for scope in (("chat", chat_id, None), ("all_private_chats", None, None), ("default", None, None)):
            for lang in (language, "") if language else ("",):
                stored = self._commands.get((scope, lang))
                if stored:
                    return [(command["command"], command["description"]) for command in stored]
        return []

    def describe_chat(self, chat: ChatRef) -> str:
        """A readable account of what the bot sent to a chat and which calls failed lately."""
        chat_id = _chat_id_of(chat)
        lines = [f"bot messages in chat {chat_id}:"]
        for message in self.sent(chat):
            flags = " (deleted)" if message.deleted else ""
            lines.append(f"  #{message.message_id}: {message.text!r} buttons={message.button_labels}{flags}")
        if len(lines) == 1:
            lines.append("  (none)")
        failed = [call for call in self._calls if call.status is not None and call.status != 200][-5:]
        if failed:
            lines.append("recent failed API calls:")
            lines.extend(
                f"  {call.method} {call.params} -> {call.status} {call.description}" for call in failed
            )
        return "\n".join(lines)

    async def wait_for_message(
        self,
        chat: ChatRef,
        predicate: Callable[[SentMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """Wait for the next bot message in a chat that matches ``predicate``.

        "Next" means after the messages that earlier calls for this chat returned, so a test can
        alternate user actions and waits.
        """
        chat_id = _resolve_int(_chat_id_of(chat))
        found: list[SentMessage] = []

        def arrived() -> bool:
            messages = self.sent(chat_id)
            for index in range(self._wait_cursor.get(chat_id, 0), len(messages)):
                if predicate is None or predicate(messages[index]):
                    self._wait_cursor[chat_id] = index + 1
                    found.append(messages[index])
                    return True
            return False

        await self._changed.wait_until(
            arrived,
            timeout,
            lambda: (
                f"no matching bot message in chat {chat_id} within {timeout}s\n{self.describe_chat(chat_id)}"
            ),
        )
        return found[0]

    async def wait_for_edit(
        self,
        chat: ChatRef,
        message_id: int,
        *,
        edits: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """Wait until a bot message has been edited at least ``edits`` times in all."""
        chat_id = _resolve_int(_chat_id_of(chat))

        def edited() -> bool:
            message = self._chats[chat_id].messages.get(message_id) if chat_id in self._chats else None
            return message is not None and len(message.history) >= edits

        await self._changed.wait_until(
            edited,
            timeout,
            lambda: (
                f"message {message_id} in chat {chat_id} was not edited {edits}x within {timeout}s\n"
                f"{self.describe_chat(chat_id)}"
            ),
        )
        return self._snapshot(self._chats[chat_id].messages[message_id])

    async def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[ApiCall]:
        """Wait until the bot has made ``count`` calls of ``method`` (answered or not)."""
        await self._changed.wait_until(
            lambda: len(self.calls(method)) >= count,
            timeout,
            lambda: (
                f"expected {count} {method} calls within {timeout}s, got {len(self.calls(method))}; "
                f"calls so far: {[call.method for call in self._calls]}"
            ),
        )
        return self.calls(method)

    async def wait_for_call(
        self,
        method: str,
        matching: Callable[[ApiCall], bool],
        *,
        after: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ApiCall:
        """Wait for a call of ``method``, among those after the first ``after`` of them, that
        ``matching`` accepts (it sees the call as it arrives and again once it is answered)."""

        def found() -> ApiCall | None:
            return next((call for call in self.calls(method)[after:] if matching(call)), None)

        await self._changed.wait_until(
            lambda: found() is not None,
            timeout,
            lambda: (
                f"no matching {method} call within {timeout}s; "
                f"{[(call.params, call.status) for call in self.calls(method)[after:]]}"
            ),
        )
        call = found()
        assert call is not None
        return call

    async def wait_for_sent(
        self,
        chat: ChatRef,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until the bot has sent at least ``count`` messages to ``chat``; return them all."""
        chat_id = _resolve_int(_chat_id_of(chat))
        await self._changed.wait_until(
            lambda: len(self.sent(chat_id)) >= count,
            timeout,
            lambda: f"expected {count} bot messages within {timeout}s\n{self.describe_chat(chat_id)}",
        )
        return self.sent(chat_id)

    def handed_out(self, call: ApiCall) -> list[int]:
        """The update_ids a getUpdates ``call`` answered with (none while it is unanswered)."""
        result = call.result if call.method == "getUpdates" and call.ok else None
        return [update["update_id"] for update in result or []]

    async def wait_for_answer(
        self,
        query: str | Mapping[str, Any],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> CallbackAnswer:
        """Wait until the bot answers a callback query (its id or its update)."""
        query_id = _query_id_of(query)
        await self._changed.wait_until(
            lambda: self.callback_answer(query_id) is not None,
            timeout,
            lambda: (
                f"callback query {query_id} was not answered within {timeout}s; "
                f"answerCallbackQuery calls: {[call.params for call in self.calls('answerCallbackQuery')]}"
            ),
        )
        answer = self.callback_answer(query_id)
        assert answer is not None
        return answer

    # ---- fault injection -----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat: ChatRef | None = None,
        matching: Callable[[JSONDict], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a Bot API error.

        For 429 give ``retry_after``: the answer is Telegram's ``Too Many Requests: retry after N``
        with ``parameters.retry_after``. With ``chat`` only calls to that chat count, with
        ``matching`` only calls whose parameters (as in :meth:`calls`) it accepts.
        """
        parameters = None
        if error_code == 429:
            if retry_after is None or retry_after <= 0:
                raise ValueError("a 429 needs a positive retry_after")
            description = f"Too Many Requests: retry after {retry_after}"
            parameters = {"retry_after": retry_after}
        elif description is None:
            description = {
                400: "Bad Request",
                401: "Unauthorized",
                403: "Forbidden: bot was blocked by the user",
                409: _CONFLICT,
                500: "Internal Server Error",
            }.get(error_code, "Bad Request")
        fault = _Fault("error", times, error=BotApiError(error_code, description, parameters))
        self._add_fault(method, fault, chat, matching)

    def fail_next_http(
        self,
        method: str,
        *,
        status: int = 502,
        times: int = 1,
        chat: ChatRef | None = None,
        matching: Callable[[JSONDict], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a bare HTTP error page, like a proxy would.

        ``chat`` and ``matching`` choose the calls, as for :meth:`fail_next`.
        """
        self._add_fault(method, _Fault("http", times, status=status), chat, matching)

    def hang_next(
        self,
        method: str,
        *,
        times: int = 1,
        process: bool = False,
        chat: ChatRef | None = None,
        matching: Callable[[JSONDict], bool] | None = None,
    ) -> None:
        """Let the next ``times`` calls of ``method`` hang until :meth:`release_hung` or the client gives up.

        By default the call never reaches "Telegram": once released it is answered with a 502 page,
        and if the client goes away first (a timeout, a killed process) it has had no effect either.
        With ``process=True`` it takes effect first and only the answer is withheld, as when Telegram
        sent the message but the response got lost; once released it gets its real answer.
        ``chat`` and ``matching`` choose the calls, as for :meth:`fail_next`; others are answered as usual.
        """
        self._add_fault(method, _Fault("hang", times, process=process), chat, matching)

    def when_called(self, method: str, action: Callable[[ApiCall], None]) -> None:
        """Run ``action`` when the next call of ``method`` arrives, before it is answered (say, to
        change the faults from a moment the bot decides on)."""
        self._on_next_call.setdefault(method.lower(), []).append(action)

    def release_hung(self) -> None:
        """Let hanging calls finish (see :meth:`hang_next` for what they answer)."""
        self._release.set()
        self._release = asyncio.Event()

    def clear_faults(self, method: str | None = None) -> None:
        """Forget injected faults (of ``method``, or all) that no call has taken yet.

        Calls hanging already keep hanging until :meth:`release_hung` or until their client goes away.
        """
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method.lower(), None)

    def hanging(self, method: str | None = None) -> list[ApiCall]:
        """The calls (of ``method``, or all) that hang right now, oldest first."""
        return [call for call in self._hanging if method is None or call.method.lower() == method.lower()]

    async def wait_for_hang(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[ApiCall]:
        """Wait until ``count`` calls of ``method`` hang at the same time; return the hanging calls."""
        await self._changed.wait_until(
            lambda: len(self.hanging(method)) >= count,
            timeout,
            lambda: (
                f"expected {count} hanging {method} calls within {timeout}s, got "
                f"{len(self.hanging(method))}; calls so far: {[call.method for call in self._calls]}"
            ),
        )
        return self.hanging(method)

    async def wait_until_none_hang(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until no call hangs any more: released, or given up by its client (say, a killed process)."""
        await self._changed.wait_until(
            lambda: not self._hanging,
            timeout,
            lambda: f"calls still hanging after {timeout}s: {[(c.method, c.params) for c in self._hanging]}",
        )

    def _add_fault(
        self,
        method: str,
        fault: _Fault,
        chat: ChatRef | None = None,
        matching: Callable[[JSONDict], bool] | None = None,
    ) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        if chat is not None:
            fault.chat = _resolve_int(_chat_id_of(chat))
        fault.matching = matching
        self._faults.setdefault(method.lower(), deque()).append(fault)

    def _take_fault(self, call: ApiCall, args: _Args) -> _Fault | None:
        faults = self._faults.get(call.method.lower())
        if not faults:
            return None
        for fault in faults:
            if fault.chat is not None and fault.chat != _resolve_int(args.raw("chat_id")):
                continue
            if fault.matching is None or fault.matching(call.params):
                break
        else:
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            faults.remove(fault)
        return fault

    # ---- HTTP ----------------------------------------------------------------------------

    @staticmethod
    def _json_response(body: JSONDict, status: int = 200, retry_after: int | None = None) -> web.Response:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return web.Response(
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    def _error_response(self, error: BotApiError) -> web.Response:
        retry_after = (error.parameters or {}).get("retry_after")
        return self._json_response(error.body(), error.error_code, retry_after)

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return self._error_response(BotApiError(404, "Not Found"))

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token, _, method = request.match_info["tail"].partition("/")
        if token != self.token:
            return self._error_response(BotApiError(401, "Unauthorized"))
        method = method.removeprefix("test/")
        entry = self._methods.get(method.lower())
        try:
            args = await _read_args(request)
        except BotApiError as error:
            return self._error_response(error)
        call = ApiCall(
            entry[0] if entry else method,
            {name: _decode_param(name, value) for name, value in args.values.items()},
            {name: upload.data for name, upload in args.files.items()},
            at=time.monotonic(),
        )
        self._calls.append(call)
        self._changed.notify()
        for action in self._on_next_call.pop(call.method.lower(), []):
            action(call)
        try:
            response = await self._answer(call, entry, args)
        except Exception as exc:  # a bug in the fake, not in the bot: fail loudly at stop()
            self._internal_errors.append(exc)
            response = self._json_response(
                {
                    "ok": False,
                    "error_code": 500,
                    "description": f"Internal Server Error: fake crashed: {exc!r}",
                },
                500,
            )
        call.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json":
            assert isinstance(response.body, bytes)
            call.response = json.loads(response.body)
        self._changed.notify()
        return response

    async def _answer(
        self, call: ApiCall, entry: tuple[str, Callable[[_Args], Awaitable[Any]]] | None, args: _Args
    ) -> web.Response:
        if entry is None or not call.method:
            if call.method and _is_real_method(call.method):
                return self._json_response(
                    {
                        "ok": False,
                        "error_code": 501,
                        "description": f"Not Implemented: the fake has no {call.method}",
                    },
                    501,
                )
            return self._error_response(BotApiError(404, "Not Found"))
        fault = self._take_fault(call, args)
        if fault is not None and fault.kind == "error":
            assert fault.error is not None
            return self._error_response(fault.error)
        if fault is not None and fault.kind == "http":
            return web.Response(status=fault.status, text=_BAD_GATEWAY_PAGE, content_type="text/html")
        if fault is not None and fault.kind == "hang":
            self._hanging.append(call)
            self._changed.notify()
            try:
                outcome = await self._run(entry[1], args) if fault.process else None
                release = self._release
                if not self._closing:
                    await release.wait()
            finally:  # released, or cancelled because the client went away
                self._hanging.remove(call)
                self._changed.notify()
            if outcome is None:
                return web.Response(status=502, text=_BAD_GATEWAY_PAGE, content_type="text/html")
            return outcome
        return await self._run(entry[1], args)

    async def _run(self, handler: Callable[[_Args], Awaitable[Any]], args: _Args) -> web.Response:
        try:
            result = await handler(args)
        except BotApiError as error:
            return self._error_response(error)
        answer = result if isinstance(result, _Answer) else _Answer(result)
        body: JSONDict = {"ok": True, "result": answer.result}
        if answer.description:
            body["description"] = answer.description
        return self._json_response(body)

    async def _handle_file(self, request: web.Request) -> web.Response:
        token, _, path = request.match_info["tail"].partition("/")
        if token != self.token:
            return self._error_response(BotApiError(401, "Unauthorized"))
        file = self._files_by_path.get(path)
        if file is None:
            return self._error_response(BotApiError(404, "Not Found"))
        extension = "." + path.rsplit(".", 1)[-1] if "." in path else ""
        return web.Response(
            body=file.data, content_type=_CONTENT_TYPES.get(extension, "application/octet-stream")
        )

    # ---- shared checks -------------------------------------------------------------------

    def _find_chat(self, raw: str) -> _Chat:
        value = raw.strip()
        if not value:
            raise _bad_request("chat_id is empty")
        chat = self._chats.get(_resolve_int(value))
        if chat is None or not chat.known:
            raise _bad_request("chat not found")
        return chat

    def _chat_to_write(self, args: _Args) -> _Chat:
        chat = self._find_chat(args.raw("chat_id"))
        if chat.type == "private" and chat.id in self._blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _reply_target(self, chat: _Chat, args: _Args) -> _Message | None:
        if args.has("reply_parameters"):
            parameters = args.json_("reply_parameters", "can't parse reply parameters JSON object")
            if not isinstance(parameters, dict) or not isinstance(parameters.get("message_id"), int):
                raise _bad_request('can\'t parse reply parameters: field "message_id" must be an Integer')
            message_id = parameters["message_id"]
            allow_missing = bool(parameters.get("allow_sending_without_reply"))
        else:
            message_id = args.int_("reply_to_message_id")
            allow_missing = args.bool_("allow_sending_without_reply")
        if message_id <= 0:
            return None
        target = chat.messages.get(message_id)
        if target is None or target.deleted:
            if allow_missing:
                return None
            raise _bad_request("message to be replied not found")
        return target

    def _text_param(self, args: _Args) -> tuple[str, list[JSONDict]]:
        raw = args.raw("text")
        if not raw:
            raise _bad_request("message text is empty")
        entities = args.json_("entities", "can't parse entities JSON object")
        text, parsed = format_text(raw, args.raw("parse_mode"), entities)
        if not text:
            raise _bad_request("message text is empty")
        return text, parsed

    def _caption_param(self, args: _Args) -> tuple[str, list[JSONDict]]:
        entities = args.json_("caption_entities", "can't parse entities JSON object")
        return format_text(args.raw("caption"), args.raw("parse_mode"), entities)

    def _store_bot_message(
        self, chat: _Chat, content: JSONDict, markup: JSONDict | None, reply_to: _Message | None
    ) -> _Message:
        message = _Message(chat, next(chat.message_ids), None, self._now(), content, markup, reply_to)
        chat.messages[message.message_id] = message
        if markup is not None and "keyboard" in markup:
            chat.keyboard = markup
        elif markup is not None and "remove_keyboard" in markup:
            chat.keyboard = None
        self._changed.notify()
        return message

    def _message_to_edit(self, args: _Args) -> _Message:
        message_id = args.int_("message_id")
        if not args.has("chat_id") and message_id == 0:
            if args.has("inline_message_id"):
                raise _bad_request("MESSAGE_ID_INVALID")
            raise _bad_request("message identifier is not specified")
        chat = self._find_chat(args.raw("chat_id"))
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise _bad_request("message to edit not found")
        if message.sender is not None:
            raise _bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: _Message, content: JSONDict, markup: JSONDict | None) -> JSONDict:
        if content == message.content and markup == message.inline_markup:
            raise _bad_request(_NOT_MODIFIED)
        message.history.append(
            MessageVersion(
                message.text,
                _buttons_of(message.inline_markup),
                copy.deepcopy(message.markup),
                message.edit_date,
            )
        )
        message.content = content
        message.markup = markup
        message.edit_date = self._now()
        self._changed.notify()
        return self._message_json(message)

    def _message_json(self, message: _Message, *, with_reply: bool = True) -> JSONDict:
        result: JSONDict = {"message_id": message.message_id}
        result["from"] = self.bot_json() if message.sender is None else message.sender.json()
        result["chat"] = message.chat.json()
        result["date"] = message.date
        if message.edit_date is not None:
            result["edit_date"] = message.edit_date
        if with_reply and message.reply_to is not None:
            result["reply_to_message"] = self._message_json(message.reply_to, with_reply=False)
        result.update(copy.deepcopy(message.content))
        if message.inline_markup is not None:
            result["reply_markup"] = copy.deepcopy(message.inline_markup)
        return result

    # ---- files ---------------------------------------------------------------------------

    def _new_file(self, kind: str, data: bytes, extension: str) -> _File:
        number = next(self._file_numbers)
        prefixes = {"photo": "AgACAgQAAxkBAAI", "sticker": "CAACAgQAAxkBAAI", "voice": "AwACAgQAAxkBAAI"}
        token = base64.urlsafe_b64encode(f"{self.bot_id}:{kind}:{number}".encode()).decode().rstrip("=")
        unique = base64.urlsafe_b64encode(f"u{number}".encode()).decode().rstrip("=")
        folder = {"photo": "photos", "sticker": "stickers", "voice": "voice"}.get(kind, "documents")
        file = _File(
            file_id=prefixes.get(kind, "BQACAgQAAxkBAAI") + token,
            file_unique_id="AQAD" + unique,
            path=f"{folder}/file_{number}{extension}",
            data=data,
            kind=kind,
        )
        self._files[file.file_id] = file
        self._files_by_path[file.path] = file
        return file

    def _new_photo(self, width: int, height: int, original: bytes | None = None) -> list[JSONDict]:
        if width <= 0 or height <= 0:
            raise ValueError("photo sizes are positive")
        sizes = []
        for limit in (90, 320, None):
            size = (width, height) if limit is None else _fit(width, height, limit)
            number = len(self._files) + 1
            data = (
                original if limit is None and original is not None else tiny_jpeg(*size, b"fake %d" % number)
            )
            file = self._new_file("photo", data, ".jpg")
            sizes.append({**file.json(), "width": size[0], "height": size[1]})
        for size in sizes:
            self._photos[size["file_id"]] = sizes
        return sizes

    # ---- methods -------------------------------------------------------------------------

    async def _get_me(self, args: _Args) -> JSONDict:
        return {
            **self.bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "supports_guest_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
            "allows_users_to_create_topics": False,
            "can_manage_bots": False,
        }

    async def _get_updates(self, args: _Args) -> list[JSONDict]:
        offset = args.int_("offset")
        limit = min(max(args.int_("limit", 100), 1), 100)
        timeout = min(max(args.int_("timeout"), 0), LONG_POLL_MAX_TIMEOUT)
        if self.webhook is not None:
            raise BotApiError(409, _WEBHOOK_ACTIVE)
        self._allowed_updates = self._chosen_updates(args, self._allowed_updates)
        self._confirm(offset)
        poll = _Poll()
        previous, self._poll = self._poll, poll
        if previous is not None:
            previous.conflict = True
            previous.wakeup.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                batch = sorted(self._queue, key=lambda queued: queued.update_id)[:limit]
                remaining = deadline - loop.time()
                if batch or remaining <= 0 or self._closing:
                    break
                poll.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await poll.wakeup.wait()
                if poll.conflict:
                    raise BotApiError(409, _CONFLICT)
        finally:
            if self._poll is poll:
                self._poll = None
        for queued in batch:
            queued.delivered = True
        return [copy.deepcopy(queued.update) for queued in batch]

    def _chosen_updates(self, args: _Args, current: frozenset[str]) -> frozenset[str]:
        """The update types ``allowed_updates`` asks for; absent keeps ``current``, empty is the default."""
        allowed = args.json_("allowed_updates", "can't parse allowed_updates JSON object")
        if isinstance(allowed, list) and all(isinstance(kind, str) for kind in allowed):
            chosen = {kind.lower() for kind in allowed} & ALL_UPDATE_TYPES
            return frozenset(chosen) if chosen else DEFAULT_UPDATE_TYPES
        return current

    def _drop_pending(self, args: _Args) -> None:
        if args.bool_("drop_pending_updates") and self._queue:
            self._queue.clear()
            self._changed.notify()

    async def _set_webhook(self, args: _Args) -> _Answer:
        url = args.raw("url").strip()
        if not url:
            return await self._delete_webhook(args)
        parsed = urllib.parse.urlsplit(url)
        # Tests cannot serve HTTPS, so plain HTTP is accepted on the loopback address only.
        local = parsed.scheme == "http" and parsed.hostname == "127.0.0.1"
        if parsed.scheme != "https" and not local:
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not local and (parsed.port or 443) not in _WEBHOOK_PORTS:
            raise _bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = args.raw("secret_token")
        if len(secret) > 256:
            raise _bad_request("secret token is too long")
        if not _SECRET_TOKEN.fullmatch(secret):
            raise _bad_request("secret token contains unallowed characters")
        max_connections = min(max(args.int_("max_connections", 40), 1), 100)  # clamped, as Telegram does
        self._drop_pending(args)
        self._allowed_updates = self._chosen_updates(args, self._allowed_updates)
        webhook = Webhook(url, secret or None, self._allowed_updates, max_connections)
        already = webhook == self.webhook
        self.webhook = webhook
        if self._poll is not None:  # a long poll in progress ends with a conflict
            self._poll.conflict = True
            self._poll.wakeup.set()
        return _Answer(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, args: _Args) -> _Answer:
        self._drop_pending(args)
        if self.webhook is None:
            return _Answer(True, "Webhook is already deleted")
        self.webhook = None
        return _Answer(True, "Webhook was deleted")

    async def _get_webhook_info(self, args: _Args) -> JSONDict:
        info: JSONDict = {"url": "", "has_custom_certificate": False}
        info["pending_update_count"] = len(self._queue)
        if self.webhook is not None:
            info["url"] = self.webhook.url
            info["max_connections"] = self.webhook.max_connections
            info["allowed_updates"] = sorted(self.webhook.allowed_updates)
        return info

    async def deliver_webhook(self, update: JSONDict) -> int:
        """POST ``update`` to the registered webhook as Telegram does; return the HTTP status.

        A 2xx answer confirms the update, so it leaves the queue; any other answer leaves it there.
        """
        if self.webhook is None:
            raise AssertionError("no webhook is set; call setWebhook first")
        headers = {}
        if self.webhook.secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook.secret_token
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook.url, json=update, headers=headers) as response,
        ):
            await response.read()
            status = response.status
        if 200 <= status < 300:
            update_id = update["update_id"]
            remaining = [queued for queued in self._queue if queued.update_id != update_id]
            if len(remaining) != len(self._queue):
                self._queue = remaining
                self._changed.notify()
        return status

    async def _send_message(self, args: _Args) -> JSONDict:
        text, entities = self._text_param(args)
        markup = parse_reply_markup(args.raw("reply_markup"))
        chat = self._chat_to_write(args)
        reply_to = self._reply_target(chat, args)
        if utf16_length(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        return self._message_json(self._store_bot_message(chat, content, markup, reply_to))

    async def _send_photo(self, args: _Args) -> JSONDict:
        raw = args.raw("photo").strip()
        upload = None
        sizes = None
        if raw.startswith("attach://"):
            upload = args.files.get(raw.removeprefix("attach://"))
        elif raw:
            sizes = self._photos.get(raw)
            if sizes is None:
                if raw.startswith(("http://", "https://")):
                    raise _bad_request("failed to get HTTP URL content")
                if raw in self._files:
                    raise _bad_request("type of file mismatch")
                raise _bad_request("wrong file identifier/HTTP URL specified")
        else:
            upload = args.files.get("photo")
        if sizes is None and upload is None:
            raise _bad_request("there is no photo in the request")
        caption, entities = self._caption_param(args)
        markup = parse_reply_markup(args.raw("reply_markup"))
        chat = self._chat_to_write(args)
        reply_to = self._reply_target(chat, args)
        if utf16_length(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        if upload is not None:
            if not upload.data:
                raise _bad_request("file must be non-empty")
            dimensions = _image_size(upload.data)
            if dimensions is None:
                raise _bad_request("IMAGE_PROCESS_FAILED")
            sizes = self._new_photo(*dimensions, original=upload.data)
        content: JSONDict = {"photo": copy.deepcopy(sizes)}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._message_json(self._store_bot_message(chat, content, markup, reply_to))

    def _file_param(self, args: _Args, kind: str) -> tuple[_File | None, _Upload | None]:
        """The file a send method names: one Telegram knows by its id (of the right kind), or an upload
        (multipart, by ``attach://`` or under the field's own name), checked as Telegram does."""
        raw = args.raw(kind).strip()
        upload = None
        known: _File | None = None
        if raw.startswith("attach://"):
            upload = args.files.get(raw.removeprefix("attach://"))
        elif raw:
            known = self._files.get(raw)
            if known is None:
                if raw.startswith(("http://", "https://")):
                    raise _bad_request("failed to get HTTP URL content")
                raise _bad_request("wrong file identifier/HTTP URL specified")
            if known.kind != kind:
                raise _bad_request("type of file mismatch")
        else:
            upload = args.files.get(kind)
        if known is None and upload is None:
            raise _bad_request(f"there is no {kind} in the request")
        if upload is not None:
            if len(upload.data) > MAX_UPLOAD_SIZE:
                raise BotApiError(413, "Request Entity Too Large")
            if not upload.data:
                raise _bad_request("file must be non-empty")
        return known, upload

    def _media_message(self, args: _Args, content: JSONDict) -> JSONDict:
        """Store a media message with its caption, markup and reply target, all checked."""
        caption, entities = self._caption_param(args)
        markup = parse_reply_markup(args.raw("reply_markup"))
        chat = self._chat_to_write(args)
        reply_to = self._reply_target(chat, args)
        if utf16_length(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._message_json(self._store_bot_message(chat, content, markup, reply_to))

    async def _send_document(self, args: _Args) -> JSONDict:
        known, upload = self._file_param(args, "document")
        if upload is not None:
            file_name = upload.filename or "document"
            extension = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
            known = self._new_file("document", upload.data, extension)
            mime_type = _upload_type(upload) or _CONTENT_TYPES.get(extension, "application/octet-stream")
            self._documents[known.file_id] = {"file_name": file_name, "mime_type": mime_type}
        assert known is not None
        content: JSONDict = {"document": {**self._documents.get(known.file_id, {}), **known.json()}}
        return self._media_message(args, content)

    async def _send_voice(self, args: _Args) -> JSONDict:
        """sendVoice: a voice note by the file id of one sent to the bot, or an upload (OGG/Opus)."""
        known, upload = self._file_param(args, "voice")
        if upload is not None:
            known = self._new_file("voice", upload.data, ".oga")
            self._voices[known.file_id] = {"duration": args.int_("duration"), "mime_type": "audio/ogg"}
        assert known is not None
        content: JSONDict = {"voice": {**self._voices.get(known.file_id, {}), **known.json()}}
        return self._media_message(args, content)

    async def _send_location(self, args: _Args) -> JSONDict:
        latitude, longitude = args.float_("latitude"), args.float_("longitude")
        markup = parse_reply_markup(args.raw("reply_markup"))
        chat = self._chat_to_write(args)
        reply_to = self._reply_target(chat, args)
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise _bad_request("wrong latitude/longitude")
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._message_json(self._store_bot_message(chat, content, markup, reply_to))

    async def _send_chat_action(self, args: _Args) -> bool:
        if args.raw("action").strip().lower() not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        self._chat_to_write(args)
        return True

    async def _edit_message_text(self, args: _Args) -> JSONDict:
        text, entities = self._text_param(args)
        markup = parse_reply_markup(args.raw("reply_markup"), inline_only=True)
        message = self._message_to_edit(args)
        if "text" not in message.content:
            raise _bad_request("there is no text in the message to edit")
        if utf16_length(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        return self._apply_edit(message, content, markup)

    async def _edit_message_caption(self, args: _Args) -> JSONDict:
        caption, entities = self._caption_param(args)
        markup = parse_reply_markup(args.raw("reply_markup"), inline_only=True)
        message = self._message_to_edit(args)
        if "text" in message.content or "location" in message.content:
            raise _bad_request("there is no caption in the message to edit")
        if utf16_length(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        content = {
            key: value for key, value in message.content.items() if key not in ("caption", "caption_entities")
        }
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._apply_edit(message, content, markup)

    async def _edit_message_reply_markup(self, args: _Args) -> JSONDict:
        markup = parse_reply_markup(args.raw("reply_markup"), inline_only=True)
        message = self._message_to_edit(args)
        return self._apply_edit(message, message.content, markup)

    async def _delete_message(self, args: _Args) -> bool:
        chat = self._find_chat(args.raw("chat_id"))
        message = chat.messages.get(args.int_("message_id"))
        if message is None or message.deleted:
            raise _bad_request("message to delete not found")
        if message.sender is not None and chat.type != "private":
            raise _bad_request("message can't be deleted")
        message.deleted = True
        self._changed.notify()
        return True

    async def _answer_callback_query(self, args: _Args) -> bool:
        text = args.raw("text")
        if utf16_length(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        show_alert = args.bool_("show_alert")
        cache_time = args.int_("cache_time")
        query = self._queries.get(args.raw("callback_query_id").strip())
        if query is None or query.answer is not None:
            raise _bad_request(_QUERY_INVALID)
        query.answer = CallbackAnswer(query.id, text or None, show_alert, args.raw("url") or None, cache_time)
        self._changed.notify()
        return True

    def _scope_key(self, scope: Any) -> tuple[str, int | None, int | None]:
        if not isinstance(scope, dict):
            raise _bad_request("can't parse BotCommandScope: BotCommandScope must be an Object")
        kind = scope.get("type")
        if not isinstance(kind, str):
            raise _bad_request("can't parse BotCommandScope: Can't find field \"type\"")
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return kind, None, None
        if kind not in ("chat", "chat_administrators", "chat_member"):
            raise _bad_request("can't parse BotCommandScope: Unsupported type specified")
        chat_id = scope.get("chat_id")
        if chat_id in (None, ""):
            raise _bad_request("can't parse BotCommandScope: Empty chat_id specified")
        chat = self._find_chat(str(chat_id))
        user_id = None
        if kind == "chat_member":
            user_id = scope.get("user_id")
            if not isinstance(user_id, int) or user_id <= 0:
                raise _bad_request("can't parse BotCommandScope: Invalid user_id specified")
        return kind, chat.id, user_id

    def _commands_key(self, args: _Args) -> tuple[tuple[str, int | None, int | None], str]:
        scope = args.json_("scope", "can't parse BotCommandScope JSON object")
        language = args.raw("language_code").strip()
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad_request("invalid language code specified")
        return self._scope_key(scope if scope is not None else {"type": "default"}), language

    async def _set_my_commands(self, args: _Args) -> bool:
        raw = args.json_("commands", "can't parse commands JSON object")
        commands = [] if raw is None else raw
        if not isinstance(commands, list):
            raise _bad_request("expected an Array of BotCommand")
        cleaned = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand: expected an Object")
            try:
                name = _field(command, "command", str, required=True)
                description = _field(command, "description", str, required=True)
            except _EntityError as exc:
                raise _bad_request(f"can't parse BotCommand: {exc}") from None
            cleaned.append((name.strip().removeprefix("/"), description.strip()))
        key = self._commands_key(args)
        for name, description in cleaned:
            if not name:
                raise _bad_request("command must be non-empty")
            if len(name) > 32:
                raise _bad_request("command length must not exceed 32")
            if not description:
                raise _bad_request("command description must be non-empty")
            if len(description) > 256:
                raise _bad_request("command description length must not exceed 256")
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise _bad_request("BOT_COMMAND_INVALID")
        if len(cleaned) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        if cleaned:
            self._commands[key] = [{"command": name, "description": text} for name, text in cleaned]
        else:
            self._commands.pop(key, None)
        self._changed.notify()
        return True

    async def _get_my_commands(self, args: _Args) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(args), []))

    async def _delete_my_commands(self, args: _Args) -> bool:
        self._commands.pop(self._commands_key(args), None)
        self._changed.notify()
        return True

    async def _get_file(self, args: _Args) -> JSONDict:
        file = self._files.get(args.raw("file_id").strip())
        if file is None:
            raise _bad_request("invalid file_id")
        if len(file.data) > MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return {**file.json(), "file_path": file.path}


def _upload_type(upload: _Upload) -> str | None:
    """The MIME type a multipart part declared, unless it is the generic one clients send by default."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    return declared if declared and declared != "application/octet-stream" else None


def _resolve_int(value: int | str) -> int:
    if isinstance(value, int):
        return value
    # Telegram reads a chat_id that is no number as 0, which is no chat.
    return int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else 0


def _query_id_of(query: str | Mapping[str, Any]) -> str:
    if isinstance(query, str):
        return query
    if "callback_query" in query:
        return str(query["callback_query"]["id"])
    return str(query["id"])


@functools.cache
def _real_methods() -> frozenset[str]:
    from telegram import Bot

    return frozenset(
        attribute.lower()
        for attribute in dir(Bot)
        if attribute[:1].islower() and "_" not in attribute and callable(getattr(Bot, attribute, None))
    )


def _is_real_method(name: str) -> bool:
    """Whether ``name`` is a Bot API method at all, judged by PTB's camelCase aliases."""
    return name.lower() in _real_methods()


@pytest_asyncio.fixture
async def fake_bot_api() -> AsyncIterator[FakeBotApi]:
    """A started :class:`FakeBotApi`, stopped after the test."""
    async with FakeBotApi() as api:
        yield api
