"""What the benchmarks share: a routed municipality and a count of logged errors."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from flows.municipality import Municipality
from storage import repository
from storage.db import create_engine, session_factory
from storage.migrate import upgrade


async def prepare_database(database_url: str, municipality: Municipality) -> None:
    """Migrate; add two brokers per wijk and a coordinator, so submissions are routed as in production."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        wijken = [w.code for w in municipality.wijken]
        async with session_factory(engine)() as session, session.begin():
            for user_id, name in ((900_001, "Anna de Vries"), (900_002, "Bram Bakker")):
                await repository.add_staff(
                    session,
                    telegram_user_id=user_id,
                    name=name,
                    role="broker",
                    wijken=wijken,
                    themes=[],
                    now=now,
                )
            await repository.add_staff(
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
