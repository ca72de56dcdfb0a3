"""The staff web in headless Chromium, as a coordinator uses it: log in through the bot's link, look,
filter, record what was done about a blocker, open a case, reassign it, export; axe-core finds no WCAG 2.1
AA violation on any page."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openpyxl
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import demo
from bot.web import build_web_app, webhook_path
from bot.web.site import SITE
from flows.municipality import Municipality
from storage import staff as staff_store
from tests.browser_support import Browser, assert_accessible, screenshot_dir
from tests.e2e import containing, migrate, settings_for
from tests.fake_bot_api import FakeBotApi
from tests.web_support import Clock, add_opened_staff

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

    @property
    def municipality(self) -> Municipality:
        return self.server.app[SITE].municipality

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


async def test_a_coordinator_logs_in_through_the_bots_link(live: LiveSite, browser: Browser) -> None:
    await add_opened_staff(
        live.sessions, "Anna de Vries", telegram_id=43, role="coordinator", now=live.clock()
    )
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


async def test_a_coordinator_filters_opens_a_case_reassigns_it_and_exports(
    live: LiveSite, browser: Browser, tmp_path: Path
) -> None:
    shots = screenshot_dir(tmp_path)
    # Staff open the bot first, so Telegram lets it write to them: were the worker's watchdog to alert
    # on a demo case before that, Telegram would refuse and the bot would hand their cases back.
    for user_id, name in (*demo.BROKERS, (demo.DEMO_COORDINATOR_ID, "Anna de Vries")):
        assert await live.fake.deliver_webhook(await live.fake.user(user_id, name).send_text("/start")) == 200
    async with live.sessions() as session, session.begin():
        await demo.seed(session, live.municipality, live.clock())
    await browser.open(await live.login_link(demo.DEMO_COORDINATOR_ID, "Anna"))
    await browser.click("main form button")

    # The overview of the whole municipality.
    assert await browser.url() == live.base_url + "/dashboard"
    await assert_accessible(browser, "the overview")
    await browser.screenshot(shots / "overview.png", height=1700)
    departments = await browser.text("section[aria-labelledby=departments]")
    assert all(d.name in departments for d in live.municipality.departments)
    await browser.open(live.base_url + "/dashboard#departments")
    await browser.screenshot(shots / "overview-departments.png", height=1000)

    # The blocker list: the coordinator records what was done about the first open blocker.
    await browser.click("header nav a[href='/dashboard/blokkades']")
    await assert_accessible(browser, "the blocker list")
    await browser.click("details.blocker-record summary", navigates=False)
    await browser.fill("escalated_to", "wethouder Jansen")
    await browser.fill("outcome", "Zij bespreekt het dinsdag in het college.")
    await browser.click("form.blocker-form button[type=submit]")
    assert "/dashboard/blokkades?done=recorded#blocker-" in await browser.url()
    assert await browser.text("main [role=status]")
    assert "Zij bespreekt het dinsdag in het college." in await browser.text("main")
    await assert_accessible(browser, "the blocker list after recording an action")
    await browser.open(live.base_url + "/dashboard/blokkades?done=recorded")
    await browser.screenshot(shots / "blockers.png", height=1500)

    # The case list, filtered to one wijk's open cases.
    await browser.open(live.base_url + "/dashboard/cases")
    await assert_accessible(browser, "the case list")
    wijk = live.municipality.wijken[1]
    await browser.select("wijk", wijk.code)
    await browser.select("status", "open")
    await browser.click("form.filters button[type=submit]")
    assert f"wijk={wijk.code}" in await browser.url() and "status=open" in await browser.url()
    wijken_shown = set(await browser.all_text("table tbody tr td:nth-of-type(2)"))
    assert wijken_shown == {wijk.name}, wijken_shown
    listed = int(re.search(r"(\d+)", await browser.text(".cases-count")).group(1))  # type: ignore[union-attr]
    assert listed > 0
    await assert_accessible(browser, "the filtered case list")
    await browser.screenshot(shots / "cases.png", height=1300)

    # Sorted by days in status, most first.
    await browser.click_link("Werkdagen")
    await assert_accessible(browser, "the sorted case list")

    # Both exports of this list, read back.
    await browser.click_link("CSV", navigates=False)
    exported = await browser.wait_for_download(".csv")
    rows = list(csv.reader(io.StringIO(exported.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert len(rows) - 1 == listed and all(wijk.name in row for row in rows[1:])
    await browser.click_link("Excel", navigates=False)
    workbook = openpyxl.load_workbook(await browser.wait_for_download(".xlsx"), read_only=True)
    sheet_rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert len(sheet_rows) - 1 == listed
    assert {row[0] for row in sheet_rows[1:]} == {row[0] for row in rows[1:]}

    # A case page, its contact details (audited), and a reassignment to another broker.
    await browser.open(live.base_url + "/dashboard/cases?" + f"wijk={wijk.code}&status=open")
    await browser.click("table tbody th a")
    case_url = await browser.url()
    reference = case_url.rsplit("/", 1)[1]
    await assert_accessible(browser, "a case page")
    await browser.screenshot(shots / "case.png")
    await browser.click_link("Contactgegevens")
    assert "06-" in await browser.text("main")
    await assert_accessible(browser, "a case page with contact details")
    current = await browser.text("section[aria-labelledby=h-now]")
    target = next((user_id, name) for user_id, name in demo.BROKERS if name not in current)
    async with live.sessions() as session:
        target_row = await staff_store.load_staff(session, target[0])
    assert target_row is not None
    await browser.select("broker", str(target_row.id))
    await browser.click("form[action$='/assign'] button[type=submit]")
    assert "Telegram" in await browser.text("main [role=status]")
    assert target[1] in await browser.text("section[aria-labelledby=h-now]")
    await assert_accessible(browser, "a case page after reassignment")
    message = await live.fake.user(target[0]).wait_for_message(containing(reference), timeout=30)
    assert message.text is not None and reference in message.text

    # The overview of one wijk, then log out: the pages a stranger sees after that are accessible too.
    await browser.open(live.base_url + "/dashboard")
    await browser.select("wijk", wijk.code)
    await browser.click("form.filters button[type=submit]")
    assert f"wijk={wijk.code}" in await browser.url()
    assert wijk.name in await browser.text("main")
    await assert_accessible(browser, "the overview of one wijk")
    await browser.click("header form button")
    assert "/login" in await browser.url()
    await assert_accessible(browser, "the logged-out page")
    await browser.open(live.base_url + "/dashboard/cases")
    assert "/dashboard" in await browser.text("main") and reference not in await browser.text("body")
    await assert_accessible(browser, "the please-log-in page")
