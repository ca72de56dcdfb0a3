"""Where a resident's message outside any question goes: to the broker of one of their cases, into a
question "for whom?", or (when they have no case with a broker) into a new idea.

The rule: a swipe-reply to the bot's message about a case goes to that case; a message while exactly one
case with a broker has something recent in the chat goes there; with several cases, or nothing recent,
the resident is asked once, and what they wrote is kept until they tap an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flows.cases import RESIDENT_PREFIX, case_button
from flows.events import Button, Event, EventKind, Media, Photo, Reply
from flows.text import Msg, t, tn
from flows.validators import clean_text

# Something the chat said about a case this recently (a broker's message, a status notice, the
# resident's own message) makes a plain message the next line of that conversation.
RECENT = timedelta(days=7)
# With several cases, a message this soon after the resident's own message to one of them goes on there.
GOING_ON = timedelta(minutes=30)
# A case that ended this recently still takes messages ("Thank you!" after "Your initiative is done!").
ENDED_RECENTLY = RECENT
# At most this many messages wait for the answer to "for whom?"; at most this many cases are offered.
MAX_HELD = 10
MAX_OFFERED = 5
MAX_TEXT = 2000
# The button under "for whom?" that makes the kept messages the start of a new idea.
NEW_IDEA_BUTTON = "held:idea"
MESSAGE_KINDS = frozenset({EventKind.TEXT, EventKind.PHOTO, EventKind.VOICE, EventKind.DOCUMENT})


@dataclass(frozen=True)
class Attachment:
    """A photo, voice note or document that goes with a message, passed on by its Telegram file id."""

    kind: str  # "photo", "voice" or "document"
    file_id: str
    name: str | None = None  # a document's file name
    seconds: int | None = None  # a voice note's length

    @classmethod
    def of(cls, event: Event) -> Attachment | None:
        """The attachment of a photo, voice or document event, if any."""
        if event.kind is EventKind.PHOTO and event.photo is not None:
            return cls("photo", event.photo.file_id)
        if event.kind is EventKind.VOICE and event.media is not None:
            return cls("voice", event.media.file_id, seconds=event.media.duration)
        if event.kind is EventKind.DOCUMENT and event.media is not None:
            return cls("document", event.media.file_id, name=event.media.file_name)
        return None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: object) -> Attachment | None:
        if not isinstance(data, dict) or "kind" not in data or "file_id" not in data:
            return None
        seconds = data.get("seconds")
        name = data.get("name")
        return cls(
            str(data["kind"]),
            str(data["file_id"]),
            str(name) if name is not None else None,
            int(seconds) if isinstance(seconds, int) else None,
        )


def attachment_label(kind: str | None, name: str | None = None, seconds: int | None = None) -> Msg | None:
    """How a timeline shows what came with a message: "📷 photo", "🎤 voice note (0:12)", "📄 plan.pdf"."""
    if kind == "photo":
        return t("📷 photo")
    if kind == "voice":
        if seconds is None:
            return t("🎤 voice note")
        length = f"{seconds // 60}:{seconds % 60:02d}"
        return t("🎤 voice note ({length})", length=length)
    if kind == "document":
        return t("📄 {name}", name=name) if name else t("📄 document")
    return None


@dataclass(frozen=True)
class HeldMessage:
    """A message kept while the resident is asked whom it is for (nothing they wrote is lost)."""

    text: str
    attachment: Attachment | None = None
    kind: str = EventKind.TEXT.value  # the event it came as, to replay it as the start of an idea

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"text": self.text, "kind": self.kind}
        if self.attachment is not None:
            data["attachment"] = self.attachment.to_json()
        return data

    @classmethod
    def from_json(cls, data: object) -> HeldMessage | None:
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return None
        return cls(data["text"], Attachment.from_json(data.get("attachment")), str(data.get("kind", "text")))


def held_from_json(data: object) -> tuple[HeldMessage, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(m for item in data if (m := HeldMessage.from_json(item)) is not None)


@dataclass(frozen=True)
class ResidentCase:
    """One of the resident's cases that can take a message: its broker (None: the coordinators), and
    the newest thing the chat said about it."""

    reference: str
    title: str
    broker: str | None
    is_open: bool
    last_at: datetime | None = None
    last_kind: str | None = None  # kind of the newest timeline entry the resident sees


@dataclass(frozen=True)
class Talk:
    """What the dispatcher loads to route a message: the resident's open (or just ended) cases, newest
    first, and the case of the bot's message they swiped to answer (theirs, checked), if any."""

    cases: tuple[ResidentCase, ...] = ()
    answered: str | None = None


@dataclass(frozen=True)
class Forward:
    reference: str


@dataclass(frozen=True)
class Ask:
    cases: tuple[ResidentCase, ...]


Route = Forward | Ask | None  # None: not for a broker (a new idea)


def route(talk: Talk, now: datetime) -> Route:
    """Where a message goes; see the module's docstring."""
    if talk.answered is not None:
        return Forward(talk.answered)
    live = [
        c for c in talk.cases if c.is_open or (c.last_at is not None and now - c.last_at <= ENDED_RECENTLY)
    ]
    with_broker = [c for c in live if c.broker is not None]
    if not with_broker:
        return None
    newest = max(live, key=lambda c: c.last_at or datetime.min.replace(tzinfo=now.tzinfo))
    recent = newest.last_at is not None and now - newest.last_at <= RECENT
    if newest.broker is not None and recent:
        if len(with_broker) == 1:
            return Forward(newest.reference)
        going_on = newest.last_kind == "message_from_resident" and now - newest.last_at <= GOING_ON
        if going_on:
            return Forward(newest.reference)
    ordered = sorted(with_broker, key=lambda c: c.last_at or datetime.min.replace(tzinfo=now.tzinfo))
    return Ask(tuple(reversed(ordered))[:MAX_OFFERED])


def held_message(event: Event) -> HeldMessage | None:
    """The message to pass on or keep, or None when there is nothing in it."""
    text = clean_text(event.text or "", keep_newlines=True)
    attachment = Attachment.of(event)
    if not text and attachment is None:
        return None
    return HeldMessage(text, attachment, event.kind.value)


def too_long(message: HeldMessage) -> bool:
    return len(message.text) > MAX_TEXT


def question(cases: Sequence[ResidentCase], held: int) -> Reply:
    """The question whom kept messages are for ("Is this for Anna about “…”, or is it a new idea?"),
    with a button per case and one for a new idea."""
    if len(cases) == 1:
        case = cases[0]
        text = t(
            "Is this for {broker} about “{title}”, or is it a new idea?",
            broker=case.broker or "",
            title=case.title,
        )
    else:
        text = t("Who is this for? Or is it a new idea?")
    extra = (
        (tn("I keep your {n} message until you choose.", "I keep your {n} messages until you choose.", held),)
        if held > 1
        else ()
    )
    rows = tuple(
        (
            Button(
                t("To {broker}: “{title}”", broker=c.broker or "", title=c.title),
                case_button(RESIDENT_PREFIX, c.reference, "send"),
            ),
        )
        for c in cases
    )
    return Reply(text, extra=extra, buttons=(*rows, (Button(t("It is a new idea"), NEW_IDEA_BUTTON),)))


def sent_to(broker: str | None, coordinators: bool) -> Reply:
    """What the resident hears when their message was passed on."""
    if broker:
        return Reply(t("✔ Sent to {broker}", broker=broker))
    if coordinators:
        return Reply(
            t("✔ Sent to the coordinators of the municipality. They will find you an initiatiefmakelaar.")
        )
    return Reply(t("✔ Saved with your initiative. Your initiatiefmakelaar will read it."))


def as_idea_event(held: Sequence[HeldMessage], event: Event) -> Event:
    """The kept messages as one message of the resident to start an idea with: their texts together,
    as the caption of the first message's voice note, photo or document if it had one."""
    text = "\n".join(m.text for m in held if m.text)
    base = Event(
        kind=EventKind.TEXT,
        user_id=event.user_id,
        chat_id=event.chat_id,
        text=text,
        language_code=event.language_code,
        first_name=event.first_name,
        last_name=event.last_name,
        private_chat=event.private_chat,
    )
    first = held[0].attachment if held else None
    if first is None:
        return base
    if first.kind == "photo":
        return replace(base, kind=EventKind.PHOTO, photo=Photo(first.file_id, first.file_id))
    media = Media(first.file_id, first.file_id, duration=first.seconds, file_name=first.name)
    return replace(base, kind=EventKind.VOICE if first.kind == "voice" else EventKind.DOCUMENT, media=media)
