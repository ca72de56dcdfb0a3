"""The query plan of a statement, on SQLite and PostgreSQL: to show that a hot query uses its index."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ClauseElement, Executable
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from storage.alerts import DUE_CASES
from storage.departments import DUE_QUESTIONS


class _Explain(Executable, ClauseElement):
    """``EXPLAIN <statement>``, compiled with the statement's own bind parameters and types."""

    inherit_cache = False

    def __init__(self, statement: Any, prefix: str) -> None:
        self.statement = statement
        self.prefix = prefix


@compiles(_Explain)
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{element.prefix} {compiler.process(element.statement, **kw)}"


async def explain(conn: AsyncConnection, statement: Any, params: Mapping[str, Any]) -> str:
    """The plan the database chooses for ``statement`` with ``params``, one node per line."""
    if conn.dialect.name == "sqlite":
        result = await conn.execute(_Explain(statement, "EXPLAIN QUERY PLAN"), dict(params))
        return "\n".join(str(row[-1]) for row in result)
    result = await conn.execute(_Explain(statement, "EXPLAIN"), dict(params))
    return "\n".join(str(row[0]) for row in result)


async def explain_due_cases(conn: AsyncConnection, params: Mapping[str, Any]) -> str:
    """The plan of the watchdog's query for due cases (``now`` and ``limit``; ``after_at``/``after_key``)."""
    statement = DUE_CASES.statement(after="after_at" in params, lock=True)
    return await explain(conn, statement, params)


async def explain_due_questions(conn: AsyncConnection, params: Mapping[str, Any]) -> str:
    """The plan of the watchdog's query for due department questions (the same parameters)."""
    statement = DUE_QUESTIONS.statement(after="after_at" in params, lock=True)
    return await explain(conn, statement, params)
