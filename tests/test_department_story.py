"""The department story end to end, as the people in it live it: the broker asks in Telegram, a real
SMTP server (aiosmtpd) receives the e-mail, headless Chromium opens the link from that e-mail and answers,
and the broker and the initiator hear it over the fake Bot API — twice, with a request for information in
between, answered by the broker and e-mailed with the same link."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from bot.web.standalone import build_site_app
from storage.db import create_engine
from tests.browser_support import Browser, describe
from tests.department_support import answer_in_browser
from tests.e2e import migrate, running_bot, say, settings_for
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage
from tests.smtp_support import Inbox, Received, running
from tests.test_e2e_cases import add_staff, text_of
from tests.test_e2e_departments import put_to_verkeer

pytestmark = pytest.mark.timeout(240)

QUESTION = "Mogen de bankjes op de stoep aan de Houtwal staan?"
VERKEER = "verkeer@zutphen.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def mail_to(inbox: Inbox, address: str, count: int) -> Received:
    """The ``count``-th mail the SMTP server received for ``address`` (waits for it)."""
    for _ in range(300):
        if len(found := inbox.to(address)) >= count:
            return found[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail number {count} to {address}; got {[r.recipients for r in inbox.received]}")


def link_in(mail: Received, base_url: str) -> str:
    body = mail.message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.findall(re.escape(base_url) + r"/afdeling/\S+", body.get_content())
    assert len(found) == 1, body.get_content()
    return found[0]


async def told(user: FakeUser, words: str) -> SentMessage:
    return await user.wait_for_message(lambda m: words in (m.text or ""), timeout=20)


async def test_a_department_answers_from_its_email_and_everyone_hears_what_concerns_them(
    tmp_path: Path, browser: Browser
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'story.db'}"
    await migrate(database_url)
    inbox = Inbox()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with running(inbox) as smtp:
        async with FakeBotApi() as fake:
            settings = {"smtp_url": smtp.url, "web_base_url": base_url}
            # The staff web as its own process (initiatiefbot web) on the same database and mail server.
            site_settings = dataclasses.replace(settings_for(fake, database_url), **settings)
            site = TestServer(build_site_app(site_settings), host="127.0.0.1", port=port)
            await site.start_server()
            bea = fake.user(5301, "Bea", language_code="en")
            anna = fake.user(1401, "Anna", language_code="en")
            await add_staff(database_url, bea.id, "Bea Bakker")
            try:
                async with running_bot(fake, database_url, **settings):
                    reference = await put_to_verkeer(bea, anna, QUESTION)

                    asked = await mail_to(inbox, VERKEER, 1)
                    assert (
                        asked.message["Subject"] == f"Vraag over initiatief {reference}: Bankjes in het park"
                    )
                    assert (
                        asked.message["From"] == "Bewonersinitiatieven Zutphen <initiatieven@zutphen.example>"
                    )
                    link = link_in(asked, base_url)

                    await browser.open(link)
                    page = await browser.text("main")
                    assert QUESTION in page and "Bankjes in het park" in page
                    assert "Anna" not in page  # never the initiator's name or contact details
                    violations = await browser.axe()
                    assert not violations, describe(violations)
                    await answer_in_browser(
                        browser, link, "informatie", "Hoe breed is de stoep daar?", open_first=False
                    )
                    assert "Dank je" in await browser.text("main")

                    message = await told(bea, "We need more information")
                    assert "Hoe breed is de stoep daar?" in text_of(message)
                    assert message.button_labels == ["Answer their question"]
                    heard = await told(anna, "Verkeer has answered")
                    assert "Bea Bakker will discuss it with you." in text_of(heard)
                    assert "stoep" not in text_of(heard)

                    await bea.press_button("Answer their question")
                    await told(bea, "Write your answer to Verkeer's question")
                    await say(bea, "Ongeveer twee meter.", "Sent to Verkeer by e-mail")
                    replied = await mail_to(inbox, VERKEER, 2)
                    assert "Ongeveer twee meter." in replied.message.get_body(("plain",)).get_content()
                    assert link_in(replied, base_url) == link  # the same link

                    await answer_in_browser(
                        browser, link, "nee", "Op de Houtwal mag dat niet volgens de APV.", blocked_by="regel"
                    )
                    assert "Dank je" in await browser.text("main")
                    message = await told(bea, "Verkeer answered about")
                    assert "No" in text_of(message) and "blocker list" in text_of(message)
                    assert message.button_labels == ["Back to the plan", "Rejected", "Ask Verkeer again"]
                    await told(anna, "Verkeer has answered")
            finally:
                await site.close()

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            blocked = (
                (await conn.execute(text("select blocked_by from department_questions"))).scalars().all()
            )
            sent = (
                await conn.execute(text("select count(*) from mail_outbox where status = 'sent'"))
            ).scalar()
    finally:
        await engine.dispose()
    assert list(blocked) == ["regel"]
    assert sent == len(inbox.received) == 2  # each mail once
