"""SQL helpers the storage modules share: row columns, the session's connection, dialect upserts.

Every storage function works inside the caller's transaction and never commits.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Row, Table, bindparam, exc, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def columns(table: Table, row_type: type) -> list[Any]:
    """The table's columns in the order of the dataclass fields, so rows map positionally."""
    return [table.c[field.name] for field in dataclasses.fields(row_type)]


async def connection(session: Db) -> tuple[AsyncConnection, str]:
    """The connection of a session or transaction (or the connection itself) and its dialect's name."""
    conn = session if isinstance(session, AsyncConnection) else await session.connection()
    return conn, conn.dialect.name


class DueRange:
    """Rows of ``table`` whose ``moment`` is before a cutoff (or at it, ``inclusive``), oldest first, a
    batch at a time: a range scan over an index that starts with ``moment``, paged on by the row
    comparison (moment, key) with the last batch's row. ``where`` narrows it to a partial index's rows
    (written as the index's own predicate, so SQLite sees that the partial index applies). Locking takes
    the rows FOR UPDATE SKIP LOCKED, so several workers on PostgreSQL take different rows and a row being
    changed right now waits for the next sweep (SQLite leaves the clause out: BEGIN IMMEDIATE serialises
    writers)."""

    def __init__(
        self,
        table: Table,
        moment: Any,
        key: Any,
        columns: Sequence[Any],
        where: Sequence[Any] = (),
        *,
        inclusive: bool = False,
        cutoff_name: str = "cutoff",
    ) -> None:
        self.moment, self.key = moment, key
        self._cutoff_name = cutoff_name  # the cutoff's bind parameter, for EXPLAIN by name
        cutoff = bindparam(cutoff_name, type_=moment.type)
        due = (
            select(*columns)
            .where(moment <= cutoff if inclusive else moment < cutoff, *where)
            .order_by(moment, key)
            .limit(bindparam("limit"))
        )
        after = due.where(
            tuple_(moment, key)
            > tuple_(bindparam("after_at", type_=moment.type), bindparam("after_key", type_=key.type))
        )
        self._statements = {
            (False, False): due,
            (False, True): due.with_for_update(skip_locked=True),
            (True, False): after,
            (True, True): after.with_for_update(skip_locked=True),
        }

    def statement(self, *, after: bool = False, lock: bool = True) -> Any:
        """The statement behind :meth:`fetch`, for EXPLAIN in tests and the benchmarks."""
        return self._statements[(after, lock)]

    async def rows(
        self,
        session: AsyncSession,
        *,
        cutoff: Any,
        limit: int,
        after: tuple[Any, Any] | None = None,
        lock: bool = True,
        **params: Any,
    ) -> list[Row[Any]]:
        """Up to ``limit`` rows before ``cutoff``; ``after`` is the (moment, key) of the last row of the
        previous batch."""
        conn = await session.connection()
        values: dict[str, Any] = {self._cutoff_name: cutoff, "limit": limit, **params}
        if after is not None:
            values.update(after_at=after[0], after_key=after[1])
        return list(await conn.execute(self.statement(after=after is not None, lock=lock), values))

    async def fetch(
        self,
        session: AsyncSession,
        *,
        cutoff: Any,
        limit: int,
        after: tuple[Any, Any] | None = None,
        lock: bool = True,
        **params: Any,
    ) -> list[tuple[Any, ...]]:
        """:meth:`rows` as plain tuples; their first two columns are the moment and the key."""
        found = await self.rows(session, cutoff=cutoff, limit=limit, after=after, lock=lock, **params)
        return [tuple(row) for row in found]


class DueQueue(DueRange):
    """The rows of a table whose ``next_alert_at`` has come, earliest first (the watchdog's passes), over
    an index on (next_alert_at, id)."""

    def __init__(self, table: Table, columns: Sequence[Any]) -> None:
        super().__init__(table, table.c.next_alert_at, table.c.id, columns, inclusive=True, cutoff_name="now")


def insert(dialect: str, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT for the given dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert support for {dialect}")


def statuses(statuses: Collection[str]) -> list[str]:
    """Statuses as a list for an expanding IN parameter; a lone string is refused, not read as letters."""
    if isinstance(statuses, str):
        raise TypeError(f"expected a collection of statuses, not the string {statuses!r}")
    return [str(status) for status in statuses]


# --- the hot path on SQLite ------------------------------------------------------------------------
# SQLAlchemy's execution of a cached statement costs several times the statement itself on SQLite. The
# hot statements (a few per Telegram update) are compiled once by SQLAlchemy, with its type processing
# (timestamps, JSON), and run on the in-loop driver's sqlite3 connection directly.


class Tx:
    """A write transaction: on SQLite its sqlite3 connection (``raw``) for the hot statements; else
    the transaction's connection. ``session`` is on the same transaction, for everything else."""

    __slots__ = ("_conn", "dialect", "raw", "session")

    def __init__(
        self,
        dialect: Dialect,
        raw: sqlite3.Connection | None,
        session: AsyncSession,
        conn: AsyncConnection | None = None,
    ) -> None:
        self.dialect = dialect
        self.raw = raw
        self.session = session
        self._conn = conn

    async def connection(self) -> AsyncConnection:
        """A SQLAlchemy connection in this transaction."""
        if self._conn is None:
            self._conn = await self.session.connection()
        return self._conn


Db = AsyncSession | AsyncConnection | Tx


def dialect_name(db: Db) -> str:
    """The name of the database's dialect ("sqlite", "postgresql"), without a round trip."""
    if isinstance(db, AsyncSession):
        bind = db.bind
        assert bind is not None
        return bind.dialect.name
    return db.dialect.name


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    statement: Any  # kept alive, so its id stays its own
    sql: str
    names: tuple[str, ...]
    binds: tuple[Callable[[Any], Any] | None, ...]
    defaults: dict[str, Any]
    results: tuple[Callable[[Any], Any] | None, ...]


_compiled: dict[tuple[int, tuple[str, ...] | None], _Compiled] = {}


def _compile(statement: Any, dialect: Dialect, column_keys: tuple[str, ...] | None) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("the hot path passes every column; this statement would fill some in Python")
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors
    results = tuple(
        column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
    )
    return _Compiled(
        statement,
        compiled.string,
        names,
        tuple(processors.get(name) for name in names),
        {name: bind.value for name, bind in compiled.binds.items()},
        results,
    )


async def fetch(
    db: Db, statement: Any, params: Mapping[str, Any], *, insert: bool = False
) -> list[tuple[Any, ...]]:
    """Run a Core statement and return its rows; on SQLite straight on the in-loop connection.

    ``insert``: an INSERT, whose column list follows the keys of ``params`` (which must name every
    column that has a default)."""
    if isinstance(db, Tx) and db.raw is not None:
        sqlite3_connection, dialect = db.raw, db.dialect
    else:
        conn = db if isinstance(db, AsyncConnection) else await db.connection()
        sqlite3_connection, dialect = _sqlite3_connection(conn), conn.dialect
        if sqlite3_connection is None:
            return [tuple(row) for row in await conn.execute(statement, dict(params))]
    compiled = _compiled_for(statement, dialect, tuple(params) if insert else None)
    values = _bind(compiled, params)
    try:
        rows = sqlite3_connection.execute(compiled.sql, values).fetchall()
    except sqlite3.Error as error:  # as SQLAlchemy would: IntegrityError, OperationalError, …
        raise exc.DBAPIError.instance(compiled.sql, values, error, sqlite3.Error) from error
    results = compiled.results
    if rows and any(results):
        return [
            tuple(v if p is None or v is None else p(v) for v, p in zip(row, results, strict=True))
            for row in rows
        ]
    return rows


async def run_many(db: Db, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run a Core statement (no RETURNING) once per parameter set; on SQLite in one sqlite3 call."""
    if not rows:
        return
    raw = db.raw if isinstance(db, Tx) else None
    if raw is None:
        conn, _ = await connection(db)
        await conn.execute(statement, [dict(row) for row in rows])
        return
    compiled = _compiled_for(statement, db.dialect, None)
    values = [_bind(compiled, row) for row in rows]
    try:
        raw.executemany(compiled.sql, values)
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(compiled.sql, values, error, sqlite3.Error) from error


def _compiled_for(statement: Any, dialect: Dialect, column_keys: tuple[str, ...] | None) -> _Compiled:
    key = (id(statement), column_keys)
    compiled = _compiled.get(key)
    if compiled is None or compiled.statement is not statement:
        compiled = _compiled[key] = _compile(statement, dialect, column_keys)
    return compiled


def _bind(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    """The statement's parameters in order, through SQLAlchemy's type processing."""
    defaults = compiled.defaults
    values = []
    try:
        for name, process in zip(compiled.names, compiled.binds, strict=True):
            value = params[name] if name in params else defaults[name]
            values.append(value if process is None or value is None else process(value))
    except Exception as error:  # as SQLAlchemy reports a value it cannot store
        raise exc.StatementError(str(error), compiled.sql, dict(params), error) from error
    return values


def _sqlite3_connection(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under the in-loop driver, inside the connection's transaction."""
    if conn.dialect.driver != "initiatiefbot":
        return None
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return driver if isinstance(driver, sqlite3.Connection) else None
