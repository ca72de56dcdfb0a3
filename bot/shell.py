"""A terminal chat on the same dispatcher, database and outbox as the Telegram bot."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.app import Runtime
from bot.mail import EmlTransport, default_mail_dir, terminal_echo
from bot.settings import Settings
from flows.events import Contact, Event, EventKind, Location, Media, Photo

HELP = """\
Type your answer and press Enter. Buttons have numbers: type the number to press one.
Commands work as in Telegram (/start, /help, /stop, /taal …). Shell-only:
  :location LAT LON   share a location       :photo     send a (pretend) photo
  :contact PHONE      share your own number  :voice     send a (pretend) voice message
  :sticker            send a sticker         :quit      leave (Ctrl-D works too)
Telegram's buttons under the text field show as ⌨ [📍 …] (use :location) and ⌨ [📱 …] (use :contact).
"""


@dataclass
class TerminalTransport:
    """Prints what the bot would send; remembers buttons so a typed number can press one."""

    me: int = 1  # the Telegram user the shell acts as; messages for others are shown, not pressable
    out: TextIO = sys.stdout
    documents: Path | None = None  # where a document sent to ``me`` is written (None: not written)
    buttons: list[tuple[int, str]] = field(default_factory=list)  # (message id, callback data) by number
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        if method in ("setMyCommands", "deleteMyCommands"):
            return None  # a staff member's command menu: the terminal has none
        chat_id = payload.get("chat_id")
        if chat_id is not None and chat_id != self.me:
            # Someone else's chat (a broker, a coordinator, the resident): show what they get.
            text = payload.get("text") or payload.get("caption") or f"[{_attachment(method, payload)}]"
            rows = (payload.get("reply_markup") or {}).get("inline_keyboard") or []
            labels = "   ".join(f"[{b['text']}]" for row in rows for b in row)
            self._print(
                f"   ↪ to {chat_id}: "
                + text.replace("\n", "\n     ")
                + (f"\n     {labels}" if labels else "")
            )
            return next(self._ids)
        if method == "answerCallbackQuery":
            if payload.get("text"):
                self._print(f"  ⓘ {payload['text']}")
            return None
        if method in ("editMessageText", "editMessageReplyMarkup"):
            message_id = int(payload["message_id"])
            if method == "editMessageText":
                self._print("✎ " + payload["text"].replace("\n", "\n  "))
            self._show_buttons(message_id, payload.get("reply_markup"))
            return message_id
        message_id = next(self._ids)
        if method == "sendPhoto":
            self._print(f"🖼  [photo {payload['photo']}] {payload.get('caption') or ''}".rstrip())
        elif method == "sendDocument":
            where = self._write_document(payload["document"])
            caption = payload.get("caption")
            self._print(f"📄 {caption}\n   {where}" if caption else f"📄 {where}")
        else:
            self._print("🤖 " + payload["text"].replace("\n", "\n   "))
        self._show_buttons(message_id, payload.get("reply_markup"))
        return message_id

    def _write_document(self, document: dict[str, str]) -> str:
        """Write a document as the chat would offer it for download; returns where it went."""
        if self.documents is None:
            return f"[document {document['file_name']}]"
        # Only the name's last part, of plain characters: a file name never leaves the folder.
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(document["file_name"]).name).lstrip(".") or "document"
        self.documents.mkdir(parents=True, exist_ok=True)
        path = self.documents / f"{self.me}-{name}"
        temp = path.with_name(path.name + ".part")
        # Personal data: readable by the owner only, and never half written.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(document["content"])
        os.replace(temp, path)
        return str(path)

    def _show_buttons(self, message_id: int, markup: dict[str, Any] | None) -> None:
        keys = (markup or {}).get("keyboard") or []
        if keys:
            shell_way = {"request_location": " (:location LAT LON)", "request_contact": " (:contact PHONE)"}
            labels = [
                f"[{key['text']}]" + next((way for flag, way in shell_way.items() if key.get(flag)), "")
                for row in keys
                for key in row
            ]
            self._print("   ⌨ " + "   ".join(labels))
        rows = (markup or {}).get("inline_keyboard") or []
        if not rows:
            return
        self.buttons = []
        for row in rows:
            labels = []
            for button in row:
                self.buttons.append((message_id, button["callback_data"]))
                labels.append(f"[{len(self.buttons)}] {button['text']}")
            self._print("   " + "   ".join(labels))

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _attachment(method: str, payload: dict[str, Any]) -> str:
    if method == "sendDocument":
        return f"document {payload['document']['file_name']}"
    return f"photo {payload.get('photo')}"


def documents_dir(database_url: str) -> Path:
    """Where the shell writes documents the bot sends (a resident's data): a ``documents`` folder beside
    the SQLite database, as ``mail`` is for e-mail; in the working directory otherwise."""
    return default_mail_dir(database_url).with_name("documents")


def parse_input(line: str, *, user_id: int, language: str, transport: TerminalTransport) -> Event | None:
    """What a typed line stands for: a button number, a command, a shell action, or text."""
    text = line.strip()
    base: dict[str, Any] = {
        "user_id": user_id,
        "chat_id": user_id,
        "language_code": language,
        "first_name": "Shell",
    }
    if not text:
        return None
    if text.isdigit() and 1 <= int(text) <= len(transport.buttons):
        message_id, data = transport.buttons[int(text) - 1]
        return Event(kind=EventKind.BUTTON, button=data, message_id=message_id, **base)
    if text.startswith(":location"):
        parts = text.split()
        try:
            lat, lon = float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            print("Use :location LAT LON, e.g. :location 52.147 6.188")
            return None
        return Event(kind=EventKind.LOCATION, location=Location(lat, lon), **base)
    if text == ":photo":
        photo = Photo("shell-photo-1", "shell-photo-unique-1", 1280, 960, 123_456)
        return Event(kind=EventKind.PHOTO, photo=photo, **base)
    if text.startswith(":contact"):
        parts = text.split(maxsplit=1)
        if len(parts) < 2:
            print("Use :contact PHONE, e.g. :contact +31612345678")
            return None
        card = Contact(parts[1], "Shell", "", user_id)
        return Event(kind=EventKind.CONTACT, contact=card, **base)
    if text == ":voice":
        media = Media("shell-voice-1", "shell-voice-unique-1", duration=12, mime_type="audio/ogg")
        return Event(kind=EventKind.VOICE, media=media, **base)
    if text == ":sticker":
        return Event(kind=EventKind.UNSUPPORTED, **base)
    if text.startswith("/"):
        head, _, args = text.partition(" ")
        return Event(kind=EventKind.COMMAND, command=head[1:].lower(), command_args=args, text=text, **base)
    return Event(kind=EventKind.TEXT, text=text, **base)


async def run_shell(
    settings: Settings,
    *,
    user_id: int,
    language: str,
    read_line: Callable[[], Awaitable[str]] | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Chat with the bot in the terminal until end of input or ``:quit``."""

    async def stdin_line() -> str:
        return await asyncio.to_thread(sys.stdin.readline)

    read = read_line or stdin_line
    # The terminal is no Telegram: its messages are not paced (the database and flows are the same).
    terminal = dataclasses.replace(settings, telegram_max_per_second=0, telegram_chat_max_per_second=0)
    runtime = await Runtime.open(terminal)
    transport = TerminalTransport(me=user_id, out=out, documents=documents_dir(settings.database_url))
    outbox = runtime.outbox(transport)
    # Mail is sent (written as .eml without SMTP_URL) right after each update, and echoed here.
    mailer = runtime.mailer(echo=terminal_echo(out))
    try:
        print(
            f"initiatiefbot shell · {runtime.municipality.name} · {settings.database_url} · user {user_id}",
            file=out,
        )
        if isinstance(mailer.transport, EmlTransport):
            print(f"E-mail is written to {mailer.transport.folder} (SMTP_URL is not set).", file=out)
        print(HELP, file=out)
        await outbox.flush(take_leased=True)
        await mailer.flush(take_leased=True)
        start = Event(
            kind=EventKind.COMMAND, command="start", user_id=user_id, chat_id=user_id, language_code=language
        )
        handled = await runtime.dispatcher.handle(start)
        await outbox.send(handled.outbox, alone=handled.alone)
        while True:
            print("> ", end="", file=out, flush=True)
            line = await read()
            if not line or line.strip() == ":quit":
                print(file=out)
                return
            event = parse_input(line, user_id=user_id, language=language, transport=transport)
            if event is None:
                continue
            handled = await runtime.dispatcher.handle(event)
            await outbox.send(handled.outbox, alone=handled.alone)
            if handled.mail:
                await mailer.flush()
    finally:
        await runtime.close()
