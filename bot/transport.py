"""Carries out outbox calls through python-telegram-bot, with timeouts chosen for sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message


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
    """Carries out outbox calls with PTB's Bot."""

    def __init__(self, bot: Bot, timeouts: SendTimeouts | None = None) -> None:
        self._bot = bot
        self._timeouts = (timeouts or SendTimeouts()).as_kwargs()

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        markup_data = payload.get("reply_markup")
        markup = InlineKeyboardMarkup.de_json(markup_data, self._bot) if markup_data else None
        chat_id = payload.get("chat_id")
        timeouts = self._timeouts
        result: Message | bool
        if method == "sendMessage":
            result = await self._bot.send_message(chat_id, payload["text"], reply_markup=markup, **timeouts)
        elif method == "sendPhoto":
            result = await self._bot.send_photo(
                chat_id, payload["photo"], caption=payload.get("caption"), reply_markup=markup, **timeouts
            )
        elif method == "editMessageText":
            result = await self._bot.edit_message_text(
                payload["text"],
                chat_id=chat_id,
                message_id=payload["message_id"],
                reply_markup=markup,
                **timeouts,
            )
        elif method == "editMessageReplyMarkup":
            result = await self._bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=payload["message_id"], reply_markup=markup, **timeouts
            )
        elif method == "answerCallbackQuery":
            result = await self._bot.answer_callback_query(
                payload["callback_query_id"], text=payload.get("text"), **timeouts
            )
        else:
            raise ValueError(f"unknown outbox method {method}")
        return result.message_id if isinstance(result, Message) else None
