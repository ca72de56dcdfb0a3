"""Department questions in tests: put a case to a department as a broker does, get a contact's link, and
answer on the page, through aiohttp's test client or in headless Chromium."""

from __future__ import annotations

import re
from datetime import date, datetime

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.departments import DepartmentDesk
from flows.lifecycle import Status
from flows.municipality import Contact
from storage import initiatives as initiatives_store
from tests.browser_support import Browser

QUESTION = "Mogen er twee bankjes op de stoep aan de Houtwal, naast de speeltuin?"


async def put_to_department(
    sessions: async_sessionmaker[AsyncSession],
    desk: DepartmentDesk,
    reference: str,
    *,
    department: str = "verkeer",
    question: str = QUESTION,
    staff_id: int | None = None,
    now: datetime,
) -> None:
    """Move the case to bij_gemeente with ``department`` and ask it ``question`` (e-mails queued)."""
    async with sessions() as session, session.begin():
        row = await initiatives_store.load_case(session, reference, lock=True)
        assert row is not None
        await initiatives_store.change_status(
            session,
            row.id,
            status=Status.BIJ_GEMEENTE.value,
            now=now,
            actor_role="broker",
            actor_user_id=None,
            staff_id=staff_id,
            note=None,
            department=department,
        )
        moved = await initiatives_store.load_case_by_id(session, row.id)
        assert moved is not None
        case = await desk.view(session, moved)
        await desk.ask(session, case, department=department, question=question, staff_id=staff_id, now=now)


async def link_of(
    sessions: async_sessionmaker[AsyncSession],
    desk: DepartmentDesk,
    reference: str,
    contact: Contact,
    *,
    department: str = "verkeer",
    now: datetime,
) -> str:
    """The contact's personal link to the case (the one their e-mail has), as a path on the site."""
    async with sessions() as session, session.begin():
        row = await initiatives_store.load_case(session, reference)
        assert row is not None
        url = await desk.link_url(
            session, initiative_id=row.id, department=department, contact=contact, now=now
        )
    return re.sub(r"^https?://[^/]+", "", url)


def form_token_of(html: str) -> str:
    found = re.search(r'name="formtoken" value="([^"]+)"', html)
    assert found, "no answer form on the page"
    return found.group(1)


async def answer_with_client(
    client: TestClient, path: str, kind: str, text: str = "", **fields: str
) -> tuple[int, str, str | None]:
    """Open the page, fill in the form and send it as a browser would: (status, body, Location)."""
    html = await (await client.get(path)).text()
    form = {"formtoken": form_token_of(html), "kind": kind, "text": text, **fields}
    response = await client.post(path, data=form, allow_redirects=False)
    return response.status, await response.text(), response.headers.get("Location")


async def answer_in_browser(
    browser: Browser,
    url: str,
    kind: str,
    text: str = "",
    *,
    blocked_by: str | None = None,
    promised_on: date | None = None,
    forward_to: str | None = None,
    name: str | None = None,
    open_first: bool = True,
) -> None:
    """Answer a department's question on its page in Chromium, as a person does: choose the answer
    (``flows.department.AnswerKind`` value), fill in what goes with it, send. Waits for the next page."""
    if open_first:
        await browser.open(url)
    await browser.click(f"#kind-{kind}", navigates=False)
    if blocked_by is not None:
        await browser.click(f"#blocked-{blocked_by or 'anders'}", navigates=False)
    if promised_on is not None:
        # Chromium's date field takes the digits in the locale's order (nl: day, month, year).
        await browser.fill("promised_on", promised_on.strftime("%d%m%Y"))
    if forward_to is not None:
        await browser.select("forward_to", forward_to)
    if text:
        await browser.fill("text", text)
    if name is not None:
        await browser.fill("name", name)
    await browser.click(".dept-form button[type=submit]")
