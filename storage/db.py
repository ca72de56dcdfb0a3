"""Engine and session setup for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(url: str | URL, **kw: Any) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE.

    Extra keyword arguments go to :func:`sqlalchemy.ext.asyncio.create_async_engine` and win over
    the defaults chosen here.
    """
    url = make_url(url)
    backend = url.get_backend_name()
    # Readable JSON in SQLite files (no \u escapes) and a little less to send to PostgreSQL.
    options: dict[str, Any] = {"json_serializer": _compact_json}
    if backend == "postgresql" and "poolclass" not in kw:
        options.update(
            pool_size=10,
            max_overflow=20,
            pool_timeout=30,
            # Recycle well before typical server/proxy idle timeouts. No pre-ping: it costs a round
            # trip per transaction, and a dead connection invalidates the whole pool on first use.
            pool_recycle=1800,
        )
    if backend == "sqlite":
        # Every session ends in commit or rollback, so the pool's extra rollback when a connection
        # is returned would only cost another round trip to the aiosqlite thread.
        options.update(pool_reset_on_return=None)
    options.update(kw)
    engine = create_async_engine(url, **options)
    if backend == "sqlite":
        _configure_sqlite(engine, in_memory=_is_memory_database(url))
    return engine


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# An execution option of ours: this transaction only reads (on SQLite: a deferred BEGIN).
READ_ONLY = "initiatiefbot_read_only"


@contextlib.asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction only reads: on SQLite it does not queue behind writers."""
    async with sessions() as session:
        await session.connection(execution_options={READ_ONLY: True})
        yield session


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a session maker whose objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    """Tell whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _is_memory_database(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def _configure_sqlite(engine: AsyncEngine, *, in_memory: bool) -> None:
    """Install the connection PRAGMAs and SQLAlchemy-controlled BEGIN IMMEDIATE transactions.

    This is SQLAlchemy's documented recipe for sqlite3/aiosqlite transaction control: the driver stops
    emitting BEGIN itself and SQLAlchemy emits it on every transaction start. IMMEDIATE takes the write
    lock up front, so two writers never both hold a read lock and deadlock on the upgrade; the busy
    timeout makes the second one wait instead of failing.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # a reader in WAL neither waits for nor blocks the writer
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
