"""Logging in to the staff web: one-time links, signed sessions, log-out, CSRF and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from bot.web.site import COOKIE
from flows.events import Event, EventKind
from tests.web_support import WebWorld, web_world

STAFF_PAGES = (
    "/dashboard",
    "/dashboard/cases",
    "/dashboard/cases/INI-2026-0001",
    "/dashboard/export/cases.csv",
    "/dashboard/export/cases.xlsx",
    "/dashboard/export/council.csv",
    "/dashboard/export/council.xlsx",
)


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebWorld]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as world:
        yield world


def dashboard_command(user_id: int) -> Event:
    """``/dashboard`` typed by this Telegram user in their private chat with the bot."""
    return Event(
        kind=EventKind.COMMAND,
        user_id=user_id,
        chat_id=user_id,
        command="dashboard",
        text="/dashboard",
        private_chat=True,
        language_code="nl",
    )


@pytest.mark.parametrize("path", STAFF_PAGES)
async def test_no_staff_page_or_export_opens_without_a_session(web: WebWorld, path: str) -> None:
    await web.add_case()
    response = await web.client.get(path, allow_redirects=False)
    assert response.status == 401
    text = await response.text()
    assert "/dashboard" in text and "Fatima" not in text and "Bankjes" not in text


async def test_the_login_link_logs_in_once_and_the_session_opens_the_dashboard(web: WebWorld) -> None:
    anna = await web.add_staff("Anna de Vries")
    path = await web.login_link(anna)
    # Opening the link (or Telegram's preview of it) only shows a button: the link still works.
    assert (await web.client.get(path)).status == 200
    assert (await web.client.get(path)).status == 200
    response = await web.client.post(path, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["max-age"] == str(8 * 3600)
    assert not cookie["secure"]  # served over plain http here; Secure over https (next test)
    page = await web.client.get("/dashboard")
    assert page.status == 200 and "Anna de Vries" in await page.text()
    # Used: a second press, or someone else with the same link, gets nowhere.
    web.logout_cookies()
    again = await web.client.post(path, allow_redirects=False)
    assert again.status == 410 and COOKIE not in again.cookies
    assert (await web.client.get("/dashboard")).status == 401


async def test_the_cookie_is_secure_when_the_site_is_served_over_https(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    async with web_world(url, web_base_url="https://initiatieven.example.nl") as web:
        anna = await web.add_staff("Anna de Vries")
        path = await web.login_link(anna)
        response = await web.client.post(path, allow_redirects=False)
        assert response.cookies[COOKIE]["secure"]


async def test_a_login_link_older_than_15_minutes_is_refused(web: WebWorld) -> None:
    anna = await web.add_staff("Anna de Vries")
    path = await web.login_link(anna)
    web.clock.advance(timedelta(minutes=15, seconds=1))
    page = await web.client.get(path)
    assert page.status == 410 and "/dashboard" in await page.text()
    assert (await web.client.post(path, allow_redirects=False)).status == 410
    assert (await web.client.get("/dashboard")).status == 401


async def test_an_unknown_login_link_is_refused(web: WebWorld) -> None:
    assert (await web.client.post("/login/made-up-token", allow_redirects=False)).status == 410


async def test_a_forged_or_tampered_session_cookie_is_refused(web: WebWorld) -> None:
    anna = await web.add_staff("Anna de Vries")
    await web.login(anna)
    real = web.session_cookie()
    assert real is not None
    session_id, _, mac = real.rpartition(".")
    forged = (
        f"{session_id}.{'0' * len(mac)}",  # the right id, a made-up signature
        f"{session_id[:-1]}x.{mac}",  # another id under the real signature
        "anything",
        "",
    )
    for value in forged:
        web.logout_cookies()
        web.client.session.cookie_jar.update_cookies({COOKIE: value})
        assert (await web.client.get("/dashboard")).status == 401, value


async def test_a_session_ends_after_8_hours(web: WebWorld) -> None:
    await web.login(await web.add_staff("Anna de Vries"))
    web.clock.advance(timedelta(hours=7, minutes=59))
    assert (await web.client.get("/dashboard")).status == 200
    web.clock.advance(timedelta(minutes=2))
    assert (await web.client.get("/dashboard")).status == 401


async def test_log_out_ends_the_session_for_good(web: WebWorld) -> None:
    await web.login(await web.add_staff("Anna de Vries"))
    old = web.session_cookie()
    csrf = await web.csrf()
    response = await web.client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert (await web.client.get("/dashboard")).status == 401
    # The old cookie, kept by someone, is no good either.
    web.client.session.cookie_jar.update_cookies({COOKIE: old or ""})
    assert (await web.client.get("/dashboard")).status == 401


async def test_a_form_without_the_session_csrf_token_is_refused(web: WebWorld) -> None:
    await web.login(await web.add_staff("Anna de Vries"))
    for data in ({}, {"csrf": "wrong"}):
        response = await web.client.post("/logout", data=data, allow_redirects=False)
        assert response.status == 403
    assert (await web.client.get("/dashboard")).status == 200  # still logged in
    csrf = await web.csrf()
    other_site = await web.client.post(
        "/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}, allow_redirects=False
    )
    assert other_site.status == 403


async def test_a_removed_staff_member_is_logged_out(web: WebWorld) -> None:
    from storage import staff as staff_store

    anna = await web.add_staff("Anna de Vries")
    await web.login(anna)
    async with web.runtime.sessions() as session, session.begin():
        await staff_store.remove_staff(session, telegram_user_id=anna.telegram_user_id, now=web.clock())
    assert (await web.client.get("/dashboard")).status == 401


async def test_every_page_carries_a_content_security_policy_without_scripts(web: WebWorld) -> None:
    await web.login(await web.add_staff("Anna de Vries"))
    for path in ("/dashboard", "/login", "/nowhere", "/static/site.css"):
        response = await web.client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy, path
        assert "frame-ancestors 'none'" in policy and response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (await web.client.get("/dashboard")).headers["Cache-Control"] == "no-store"


async def test_dashboard_in_the_bot_sends_staff_a_one_time_link_without_personal_data(
    web: WebWorld,
) -> None:
    anna = await web.add_staff("Anna de Vries", telegram_id=43)
    handled = await web.runtime.dispatcher.handle(dashboard_command(43), update_id=1)
    texts = [str(row.payload.get("text", "")) for row in handled.outbox]
    link = next(word for text in texts for word in text.split() if "/login/" in word)
    assert "Anna" not in link and "43" not in link.split("/login/")[0]
    path = link[link.index("/login/") :]
    response = await web.client.post(path, allow_redirects=False)
    assert response.status == 303
    assert "Anna de Vries" in await (await web.client.get("/dashboard")).text()
    # A resident who tries it gets no link.
    handled = await web.runtime.dispatcher.handle(dashboard_command(77), update_id=2)
    assert all("/login/" not in str(row.payload.get("text", "")) for row in handled.outbox)
    assert anna.name == "Anna de Vries"


async def test_the_pages_follow_the_staff_members_language(web: WebWorld) -> None:
    await web.login(await web.add_staff("Anna de Vries", language="nl"))
    assert "Uitloggen" in await (await web.client.get("/dashboard")).text()
    web.logout_cookies()
    await web.login(await web.add_staff("Jane Doe", language="en-GB"))
    page = await (await web.client.get("/dashboard")).text()
    assert "Log out" in page and 'lang="en"' in page and "Uitloggen" not in page
    # A stranger's pages follow the browser's language.
    web.logout_cookies()
    english = await web.client.get("/login", headers={"Accept-Language": "en-US,en;q=0.8"})
    assert "How do I log in?" in await english.text()
    dutch = await web.client.get("/login", headers={"Accept-Language": "nl-NL"})
    assert "Hoe log ik in?" in await dutch.text()
