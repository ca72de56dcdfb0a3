"""What comes in from Telegram, made storable: every field cleaned and bounded once, at the edge.

Telegram's limits are a promise, not a guarantee (a forged webhook call, a JSON escape such as
``"\\ud800"``): an Event leaves here only with text that SQLite and PostgreSQL can both store (no NUL,
no lone surrogates), strings no longer than their columns, a well-formed language tag or none, and
ids that fit in 64 bits. The flows still validate what they accept; this only keeps storage safe.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from flows.events import Contact, Event, EventKind, Location, Media, Photo
from flows.validators import clean_text
from storage.models import Initiative, Person

# What Telegram itself allows; anything longer did not come from Telegram.
TEXT_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_DATA_MAX_BYTES = 64
CALLBACK_QUERY_ID_MAX = 64
FIRST_NAME_MAX: int = Person.__table__.c.first_name.type.length  # type: ignore[attr-defined]
LANGUAGE_CODE_MAX: int = Person.__table__.c.telegram_language.type.length  # type: ignore[attr-defined]
FILE_ID_MAX: int = Initiative.__table__.c.photo_file_id.type.length  # type: ignore[attr-defined]
PHONE_MAX = 32  # longer than any number a person can have (E.164 is 15 digits) with its punctuation
MIME_MAX = 255
FILE_NAME_MAX = 255
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# NUL (PostgreSQL text refuses it) and the surrogate range (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# An IETF language tag as Telegram sends it ("en", "pt-br", "zh-hans"), after lower-casing.
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
# Telegram's file ids are URL-safe base64.
_FILE_ID = re.compile(r"[A-Za-z0-9_-]+")


def storable_text(value: str | None, limit: int) -> str | None:
    """``value`` without the characters no database can store, at most ``limit`` characters long."""
    if value is None:
        return None
    return _UNSTORABLE.sub("", value)[:limit]


def storable_bytes(value: str | None, limit: int) -> str | None:
    """Like :func:`storable_text`, bounded to ``limit`` bytes of UTF-8 (callback data is counted so)."""
    text = storable_text(value, limit)
    if text is None:
        return None
    return text.encode()[:limit].decode(errors="ignore")


def language_tag(value: str | None) -> str | None:
    """A well-formed lower-case language tag that fits its column, shortened by subtags; else None."""
    if not value:
        return None
    tag = value.strip().lower().replace("_", "-")
    if _LANGUAGE_TAG.fullmatch(tag) is None:
        return None
    while len(tag) > LANGUAGE_CODE_MAX:
        tag = tag.rsplit("-", 1)[0]
    return tag


def first_name(value: str | None) -> str | None:
    """The name on one line, without invisible or control characters, bounded to its column."""
    if value is None:
        return None
    return clean_text(storable_text(value, FIRST_NAME_MAX * 4) or "", keep_newlines=False)[
        :FIRST_NAME_MAX
    ].rstrip()


def fits_int64(value: object) -> bool:
    """Whether ``value`` is an integer a BIGINT column holds."""
    return isinstance(value, int) and INT64_MIN <= value <= INT64_MAX


def storable(event: Event) -> Event | None:
    """``event`` with every field cleaned and bounded, or None when its ids cannot be Telegram's."""
    if not (fits_int64(event.user_id) and fits_int64(event.chat_id)):
        return None
    kind = event.kind
    location = event.location
    if location is not None and not _on_earth(location):
        kind, location = EventKind.UNSUPPORTED, None
    photo = _photo(event.photo) if event.photo is not None else None
    if event.photo is not None and photo is None:
        kind = EventKind.UNSUPPORTED
    contact = _contact(event.contact) if event.contact is not None else None
    if event.contact is not None and contact is None:
        kind = EventKind.UNSUPPORTED
    media = _media(event.media) if event.media is not None else None
    if event.media is not None and media is None:
        kind = EventKind.UNSUPPORTED
    captioned = kind in (EventKind.PHOTO, EventKind.VOICE, EventKind.DOCUMENT)
    return replace(
        event,
        kind=kind,
        text=storable_text(event.text, CAPTION_MAX if captioned else TEXT_MAX),
        command=storable_text(event.command, TEXT_MAX),
        command_args=storable_text(event.command_args, TEXT_MAX) or "",
        button=storable_bytes(event.button, CALLBACK_DATA_MAX_BYTES),
        location=location,
        photo=photo,
        contact=contact,
        media=media,
        language_code=language_tag(event.language_code),
        first_name=first_name(event.first_name),
        last_name=first_name(event.last_name),
        message_id=event.message_id if fits_int64(event.message_id) else None,
        reply_to_message_id=event.reply_to_message_id if fits_int64(event.reply_to_message_id) else None,
        callback_query_id=storable_text(event.callback_query_id, CALLBACK_QUERY_ID_MAX),
    )


def _on_earth(location: Location) -> bool:
    lat, lon = location.latitude, location.longitude
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def _photo(photo: Photo) -> Photo | None:
    """The photo when its file ids look like Telegram's (a cut file id would point nowhere), else None."""
    for file_id in (photo.file_id, photo.file_unique_id):
        if len(file_id) > FILE_ID_MAX or _FILE_ID.fullmatch(file_id) is None:
            return None
    size = photo.file_size if photo.file_size is not None and 0 <= photo.file_size < 2**53 else None
    return replace(
        photo,
        width=photo.width if 0 <= photo.width < 2**31 else 0,
        height=photo.height if 0 <= photo.height < 2**31 else 0,
        file_size=size,
    )


def _file_id_ok(*ids: str) -> bool:
    return all(len(i) <= FILE_ID_MAX and _FILE_ID.fullmatch(i) is not None for i in ids)


def _contact(contact: Contact) -> Contact | None:
    """The card with a phone number of at most 32 characters and one-line names, or None without one."""
    phone = clean_text(storable_text(contact.phone_number, 64) or "", keep_newlines=False)
    if not phone or len(phone) > PHONE_MAX:
        return None
    return replace(
        contact,
        phone_number=phone,
        first_name=first_name(contact.first_name) or "",
        last_name=first_name(contact.last_name) or "",
        user_id=contact.user_id if fits_int64(contact.user_id) else None,
    )


def _media(media: Media) -> Media | None:
    """The voice note or document when its file ids look like Telegram's, its other fields bounded."""
    if not _file_id_ok(media.file_id, media.file_unique_id):
        return None
    size = media.file_size if media.file_size is not None and 0 <= media.file_size < 2**53 else None
    duration = media.duration if media.duration is not None and 0 <= media.duration < 2**31 else None
    return replace(
        media,
        duration=duration,
        mime_type=storable_text(media.mime_type, MIME_MAX),
        file_name=clean_text(storable_text(media.file_name, 4 * FILE_NAME_MAX) or "", keep_newlines=False)[
            :FILE_NAME_MAX
        ]
        or None,
        file_size=size,
    )
