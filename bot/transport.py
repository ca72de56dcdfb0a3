"""Carries out outbox calls through python-telegram-bot's ``do_api_request``, with timeouts for sends."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from telegram import Bot, InputFile
from telegram.error import EndPointNotFound, InvalidToken
from telegram.warnings import PTBUserWarning

# The Bot API methods the outbox uses; answerCallbackQuery answers ``true``, the others a Message.
METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "editMessageText",
        "editMessageReplyMarkup",
        "answerCallbackQuery",
        "setMyCommands",  # a staff member's own command menu (bot.command_menus)
        "deleteMyCommands",
    }
)
_SHORTCUT_WARNING = rf"Please use 'Bot\.({'|'.join(sorted(METHODS))})' instead of 'Bot\.do_api_request"


@dataclass(frozen=True)
class SendTimeouts:
    """How long one send may take, phase by phase (python-telegram-bot's defaults wait 5 s for the answer).

    A send that timed out may have been shown all the same and is tried again only after a pause, so the
    bot waits long for Telegram's answer (``read``) before calling it lost.
    """

    read: float = 15.0

    @property
    def connect(self) -> float:
        return min(5.0, self.read)

    @property
    def write(self) -> float:
        return min(5.0, self.read)

    pool: float = 1.0

    @property
    def total(self) -> float:
        """The longest one send can take, with a second to spare: a sender's claim on a chat outlasts it."""
        return self.connect + self.write + self.read + self.pool + 1.0

    def as_kwargs(self) -> dict[str, float]:
        return {
            "read_timeout": self.read,
            "connect_timeout": self.connect,
            "write_timeout": self.write,
            "pool_timeout": self.pool,
        }


class TelegramTransport:
    """Carries out outbox calls with PTB's Bot, sending each stored payload as it is."""

    def __init__(self, bot: Bot, timeouts: SendTimeouts | None = None) -> None:
        self._bot = bot
        self._timeouts = (timeouts or SendTimeouts()).as_kwargs()
        # do_api_request warns at every call of a method PTB has a function for; these calls are meant.
        # Set here, not at import: the filter must be in place where the transport is used (pytest, for
        # one, restores the filters after collecting), and setting it again replaces it.
        warnings.filterwarnings("ignore", _SHORTCUT_WARNING, PTBUserWarning)

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        """Call ``method`` with ``payload``; return the id of the message it sent or edited, if any."""
        if method not in METHODS:
            raise ValueError(f"unknown outbox method {method}")
        if method == "sendDocument" and isinstance(payload.get("document"), dict):
            payload = with_upload(payload)  # a file the bot made; a string is a file id to pass on
        try:
            result = await self._bot.do_api_request(method, api_kwargs=payload, **self._timeouts)
        except (InvalidToken, EndPointNotFound) as exc:
            # do_api_request calls a rejected token a missing method; these methods exist, so raise
            # what PTB's own send_message and the like raise for it.
            raise (exc.__cause__ or exc) from None
        return result.get("message_id") if isinstance(result, dict) else None


def with_upload(payload: dict[str, Any]) -> dict[str, Any]:
    """A sendDocument payload as stored (``bot.telegram_io.document_payload``) with its document as a
    file to upload (multipart/form-data); the stored payload is left as it is, for a retry."""
    document = payload["document"]
    upload = InputFile(
        document["content"].encode("utf-8"),
        filename=document["file_name"],
        attach=False,
    )
    upload.mimetype = document.get("mime_type") or upload.mimetype
    return {**payload, "document": upload}
