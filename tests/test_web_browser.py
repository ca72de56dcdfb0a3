"""The staff web in headless Chromium, as a coordinator uses it: log in through the bot's link, look,
filter, open a case, reassign it, export; axe-core finds no WCAG 2.1 AA violation on any page."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.web import build_web_app, webhook_path
from bot.web.site import SITE
from storage import people as people_store
from storage import staff as staff_store
from tests.browser_support import Browser, describe, require_browser
from tests.e2e import containing, migrate, settings_for
from tests.fake_bot_api import FakeBotApi
from tests.web_support import Clock

pytestmark = pytest.mark.timeout(180)

SECRET = "browser-webhook-Secret_0123456789"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class LiveSite:
    """The webhook worker (webhook + staff web) on a real port, with the fake Telegram behind it."""

    fake: FakeBotApi
    server: TestServer
    base_url: str
    clock: Clock

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.server.app[SITE].sessions

    async def login_link(self, user_id: int, name: str) -> str:
        """Send /dashboard as this Telegram user and return the link the bot answers with."""
        user = self.fake.user(user_id, name)
        assert await self.fake.deliver_webhook(await user.send_text("/dashboard")) == 200
        message = await user.wait_for_message(containing("/login/"), timeout=30)
        assert message.text is not None
        found = re.search(r"https?://\S+/login/\S+", message.text)
        assert found, message.text
        return found.group(0)


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    require_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chromium = Browser(downloads)
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveSite]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'site.db'}"
    await migrate(database_url)
    clock = Clock()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    async with FakeBotApi() as fake:
        settings = dataclasses.replace(
            settings_for(fake, database_url), telegram_webhook_secret=SECRET, web_base_url=base_url
        )
        server = TestServer(build_web_app(settings, clock=clock), host="127.0.0.1", port=port)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                registered = await session.post(
                    f"{fake.base_url}{fake.token}/setWebhook",
                    json={"url": f"{base_url}{webhook_path(SECRET)}", "secret_token": SECRET},
                )
                assert (await registered.json())["ok"]
            yield LiveSite(fake, server, base_url, clock)
        finally:
            await server.close()


async def add_staff(site: LiveSite, user_id: int, name: str, role: str, wijken: tuple[str, ...] = ()) -> None:
    """A staff member who has opened the bot, as `initiatiefbot staff add` makes one."""
    async with site.sessions() as session, session.begin():
        await people_store.upsert_person(
            session,
            user_id=user_id,
            chat_id=user_id,
            first_name=name,
            telegram_language="nl",
            now=site.clock(),
        )
        await staff_store.add_staff(
            session,
            telegram_user_id=user_id,
            name=name,
            role=role,
            wijken=list(wijken),
            themes=[],
            now=site.clock(),
        )


async def assert_accessible(browser: Browser, page: str) -> None:
    violations = await browser.axe()
    assert not violations, f"axe-core on {page}:\n{describe(violations)}"


async def test_a_coordinator_logs_in_through_the_bots_link(live: LiveSite, browser: Browser) -> None:
    await add_staff(live, 43, "Anna de Vries", "coordinator")
    link = await live.login_link(43, "Anna")
    assert link.startswith(live.base_url + "/login/")
    await browser.open(link)
    assert "Inloggen" in await browser.text("main")
    await assert_accessible(browser, "the login page")
    await browser.click("main form button")
    assert await browser.url() == live.base_url + "/dashboard"
    assert "Anna de Vries" in await browser.text("header")
    await assert_accessible(browser, "the overview")
    # The link was used: opening it again says so, and offers the way to a new one.
    await browser.open(link)
    assert "/dashboard" in await browser.text("main")
    await assert_accessible(browser, "the used-link page")
    await browser.open(live.base_url + "/nowhere")
    await assert_accessible(browser, "the not-found page")
