"""A department contact answers in headless Chromium, as from the link in their e-mail: the page, a
mistake and its error summary, then "Ja, onder voorwaarden" and the thanks; axe-core finds no WCAG 2.1
AA violation on any of them, nor on a link that no longer works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.web.site import SITE
from flows.municipality import Contact
from flows.text import t
from storage import departments as store
from tests.browser_support import Browser, assert_accessible, screenshot_dir
from tests.department_support import QUESTION, answer_in_browser, link_of, put_to_department
from tests.web_support import WebWorld, web_world

pytestmark = pytest.mark.timeout(180)


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebWorld]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as world:
        yield world


async def test_a_department_answers_yes_under_conditions_in_the_browser(
    web: WebWorld, browser: Browser, tmp_path: Path
) -> None:
    site = web.client.server.app[SITE]
    broker = await web.add_staff("Bram Bakker", role="broker")
    reference = await web.add_case(
        broker=broker,
        title="Bloembakken aan de Houtwal",
        description="Zes bloembakken langs de stoep, zodat de straat groener en rustiger wordt.",
        own_contribution="Wij planten de bakken en geven ze water.",
        contact_phone="06-98765432",
    )
    await put_to_department(web.runtime.sessions, site.desk, reference, staff_id=broker.id, now=web.clock())
    contact = Contact("Team Verkeer", "verkeer@zutphen.example")
    url = str(
        web.client.make_url(
            await link_of(web.runtime.sessions, site.desk, reference, contact, now=web.clock())
        )
    )

    await browser.open(url)
    main = await browser.text("main")
    assert QUESTION in main and "Bloembakken aan de Houtwal" in main and "06-98765432" not in main
    await assert_accessible(browser, "the answer page")
    await browser.screenshot(screenshot_dir(tmp_path) / "department.png")

    # Conditions without the conditions: the page says so, beside the field and at the top.
    await answer_in_browser(browser, url, "voorwaarden", open_first=False)
    assert await browser.wait_text(".error-summary")
    await assert_accessible(browser, "the answer page with an error")
    await browser.screenshot(tmp_path / "department-error.png")

    conditions = "De bakken staan minstens 1,5 meter van de rijbaan en zijn niet hoger dan 60 cm."
    await answer_in_browser(browser, url, "voorwaarden", conditions, name="Kees de Boer", open_first=False)
    thanks = site.translator.render(
        t("Thank you. Your answer has been passed on to {broker}.", broker="Bram Bakker"), "nl"
    )
    assert thanks in await browser.wait_text("main [role=status]")
    assert conditions in await browser.text("main")
    await assert_accessible(browser, "the answer page after the answer")
    await browser.screenshot(screenshot_dir(tmp_path) / "department-answered.png", height=1100)

    async with web.runtime.sessions() as session:
        question = (await store.questions_of(session, 1))[0]
    assert question.answer_kind == "voorwaarden" and question.answer_text == conditions

    # The broker sees the answer on the staff case page, and revokes Team Verkeer's link there.
    await browser.open(str(web.client.make_url(await web.login_link(broker))))
    await browser.click("main form button")
    await browser.open(str(web.client.make_url(f"/dashboard/cases/{reference}")))
    section = await browser.text("section.case-departments")
    assert conditions in section and "Kees de Boer" in section and contact.email in section
    await assert_accessible(browser, "the case page with its departments")
    await browser.screenshot(screenshot_dir(tmp_path) / "case-departments.png")
    await browser.click("section.case-departments form.revoke button")
    assert await browser.wait_text("main [role=status]")
    await assert_accessible(browser, "the case page after revoking a link")
    async with web.runtime.sessions() as session:
        (link,) = await store.links_of(session, question.initiative_id)
    assert link.revoked_reason == "staff" and link.revoked_by_staff_id == broker.id

    # The revoked link: what happened and what to do, nothing of the case; accessible too.
    await browser.open(url)
    assert "Bloembakken" not in await browser.text("body")
    await assert_accessible(browser, "a revoked link")
