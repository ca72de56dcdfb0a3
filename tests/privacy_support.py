"""Helpers for privacy tests: look for a person's data in every table and column of the database."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from storage.db import create_engine
from storage.models import Base


def _as_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def find_everywhere(database_url: str, needles: Iterable[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, value) whose stored value contains one of ``needles`` (case-insensitive),
    read raw from each table of the schema (JSON as its text, numbers as digits)."""
    wanted = [n.lower() for n in needles if n]
    found: list[tuple[str, str, str]] = []
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = await conn.execute(select(*table.c))
                for row in rows:
                    for column, value in zip(table.c.keys(), row, strict=True):
                        if value is None:
                            continue
                        shown = _as_text(value)
                        if any(n in shown.lower() for n in wanted):
                            found.append((table.name, column, shown[:200]))
    finally:
        await engine.dispose()
    return found
