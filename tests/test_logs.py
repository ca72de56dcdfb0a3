"""Logs are JSON lines, one per update, and never hold what a person typed, their name or contact details."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Runtime
from bot.dispatcher import Dispatcher
from bot.i18n import Translator
from bot.logs import JsonFormatter, Pseudonyms, setup_logging
from bot.settings import ConfigError, Settings, load_municipality, resolve_config_path
from flows.events import Event, EventKind
from storage import conversations as conversations_store
from storage.db import session_factory

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
UPDATE_KEYS = {"event", "update_id", "user", "flow", "step", "outcome", "ms"}

TITLE = "Bankjes in het Noorderpark"
IDEA = "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."
OWN = "Wij verven de bankjes en houden ze schoon."
AMOUNT = "€ 1.250,75"
EMAIL = "anna.devries@example.nl"
NEIGHBOURS = "ongeveer 17 buren"
NAME = "Anna de Vries-Jansen"
PHONE = "06-12345678"
TELEGRAM_NAME = "Annabel"
SECRETS = [TITLE, IDEA, OWN, AMOUNT, EMAIL, NEIGHBOURS, NAME, PHONE, "+31612345678", TELEGRAM_NAME]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as ``initiatiefbot run`` would write it."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    setup_logging(logging.INFO, buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


class Resident:
    """Drives the dispatcher as one English-speaking resident, pressing buttons by their label."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.update_id = 0
        self.markups: list[dict[str, Any]] = []
        self.sent: list[str] = []

    async def _send(self, kind: EventKind, **kw: Any) -> None:
        self.update_id += 1
        event = Event(kind=kind, user_id=42, chat_id=42, language_code="en", first_name=TELEGRAM_NAME, **kw)
        handled = await self.dispatcher.handle(event, self.update_id)
        for row in handled.outbox:
            if "reply_markup" in row.payload:
                self.markups.append(row.payload["reply_markup"])
            self.sent.append(str(row.payload.get("text", "")))

    async def text(self, text: str) -> None:
        await self._send(EventKind.TEXT, text=text)

    async def command(self, name: str) -> None:
        await self._send(EventKind.COMMAND, command=name, text=f"/{name}")

    async def press(self, label: str) -> None:
        for markup in reversed(self.markups):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if label.lower() in button["text"].lower():
                        await self._send(
                            EventKind.BUTTON,
                            button=button["callback_data"],
                            message_id=1,
                            callback_query_id="q",
                        )
                        return
        raise AssertionError(f"no button {label!r}")


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_one_json_line_per_update_and_nothing_personal_in_the_logs(
    engine: AsyncEngine, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    municipality = load_municipality(resolve_config_path("zutphen"))
    dispatcher = Dispatcher(session_factory(engine), municipality, Translator(("nl", "en")), lambda: T0)
    anna = Resident(dispatcher)
    await anna.command("nieuw")
    await anna.text(IDEA)
    await anna.press("Other title")
    await anna.text(TITLE)
    await anna.press("Greenery")
    await anna.press("Waterkwartier")
    await anna.text(OWN)
    await anna.text(EMAIL)  # not a number: explained, asked again
    await anna.text(NEIGHBOURS)
    await anna.press("Money")
    await anna.press("Done")
    await anna.text(AMOUNT)
    await anna.press("No photo")

    # A programming error while the phone number is handled, with the text in the exception's message.
    save = conversations_store.save_conversation

    async def broken(*args: Any, **kw: Any) -> None:
        raise RuntimeError(f"could not save {PHONE} for {NAME} ({EMAIL})")

    monkeypatch.setattr(conversations_store, "save_conversation", broken)
    await anna.text(PHONE)
    monkeypatch.setattr(conversations_store, "save_conversation", save)
    await anna.text(PHONE)
    await anna.text(NAME)
    await anna.press("I agree")
    assert any(TITLE in text for text in anna.sent), anna.sent[-3:]

    logged = lines(captured)
    updates = [entry for entry in logged if entry.get("event") == "update"]
    assert [entry["update_id"] for entry in updates] == list(range(1, anna.update_id + 1))
    for entry in updates:
        assert UPDATE_KEYS <= entry.keys()
        assert entry["user"] and entry["user"] != "42"
        assert isinstance(entry["ms"], float)
    assert updates[1]["flow"] == "intake" and updates[1]["step"] == "check"
    assert updates[13]["outcome"] == "error"
    failure = next(entry for entry in logged if entry.get("event") == "update_error")
    assert failure["exc_type"] == "RuntimeError" and "broken" in failure["traceback"]

    output = captured.getvalue()
    for secret in SECRETS:
        assert secret not in output
        assert json.dumps(secret)[1:-1] not in output  # nor escaped


def test_extra_fields_become_keys_and_exception_messages_stay_out() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", (7,), None)
    record.update_id = 7
    name, phone = "Anna", "06-12345678"
    try:
        try:
            raise KeyError(name)
        except KeyError as inner:
            raise ValueError(phone) from inner
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed 7" and entry["update_id"] == 7 and entry["level"] == "ERROR"
    assert entry["exc_type"] == "ValueError" and "KeyError" in entry["traceback"]
    assert entry["traceback"].index("ValueError") < entry["traceback"].index("caused by")
    assert name not in json.dumps(entry) and phone not in json.dumps(entry)


def test_libraries_that_log_secrets_are_kept_to_warnings(captured: io.StringIO) -> None:
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot123:SECRET/getMe")
    logging.getLogger("aiosqlite").debug("executing select 'Anna'")
    logging.getLogger("bot.something").info("started")
    assert [entry["logger"] for entry in lines(captured)] == ["bot.something"]


# --- pseudonyms: keyed with the deployment's secret ----------------------------------------------------

RAW_ID = 777000111


def runtime_settings(database_url: str, key: str | None = None) -> Settings:
    return Settings(
        database_url=database_url, config_path=resolve_config_path("zutphen"), log_pseudonym_key=key
    )


async def pseudonym_in_a_fresh_runtime(
    database_url: str, captured: io.StringIO, key: str | None = None
) -> str:
    """Start the bot's runtime as a new process would, handle one update, and read its log line's user."""
    runtime = await Runtime.open(runtime_settings(database_url, key))
    try:
        before = len(lines(captured))
        event = Event(kind=EventKind.COMMAND, user_id=RAW_ID, chat_id=RAW_ID, command="help", text="/help")
        await runtime.dispatcher.handle(event)
    finally:
        await runtime.close()
    (entry,) = [e for e in lines(captured)[before:] if e.get("event") == "update"]
    return str(entry["user"])


async def test_one_person_keeps_one_pseudonym_across_restarts_and_workers(
    engine: AsyncEngine, database_url: str, captured: io.StringIO
) -> None:
    first = await pseudonym_in_a_fresh_runtime(database_url, captured)
    again = await pseudonym_in_a_fresh_runtime(database_url, captured)  # a restart, or a second worker
    assert first == again
    assert str(RAW_ID) not in first and len(first) == 16


async def test_another_deployment_or_key_gives_another_pseudonym(
    engine: AsyncEngine, database_url: str, captured: io.StringIO
) -> None:
    stored = await pseudonym_in_a_fresh_runtime(database_url, captured)
    configured = await pseudonym_in_a_fresh_runtime(database_url, captured, key="k" * 32)
    assert configured == await pseudonym_in_a_fresh_runtime(database_url, captured, key="k" * 32)
    assert configured != await pseudonym_in_a_fresh_runtime(database_url, captured, key="q" * 32)
    assert stored != configured
    # The old unsalted hash anyone could recompute from a guessed id.
    assert stored != hashlib.blake2b(str(RAW_ID).encode(), digest_size=6).hexdigest()


def test_pseudonyms_are_keyed() -> None:
    assert Pseudonyms(b"one key")(RAW_ID) == Pseudonyms(b"one key")(RAW_ID)
    assert Pseudonyms(b"one key")(RAW_ID) != Pseudonyms(b"another key")(RAW_ID)
    assert Pseudonyms(b"one key")(RAW_ID) != Pseudonyms(b"one key")(RAW_ID + 1)


def test_a_short_pseudonym_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="LOG_PSEUDONYM_KEY"):
        Settings.from_env({"LOG_PSEUDONYM_KEY": "short"})
    assert Settings.from_env({"LOG_PSEUDONYM_KEY": "x" * 16}).log_pseudonym_key == "x" * 16
    assert "x" * 16 not in repr(Settings.from_env({"LOG_PSEUDONYM_KEY": "x" * 16}))


async def test_no_log_line_holds_a_raw_telegram_id(engine: AsyncEngine, captured: io.StringIO) -> None:
    municipality = load_municipality(resolve_config_path("zutphen"))
    dispatcher = Dispatcher(session_factory(engine), municipality, Translator(("nl", "en")), lambda: T0)
    base = {"user_id": RAW_ID, "chat_id": RAW_ID, "language_code": "en", "first_name": TELEGRAM_NAME}
    for update_id, event in enumerate(
        [
            Event(kind=EventKind.COMMAND, command="start", command_args="A" * 20, text="/start", **base),
            Event(kind=EventKind.COMMAND, command="zaak", command_args="INI-2026-0001", text="/zaak", **base),
            Event(kind=EventKind.BUTTON, button="c:INI-2026-0001:take", callback_query_id="q", **base),
            Event(kind=EventKind.TEXT, text="hallo", **base),
        ],
        start=1,
    ):
        await dispatcher.handle(event, update_id)
    output = captured.getvalue()
    assert "invite refused" in output and "staff action refused" in output
    assert str(RAW_ID) not in output
