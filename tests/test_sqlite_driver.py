"""The in-loop SQLite driver: one connection, locks waited for in the loop, checkpoints off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import sqlite_driver
from storage.db import create_engine, session_factory
from storage.migrate import upgrade


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await upgrade(engine)
    yield engine
    await engine.dispose()


def _database(engine: AsyncEngine) -> str:
    database = engine.url.database
    assert database is not None
    return database


async def test_the_default_url_runs_sqlite_in_the_event_loop_on_one_connection(
    sqlite_engine: AsyncEngine,
) -> None:
    assert sqlite_engine.dialect.driver == "initiatiefbot"
    async with sqlite_engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite3.Connection)
        assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 0
    assert sqlite_engine.pool.size() == 1


async def test_transactions_of_one_process_queue_for_the_connection_instead_of_failing(
    sqlite_engine: AsyncEngine,
) -> None:
    sessions = session_factory(sqlite_engine)
    order: list[str] = []
    first_in = asyncio.Event()

    async def first() -> None:
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO processed_updates VALUES (1, '2026-11-30 10:00:00')"))
            first_in.set()
            await asyncio.sleep(0)  # the second transaction asks for the connection meanwhile
            await asyncio.sleep(0)
            order.append("first commits")

    async def second() -> None:
        await first_in.wait()
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO processed_updates VALUES (2, '2026-11-30 10:00:00')"))
            order.append("second wrote")

    await asyncio.gather(first(), second())
    assert order == ["first commits", "second wrote"]
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM processed_updates"))).scalar_one() == 2


async def test_a_lock_held_by_another_process_is_waited_for_without_stopping_the_event_loop(
    sqlite_engine: AsyncEngine,
) -> None:
    other = sqlite3.connect(_database(sqlite_engine), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing: the watchdog, a staff command
    sessions = session_factory(sqlite_engine)

    async def write() -> None:
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO processed_updates VALUES (7, '2026-11-30 10:00:00')"))

    task = asyncio.create_task(write())
    ticks = 0
    while ticks < 20:  # the loop keeps running other work while the write waits
        await asyncio.sleep(0.001)
        ticks += 1
    assert not task.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(task, timeout=30)
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM processed_updates"))).scalar_one() == 1


async def test_a_lock_never_released_fails_with_database_is_locked(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "LOCK_TIMEOUT", 0.05)
    other = sqlite3.connect(_database(sqlite_engine), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    sessions = session_factory(sqlite_engine)
    try:
        with pytest.raises(Exception, match="database is locked"):
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with sessions() as session, session.begin():  # and the connection is usable afterwards
        await session.execute(text("INSERT INTO processed_updates VALUES (8, '2026-11-30 10:00:00')"))


async def test_the_write_ahead_log_is_checkpointed_by_a_worker_thread(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "CHECKPOINT_EVERY", 5)
    done = asyncio.Event()
    checkpoints: list[str] = []
    real = sqlite_driver.checkpoint
    loop = asyncio.get_running_loop()

    def spy(database: str) -> None:
        real(database)
        checkpoints.append(database)
        loop.call_soon_threadsafe(done.set)

    monkeypatch.setattr(sqlite_driver, "checkpoint", spy)
    sessions = session_factory(sqlite_engine)
    for update_id in range(10, 16):
        async with sessions() as session, session.begin():
            await session.execute(
                text("INSERT INTO processed_updates VALUES (:id, '2026-11-30 10:00:00')"), {"id": update_id}
            )
    await asyncio.wait_for(done.wait(), timeout=30)
    assert checkpoints == [_database(sqlite_engine)]
