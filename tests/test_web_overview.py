"""The overview per wijk on the staff web: figures per scope and filter, charts with tables beside them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio

from tests.web_support import WebWorld, web_world


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebWorld]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as world:
        yield world


async def test_a_coordinator_sees_the_overview_with_charts_and_tables(web: WebWorld) -> None:
    anna = await web.add_staff("Anna de Vries")
    broker = await web.add_staff("Bram Broker", role="broker")
    await web.add_case(title="Bankjes in het park")
    web.clock.advance(timedelta(days=1))
    await web.add_case(title="Moestuin", broker=broker)
    web.clock.advance(timedelta(days=30))
    await web.login(anna)

    response = await web.client.get("/dashboard")

    html = await response.text()
    assert response.status == 200, html
    print(html)
