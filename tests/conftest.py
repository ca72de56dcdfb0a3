"""Shared fixtures. The databases: every test that asks for ``engine`` runs on SQLite and on PostgreSQL;
and ``browser``, headless Chromium for the web's tests (skipped without it, unless CI requires it).

PostgreSQL isolation: each test gets its own login role ``t_<hex>`` and a schema of the same name,
owned by that role, with the role's ``search_path`` set to it. The test URL is then just
``postgresql+asyncpg://t_<hex>@host/db``, so code that builds its engine from a URL string needs no
extra settings. Afterwards the schema is dropped with CASCADE and the role removed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import crypto
from storage.db import create_engine
from storage.migrate import upgrade
from tests.browser_support import Browser, require_browser

# As bot.__main__ does: PTB's coming timedelta durations (the outbox handles both kinds).
os.environ.setdefault("PTB_TIMEDELTA", "1")

# The key the tests encrypt contact details with, also for the bots they start as processes.
TEST_CONTACT_KEY = "dGVzdHMtb25seS1jb250YWN0LWtleS0wMDAwMDAwMDA="
os.environ.setdefault(crypto.KEYS_VARIABLE, TEST_CONTACT_KEY)
REAL_KEY_SETUP = crypto.setup


@pytest.fixture(autouse=True)
def contact_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[crypto.Cipher]:
    """Every test encrypts contact details under TEST_CONTACT_KEY, also where it opens a runtime from
    settings without keys (which on PostgreSQL would refuse to start); tests/test_crypto.py calls
    REAL_KEY_SETUP to test the key file and the refusal."""
    cipher = REAL_KEY_SETUP([TEST_CONTACT_KEY], "sqlite://")

    def test_setup(configured: list[str], database_url: str) -> crypto.Cipher:
        return REAL_KEY_SETUP(configured or [TEST_CONTACT_KEY], database_url)

    monkeypatch.setattr(crypto, "setup", test_setup)
    yield cipher
    crypto.install(None)


DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _asyncpg_args(url: URL) -> dict[str, object]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


async def _probe(url: URL) -> None:
    conn = await asyncpg.connect(**_asyncpg_args(url), timeout=5)
    await conn.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> URL:
    """The URL of a PostgreSQL role that may create roles and schemas; skips when unreachable."""
    url = make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    try:
        # In a thread of its own: this may be requested from inside an async fixture's running loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _probe(url)).result()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL at {url.render_as_string(hide_password=True)} is not usable: {exc!r}"
        if os.environ.get("INITIATIEFBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _create_isolated_schema(admin: URL) -> URL:
    name = f"t_{uuid.uuid4().hex}"
    # Only needed when the server wants passwords; the admin URL having one is the hint.
    password = secrets.token_hex(16) if admin.password else None
    conn = await asyncpg.connect(**_asyncpg_args(admin))
    try:
        role = _quote(name)
        login = "LOGIN" if password is None else f"LOGIN PASSWORD '{password}'"
        await conn.execute(f"CREATE ROLE {role} {login}")
        await conn.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        await conn.execute(f"ALTER ROLE {role} SET search_path = {role}")
    finally:
        await conn.close()
    return admin.set(drivername="postgresql+asyncpg", username=name, password=password)


async def _drop_isolated_schema(admin: URL, name: str) -> None:
    conn = await asyncpg.connect(**_asyncpg_args(admin))
    try:
        # A test that forgot to dispose an engine must not keep the role alive.
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        await conn.execute(f"DROP SCHEMA IF EXISTS {_quote(name)} CASCADE")
        await conn.execute(f"DROP ROLE IF EXISTS {_quote(name)}")
    finally:
        await conn.close()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for this test: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'initiatiefbot.db'}"
        return
    admin: URL = request.getfixturevalue("postgres_admin_url")
    url = await _create_isolated_schema(admin)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        assert url.username is not None
        await _drop_isolated_schema(admin, url.username)


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``database_url`` with all migrations applied."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Debian's headless Chromium through chromedriver, downloading into the test's folder."""
    require_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chromium = Browser(downloads)
    try:
        yield chromium
    finally:
        await chromium.close()


# The modules whose tests take longest (processes, browsers, the two-worker crowd), first in line: with
# several test processes the long ones then run beside the short ones instead of after them.
SLOW_FIRST = (
    "test_webhook_workers.py",
    "test_e2e_restart.py",
    "test_graceful_stop.py",
    "test_e2e_retention.py",
    "test_web_browser.py",
    "test_web_department_browser.py",
    "test_e2e_watchdog.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the slow modules' tests first, in the order above; the rest keep their order."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: within a module, and for all other tests, nothing moves
