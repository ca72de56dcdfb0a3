"""The staff web on a temporary database, driven through aiohttp's test client: staff, cases, log-in."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Runtime
from bot.settings import Settings
from bot.web.site import COOKIE
from bot.web.standalone import build_site_app
from flows.lifecycle import Status
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.staff import StaffRow
from tests.factories import new_initiative

# A Tuesday morning, Amsterdam time 10:00.
NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The site's clock; tests move it."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


async def add_opened_staff(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    *,
    telegram_id: int,
    role: str,
    wijken: Collection[str] = (),
    language: str = "nl",
    now: datetime,
) -> StaffRow:
    """A staff member who has opened the bot (so Telegram can reach them), as `staff add` makes one."""
    async with sessions() as session, session.begin():
        await people_store.upsert_person(
            session,
            user_id=telegram_id,
            chat_id=telegram_id,
            first_name=name.split()[0],
            telegram_language=language,
            now=now,
        )
        return await staff_store.add_staff(
            session,
            telegram_user_id=telegram_id,
            name=name,
            role=role,
            wijken=list(wijken),
            themes=[],
            now=now,
        )


@dataclass
class WebWorld:
    client: TestClient
    runtime: Runtime
    clock: Clock
    _next_user: list[int] = field(default_factory=lambda: [500])

    @property
    def municipality(self) -> Any:
        return self.runtime.municipality

    async def add_staff(
        self,
        name: str,
        *,
        role: str = "coordinator",
        telegram_id: int | None = None,
        wijken: Collection[str] = (),
        language: str = "nl",
    ) -> StaffRow:
        """A staff member who has opened the bot (so Telegram can reach them)."""
        if telegram_id is None:
            self._next_user[0] += 1
            telegram_id = self._next_user[0]
        return await add_opened_staff(
            self.runtime.sessions,
            name,
            telegram_id=telegram_id,
            role=role,
            wijken=wijken,
            language=language,
            now=self.clock(),
        )

    async def add_case(self, *, broker: StaffRow | None = None, **changes: Any) -> str:
        """A submitted initiative in this municipality (Fatima's, unless ``changes`` say otherwise);
        with ``broker`` it is assigned (status toegewezen). Returns its reference."""
        m = self.municipality
        changes.setdefault("wijk_code", m.wijken[0].code)
        changes.setdefault("theme_code", m.themes[0].code)
        now = self.clock()
        async with self.runtime.sessions() as session, session.begin():
            created = await initiatives_store.create_initiative(
                session,
                dataclasses.replace(
                    new_initiative(**changes), municipality_code=m.code, prefix=m.reference_prefix
                ),
                now,
            )
            if broker is not None:
                await initiatives_store.assign(
                    session, created.id, broker_id=broker.id, by_staff_id=None, note=None, now=now
                )
                await initiatives_store.change_status(
                    session,
                    created.id,
                    status=Status.TOEGEWEZEN.value,
                    now=now,
                    actor_role="system",
                    actor_user_id=None,
                    staff_id=None,
                    note=None,
                    department=None,
                )
        return created.reference

    async def login_link(self, staff: StaffRow) -> str:
        """The path of a fresh one-time login link, as /dashboard in the bot makes it."""
        async with self.runtime.sessions() as session, session.begin():
            url = await self.runtime.dispatcher.casework.login_url(session, staff.id, self.clock())
        path = re.sub(r"^https?://[^/]+", "", url)
        assert path.startswith("/login/"), url
        return path

    async def login(self, staff: StaffRow) -> None:
        """Log ``staff`` in on this client: open the link, press the button."""
        path = await self.login_link(staff)
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        response = await self.client.post(path, allow_redirects=False)
        assert response.status == 303, await response.text()

    def logout_cookies(self) -> None:
        self.client.session.cookie_jar.clear()

    def session_cookie(self) -> str | None:
        for cookie in self.client.session.cookie_jar:
            if cookie.key == COOKIE:
                return cookie.value
        return None

    async def csrf(self, path: str = "/dashboard") -> str:
        """The CSRF token in the forms of a page."""
        html = await (await self.client.get(path)).text()
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, "no CSRF token on " + path
        return found.group(1)


@asynccontextmanager
async def web_world(database_url: str, **settings: Any) -> AsyncIterator[WebWorld]:
    """The staff web on ``database_url`` (migrated here), with a test clock and a logged-out client."""
    clock = Clock()
    config = Settings(database_url=database_url, **settings)
    runtime = await Runtime.open(config, clock=clock)
    try:
        client = TestClient(TestServer(build_site_app(config, runtime=runtime), host="127.0.0.1"))
        await client.start_server()
        try:
            yield WebWorld(client, runtime, clock)
        finally:
            await client.close()
    finally:
        await runtime.close()
