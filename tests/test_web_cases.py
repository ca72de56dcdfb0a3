"""The case list and the case page of the staff web: who sees which case, contact details with an audit
trail, and a coordinator's assign, hand-over and reminder reaching the broker in Telegram."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from storage import initiatives as initiatives_store
from storage.tables import audit_log, outbox
from tests.web_support import WebWorld, web_world


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebWorld]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as world:
        yield world


async def page(web: WebWorld, path: str) -> tuple[int, str]:
    response = await web.client.get(path, allow_redirects=False)
    return response.status, await response.text()


async def rows_of(web: WebWorld, stmt: object) -> list[tuple[object, ...]]:
    async with web.runtime.sessions() as session, session.begin():
        conn = await session.connection()
        return [tuple(row) for row in await conn.execute(stmt)]  # type: ignore[arg-type]


def references(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/dashboard/cases/([^"]+)"', html)


async def test_the_list_filters_and_sorts_with_the_sort_announced(web: WebWorld) -> None:
    m = web.municipality
    coordinator = await web.add_staff("Carla", language="en")
    first = await web.add_case(title="Bankjes")
    web.clock.advance(timedelta(hours=1))
    second = await web.add_case(title="Moestuin", wijk_code=m.wijken[1].code)
    await web.login(coordinator)
    status, html = await page(web, "/dashboard/cases")
    assert status == 200
    assert references(html) == [second, first]  # newest first
    assert 'aria-sort="descending"' in html and "2 initiatives" in html
    _, html = await page(web, "/dashboard/cases?sort=reference")
    assert references(html) == [first, second] and 'aria-sort="ascending"' in html
    _, html = await page(web, f"/dashboard/cases?wijk={m.wijken[1].code}")
    assert references(html) == [second]
    assert f"/dashboard/export/cases.csv?wijk={m.wijken[1].code}" in html
    _, html = await page(web, "/dashboard/cases?status=closed")
    assert references(html) == [] and "No initiative matches these filters." in html
    # Contact details never appear in the list.
    assert "Fatima" not in html


async def test_the_list_is_paged(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    for _ in range(51):
        await web.add_case()
    await web.login(coordinator)
    _, html = await page(web, "/dashboard/cases")
    assert len(references(html)) == 50 and "Page 1 of 2" in html
    _, html = await page(web, "/dashboard/cases?page=2")
    assert len(references(html)) == 1 and 'rel="prev"' in html


async def test_the_case_page_shows_the_card_and_the_timeline_newest_first(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    broker = await web.add_staff("Bram", role="broker")
    reference = await web.add_case(broker=broker)
    web.clock.advance(timedelta(days=1))
    async with web.runtime.sessions() as session, session.begin():
        case = await initiatives_store.load_case(session, reference)
        assert case is not None
        await initiatives_store.add_event(
            session,
            case.id,
            kind="note",
            now=web.clock(),
            actor_role="broker",
            staff_id=broker.id,
            note="Belt maandag",
        )
        await initiatives_store.add_event(
            session,
            case.id,
            kind="message_from_resident",
            now=web.clock(),
            actor_role="resident",
            note=None,
            media=initiatives_store.MediaFields("voice", "AwACvoice", seconds=12),
        )
    await web.login(coordinator)
    status, html = await page(web, f"/dashboard/cases/{reference}")
    assert status == 200
    assert "Message from the initiator: 🎤 voice note (0:12)" in html
    assert "Bankjes bij de speeltuin" in html and "Twee bankjes" in html
    assert "Initiative broker Bram, since" in html
    assert "Norm date" in html
    note, submitted = html.index("Internal note: Belt maandag"), html.index('<p class="what">Submitted</p>')
    assert note < submitted  # newest first
    # One entry for the assignment and the status it caused.
    assert '<p class="what">Assigned — Bram</p>' in html and "Initiatiefmakelaar assigned" not in html
    # Contact details only behind the link.
    assert "Fatima el Amrani" not in html and "Show contact details" in html


async def test_contact_details_are_shown_on_request_and_each_view_is_audited(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    reference = await web.add_case(contact_phone="0612345678")
    await web.login(coordinator)
    _, html = await page(web, f"/dashboard/cases/{reference}?contact=1")
    assert "Fatima el Amrani" in html and "0612345678" in html
    entries = await rows_of(web, select(audit_log.c.action, audit_log.c.staff_id, audit_log.c.initiative_id))
    assert [(e[0], e[1]) for e in entries if e[0] == "view_contact"] == [("view_contact", coordinator.id)]


async def test_a_broker_cannot_open_another_brokers_case(web: WebWorld) -> None:
    bram = await web.add_staff("Bram", role="broker", language="en")
    other = await web.add_staff("Olga", role="broker")
    mine = await web.add_case(broker=bram)
    theirs = await web.add_case(broker=other)
    await web.login(bram)
    assert (await page(web, f"/dashboard/cases/{mine}"))[0] == 200
    status, html = await page(web, f"/dashboard/cases/{theirs}")
    assert status == 404 and "Bankjes" not in html
    unknown_status, unknown = await page(web, "/dashboard/cases/INI-2099-9999")
    # The same answer for a case that exists elsewhere and one that does not exist at all.
    assert unknown_status == 404 and unknown.replace("INI-2099-9999", theirs) == html
    assert (await page(web, f"/dashboard/cases/{theirs}/photo"))[0] == 404
    _, listed = await page(web, "/dashboard/cases")
    assert references(listed) == [mine]


async def test_a_wijk_coordinator_cannot_open_another_wijks_case(web: WebWorld) -> None:
    m = web.municipality
    north = await web.add_staff("Noor", wijken=[m.wijken[0].code], language="en")
    await web.add_staff("Sam", wijken=[m.wijken[1].code])
    ours = await web.add_case()
    theirs = await web.add_case(wijk_code=m.wijken[1].code)
    await web.login(north)
    assert (await page(web, f"/dashboard/cases/{ours}"))[0] == 200
    assert (await page(web, f"/dashboard/cases/{theirs}"))[0] == 404
    csrf = await web.csrf(f"/dashboard/cases/{ours}")
    response = await web.client.post(
        f"/dashboard/cases/{theirs}/remind", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 404


async def test_reassigning_on_the_web_sends_the_new_broker_a_telegram_message(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    bram = await web.add_staff("Bram", role="broker")
    olga = await web.add_staff("Olga", role="broker")
    reference = await web.add_case(broker=bram)
    await web.login(coordinator)
    path = f"/dashboard/cases/{reference}"
    _, html = await page(web, path)
    assert "Olga (0 open)" in html and "Hand over" in html
    csrf = await web.csrf(path)
    response = await web.client.post(
        f"{path}/assign",
        data={"csrf": csrf, "broker": str(olga.id), "note": "Zij kent de buurt"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == f"{path}?done=handed_over"
    chats = {row[0]: row[1] for row in await rows_of(web, select(outbox.c.chat_id, outbox.c.payload))}
    assert olga.telegram_user_id in chats  # the new broker: the case card, in Telegram
    assert bram.telegram_user_id in chats  # the broker it leaves hears it too
    assert "Carla" in str(chats[olga.telegram_user_id])
    _, html = await page(web, f"{path}?done=handed_over")
    assert 'role="status"' in html and "new initiative broker" in html
    assert "Initiative broker Olga" in html


async def test_assigning_a_case_without_broker_and_reminding_the_broker(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    bram = await web.add_staff("Bram", role="broker")
    reference = await web.add_case()
    await web.login(coordinator)
    path = f"/dashboard/cases/{reference}"
    csrf = await web.csrf(path)
    response = await web.client.post(f"{path}/remind", data={"csrf": csrf}, allow_redirects=False)
    assert response.headers["Location"] == f"{path}?error=no_broker"
    response = await web.client.post(
        f"{path}/assign", data={"csrf": csrf, "broker": str(bram.id)}, allow_redirects=False
    )
    assert response.headers["Location"] == f"{path}?done=assigned"
    async with web.runtime.sessions() as session, session.begin():
        case = await initiatives_store.load_case(session, reference)
    assert case is not None and case.broker_id == bram.id and case.status == "toegewezen"
    before = len(await rows_of(web, select(outbox.c.id).where(outbox.c.chat_id == bram.telegram_user_id)))
    response = await web.client.post(f"{path}/remind", data={"csrf": csrf}, allow_redirects=False)
    assert response.headers["Location"] == f"{path}?done=reminded"
    after = len(await rows_of(web, select(outbox.c.id).where(outbox.c.chat_id == bram.telegram_user_id)))
    assert after > before


async def test_an_unreachable_broker_is_refused_with_a_message(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    async with web.runtime.sessions() as session, session.begin():
        from storage import staff as staff_store

        ghost = await staff_store.add_staff(
            session, telegram_user_id=999, name="Geest", role="broker", wijken=[], themes=[], now=web.clock()
        )
    reference = await web.add_case()
    await web.login(coordinator)
    path = f"/dashboard/cases/{reference}"
    _, html = await page(web, path)
    assert "Geest" not in html  # not offered: the bot cannot write to them
    csrf = await web.csrf(path)
    response = await web.client.post(
        f"{path}/assign", data={"csrf": csrf, "broker": str(ghost.id)}, allow_redirects=False
    )
    assert response.headers["Location"] == f"{path}?error=unreachable"
    _, html = await page(web, response.headers["Location"])
    assert "The bot cannot reach" in html


async def test_a_broker_sees_no_action_forms_and_cannot_post_them(web: WebWorld) -> None:
    bram = await web.add_staff("Bram", role="broker", language="en")
    await web.add_staff("Olga", role="broker")
    reference = await web.add_case(broker=bram)
    await web.login(bram)
    path = f"/dashboard/cases/{reference}"
    _, html = await page(web, path)
    assert "/assign" not in html and "/remind" not in html
    csrf = await web.csrf(path)
    response = await web.client.post(f"{path}/remind", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 403


async def test_without_telegram_the_page_says_the_photo_is_there(web: WebWorld) -> None:
    coordinator = await web.add_staff("Carla", language="en")
    reference = await web.add_case(photo_file_id="AgACAgQAAxkBAAIB")
    await web.login(coordinator)
    _, html = await page(web, f"/dashboard/cases/{reference}")
    assert "The photo is in Telegram." in html and "/photo" not in html
    response = await web.client.get(f"/dashboard/cases/{reference}/photo")
    assert response.status == 404


class FakeFile:
    file_path = "photos/file_7.jpg"

    async def download_as_bytearray(self) -> bytearray:
        return bytearray(b"\xff\xd8\xff-a-jpeg")


class FakeBot:
    """Telegram's getFile and download, as python-telegram-bot's Bot offers them."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get_file(self, file_id: str) -> FakeFile:
        self.asked.append(file_id)
        return FakeFile()


async def test_the_photo_comes_from_telegram(web: WebWorld) -> None:
    from bot.web.site import SITE

    bot = FakeBot()
    web.client.app[SITE].bot = bot  # type: ignore[assignment,index]
    coordinator = await web.add_staff("Carla", language="en")
    reference = await web.add_case(photo_file_id="AgACAgQAAxkBAAIB")
    await web.login(coordinator)
    _, html = await page(web, f"/dashboard/cases/{reference}")
    assert f'src="/dashboard/cases/{reference}/photo"' in html
    response = await web.client.get(f"/dashboard/cases/{reference}/photo")
    assert response.status == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert await response.read() == b"\xff\xd8\xff-a-jpeg" and bot.asked == ["AgACAgQAAxkBAAIB"]
