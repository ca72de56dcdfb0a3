"""The blocker list ("vraag aan de hogere laag"): every "nee" a rule or a lack of mandate caused, open
ones first, in the viewer's scope; a coordinator records what was done, a broker only reads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio

from storage import blockers as blockers_store
from storage.staff import StaffRow
from tests.e2e import migrate
from tests.test_web_department_figures import answered, question
from tests.web_support import NOW, WebWorld, web_world

PAGE = "/dashboard/blokkades"


@pytest_asyncio.fixture
async def web(database_url: str) -> AsyncIterator[WebWorld]:
    await migrate(database_url)
    async with web_world(database_url) as world:
        yield world


def blocked_no(reason: str, blocked_by: str, days_ago: int) -> dict[str, object]:
    return {
        **answered(12, True, NOW - timedelta(days=days_ago), "nee"),
        "answer_text": reason,
        "blocked_by": blocked_by,
    }


async def two_blockers(web: WebWorld, broker: StaffRow | None = None) -> dict[str, object]:
    """A blocked no in each of two wijken (the first wijk's case is ``broker``'s), a plain no beside."""
    m = web.municipality
    one, two = m.wijken[0].code, m.wijken[1].code
    web.clock.advance(timedelta(days=-40))
    bloem = await web.add_case(title="Bloembakken", wijk_code=one, broker=broker)
    drempel = await web.add_case(title="Drempel", wijk_code=two)
    bankjes = await web.add_case(title="Bankjes", wijk_code=one)
    web.clock.advance(timedelta(days=40))
    q_bloem = await question(
        web,
        bloem,
        "verkeer",
        asked=NOW - timedelta(days=30),
        **blocked_no("Bloembakken op de stoep mogen niet volgens de APV.", "regel", 5),
    )
    q_drempel = await question(
        web,
        drempel,
        "verkeer",
        asked=NOW - timedelta(days=30),
        **blocked_no("Drempels beslist de wethouder.", "mandaat", 3),
    )
    q_bankjes = await question(
        web,
        bankjes,
        "groen",
        asked=NOW - timedelta(days=30),
        **{**answered(4, True, NOW - timedelta(days=2), "nee"), "answer_text": "Geen plek."},
    )
    return {"one": one, "two": two, "bloem": bloem, "drempel": drempel, "bankjes": bankjes,
            "q_bloem": q_bloem, "q_drempel": q_drempel, "q_bankjes": q_bankjes}  # fmt: skip


async def actions(web: WebWorld) -> list[blockers_store.BlockerActionRow]:
    async with web.runtime.sessions() as session:
        return [a for b in await blockers_store.blockers(session) for a in b.actions]


async def test_a_coordinator_sees_every_blocked_no_with_its_reason(web: WebWorld) -> None:
    b = await two_blockers(web)
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.login(cor)

    response = await web.client.get(PAGE)
    html = await response.text()

    assert response.status == 200
    assert "Blockers — a question for the higher level" in html
    assert f'<a href="/dashboard/cases/{b["bloem"]}">{b["bloem"]}</a> · Bloembakken' in html
    assert "Bloembakken op de stoep mogen niet volgens de APV." in html
    assert "a rule" in html and "a lack of mandate" in html and "Verkeer" in html
    # A plain no (nothing blocks it but the idea) is not a blocker.
    assert b["bankjes"] not in html
    # Newest first, both open, each with a form.
    assert html.index(str(b["drempel"])) < html.index(str(b["bloem"]))
    assert html.count('action="/dashboard/blokkades/') == 2
    assert 'href="/dashboard/blokkades" aria-current="page"' in html


async def test_a_coordinator_records_an_escalation_and_then_settles_it(web: WebWorld) -> None:
    b = await two_blockers(web)
    anna = await web.add_staff("Anna de Vries", language="en")
    await web.login(anna)
    csrf = await web.csrf(PAGE)

    response = await web.client.post(
        f"{PAGE}/{b['q_bloem']}",
        data={"csrf": csrf, "escalated_to": "wethouder Jansen", "outcome": "Bespreekt het in het college."},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"{PAGE}?done=recorded#blocker-{b['q_bloem']}"
    html = await (await web.client.get(response.headers["Location"])).text()
    assert "Recorded. The blocker shows what was done." in html
    assert "wethouder Jansen" in html and "Bespreekt het in het college." in html and "Anna de Vries" in html
    (first,) = await actions(web)
    assert (first.escalated_to, first.resolved, first.staff_id) == ("wethouder Jansen", False, anna.id)

    web.clock.advance(timedelta(hours=2))
    response = await web.client.post(
        f"{PAGE}/{b['q_bloem']}",
        data={"csrf": csrf, "outcome": "Het college staat een uitzondering toe.", "resolved": "1"},
        allow_redirects=False,
    )
    assert response.status == 303 and "done=resolved" in response.headers["Location"]
    html = await (await web.client.get(PAGE)).text()
    # Settled blockers come after the open ones, without a form.
    settled = html[html.index('id="h-settled"') :]
    assert str(b["bloem"]) in settled and "Het college staat een uitzondering toe." in settled
    assert str(b["drempel"]) in html[: html.index('id="h-settled"')]
    assert html.count('action="/dashboard/blokkades/') == 1
    assert [a.resolved for a in await actions(web)] == [False, True]


async def test_an_empty_form_is_explained_and_keeps_what_was_typed(web: WebWorld) -> None:
    b = await two_blockers(web)
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.login(cor)
    csrf = await web.csrf(PAGE)

    response = await web.client.post(
        f"{PAGE}/{b['q_bloem']}", data={"csrf": csrf, "escalated_to": "  ", "resolved": "1"}
    )
    html = await response.text()

    assert response.status == 400
    assert "Write to whom you escalated it, or what came of it (or both)." in html
    assert 'aria-invalid="true"' in html and re.search(r'name="resolved" value="1"\s+checked', html)
    too_long = await web.client.post(f"{PAGE}/{b['q_bloem']}", data={"csrf": csrf, "outcome": "x" * 2001})
    assert too_long.status == 400 and "x" * 2001 in await too_long.text()
    assert await actions(web) == []


async def test_a_wijk_coordinator_sees_and_acts_on_their_wijken_only(web: WebWorld) -> None:
    b = await two_blockers(web)
    carla = await web.add_staff("Carla Coördinator", wijken=[str(b["two"])], language="en")
    await web.add_staff("Anna de Vries", wijken=[str(b["one"])], language="en")
    await web.login(carla)

    html = await (await web.client.get(PAGE)).text()
    assert str(b["drempel"]) in html and str(b["bloem"]) not in html
    csrf = await web.csrf(PAGE)
    refused = await web.client.post(f"{PAGE}/{b['q_bloem']}", data={"csrf": csrf, "escalated_to": "directie"})
    assert refused.status == 404
    assert await actions(web) == []


async def test_a_broker_reads_the_blockers_of_their_cases_but_cannot_record(web: WebWorld) -> None:
    bea = await web.add_staff("Bea Broker", role="broker", language="en")
    b = await two_blockers(web, broker=bea)
    await web.login(bea)

    html = await (await web.client.get(PAGE)).text()
    assert str(b["bloem"]) in html and str(b["drempel"]) not in html
    assert 'action="/dashboard/blokkades/' not in html
    assert "Coordinators record what was done." in html

    csrf = await web.csrf(PAGE)
    refused = await web.client.post(f"{PAGE}/{b['q_bloem']}", data={"csrf": csrf, "escalated_to": "directie"})
    assert refused.status == 403
    assert await actions(web) == []


async def test_recording_needs_the_sessions_csrf_token(web: WebWorld) -> None:
    b = await two_blockers(web)
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.login(cor)

    for data in ({"escalated_to": "directie"}, {"escalated_to": "directie", "csrf": "made-up"}):
        refused = await web.client.post(f"{PAGE}/{b['q_bloem']}", data=data)
        assert refused.status == 403
    other_site = await web.client.post(
        f"{PAGE}/{b['q_bloem']}",
        data={"escalated_to": "directie", "csrf": await web.csrf(PAGE)},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status == 403
    assert await actions(web) == []


async def test_strangers_and_unknown_blockers_get_the_sites_pages(web: WebWorld) -> None:
    b = await two_blockers(web)
    assert (await web.client.get(PAGE)).status == 401
    cor = await web.add_staff("Cor Dinator", language="en")
    await web.login(cor)
    csrf = await web.csrf(PAGE)
    for path in (f"{PAGE}/999999", f"{PAGE}/abc"):
        response = await web.client.post(path, data={"csrf": csrf, "escalated_to": "directie"})
        assert response.status == 404
    # A question that is no blocker (a plain no) cannot get an action either.
    response = await web.client.post(f"{PAGE}/{b['q_bankjes']}", data={"csrf": csrf, "escalated_to": "x"})
    assert response.status == 404
