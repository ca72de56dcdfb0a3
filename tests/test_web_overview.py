"""The overview per wijk on the staff web: what each viewer's figures count, the filters, and pages that
need no script (charts as SVG with their numbers in tables beside them)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio

from tests.web_support import WebWorld, web_world


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebWorld]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as world:
        yield world


def section(html: str, anchor: str) -> str:
    """The part of the page under the heading with id ``anchor``."""
    start = html.index(f'<section class="figure" aria-labelledby="{anchor}">')
    return html[start : html.index("</section>", start)]


def open_total(html: str) -> int:
    found = re.search(
        r'<tfoot><tr><th scope="row">Total</th><td class="num">([\d,.]+)</td>', section(html, "open")
    )
    assert found, section(html, "open")
    return int(found.group(1).replace(",", ""))


async def two_wijken(web: WebWorld) -> dict[str, str]:
    """Two coordinators with a wijk each and cases in both, old enough to be stalled."""
    m = web.municipality
    one, two = m.wijken[0].code, m.wijken[1].code
    broker = await web.add_staff("Bram Broker", role="broker", language="en")
    web.clock.advance(timedelta(days=-60))
    refs = {
        "one-a": await web.add_case(title="Bankjes", wijk_code=one, broker=broker),
        "one-b": await web.add_case(title="Moestuin", wijk_code=one),
        "two-a": await web.add_case(title="Speeltuin", wijk_code=two, broker=broker),
    }
    web.clock.advance(timedelta(days=60))
    return {"one": one, "two": two, **refs}


async def test_a_wijk_coordinator_sees_only_the_figures_of_their_wijk(web: WebWorld) -> None:
    w = await two_wijken(web)
    anna = await web.add_staff("Anna de Vries", wijken=[w["one"]], language="en")
    await web.add_staff("Carla Coördinator", wijken=[w["two"]], language="en")
    await web.login(anna)

    html = await (await web.client.get("/dashboard")).text()

    assert open_total(html) == 2
    stalled = section(html, "stalled")
    assert f'href="/dashboard/cases/{w["one-a"]}"' in stalled
    assert f'href="/dashboard/cases/{w["one-b"]}"' in stalled
    assert w["two-a"] not in html and "Speeltuin" not in html
    new = section(html, "new")
    assert re.search(r'<tfoot><tr><th scope="row">Total</th><td class="num">2</td>', new)

    # Asking for the other wijk shows nothing of it either.
    other = await (await web.client.get(f"/dashboard?wijk={w['two']}")).text()
    assert open_total(other) == 0 and w["two-a"] not in other


async def test_a_coordinator_without_wijken_sees_everything(web: WebWorld) -> None:
    w = await two_wijken(web)
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.login(cor)

    html = await (await web.client.get("/dashboard")).text()

    assert open_total(html) == 3
    assert w["two-a"] in section(html, "stalled")


async def test_a_broker_sees_the_figures_of_their_own_cases(web: WebWorld) -> None:
    w = await two_wijken(web)
    other = await web.add_staff("Bea Broker", role="broker", language="en")
    await web.add_case(title="Buurtfeest", broker=other)
    await web.login(other)

    html = await (await web.client.get("/dashboard")).text()

    assert open_total(html) == 1
    assert w["one-a"] not in html and w["two-a"] not in html


async def test_the_page_needs_no_script_and_every_chart_has_a_table_beside_it(web: WebWorld) -> None:
    await two_wijken(web)
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.login(cor)

    response = await web.client.get("/dashboard")
    html = await response.text()

    assert response.status == 200
    assert "<script" not in html and ' style="' not in html
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert nonce is not None
    styles = re.findall(r'<style nonce="([^"]+)"', html)
    assert len(styles) == 7 and set(styles) == {nonce.group(1)}
    for anchor in ("open", "new", "contact", "stalled", "waits", "departments", "realised"):
        part = section(html, anchor)
        assert '<svg role="img" aria-label="' in part and "<title>" in part, anchor
        assert "<caption>" in part and '<th scope="col"' in part, anchor
    assert html.count("<h1>") == 1


async def test_the_default_period_is_the_last_twelve_months_and_says_so(web: WebWorld) -> None:
    cor = await web.add_staff("Cor Dinator", language="en")
    web.clock.advance(timedelta(days=-400))
    old = await web.add_case(title="Oud idee")
    web.clock.advance(timedelta(days=400))
    await web.add_case(title="Nieuw idee")
    await web.login(cor)

    html = await (await web.client.get("/dashboard")).text()

    # Tuesday 17 November 2026: from 1 December 2025.
    assert "Period: the last 12 months, from December 1, 2025 to November 17, 2026" in html
    assert 'value="2025-12-01"' in html and 'value="2026-11-17"' in html
    assert re.search(r'<tfoot><tr><th scope="row">Total</th><td class="num">1</td>', section(html, "new"))
    # Open cases are about today, whatever the period.
    assert open_total(html) == 2
    assert 'href="/dashboard/cases?since=2025-12-01&amp;until=2026-11-17"' in html

    everything = await (await web.client.get("/dashboard?period=all")).text()
    assert "Period: everything" in everything
    assert re.search(
        r'<tfoot><tr><th scope="row">Total</th><td class="num">2</td>', section(everything, "new")
    )
    # Stalled is about today too: the old case is listed in both.
    assert old in section(html, "stalled") and old in section(everything, "stalled")


async def test_filters_that_cannot_be_read_are_explained_and_left_out(web: WebWorld) -> None:
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.add_case(title="Bankjes")
    await web.login(cor)

    response = await web.client.get("/dashboard?wijk=WK999999&since=gisteren&status=open")
    html = await response.text()

    assert response.status == 200
    assert "There is no neighbourhood with code WK999999" in html
    assert "gisteren is not a date" in html
    assert '<option value="open" selected>' in html
    assert open_total(html) == 1
