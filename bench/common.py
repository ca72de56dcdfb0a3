"""What the benchmarks share: a routed municipality, a throwaway PostgreSQL database (and the options
that choose it), the database's counts of what got through, and a count of logged errors."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import func, make_url, select

from flows.municipality import Municipality
from storage import crypto, tables
from storage import people as people_store
from storage import staff as staff_store
from storage.db import create_engine, session_factory
from storage.migrate import upgrade

# The key the benchmarks encrypt contact details with (storage.crypto): their Settings carry it, and the
# bots they start as processes find it in the environment.
BENCH_CONTACT_KEYS = tuple(os.environ.setdefault(crypto.KEYS_VARIABLE, crypto.new_key()).split(","))
crypto.setup(BENCH_CONTACT_KEYS, "sqlite://")  # for what a benchmark writes before it opens a runtime

# The server a benchmark makes its throwaway PostgreSQL database on.
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backends`` (SQLite, PostgreSQL or both) and ``--postgres-url``, as every database benchmark
    takes them."""
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="sqlite, postgresql or both (default)"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="a role that may create databases: a throwaway one is made, and dropped afterwards "
        f"(default {DEFAULT_POSTGRES_URL})",
    )


@contextlib.asynccontextmanager
async def throwaway_postgres(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server of ``admin_url`` (a role that may create databases), dropped
    afterwards; yields its SQLAlchemy URL. Raises OSError, TimeoutError or asyncpg's error when the
    server cannot be reached."""
    admin = make_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connect = {
        "host": admin.host or "127.0.0.1",
        "port": admin.port or 5432,
        "user": admin.username,
        "password": admin.password,
        "database": admin.database or "postgres",
    }
    conn = await asyncio.wait_for(asyncpg.connect(**connect), 10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(**connect)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@dataclass(frozen=True)
class Counts:
    """What got through, as the database tells: initiatives, claimed updates, outbox rows by status."""

    initiatives: int
    updates_claimed: int
    outbox: dict[str, int]


async def database_counts(database_url: str) -> Counts:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            initiatives = await conn.scalar(select(func.count()).select_from(tables.initiatives))
            processed = await conn.scalar(select(func.count()).select_from(tables.processed_updates))
            rows = await conn.execute(
                select(tables.outbox.c.status, func.count()).group_by(tables.outbox.c.status)
            )
            outbox = {str(status): int(n) for status, n in rows}
    finally:
        await engine.dispose()
    return Counts(int(initiatives or 0), int(processed or 0), outbox)


async def prepare_database(database_url: str, municipality: Municipality) -> None:
    """Migrate; add two brokers per wijk and a coordinator, so submissions are routed as in production."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        wijken = [w.code for w in municipality.wijken]
        async with session_factory(engine)() as session, session.begin():
            for user_id, name in ((900_001, "Anna de Vries"), (900_002, "Bram Bakker")):
                # They opened the bot once (as an invitation link does): only then do they get cases.
                await people_store.upsert_person(
                    session,
                    user_id=user_id,
                    chat_id=user_id,
                    first_name=name,
                    telegram_language="nl",
                    now=now,
                )
                await staff_store.add_staff(
                    session,
                    telegram_user_id=user_id,
                    name=name,
                    role="broker",
                    wijken=wijken,
                    themes=[],
                    now=now,
                )
            await staff_store.add_staff(
                session,
                telegram_user_id=900_003,
                name="Cor Dinator",
                role="coordinator",
                wijken=[],
                themes=[],
                now=now,
            )
    finally:
        await engine.dispose()


def run_report(main: Coroutine[Any, Any, int]) -> int:
    """Run a benchmark's main coroutine; a run during which an error was logged is not valid (exit 1)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    code = asyncio.run(main)
    if errors.count:
        print(f"{errors.count} errors were logged during the benchmark", file=sys.stderr)
        return code or 1
    return code


class ErrorCount(logging.Handler):
    """Counts error records: a failed update or send is logged, so the run is not valid."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
