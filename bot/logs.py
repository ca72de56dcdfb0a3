"""Logs as JSON lines: one object per record, with the ``extra`` fields as keys.

Exceptions are logged with their type and stack frames but without their message: messages can
carry what a person typed (a validation error quoting input, SQL parameters), and logs never should.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.deployment import shared_secret

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


# The secret a deployment's pseudonyms are keyed with, in the deployment_secrets table when
# LOG_PSEUDONYM_KEY is not set.
PSEUDONYM_KEY_NAME = "log_pseudonym_key"


class Pseudonyms:
    """Turns a Telegram id into a short pseudonym: HMAC-SHA256 under the deployment's key, so one
    deployment's logs can follow a person, and nobody without the key can find the id by trying ids."""

    def __init__(self, key: bytes | None = None) -> None:
        # Without a key (tests, tools), a random one: pseudonyms then hold for this process only.
        self._key = key if key is not None else secrets.token_bytes(32)

    def __call__(self, user_id: int) -> str:
        return hmac.new(self._key, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]

    @staticmethod
    def new_key() -> str:
        """A fresh key as stored in the database: 64 hex digits."""
        return secrets.token_hex(32)


async def deployment_pseudonyms(configured_key: str | None, engine: AsyncEngine) -> Pseudonyms:
    """Pseudonyms under LOG_PSEUDONYM_KEY when it is set, else under the key stored in the database on
    the deployment's first start (the same for every worker, kept across restarts)."""
    if configured_key:
        return Pseudonyms(configured_key.encode())
    stored = await shared_secret(engine, PSEUDONYM_KEY_NAME, Pseudonyms.new_key)
    return Pseudonyms(stored.encode())


# Libraries whose INFO or DEBUG records carry a secret or what people typed: httpx and httpcore log
# Bot API URLs (which contain the bot token), aiosqlite logs SQL with its parameters, PTB logs Updates.
_LEAKY = ("httpx", "httpcore", "aiosqlite", "telegram")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, tb = record.exc_info
            entry["exc_type"] = exc_type.__qualname__
            entry["traceback"] = _frames(exc, tb)
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def _frames(exc: BaseException | None, tb: TracebackType | None) -> str:
    """The stack of ``exc`` and the exceptions it came from, by type only: no exception messages."""
    parts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append("".join(traceback.format_tb(tb or exc.__traceback__)) + type(exc).__qualname__)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        tb = None
    return "\n-- caused by --\n".join(parts)


def setup_logging(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as a JSON line, replacing handlers set up before."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in _LEAKY:
        logging.getLogger(name).setLevel(logging.WARNING)
