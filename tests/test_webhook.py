"""`initiatiefbot webhook`: Telegram's updates over HTTP, health checks, and registering the webhook."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.__main__ import main
from bot.app import Runtime
from bot.settings import ConfigError, Settings
from bot.web import SECRET_HEADER, build_web_app, readiness, webhook_path, webhook_path_secret
from storage.db import create_engine
from storage.models import ProcessedUpdate
from tests.e2e import containing, migrate, settings_for
from tests.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(60)

SECRET = "test-webhook-Secret_0123456789"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def webhook_settings(fake: FakeBotApi, database_url: str) -> Settings:
    return dataclasses.replace(settings_for(fake, database_url), telegram_webhook_secret=SECRET)


@pytest_asyncio.fixture
async def server(fake: FakeBotApi, database_url: str) -> AsyncIterator[TestServer]:
    """The web app on a free port of 127.0.0.1, registered with the fake as Telegram's webhook."""
    await migrate(database_url)
    server = TestServer(build_web_app(webhook_settings(fake, database_url)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            registered = await session.post(
                f"{fake.base_url}{fake.token}/setWebhook",
                json={"url": str(server.make_url(webhook_path(SECRET))), "secret_token": SECRET},
            )
            assert (await registered.json())["ok"]
        yield server
    finally:
        await server.close()


async def processed_updates(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(ProcessedUpdate))).scalar_one()
    finally:
        await engine.dispose()


async def test_health_check_answers_while_the_process_lives(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/healthz")) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_ready_when_the_database_is_reachable_and_migrated(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/readyz")) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready"}


async def test_not_ready_while_the_schema_is_behind(database_url: str) -> None:
    engine = create_engine(database_url)  # an empty database: no migrations applied
    try:
        reason = await readiness(engine)
    finally:
        await engine.dispose()
    assert reason is not None and "db upgrade" in reason


async def test_readyz_answers_503_with_a_reason_when_the_schema_is_behind(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    settings = webhook_settings(fake, database_url)
    unmigrated = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"

    async def open_runtime() -> Runtime:
        runtime = await Runtime.open(settings)
        await runtime.engine.dispose()
        return dataclasses.replace(runtime, engine=create_engine(unmigrated))

    server = TestServer(build_web_app(settings, open_runtime=open_runtime), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/readyz")) as response:
            assert response.status == 503
            body = await response.json()
    finally:
        await server.close()
    assert body["status"] == "not ready"
    assert "db upgrade" in body["reason"]


async def test_resident_gets_the_greeting_through_the_webhook(
    fake: FakeBotApi, server: TestServer, database_url: str
) -> None:
    nora = fake.user(3001, "Nora", language_code="en")
    update = await nora.send_text("/start")
    assert await fake.deliver_webhook(update) == 200
    await nora.wait_for_message(containing("What do you want to do?"))
    assert fake.pending_updates == 0
    assert await processed_updates(database_url) == 1


async def test_an_update_delivered_twice_is_handled_once(
    fake: FakeBotApi, server: TestServer, database_url: str
) -> None:
    nora = fake.user(3002, "Nora", language_code="en")
    update = await nora.send_text("/start")
    assert await fake.deliver_webhook(update) == 200
    await nora.wait_for_message(containing("What do you want to do?"))
    # Telegram did not see the answer (say, a timeout) and delivers the same update again.
    assert await fake.deliver_webhook(update) == 200
    follow_up = await nora.send_text("/help")
    assert await fake.deliver_webhook(follow_up) == 200
    await nora.wait_for_message()  # the answer to /help: everything before it has been sent
    greetings = [m for m in nora.sent() if m.text and "What do you want to do?" in m.text]
    assert len(greetings) == 1
    assert await processed_updates(database_url) == 2


async def test_a_request_on_a_wrong_path_is_not_found_and_not_processed(
    fake: FakeBotApi, server: TestServer, database_url: str
) -> None:
    update = await fake.user(3003, "Piet").send_text("/start")
    async with aiohttp.ClientSession() as session:
        for path in ("/telegram/0123456789abcdef", "/telegram/" + SECRET, "/bot", "/"):
            async with session.post(
                server.make_url(path), json=update, headers={SECRET_HEADER: SECRET}
            ) as response:
                assert response.status == 404, path
    assert await processed_updates(database_url) == 0


async def test_a_request_without_the_secret_header_is_refused_and_not_processed(
    fake: FakeBotApi, server: TestServer, database_url: str
) -> None:
    piet = fake.user(3004, "Piet")
    update = await piet.send_text("/start")
    url = server.make_url(webhook_path(SECRET))
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}):
            async with session.post(url, json=update, headers=headers) as response:
                assert response.status == 401, headers
        async with session.post(url, data=b"{not json", headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 400
    assert await processed_updates(database_url) == 0
    assert piet.sent() == []


async def test_an_unreachable_database_asks_telegram_to_deliver_again(
    fake: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    settings = webhook_settings(fake, database_url)
    # A database file in a directory that does not exist: every connection fails.
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'bot.db'}"

    async def open_runtime() -> Runtime:
        runtime = await Runtime.open(settings)
        await runtime.engine.dispose()
        broken = create_engine(unreachable)
        runtime.sessions.configure(bind=broken)  # the dispatcher's and the outbox's sessions
        return dataclasses.replace(runtime, engine=broken)

    server = TestServer(build_web_app(settings, open_runtime=open_runtime), host="127.0.0.1")
    await server.start_server()
    try:
        update = await fake.user(3005, "Piet").send_text("/start")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.make_url(webhook_path(SECRET)), json=update, headers={SECRET_HEADER: SECRET}
            ) as response,
        ):
            assert response.status == 503
    finally:
        await server.close()


async def test_set_url_registers_the_webhook_and_its_secret_with_telegram(fake: FakeBotApi) -> None:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "INITIATIEFBOT_CONFIG": "zutphen",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "webhook",
        "--set-url",
        "http://127.0.0.1:8443/",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    expected = "http://127.0.0.1:8443/telegram/" + webhook_path_secret(SECRET)
    assert expected in stdout.decode()
    assert fake.webhook is not None
    assert fake.webhook.url == expected
    assert fake.webhook.secret_token == SECRET
    assert fake.webhook.allowed_updates == {"message", "edited_message", "callback_query"}
    assert fake.commands("en")  # the command menu is set with the webhook

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "webhook", "--delete", env=env, stdout=asyncio.subprocess.PIPE
    )
    await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    assert fake.webhook is None


def test_the_path_secret_is_not_the_header_secret() -> None:
    assert webhook_path_secret(SECRET) != SECRET
    assert len(webhook_path_secret(SECRET)) == 16
    assert webhook_path(SECRET) == "/telegram/" + webhook_path_secret(SECRET)


def test_webhook_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"TELEGRAM_WEBHOOK_SECRET": SECRET, "PORT": "5000", "WEBHOOK_HOST": "::"})
    assert (settings.telegram_webhook_secret, settings.port, settings.webhook_host) == (SECRET, 5000, "::")
    defaults = Settings.from_env({})
    assert (defaults.telegram_webhook_secret, defaults.port, defaults.webhook_host) == (None, 8080, "0.0.0.0")


@pytest.mark.parametrize(
    ("name", "value"),
    [("TELEGRAM_WEBHOOK_SECRET", "has spaces"), ("TELEGRAM_WEBHOOK_SECRET", "x" * 257), ("PORT", "http")],
)
def test_a_malformed_webhook_setting_is_a_configuration_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_webhook_without_a_secret_says_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-token")
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    assert main(["webhook"]) == 2
    assert "TELEGRAM_WEBHOOK_SECRET is not set" in capsys.readouterr().err


async def test_the_webhook_command_serves_health_checks_on_port(fake: FakeBotApi, database_url: str) -> None:
    await migrate(database_url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "INITIATIEFBOT_CONFIG": "zutphen",
        "PORT": str(port),
        "WEBHOOK_HOST": "127.0.0.1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "webhook", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):  # until it listens; fails after 30 s
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        assert response.status == 200
                        break
                assert process.returncode is None, "initiatiefbot webhook stopped"
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("initiatiefbot webhook did not listen on PORT")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, stderr.decode(errors="replace")
