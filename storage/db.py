"""Engines, write transactions and read sessions for SQLite (the in-loop driver of
``storage/sqlite_driver.py``) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from storage.sql import Tx
from storage.sqlite_driver import LOCK_TIMEOUT, WriterPool

registry.register("sqlite.initiatiefbot", "storage.sqlite_driver", "SQLiteDialect_inline")
# The in-loop driver (storage/sqlite_driver.py) replaces aiosqlite, which hands every call to a thread.
INLINE_SQLITE_DRIVER = "sqlite+initiatiefbot"


def create_engine(url: str | URL, **kw: Any) -> AsyncEngine:
    """Create an async engine; SQLite gets the in-loop driver, one connection, WAL, foreign keys and
    BEGIN IMMEDIATE.

    Extra keyword arguments go to :func:`sqlalchemy.ext.asyncio.create_async_engine` and win over
    the defaults chosen here.
    """
    url = make_url(url)
    backend = url.get_backend_name()
    if url.drivername == "sqlite+aiosqlite":
        url = url.set(drivername=INLINE_SQLITE_DRIVER)
    # Readable JSON in SQLite files (no \u escapes) and a little less to send to PostgreSQL.
    options: dict[str, Any] = {"json_serializer": _compact_json}
    if backend == "postgresql" and "poolclass" not in kw:
        options.update(
            # Kept open under a steady load: a connection beyond the pool is closed when given back,
            # and opening one costs round trips (and a TLS handshake) on the hot path.
            pool_size=20,
            max_overflow=10,
            pool_timeout=30,
            # Recycle well before typical server/proxy idle timeouts. No pre-ping: it costs a round
            # trip per transaction, and a dead connection invalidates the whole pool on first use.
            pool_recycle=1800,
        )
    if backend == "sqlite":
        # One connection (the driver's WriterPool): SQLite has one writer at a time anyway, and with the
        # in-loop driver a second connection of this process would wait for the first in SQLite's busy
        # handler, asleep with the whole event loop. Transactions queue for the connection in the loop
        # instead. Every session ends in commit or rollback: no extra rollback on return.
        options.update(pool_reset_on_return=None)
    options.update(kw)
    engine = create_async_engine(url, **options)
    if backend == "sqlite":
        in_memory = _is_memory_database(url)
        _configure_sqlite(engine, in_memory=in_memory)
        if engine.dialect.driver == "initiatiefbot" and not in_memory:
            _add_readers(engine, url, options)
    return engine


# Each in-loop SQLite engine's sessions for reading, on connections of their own (see ``reading``).
_readers: weakref.WeakKeyDictionary[Engine, async_sessionmaker[AsyncSession]] = weakref.WeakKeyDictionary()


def _add_readers(engine: AsyncEngine, url: URL, options: dict[str, Any]) -> None:
    """Give the engine a few read-only connections: a reader in WAL mode never waits for the writer."""
    readers = create_async_engine(
        url, **{**options, "poolclass": AsyncAdaptedQueuePool, "pool_size": 4, "max_overflow": 16}
    )
    _configure_sqlite(readers, in_memory=False, query_only=True)
    _readers[engine.sync_engine] = session_factory(readers)

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _dispose_readers(_: Engine) -> None:
        readers.sync_engine.dispose()


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# An execution option of ours: this transaction only reads (on SQLite: a deferred BEGIN).
READ_ONLY = "initiatiefbot_read_only"


@contextlib.asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction only reads: on SQLite it does not queue behind writers."""
    bind = sessions.kw.get("bind")
    if isinstance(bind, AsyncEngine) and (readers := _readers.get(bind.sync_engine)) is not None:
        sessions = readers
    async with sessions() as session:
        await session.connection(execution_options={READ_ONLY: True})
        yield session


@contextlib.asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[Tx, AsyncSession]]:
    """One write transaction: a ``Tx`` for the hot statements (on SQLite they run straight on
    sqlite3) and a session in the same transaction for the rest (it costs nothing until used)."""
    engine: AsyncEngine = sessions.kw["bind"]
    pool = engine.sync_engine.pool
    if isinstance(pool, WriterPool):
        async with pool.writing() as connection:
            # Checks out the connection again in this task (WriterPool allows it) and joins the
            # transaction: it neither begins nor ends it.
            session = AsyncSession(bind=engine, expire_on_commit=False)
            try:
                yield Tx(engine.dialect, connection.driver_connection, session), session
            finally:
                if session.sync_session.in_transaction():
                    await session.close()
        return
    async with engine.begin() as conn, AsyncSession(bind=conn, expire_on_commit=False) as session:
        yield Tx(engine.dialect, None, session, conn), session


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a session maker whose objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    """Tell whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _is_memory_database(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def _configure_sqlite(engine: AsyncEngine, *, in_memory: bool, query_only: bool = False) -> None:
    """Install the connection PRAGMAs and SQLAlchemy-controlled BEGIN IMMEDIATE transactions.

    This is SQLAlchemy's documented recipe for sqlite3/aiosqlite transaction control: the driver stops
    emitting BEGIN itself and SQLAlchemy emits it on every transaction start. IMMEDIATE takes the write
    lock up front, so two writers never both hold a read lock and deadlock on the upgrade; a second
    writer waits for it (in the event loop with the in-loop driver, in the busy handler otherwise)
    instead of failing.
    """

    inline = engine.dialect.driver == "initiatiefbot"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if inline:
                # Locks of other processes are waited for in the event loop (sqlite_driver), and the
                # log is checkpointed by a worker thread, not by a commit in the loop.
                cursor.execute("PRAGMA busy_timeout = 0")
            else:
                cursor.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT * 1000)}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                if inline:
                    cursor.execute("PRAGMA wal_autocheckpoint = 0")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            if query_only:
                cursor.execute("PRAGMA query_only = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if inline and connection.connection.dbapi_connection.outer:  # type: ignore[union-attr]
            return  # joined to a transaction WriterPool.writing began
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # a reader in WAL neither waits for nor blocks the writer
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
