"""Where the staff web is served: beside the polling bot when PORT is set, on its own with
``initiatiefbot web`` (with a printed login link, and demo data on request)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import re
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from bot import demo
from bot.app import Runtime
from bot.polling import run_polling
from bot.settings import Settings, resolve_config_path
from bot.web.limits import start
from bot.web.standalone import build_site_app, fill_demo, print_login_link
from bot.web.webhook import limits_of
from tests.e2e import migrate, settings_for
from tests.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_serves_the_staff_web_on_port_when_port_is_set(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await migrate(database_url)
    port = _free_port()
    async with FakeBotApi() as fake:
        settings = dataclasses.replace(
            settings_for(fake, database_url), port=port, port_set=True, webhook_host="127.0.0.1"
        )
        running = asyncio.ensure_future(run_polling(settings, stop_signals=(signal.SIGUSR2,)))
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/login") as response:
                            assert response.status == 200
                            assert "/dashboard" in await response.text()
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the staff web never answered beside `run`")
                async with session.get(f"http://127.0.0.1:{port}/dashboard") as response:
                    assert response.status == 401
        finally:
            os.kill(os.getpid(), signal.SIGUSR2)
            await asyncio.wait_for(running, 30)
    # Stopped: the port is free again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'web.db'}",
        config_path=resolve_config_path("zutphen"),
        web_base_url="http://localhost:9999",
    )


async def test_login_link_on_the_command_line_is_refused_for_someone_who_is_not_staff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await print_login_link(_settings(tmp_path), 43) == 2
    assert "initiatiefbot staff add" in capsys.readouterr().err


async def test_demo_data_and_a_login_link_for_the_demo_coordinator(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    out = io.StringIO()
    await fill_demo(settings, out=out)
    assert "240 initiatives of Zutphen" in out.getvalue()
    await fill_demo(settings, out=out)  # never on top of data that is there
    assert "already holds initiatives" in out.getvalue()
    out = io.StringIO()
    assert await print_login_link(settings, demo.DEMO_COORDINATOR_ID, out=out) == 0
    link = re.search(r"http://localhost:9999/login/(\S+)", out.getvalue())
    assert link and "Anna de Vries" in out.getvalue()
    runtime = await Runtime.open(settings)
    try:
        async with runtime.engine.connect() as conn:
            statuses = dict(
                (await conn.execute(text("SELECT status, count(*) FROM initiatives GROUP BY 1"))).all()
            )
            questions = dict(
                (
                    await conn.execute(text("SELECT state, count(*) FROM department_questions GROUP BY 1"))
                ).all()
            )
            late = (
                await conn.execute(
                    text("SELECT count(*) FROM department_questions WHERE NOT answered_within_norm")
                )
            ).scalar_one()
            blocked = (
                await conn.execute(
                    text("SELECT count(*) FROM department_questions WHERE blocked_by IS NOT NULL")
                )
            ).scalar_one()
            actions = (await conn.execute(text("SELECT count(*), sum(resolved) FROM blocker_actions"))).one()
    finally:
        await runtime.close()
    # A municipality's mix: cases in every stage, some realised, some stopped or rejected.
    assert sum(statuses.values()) == 240
    assert {"gerealiseerd", "bij_gemeente", "gestopt", "afgewezen"} <= statuses.keys()
    # Departments answered (some late), a few times "nee" blocked by a rule or mandate, some acted on.
    assert questions["open"] == statuses["bij_gemeente"] and questions["answered"] > 0 and late > 0
    assert blocked >= 2 and actions[0] >= 2 and actions[1] >= 1


async def test_the_access_log_never_shows_a_login_links_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(_settings(tmp_path), port=_free_port())
    runtime = await Runtime.open(settings)
    try:
        runner, _ = await start(
            build_site_app(settings, runtime=runtime),
            host="127.0.0.1",
            port=settings.port,
            limits=limits_of(settings),
        )
        try:
            with caplog.at_level(logging.INFO, logger="aiohttp.access"):
                async with aiohttp.ClientSession() as session:
                    for path in ("/login/SecretToken123", "/login"):
                        async with session.get(f"http://127.0.0.1:{settings.port}{path}") as response:
                            assert response.status in (200, 410)
        finally:
            await runner.cleanup()
    finally:
        await runtime.close()
    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert any("GET /login/(hidden) " in line for line in lines), lines
    assert any("GET /login " in line for line in lines), lines
    assert not any("SecretToken123" in line for line in lines)
