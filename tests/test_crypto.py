"""Residents' phone numbers and e-mail addresses are encrypted at rest, on SQLite and PostgreSQL: nothing
readable in the tables, everything readable for the broker and the staff web, keys that rotate, a key
file on the embedded default, and a clear refusal without a key."""

from __future__ import annotations

import argparse
import logging
import re
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import privacy_cli
from bot.__main__ import main
from bot.app import Runtime
from bot.settings import ConfigError, Settings, resolve_config_path
from storage import crypto, reencryption
from storage import initiatives as initiatives_store
from storage import staff as staff_store
from storage.conversations import load_conversation, save_conversation
from storage.db import create_engine, session_factory
from storage.tables import initiatives
from tests.conftest import REAL_KEY_SETUP, TEST_CONTACT_KEY
from tests.e2e import containing, migrate, press, running_bot, say
from tests.factories import new_initiative
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.web_support import web_world

pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PHONE, EMAIL = "06 12345678", "fatima@example.org"
OLD_KEY, NEW_KEY = TEST_CONTACT_KEY, "bmV3LWtleS1mb3ItdGhlLXJvdGF0aW9uLXRlc3QtMDA="


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def raw(database_url: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    """Rows as the database holds them: plain SQL, no column types in between."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


def digits(value: str) -> str:
    return re.sub(r"\D", "", value)


async def intake_with_phone(user: FakeUser) -> None:
    """A resident answers every question, with a phone number as contact, up to the summary."""
    await say(user, "/start", "What do you want to do?")
    await press(user, "New initiative", "What is your idea?")
    await say(user, "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.", "Is that right?")
    await press(user, "✏️ Other title", "What is the title")
    await say(user, "Bankjes in het park", "Which theme")
    await press(user, "Greenery", "In which neighbourhood")
    await press(user, "Waterkwartier", "What can you do yourself?")
    await say(user, "Wij verven de bankjes.", "How many neighbours")
    await press(user, "I don't know yet", "What do you need?")
    await user.press_button("▫️ A place")
    await user.press_button("Done ✔")
    await user.wait_for_message(containing("photo"))
    await press(user, "No photo", "phone number or e-mail")
    await say(user, PHONE, "What name")
    await say(user, "Anna", "Please check your initiative")


async def test_contact_details_are_stored_encrypted_and_shown_to_staff(
    fake: FakeBotApi, database_url: str
) -> None:
    anna, bea = fake.user(1001, "Anna", language_code="en"), fake.user(5001, "Bea", language_code="en")
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await staff_store.add_staff(
                session,
                telegram_user_id=bea.id,
                name="Bea",
                role="broker",
                wijken=["WK030101"],
                themes=[],
                now=NOW,
            )
    finally:
        await engine.dispose()
    async with running_bot(fake, database_url):
        await say(bea, "/start", "What do you want to do?")
        await intake_with_phone(anna)
        # While Anna checks her summary, her draft holds the number: encrypted.
        (data,) = (
            await raw(database_url, "select cast(data as text) from conversations where chat_id = 1001")
        )[0]
        assert crypto.PREFIX in data and "12345678" not in data
        done = await press(anna, "✔ I agree, send my idea", "Your reference is")
        reference = re.search(r"INI-\d{4}-\d{4}", done.text or "")
        assert reference is not None
        await bea.wait_for_message(containing(reference.group()))
        card = await say(bea, f"/zaak {reference.group()}", reference.group())
        assert "12345678" in digits(card.text or "")

    ((phone, email),) = await raw(database_url, "select contact_phone, contact_email from initiatives")
    assert phone.startswith(crypto.PREFIX) and "12345678" not in phone and email is None
    for (data,) in await raw(database_url, "select cast(data as text) from conversations"):
        assert "12345678" not in data

    async with web_world(database_url) as web:
        carla = await web.add_staff("Carla", language="en")
        await web.login(carla)
        response = await web.client.get(f"/dashboard/cases/{reference.group()}?contact=1")
        assert "12345678" in digits(await response.text())


async def add_case(engine: AsyncEngine, **changes: Any) -> str:
    async with session_factory(engine)() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new_initiative(**changes), NOW)
    return created.reference


async def stored_contacts(engine: AsyncEngine) -> list[tuple[Any, Any]]:
    async with engine.connect() as conn:
        return [
            tuple(r) for r in await conn.execute(text("select contact_phone, contact_email from initiatives"))
        ]


async def read_contacts(engine: AsyncEngine) -> list[tuple[Any, Any]]:
    async with engine.connect() as conn:
        query = select(initiatives.c.contact_phone, initiatives.c.contact_email).order_by(initiatives.c.id)
        return [tuple(r) for r in await conn.execute(query)]


async def save_draft(engine: AsyncEngine, chat_id: int, phone: str) -> None:
    data = {
        "draft": {
            "step": "summary",
            "answers": {"name": "Anna", "contact_phone": phone, "contact_email": None},
        }
    }
    async with session_factory(engine)() as session, session.begin():
        await save_conversation(
            session,
            chat_id=chat_id,
            user_id=chat_id,
            flow="intake",
            step="summary",
            data=data,
            history=[],
            now=NOW,
        )


async def draft_phone(engine: AsyncEngine, chat_id: int) -> Any:
    async with session_factory(engine)() as session, session.begin():
        row = await load_conversation(session, chat_id)
    assert row is not None
    return row.data["draft"]["answers"]["contact_phone"]


async def raw_drafts(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("select cast(data as text) from conversations"))]


async def test_rotation_moves_every_value_to_the_newest_key(engine: AsyncEngine) -> None:
    with crypto.using([OLD_KEY]):
        await add_case(engine, contact_phone=PHONE, contact_email=EMAIL)
        await add_case(engine, contact_email=EMAIL)
        await save_draft(engine, 7, PHONE)
    old_id, new_id = crypto.key_id(OLD_KEY), crypto.key_id(NEW_KEY)
    assert all(
        v is None or v.startswith(f"fernet:{old_id}:") for row in await stored_contacts(engine) for v in row
    )

    sessions = session_factory(engine)
    with crypto.using([NEW_KEY, OLD_KEY]):
        # The new key first: new writes use it, old values still read.
        assert await read_contacts(engine) == [(PHONE, EMAIL), (None, EMAIL)]
        counts = await reencryption.rotate(sessions, batch=1)
        assert counts == reencryption.Counts(initiatives=2, drafts=1)
        assert await reencryption.rotate(sessions) == reencryption.Counts()  # nothing left to do
    for row in await stored_contacts(engine):
        assert all(v is None or v.startswith(f"fernet:{new_id}:") for v in row)
    assert all(f"fernet:{new_id}:" in d and old_id not in d for d in await raw_drafts(engine))
    with crypto.using([NEW_KEY]):  # the old key removed
        assert await read_contacts(engine) == [(PHONE, EMAIL), (None, EMAIL)]
        assert await draft_phone(engine, 7) == PHONE


async def test_a_missing_key_is_named_and_nothing_is_garbled(engine: AsyncEngine) -> None:
    with crypto.using([OLD_KEY]):
        await add_case(engine, contact_phone=PHONE)
        await save_draft(engine, 7, PHONE)
    with crypto.using([NEW_KEY]):
        with pytest.raises(crypto.MissingKeyError, match=crypto.key_id(OLD_KEY)):
            await read_contacts(engine)
        with pytest.raises(crypto.MissingKeyError, match=crypto.key_id(OLD_KEY)):
            await draft_phone(engine, 7)
        with pytest.raises(crypto.MissingKeyError):
            await reencryption.rotate(session_factory(engine))
    crypto.install(None)
    with pytest.raises(crypto.KeySetupError, match="not set up"):
        await read_contacts(engine)


async def test_plaintext_from_before_is_encrypted_once_at_start(
    engine: AsyncEngine, database_url: str
) -> None:
    await add_case(engine, contact_phone=PHONE, contact_email=EMAIL)
    await add_case(engine)
    await save_draft(engine, 7, PHONE)
    async with engine.begin() as conn:  # as written before encryption
        await conn.execute(
            text(
                "update initiatives set contact_phone = :p, contact_email = :e "
                "where contact_phone is not null"
            ),
            {"p": PHONE, "e": EMAIL},
        )
        await conn.execute(
            text("update conversations set data = :d"),
            {
                "d": '{"draft":{"step":"summary",'
                '"answers":{"contact_phone":"06 12345678","contact_email":null}}}'
            },
        )
    assert (PHONE, EMAIL) in await stored_contacts(engine)
    assert await read_contacts(engine) == [(PHONE, EMAIL), (None, None)]  # plaintext still reads

    runtime = await Runtime.open(
        Settings(database_url=database_url, config_path=resolve_config_path("zutphen"))
    )
    await runtime.close()
    for row in await stored_contacts(engine):
        assert all(v is None or v.startswith(crypto.PREFIX) for v in row)
    assert all("12345678" not in d for d in await raw_drafts(engine))
    assert await read_contacts(engine) == [(PHONE, EMAIL), (None, None)]
    assert await draft_phone(engine, 7) == PHONE
    sessions = session_factory(engine)
    assert await reencryption.encrypt_plaintext(sessions) == reencryption.Counts()


# --- the keys: environment, key file, refusal ------------------------------------------------------


def test_the_key_file_is_made_once_readable_by_its_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'initiatiefbot.db'}"
    with caplog.at_level(logging.WARNING):
        first = REAL_KEY_SETUP([], url)
    key_file = tmp_path / "initiatiefbot.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [r for r in caplog.records if "made a new key" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = REAL_KEY_SETUP([], url)
    assert again.current_id == first.current_id and not caplog.records
    # The variable wins over the file.
    assert REAL_KEY_SETUP([NEW_KEY], url).current_id == crypto.key_id(NEW_KEY)


async def test_the_embedded_default_keeps_its_key_across_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "setup", REAL_KEY_SETUP)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", config_path=resolve_config_path("zutphen")
    )
    runtime = await Runtime.open(settings)
    try:
        await add_case(runtime.engine, contact_phone=PHONE)
    finally:
        await runtime.close()
    crypto.install(None)
    runtime = await Runtime.open(settings)
    try:
        assert await read_contacts(runtime.engine) == [(PHONE, None)]
        assert (await stored_contacts(runtime.engine))[0][0].startswith(crypto.PREFIX)
    finally:
        await runtime.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_without_a_key_refuses_to_start(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crypto, "setup", REAL_KEY_SETUP)
    with pytest.raises(crypto.KeySetupError, match="DATA_ENCRYPTION_KEYS is not set"):
        await Runtime.open(Settings(database_url=database_url, config_path=resolve_config_path("zutphen")))
    monkeypatch.delenv(crypto.KEYS_VARIABLE)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await _main(["staff", "list"]) == 2
    error = capsys.readouterr().err
    assert "DATA_ENCRYPTION_KEYS is not set" in error and "rotate-key --new-key" in error
    assert len(error.strip().splitlines()) == 1


async def _main(argv: list[str]) -> int:
    # main() runs its own event loop: in a thread, away from the test's.
    import asyncio

    return await asyncio.to_thread(main, argv)


def test_keys_from_the_environment_are_checked_and_never_shown() -> None:
    settings = Settings.from_env({crypto.KEYS_VARIABLE: f" {NEW_KEY} , {OLD_KEY} "})
    assert settings.data_encryption_keys == (NEW_KEY, OLD_KEY)
    assert NEW_KEY not in repr(settings)
    with pytest.raises(ConfigError, match="key 2 is not a Fernet key") as refused:
        Settings.from_env({crypto.KEYS_VARIABLE: f"{NEW_KEY},{NEW_KEY[:-4]}"})
    assert NEW_KEY[:20] not in str(refused.value)
    with pytest.raises(ConfigError, match="key 2 repeats key 1"):
        Settings.from_env({crypto.KEYS_VARIABLE: f"{NEW_KEY},{NEW_KEY}"})


# --- initiatiefbot privacy rotate-key --------------------------------------------------------------


def rotate_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    privacy_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["privacy", "rotate-key", *argv])


async def test_rotate_key_re_encrypts_and_says_what_to_do_next(
    engine: AsyncEngine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with crypto.using([OLD_KEY]):
        await add_case(engine, contact_phone=PHONE)
    settings = Settings(database_url=database_url, data_encryption_keys=(NEW_KEY, OLD_KEY))
    assert await privacy_cli.run(settings, rotate_args("--batch", "1")) == 0
    out = capsys.readouterr().out
    assert f"Re-encrypted with key {crypto.key_id(NEW_KEY)}: 1 initiatives, 0 drafts." in out
    assert crypto.key_id(OLD_KEY) in out and "remove" in out
    assert (await stored_contacts(engine))[0][0].startswith(f"fernet:{crypto.key_id(NEW_KEY)}:")


async def test_a_new_key_goes_first_in_the_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'initiatiefbot.db'}"
    assert await privacy_cli.run(Settings(database_url=url), rotate_args("--new-key")) == 0
    printed = capsys.readouterr().out.strip()
    assert crypto.check_keys([printed], "printed") == (printed,)
    old = REAL_KEY_SETUP([], url)  # the key file, as the first start makes it
    assert (
        await privacy_cli.run(Settings(database_url=url), rotate_args("--new-key", "--add-to-key-file")) == 0
    )
    both = REAL_KEY_SETUP([], url)
    assert [kid for kid, _ in both.keys][1:] == [old.current_id] and both.current_id != old.current_id
    assert stat.S_IMODE((tmp_path / "initiatiefbot.db.key").stat().st_mode) == 0o600


async def test_a_new_key_needs_neither_a_key_nor_a_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crypto, "setup", REAL_KEY_SETUP)
    monkeypatch.delenv(crypto.KEYS_VARIABLE)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    assert await _main(["privacy", "rotate-key", "--new-key"]) == 0
    captured = capsys.readouterr()
    assert crypto.check_keys([captured.out.strip()], "printed")
    assert "DATA_ENCRYPTION_KEYS" in captured.err
