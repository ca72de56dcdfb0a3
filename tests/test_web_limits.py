"""The webhook's HTTP server bounds how long a request may take to arrive and how many connections it holds.

Each test runs the real server on 127.0.0.1 with small limits and talks to it over raw sockets. Pass or
fail never depends on the machine's speed: a connection must close long (10 s) after its limit (0.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.settings import ConfigError, Settings
from bot.web import SECRET_HEADER, build_web_app, limits_of, webhook_path
from bot.web.limits import Limits, start
from tests.e2e import migrate, settings_for
from tests.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(60)

SECRET = "test-webhook-Secret_0123456789"
LIMIT = 0.5  # seconds for the request head and for the body
BOUND = 10.0  # a connection held longer than this was not cut off by the limit


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@contextlib.asynccontextmanager
async def serving(fake: FakeBotApi, tmp_path: Path, limits: Limits) -> AsyncIterator[int]:
    """The webhook app within ``limits`` on a free port of 127.0.0.1; yields the port."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await migrate(database_url)
    settings = dataclasses.replace(
        settings_for(fake, database_url),
        telegram_webhook_secret=SECRET,
        webhook_header_timeout=limits.header_timeout,
        webhook_body_timeout=limits.body_timeout,
        webhook_max_connections=limits.max_connections,
    )
    assert limits_of(settings) == limits
    runner, site = await start(build_web_app(settings), host="127.0.0.1", port=0, limits=limits)
    try:
        yield site.port
    finally:
        await runner.cleanup()


async def talk(
    port: int, head: bytes, body: bytes = b"", *, trickle: float | None = None
) -> tuple[bytes, float]:
    """Send ``head`` (one byte per ``trickle`` seconds, if given) and ``body``, then read until the server
    closes; returns what it answered and how long it kept the connection."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()

    async def send() -> None:
        with contextlib.suppress(OSError):
            if trickle is None:
                writer.write(head + body)
                await writer.drain()
                return
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(trickle)

    sender = asyncio.create_task(send())
    try:
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(BOUND):
                answer = await reader.read()  # until the server closes the connection
    finally:
        sender.cancel()
        writer.close()
    return answer, loop.time() - started


def post_head(path: str, length: int, secret: str = SECRET) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bot\r\n{SECRET_HEADER}: {secret}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def healthz(port: int) -> bytes:
    answer, _ = await talk(port, b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
    return answer


async def test_connections_that_send_their_headers_byte_by_byte_are_closed_after_the_header_timeout(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    head = b"POST " + webhook_path(SECRET).encode() + b" HTTP/1.1\r\nHost: bot\r\nX-Padding: " + b"a" * 200
    async with serving(fake, tmp_path, Limits(header_timeout=LIMIT, max_connections=100)) as port:
        results = await asyncio.gather(*(talk(port, head, trickle=0.05) for _ in range(30)))
        for answer, held in results:
            assert held < BOUND and answer == b""
        assert (await healthz(port)).startswith(b"HTTP/1.1 200")


async def test_an_idle_connection_is_closed_after_the_header_timeout(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    async with serving(fake, tmp_path, Limits(header_timeout=LIMIT)) as port:
        answer, held = await talk(port, b"")
    assert held < BOUND and answer == b""


async def test_a_second_request_trickled_on_a_kept_alive_connection_is_cut_off_too(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n"
    async with serving(fake, tmp_path, Limits(header_timeout=LIMIT)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(first)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            started = asyncio.get_running_loop().time()
            with contextlib.suppress(OSError):
                async with asyncio.timeout(BOUND):
                    for byte in b"GET /healthz HTTP/1.1\r\nHost: bot\r\nX-Padding: " + b"a" * 300:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        if reader.at_eof() or await _eof_within(reader, 0.05):
                            break
            assert asyncio.get_running_loop().time() - started < BOUND
        finally:
            writer.close()


async def _eof_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            return await reader.read(1) == b""
    return False


async def test_a_stalled_webhook_body_gets_408_and_the_connection_closes(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    async with serving(fake, tmp_path, Limits(body_timeout=LIMIT)) as port:
        answer, held = await talk(port, post_head(webhook_path(SECRET), 1000), b'{"update_id": 1')
    assert held < BOUND
    assert answer.startswith(b"HTTP/1.1 408")


async def test_a_stalled_body_the_server_does_not_read_is_dropped_after_the_body_timeout(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    async with serving(fake, tmp_path, Limits(body_timeout=LIMIT)) as port:
        wrong_secret, held = await talk(port, post_head(webhook_path(SECRET), 1000, "wrong"), b"{")
        assert held < BOUND and wrong_secret.startswith(b"HTTP/1.1 401")
        wrong_path, held = await talk(port, post_head("/telegram/0123456789abcdef", 1000), b"{")
        assert held < BOUND and wrong_path.startswith(b"HTTP/1.1 404")


async def test_a_ten_megabyte_body_gets_413(fake: FakeBotApi, tmp_path: Path) -> None:
    async with serving(fake, tmp_path, Limits(body_timeout=LIMIT)) as port:
        size = 10 * 1024**2
        answer, held = await talk(port, post_head(webhook_path(SECRET), size), b"[" + b" " * (2 * 1024**2))
    assert held < BOUND
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


async def test_connections_beyond_the_limit_are_refused_with_503_until_one_closes(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    async with serving(fake, tmp_path, Limits(header_timeout=30, max_connections=3)) as port:
        held: list[asyncio.StreamWriter] = []
        for _ in range(3):  # three keep-alive connections, each answered once and then left open
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            held.append(writer)
        refused, took = await talk(port, b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
        assert took < BOUND
        assert refused.startswith(b"HTTP/1.1 503") and b"Connection: close" in refused
        held.pop().close()
        async with asyncio.timeout(BOUND):  # until the server has seen the close
            while not (answer := await healthz(port)).startswith(b"HTTP/1.1 200"):
                assert answer.startswith(b"HTTP/1.1 503")
        for writer in held:
            writer.close()


def test_the_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"WEBHOOK_HEADER_TIMEOUT": "2.5", "WEBHOOK_BODY_TIMEOUT": "30", "WEBHOOK_MAX_CONNECTIONS": "40"}
    )
    assert limits_of(settings) == Limits(header_timeout=2.5, body_timeout=30.0, max_connections=40)
    assert limits_of(Settings.from_env({})) == Limits(
        header_timeout=10.0, body_timeout=10.0, max_connections=100
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_HEADER_TIMEOUT", "0"),
        ("WEBHOOK_HEADER_TIMEOUT", "nan"),
        ("WEBHOOK_BODY_TIMEOUT", "soon"),
        ("WEBHOOK_MAX_CONNECTIONS", "0"),
        ("WEBHOOK_MAX_CONNECTIONS", "many"),
    ],
)
def test_a_malformed_limit_is_a_configuration_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
