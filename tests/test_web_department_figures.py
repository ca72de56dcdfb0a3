"""Departments on the overview: per department the questions open and overdue now, the final answers
within the norm and the median answer time in the period, within the viewer's scope and filters; and the
"waited on whom" figure names departments as the configuration does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio

from flows.lifecycle import Status
from storage import departments as departments_store
from storage import initiatives as initiatives_store
from tests.e2e import migrate
from tests.test_web_overview import section
from tests.web_support import NOW, WebWorld, web_world


@pytest_asyncio.fixture
async def web(database_url: str) -> AsyncIterator[WebWorld]:
    await migrate(database_url)
    async with web_world(database_url) as world:
        yield world


async def case_id(web: WebWorld, reference: str) -> int:
    async with web.runtime.sessions() as session:
        case = await initiatives_store.load_case(session, reference)
    assert case is not None
    return case.id


async def question(web: WebWorld, reference: str, department: str, *, asked: datetime, **values: Any) -> int:
    """A question asked at ``asked``, then changed to ``values`` (state, answer, working days …)."""
    initiative_id = await case_id(web, reference)
    async with web.runtime.sessions() as session, session.begin():
        row = await departments_store.ask(
            session,
            initiative_id=initiative_id,
            department=department,
            question="Mag dit?",
            staff_id=None,
            now=asked,
        )
        if values:
            await departments_store.update_question(session, row.id, **values)
    return row.id


def answered(days: int, within: bool | None, at: datetime, kind: str = "ja") -> dict[str, Any]:
    state = "forwarded" if kind == "niet_voor_ons" else "answered"
    return {
        "state": state,
        "answer_kind": kind,
        "answered_at": at,
        "closed_at": at,
        "answer_working_days": days,
        "answered_within_norm": within,
        "next_alert_at": None,
    }


def row_of(html: str, name: str) -> list[str]:
    """The cells of the department's row in the departments table, as text."""
    part = section(html, "departments")
    found = re.search(rf'<tr>\s*<th scope="row">{re.escape(name)}</th>(.*?)</tr>', part, re.S)
    assert found, part
    return [
        re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)
    ]


async def verkeer_and_groen(web: WebWorld) -> dict[str, str]:
    """Cases in the first wijk with questions to Verkeer and Groen, and one in the second wijk."""
    m = web.municipality
    one, two = m.wijken[0].code, m.wijken[1].code
    web.clock.advance(timedelta(days=-60))
    refs = {name: await web.add_case(title=name, wijk_code=one) for name in ("A", "B", "C", "D", "E", "F")}
    refs["Z"] = await web.add_case(title="Z", wijk_code=two)
    web.clock.advance(timedelta(days=60))
    # Verkeer (norm 20 working days): a yes within the norm, a no after it, a forward (no verdict) ...
    await question(
        web,
        refs["A"],
        "verkeer",
        asked=NOW - timedelta(days=20),
        **answered(5, True, NOW - timedelta(days=3)),
    )
    await question(
        web,
        refs["B"],
        "verkeer",
        asked=NOW - timedelta(days=50),
        **answered(30, False, NOW - timedelta(days=8), "nee"),
    )
    await question(
        web,
        refs["C"],
        "verkeer",
        asked=NOW - timedelta(days=9),
        **answered(2, None, NOW - timedelta(days=6), "niet_voor_ons"),
    )
    # ... open for 40 days (about 28 working days: overdue), and waiting on the broker (no clock runs).
    await question(web, refs["D"], "verkeer", asked=NOW - timedelta(days=40))
    await question(web, refs["E"], "verkeer", asked=NOW - timedelta(days=50), state="info")
    # Groen: open since yesterday; answered two years ago (outside the period).
    await question(web, refs["F"], "groen", asked=NOW - timedelta(days=1))
    await question(
        web,
        refs["F"],
        "groen",
        asked=NOW - timedelta(days=800),
        **answered(1, True, NOW - timedelta(days=790)),
    )
    # The second wijk: an overdue question to Verkeer and a late no.
    await question(web, refs["Z"], "verkeer", asked=NOW - timedelta(days=45))
    await question(
        web,
        refs["Z"],
        "verkeer",
        asked=NOW - timedelta(days=70),
        **answered(25, False, NOW - timedelta(days=30), "nee"),
    )
    return {"one": one, "two": two, **refs}


async def test_the_overview_adds_up_each_departments_questions(web: WebWorld) -> None:
    w = await verkeer_and_groen(web)
    anna = await web.add_staff("Anna de Vries", wijken=[w["one"]], language="en")
    await web.add_staff("Carla Coördinator", wijken=[w["two"]], language="en")
    await web.login(anna)

    html = await (await web.client.get("/dashboard")).text()

    # Open now, overdue now, final answers within the norm, median answer time, norm.
    assert row_of(html, "Verkeer") == ["2", "1", "50% of 2", "5 working days", "20 working days"]
    assert row_of(html, "Groen en openbare ruimte") == ["1", "0", "–", "–", "20 working days"]
    assert row_of(html, "Vergunningen") == ["0", "0", "–", "–", "40 working days"]
    # The chart shows the share within the norm of the departments that gave final answers.
    chart = section(html, "departments")
    assert "Final answers within the norm, per department (%)" in chart
    assert '<a href="#departments">' in html


async def test_department_figures_follow_the_scope_and_the_filters(web: WebWorld) -> None:
    w = await verkeer_and_groen(web)
    cor = await web.add_staff("Cor Dinator", language="en")
    carla = await web.add_staff("Carla Coördinator", wijken=[w["two"]], language="en")
    await web.add_staff("Anna de Vries", wijken=[w["one"]], language="en")

    await web.login(cor)
    everything = await (await web.client.get("/dashboard")).text()
    assert row_of(everything, "Verkeer") == ["3", "2", "33% of 3", "5 working days", "20 working days"]
    # A wijk picked in the filter.
    one = await (await web.client.get(f"/dashboard?wijk={w['two']}")).text()
    assert row_of(one, "Verkeer") == ["1", "1", "0% of 1", "25 working days", "20 working days"]
    # A period picked: only the answers given in it count; open questions are about today.
    since = (NOW - timedelta(days=7)).date().isoformat()
    recent = await (await web.client.get(f"/dashboard?since={since}")).text()
    assert row_of(recent, "Verkeer") == ["3", "2", "100% of 1", "2 working days", "20 working days"]
    # The whole period: the answer of two years ago counts too.
    whole = await (await web.client.get("/dashboard?period=all")).text()
    assert row_of(whole, "Groen en openbare ruimte") == [
        "1",
        "0",
        "100% of 1",
        "1 working day",
        "20 working days",
    ]

    web.logout_cookies()
    await web.login(carla)
    theirs = await (await web.client.get("/dashboard")).text()
    assert row_of(theirs, "Verkeer") == ["1", "1", "0% of 1", "25 working days", "20 working days"]
    assert row_of(theirs, "Groen en openbare ruimte") == ["0", "0", "–", "–", "20 working days"]


async def test_a_broker_sees_the_questions_about_their_own_cases(web: WebWorld) -> None:
    bea = await web.add_staff("Bea Broker", role="broker", language="en")
    web.clock.advance(timedelta(days=-30))
    own = await web.add_case(title="Eigen", broker=bea)
    other = await web.add_case(title="Ander")
    web.clock.advance(timedelta(days=30))
    await question(web, own, "groen", asked=NOW - timedelta(days=2))
    await question(web, other, "groen", asked=NOW - timedelta(days=2))
    await web.login(bea)

    html = await (await web.client.get("/dashboard")).text()

    assert row_of(html, "Groen en openbare ruimte")[:2] == ["1", "0"]


async def test_waiting_on_a_department_is_counted_by_its_name(web: WebWorld) -> None:
    cor = await web.add_staff("Cor Dinator", language="en")
    web.clock.advance(timedelta(days=-30))
    refs = [await web.add_case(title=f"Idee {n}") for n in range(3)]
    for reference, department in zip(refs, ("verkeer", "groen", "opgeheven"), strict=True):
        async with web.runtime.sessions() as session, session.begin():
            await initiatives_store.change_status(
                session,
                await _id(session, reference),
                status=Status.BIJ_GEMEENTE.value,
                now=web.clock(),
                actor_role="broker",
                actor_user_id=None,
                staff_id=None,
                note=None,
                department=department,
            )
    web.clock.advance(timedelta(days=30))
    await web.login(cor)

    waits = section(await (await web.client.get("/dashboard")).text(), "waits")

    assert "Department: Verkeer" in waits
    assert "Department: Groen en openbare ruimte" in waits
    # A code the configuration does not know (any more) is shown as it is.
    assert "Department: opgeheven" in waits


async def _id(session: Any, reference: str) -> int:
    case = await initiatives_store.load_case(session, reference)
    assert case is not None
    return case.id
