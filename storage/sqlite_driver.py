"""SQLite for SQLAlchemy's asyncio engine, run in the event loop: one statement, no thread hop.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to a thread of its own and wakes the
event loop for each answer; for the small statements of the hot path that costs several times the work
of the statement itself. Here sqlite3 runs where SQLAlchemy calls it. That is sound because:

- the engine keeps one connection (``storage.db.create_engine``), so transactions queue for it in the
  event loop, never in SQLite's busy handler, which would put the whole loop to sleep;
- a lock held by another process (the watchdog, the staff command) is waited for with
  ``asyncio.sleep`` between tries (``busy_timeout`` is 0 on these connections);
- the write-ahead log is copied back into the database file (a checkpoint, which syncs to disk) by a
  worker thread, not by the committing statement in the loop.

Use it through the URL ``sqlite+initiatiefbot:///path``; ``create_engine`` picks it for
``sqlite+aiosqlite`` URLs too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import exc
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_module
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.pool import ConnectionPoolEntry, Pool, StaticPool
from sqlalchemy.util.concurrency import await_, greenlet_spawn

# How long a statement waits for another process's lock before it fails with "database is locked".
LOCK_TIMEOUT = 10.0
# Commits between two checkpoints of the write-ahead log (by a worker thread).
CHECKPOINT_EVERY = 500
_LOCKED = ("database is locked", "database table is locked")
T = TypeVar("T")


def _locked(error: sqlite3.OperationalError) -> bool:
    return str(error).lower() in _LOCKED


class Cursor:
    """A DBAPI cursor over sqlite3's, with rows read at once (as SQLAlchemy's aiosqlite adapter does)."""

    __slots__ = ("_adapt", "_cursor", "_rows")
    server_side = False

    def __init__(self, adapt: Connection) -> None:
        self._adapt = adapt
        self._cursor = adapt.driver_connection.cursor()
        self._rows: collections.deque[Any] = collections.deque()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Any:
        cursor = self._cursor
        values = () if parameters is None else parameters
        # Awaited even when done at once: SQLAlchemy's asyncio API wants each execute to await.
        await_(self._adapt.attempt(lambda: cursor.execute(operation, values)))
        if cursor.description is not None:
            self._rows = collections.deque(cursor.fetchall())
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> Any:
        cursor = self._cursor
        await_(self._adapt.attempt(lambda: cursor.executemany(operation, seq_of_parameters)))
        return self

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self._cursor.arraysize if size is None else size
        rows = self._rows
        return [rows.popleft() for _ in range(min(size, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's asyncio results; the rows are already read."""

    def setinputsizes(self, *inputsizes: Any) -> None:
        """Not used by SQLite."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Not used by SQLite."""


class Connection(AdaptedConnection):
    """A sqlite3 connection adapted for SQLAlchemy's asyncio engine, used in the event loop."""

    __slots__ = ("_checkpointing", "_commits", "_database", "dbapi", "outer")

    def __init__(self, dbapi: Any, connection: sqlite3.Connection, database: str) -> None:
        self.dbapi = dbapi
        self._connection = connection
        self._database = database
        self._commits = 0
        self._checkpointing = False
        # True while ``WriterPool.writing`` runs a transaction on this connection: SQLAlchemy's
        # connections joined to it neither begin nor end it.
        self.outer = False

    @property
    def driver_connection(self) -> sqlite3.Connection:
        return self._connection  # type: ignore[no-any-return]

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value

    def cursor(self, server_side: bool = False) -> Cursor:
        return Cursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection.create_function(*args, **kw)

    def commit(self) -> None:
        if self.outer:
            return
        self._connection.commit()
        self.committed()

    def rollback(self) -> None:
        if self.outer:
            return
        self._connection.rollback()

    async def begin_immediate(self) -> None:
        """Start a write transaction, waiting (in the loop) while another process writes."""
        connection = self._connection
        await self.attempt(lambda: connection.execute("BEGIN IMMEDIATE"))

    def committed(self) -> None:
        """Count a commit; every ``CHECKPOINT_EVERY`` commits a worker thread checkpoints the log."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._database and not self._checkpointing:
            self._commits = 0
            self._start_checkpoint()

    def close(self) -> None:
        self._connection.close()

    def terminate(self) -> None:
        self._connection.close()

    async def attempt(self, operation: Callable[[], T]) -> T:
        """Run a sqlite3 call; while another process holds the database's lock, try it again after a
        pause in the event loop, up to ``LOCK_TIMEOUT`` seconds."""
        deadline: float | None = None
        pause = 0.001
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise
                if deadline is None:
                    deadline = time.monotonic() + LOCK_TIMEOUT
                elif time.monotonic() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _start_checkpoint(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._checkpointing = True
        future = loop.run_in_executor(None, checkpoint, self._database)
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if not future.cancelled():
            future.exception()  # a failed checkpoint is tried again after the next batch of commits


def checkpoint(database: str) -> None:
    """Copy the write-ahead log into the database file, without blocking readers or the writer."""
    connection = sqlite3.connect(database, timeout=LOCK_TIMEOUT)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        connection.close()


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop: e.g. the pool closed by the garbage collector
        return None


class WriterPool(StaticPool):
    """The one connection of an in-loop SQLite engine, lent to one task at a time: the others wait for
    it in the event loop. The task holding it may check it out again, so a session can join a
    transaction begun by ``writing``."""

    def __init__(self, *args: Any, timeout: float = 60.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None
        self._depth = 0

    def recreate(self) -> WriterPool:
        self.logger.info("Pool recreating")
        return self.__class__(
            creator=self._creator,
            recycle=self._recycle,
            reset_on_return=self._reset_on_return,
            pre_ping=self._pre_ping,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            _dispatch=self.dispatch,
            dialect=self._dialect,
            timeout=self._timeout,
        )

    def status(self) -> str:
        return f"WriterPool (held by {self._depth} checkouts)"

    async def _acquire(self) -> None:
        if not self._lock.locked():  # free: taken at once, without a task to time the wait
            await self._lock.acquire()
        else:
            try:
                await asyncio.wait_for(self._lock.acquire(), self._timeout)
            except TimeoutError:
                raise exc.TimeoutError(
                    f"the SQLite connection was not free within {self._timeout:.0f} seconds"
                ) from None
        self._holder, self._depth = _current_task(), 1

    def _let_go(self) -> None:
        self._holder, self._depth = None, 0
        self._lock.release()

    def _do_get(self) -> ConnectionPoolEntry:
        task = _current_task()
        if task is not None and task is self._holder:
            self._depth += 1
            return super()._do_get()
        await_(self._acquire())
        try:
            return super()._do_get()
        except BaseException:
            self._let_go()
            raise

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        self._depth -= 1
        if self._depth <= 0:
            self._let_go()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Connection]:
        """One write transaction straight on sqlite3, committed at the end (rolled back on error)."""
        await self._acquire()
        try:
            record = self.__dict__.get("connection")
            if record is None or record.dbapi_connection is None or record._is_hard_or_soft_invalidated():
                record = await greenlet_spawn(StaticPool._do_get, self)
            adapter: Connection = record.dbapi_connection  # type: ignore[assignment]
            await adapter.begin_immediate()
            adapter.outer = True
            try:
                yield adapter
            except BaseException:
                adapter.outer = False
                adapter.driver_connection.rollback()
                raise
            adapter.outer = False
            adapter.driver_connection.commit()
            adapter.committed()
        finally:
            self._let_go()


class _Module(AsyncAdapt_dbapi_module):
    """The DBAPI module SQLAlchemy sees: sqlite3's names, connections that run in the event loop."""

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.sqlite = sqlite3
        self.paramstyle = "qmark"
        self.has_stop = True  # read by the aiosqlite dialect: connections can be terminated
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, database: str, **kw: Any) -> Connection:
        kw.pop("async_creator_fn", None)
        kw.setdefault("check_same_thread", False)  # the pool may close it from another thread at exit
        connection = sqlite3.connect(database, timeout=0, **kw)
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        return Connection(self, connection, "" if in_memory else database)


class SQLiteDialect_inline(SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect with the in-loop driver above."""

    driver = "initiatiefbot"
    supports_statement_cache = True
    has_terminate = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _Module()

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        return None

    @classmethod
    def get_pool_class(cls, url: Any) -> type[Pool]:
        return WriterPool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.driver_connection

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.terminate()


dialect = SQLiteDialect_inline
