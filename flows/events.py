"""Plain data that crosses the edge of the functional core: events in, replies and commands out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from flows.text import Msg


class EventKind(StrEnum):
    """What a person did, independent of Telegram's object model."""

    TEXT = "text"
    COMMAND = "command"  # /start, /help … (``command`` holds the name without slash)
    BUTTON = "button"  # inline keyboard press (``button`` holds the callback data)
    LOCATION = "location"
    PHOTO = "photo"
    CONTACT = "contact"  # a contact card (Telegram's "share my number" button, or 📎 → Contact)
    VOICE = "voice"  # a voice note
    DOCUMENT = "document"  # a file sent as a document
    UNSUPPORTED = "unsupported"  # sticker, video, poll, …
    EDITED = "edited"  # an edited earlier message


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Photo:
    file_id: str
    file_unique_id: str
    width: int = 0
    height: int = 0
    file_size: int | None = None


@dataclass(frozen=True)
class Contact:
    """A shared contact card; ``user_id`` is set when it is a Telegram user's (own) card."""

    phone_number: str
    first_name: str = ""
    last_name: str = ""
    user_id: int | None = None


@dataclass(frozen=True)
class Media:
    """A voice note or document a person sent: what the bot needs to pass it on (by file id)."""

    file_id: str
    file_unique_id: str
    duration: int | None = None  # seconds, for a voice note
    mime_type: str | None = None
    file_name: str | None = None  # for a document
    file_size: int | None = None


@dataclass(frozen=True)
class Event:
    """One thing a person did in a chat."""

    kind: EventKind
    user_id: int
    chat_id: int
    text: str | None = None
    command: str | None = None
    command_args: str = ""
    button: str | None = None
    location: Location | None = None
    photo: Photo | None = None
    contact: Contact | None = None
    media: Media | None = None  # the voice note or document of a VOICE or DOCUMENT event
    reply_to_message_id: int | None = None  # the bot's message a person answered with "Reply" (swipe)
    last_name: str | None = None
    language_code: str | None = None
    first_name: str | None = None
    private_chat: bool = True
    message_id: int | None = None  # the message a button belongs to, for edits
    callback_query_id: str | None = None


@dataclass(frozen=True)
class Button:
    label: Msg
    data: str  # callback data, at most 64 bytes


@dataclass(frozen=True)
class Document:
    """A text file sent as a Telegram document (e.g. a resident's own data as JSON); kept as text so
    whatever scrubs personal data out of queued messages reads it like any other message."""

    file_name: str
    content: str  # sent UTF-8 encoded
    mime_type: str = "application/json"


@dataclass(frozen=True)
class KeyButton:
    """A button of the reply keyboard under the text field: it sends its label, or with ``request``
    ("contact" or "location") the person's own number or place, after Telegram asks them."""

    label: Msg
    request: str | None = None


@dataclass(frozen=True)
class Reply:
    """One outgoing message (or an edit of the message the event's button belongs to)."""

    text: Msg
    buttons: tuple[tuple[Button, ...], ...] = ()
    photo_file_id: str | None = None  # send as photo with ``text`` as caption
    edit: bool = False  # edit the message the pressed button belongs to instead of sending a new one
    markup_only: bool = False  # the edit changes only the buttons
    # Parts joined with a blank line, each translated on its own (e.g. an error then the question again).
    extra: tuple[Msg, ...] = field(default_factory=tuple)
    # Send as a document with ``text`` as its caption (or before it, when too long for a caption).
    document: Document | None = None
    # A reply keyboard (shown instead of inline buttons: a message carries one kind of markup), or
    # ``remove_keyboard`` to take an earlier one away.
    keyboard: tuple[tuple[KeyButton, ...], ...] = ()
    remove_keyboard: bool = False
    # With both inline ``buttons`` and a ``keyboard``: the keyboard goes with a second message, this one.
    keyboard_hint: Msg | None = None


@dataclass(frozen=True)
class Notice:
    """A short toast shown for a button press (answerCallbackQuery)."""

    text: Msg | None = None
