"""Which DATABASE_URL works, and when one does not, one sentence that says why and what would.

Platforms hand out ``postgres://`` and ``postgresql://`` URLs, and SQLite is often written
``sqlite:///bot.db``; those are taken with the async driver (asyncpg, aiosqlite) and a note. A URL
that names another driver or database, or points at a server, database or directory that is not
there, is refused before anything else starts.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from storage.db import create_engine

EXAMPLES = "postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///path/bot.db"
ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}
# How long the start-up check waits for PostgreSQL to answer.
CONNECT_TIMEOUT = 10.0
# PostgreSQL's SQLSTATEs for a missing database and a refused login.
_NO_DATABASE = "3D000"
_LOGIN_REFUSED = ("28000", "28P01")


class DatabaseUrlError(Exception):
    """DATABASE_URL cannot work; the message says why in one line, for the person who set it."""

    def advice(self) -> str:
        """The line to print: what is wrong, and what a correct URL looks like."""
        return f"DATABASE_URL: {self}. A correct one looks like {EXAMPLES}"


def async_url(raw: str) -> tuple[str, str | None]:
    """``raw`` as the async URL the bot uses, and a note when it was rewritten to get there."""
    try:
        url = make_url(raw.strip())
    except sa_exc.ArgumentError:
        raise DatabaseUrlError("it is not a database URL") from None
    backend = "postgresql" if url.get_backend_name() == "postgres" else url.get_backend_name()
    shown = url.render_as_string(hide_password=True)
    if backend not in ASYNC_DRIVERS:
        raise DatabaseUrlError(f"{shown}: '{backend}' databases are not supported")
    driver = ASYNC_DRIVERS[backend]
    if url.drivername == f"{backend}+{driver}":
        return url.render_as_string(hide_password=False), None
    if "+" in url.drivername:
        raise DatabaseUrlError(
            f"{shown}: the driver '{url.get_driver_name()}' is not async; use {backend}+{driver}://"
        )
    fixed = url.set(drivername=f"{backend}+{driver}")
    note = f"DATABASE_URL {shown} is read as {fixed.render_as_string(hide_password=True)}"
    return fixed.render_as_string(hide_password=False), note


async def check_reachable(raw: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`DatabaseUrlError` when the database behind ``raw`` (an async URL) cannot be used.

    A SQLite file is not created here (a command that stops early leaves no file behind); only its
    directory is checked.
    """
    url = make_url(raw)
    if url.get_backend_name() == "sqlite":
        _check_sqlite_path(url)
        return
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with asyncio.timeout(connect_timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        raise DatabaseUrlError(f"PostgreSQL at {where} did not answer within {connect_timeout:g} s") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DatabaseUrlError(f"cannot reach PostgreSQL at {where} ({reason})") from None
    except sa_exc.DBAPIError as exc:
        raise DatabaseUrlError(_refusal(exc, url, where)) from None
    finally:
        await engine.dispose()


def _refusal(exc: sa_exc.DBAPIError, url: URL, where: str) -> str:
    state = _sqlstate(exc)
    if state == _NO_DATABASE:
        return f"the database '{url.database}' does not exist on {where}"
    if state in _LOGIN_REFUSED:
        return f"PostgreSQL at {where} refused the login of '{url.username}': {_first_line(exc.orig)}"
    return f"cannot use PostgreSQL at {where}: {_first_line(exc.orig)}"


def _sqlstate(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


def _check_sqlite_path(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode") == "memory":
        return
    path = Path(database).expanduser()
    directory = path.parent.resolve()
    if not directory.is_dir():
        raise DatabaseUrlError(
            f"the directory {directory} for the SQLite file {path.name} does not exist; create it first"
        )
    if path.is_dir():
        raise DatabaseUrlError(f"{path} is a directory, not a SQLite file")
    if not os.access(path if path.exists() else directory, os.W_OK):
        raise DatabaseUrlError(f"the SQLite file {path} cannot be written by this user")
