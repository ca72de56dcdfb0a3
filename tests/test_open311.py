"""The Open311 GeoReport v2 read API: the spec's shapes, its filters, and nothing personal in any answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import load_municipality, resolve_config_path
from flows import open311
from flows.lifecycle import Status
from flows.stalls import due_at
from storage import initiatives as initiatives_store
from storage.tables import initiatives
from tests.factories import new_initiative
from tests.web_support import WebWorld, web_world

ZUTPHEN = load_municipality(resolve_config_path("zutphen"))
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NAME, PHONE, EMAIL, PHOTO = "Anna de Vries", "+31612345678", "anna@example.nl", "AgACAgQAAxk-secret-photo"
RESIDENT_ID = 987_654_321
SECRET = "Ons geheime plan voor de achtertuin"
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]


async def _seed(
    world: WebWorld,
    *,
    title: str,
    description: str,
    submitted: datetime,
    status: str = "ingediend",
    changed: datetime | None = None,
    department: str | None = None,
    publish: bool | None = None,
    theme: str = "groen",
    wijk: str | None = "WK030101",
) -> str:
    new = new_initiative(
        municipality_code=ZUTPHEN.code,
        resident_user_id=RESIDENT_ID,
        resident_chat_id=RESIDENT_ID,
        title=title,
        description=description,
        theme_code=theme,
        wijk_code=wijk,
        photo_file_id=PHOTO,
        contact_name=NAME,
        contact_phone=PHONE,
        contact_email=EMAIL,
        publish_consent=publish,
    )
    async with world.runtime.sessions() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new, submitted)
        conn = await session.connection()
        await conn.execute(
            initiatives.update()
            .where(initiatives.c.id == created.id)
            .values(status=status, status_changed_at=changed or submitted, department=department)
        )
    return created.reference


@pytest_asyncio.fixture
async def world(database_url: str, engine: AsyncEngine) -> AsyncIterator[WebWorld]:
    """The whole site with its middlewares on a migrated database, nobody logged in, on 30 November 2026."""
    async with web_world(database_url, config_path=resolve_config_path("zutphen")) as world:
        world.clock.now = NOW
        yield world


@pytest_asyncio.fixture
async def seeded(world: WebWorld) -> dict[str, str]:
    """Four initiatives of Anna: talking (published), at a department (private), done, and an old one."""
    return {
        "talking": await _seed(
            world,
            title="Bankjes in het park",
            description=f"Drie bankjes bij de speeltuin. Vragen? Bel {PHONE} of mail {EMAIL}, groet {NAME}",
            submitted=NOW - timedelta(days=20),
            status="in_gesprek",
            changed=NOW - timedelta(days=3),
            publish=True,
        ),
        "department": await _seed(
            world,
            title="Drempel in de Spoorstraat",
            description=SECRET,
            submitted=NOW - timedelta(days=10),
            status="bij_gemeente",
            changed=NOW - timedelta(days=2),
            department="verkeer",
            publish=False,
            theme="verkeer_veiligheid",
        ),
        "done": await _seed(
            world,
            title="Moestuin achter de school",
            description=SECRET,
            submitted=NOW - timedelta(days=5),
            status="gerealiseerd",
            wijk=None,
        ),
        "old": await _seed(
            world,
            title="Speeltoestel op het plein",
            description="Een klimrek voor de kinderen uit de buurt.",
            submitted=NOW - timedelta(days=200),
            publish=True,
        ),
    }


@pytest_asyncio.fixture
async def client(world: WebWorld, seeded: dict[str, str]) -> TestClient[Any, Any]:
    """A stranger's browser or script: no session cookie."""
    assert world.session_cookie() is None
    return world.client


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return json.loads(await response.text())


async def get_xml(client: TestClient[Any, Any], path: str, status: int = 200) -> ET.Element:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    body = await response.read()
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(body)


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["service_request_id"]: row for row in rows}


# --- services ----------------------------------------------------------------------------------


async def test_services_are_the_themes_with_the_fields_of_the_spec(client: TestClient[Any, Any]) -> None:
    rows = await get_json(client, "/open311/v2/services.json")
    assert [row["service_code"] for row in rows] == [theme.code for theme in ZUTPHEN.themes]
    for row in rows:
        assert list(row) == SERVICE_FIELDS
        assert row["metadata"] is False and row["type"] == "realtime"
    groen = rows[0]
    assert groen["service_name"] == "Groen" and "greenery" in groen["keywords"]


async def test_services_in_xml_have_the_same_fields(client: TestClient[Any, Any]) -> None:
    root = await get_xml(client, "/open311/v2/services.xml")
    assert root.tag == "services"
    services = root.findall("service")
    assert len(services) == len(ZUTPHEN.themes)
    assert [child.tag for child in services[0]] == SERVICE_FIELDS
    assert services[0].findtext("metadata") == "false"
    assert services[0].findtext("service_name") == "Groen"


# --- requests: shapes --------------------------------------------------------------------------


async def test_requests_of_the_last_90_days_newest_first_with_every_field(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    rows = await get_json(client, "/open311/v2/requests.json")
    assert [row["service_request_id"] for row in rows] == [
        seeded["done"],
        seeded["department"],
        seeded["talking"],
    ]
    for row in rows:
        assert list(row) == list(open311.REQUEST_FIELDS)
        assert row["media_url"] is None and row["zipcode"] is None
    talking = by_id(rows)[seeded["talking"]]
    assert talking["status"] == "open"
    assert talking["service_code"] == "groen" and talking["service_name"] == "Groen"
    assert talking["address"] == "Waterkwartier" and talking["address_id"] == "WK030101"
    waterkwartier = ZUTPHEN.wijk("WK030101")
    assert waterkwartier is not None
    assert (talking["lat"], talking["long"]) == (waterkwartier.centre.lat, waterkwartier.centre.lon)
    assert talking["requested_datetime"] == "2026-11-10T13:00:00+01:00"
    assert talking["updated_datetime"] == "2026-11-27T13:00:00+01:00"


async def test_requests_in_xml_parse_back_to_the_same_answer(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    as_json = by_id(await get_json(client, "/open311/v2/requests.json"))
    root = await get_xml(client, "/open311/v2/requests.xml")
    assert root.tag == "service_requests"
    requests = root.findall("request")
    assert len(requests) == len(as_json)
    for request in requests:
        assert [child.tag for child in request] == list(open311.REQUEST_FIELDS)
        expected = as_json[request.findtext("service_request_id") or ""]
        for child in request:
            value = expected[child.tag]
            assert (child.text or "") == ("" if value is None else str(value)), child.tag


async def test_one_request_by_its_reference_is_a_list_of_one(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    rows = await get_json(client, f"/open311/v2/requests/{seeded['old']}.json")
    assert [row["service_request_id"] for row in rows] == [seeded["old"]]
    root = await get_xml(client, f"/open311/v2/requests/{seeded['done']}.xml")
    assert root.tag == "service_requests" and root.findtext("request/status") == "closed"


async def test_an_unknown_reference_is_a_404_in_the_error_format_of_the_spec(
    client: TestClient[Any, Any],
) -> None:
    errors = await get_json(client, "/open311/v2/requests/INI-2026-9999.json", 404)
    assert errors == [{"code": 404, "description": "There is no service request INI-2026-9999"}]
    root = await get_xml(client, "/open311/v2/requests/INI-2026-9999.xml", 404)
    assert root.tag == "errors"
    assert root.findtext("error/code") == "404" and "INI-2026-9999" in (
        root.findtext("error/description") or ""
    )


async def test_creating_a_request_is_not_possible(client: TestClient[Any, Any]) -> None:
    response = await client.post("/open311/v2/requests.json", data={"service_code": "groen"})
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    (problem,) = json.loads(await response.text())
    assert problem["code"] == 405 and "read-only" in problem["description"]


# --- what is published -------------------------------------------------------------------------


async def test_the_description_is_published_only_with_the_residents_consent(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    rows = by_id(await get_json(client, "/open311/v2/requests.json"))
    talking = rows[seeded["talking"]]["description"]
    assert talking.startswith("Bankjes in het park\n\nDrie bankjes bij de speeltuin.")
    assert rows[seeded["department"]]["description"] == "Drempel in de Spoorstraat"  # said no
    assert rows[seeded["done"]]["description"] == "Moestuin achter de school"  # never asked


@pytest.mark.parametrize(
    "path",
    [
        "/open311/v2/requests.{fmt}",
        "/open311/v2/requests.{fmt}?start_date=2026-03-01T00:00:00Z&end_date=2026-05-30T00:00:00Z",
        "/open311/v2/requests.{fmt}?status=closed",
        "/open311/v2/services.{fmt}",
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_no_name_contact_detail_photo_or_private_text_in_any_answer(
    client: TestClient[Any, Any], seeded: dict[str, str], path: str, fmt: str
) -> None:
    ids = ",".join(seeded.values())
    for url in (path.format(fmt=fmt), f"/open311/v2/requests.{fmt}?service_request_id={ids}"):
        response = await client.get(url)
        assert response.status == 200
        body = await response.text()
        for secret in (NAME, "Anna", "Vries", PHONE, "0612345678", EMAIL, PHOTO, str(RESIDENT_ID), SECRET):
            assert secret not in body, (url, secret)


def test_contact_details_and_the_name_are_scrubbed_from_published_text() -> None:
    text = "Bel 06-1234 5678 of +31 6 12345678, mail a.b@example.nl. Groet, Anna de Vries (anna)"
    scrubbed = open311.scrub(text, "Anna de Vries")
    assert scrubbed == "Bel […] of […], mail […]. Groet, […] (anna)"
    assert open311.scrub("Een bank voor 12 mensen in 2026", "Anna") == "Een bank voor 12 mensen in 2026"
    assert open311.scrub("Geld naar NL91 ABNA 0417 1643 00 graag", "Bo") == "Geld naar […] graag"


# --- status, agency, expected date -------------------------------------------------------------


async def test_the_status_is_open_or_closed_with_the_dutch_status_as_note(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    rows = by_id(await get_json(client, "/open311/v2/requests.json"))
    assert rows[seeded["talking"]]["status_notes"] == "In gesprek"
    assert rows[seeded["done"]]["status"] == "closed"
    department = rows[seeded["department"]]
    assert department["status"] == "open"
    assert (
        department["status_notes"].startswith("Bij de gemeente (") and "Verkeer" in department["status_notes"]
    )


def test_realised_rejected_and_stopped_are_closed_everything_else_open() -> None:
    closed = {status.value for status in Status if open311.open_or_closed(status) == "closed"}
    assert closed == {"afgewezen", "gerealiseerd", "gestopt"}


async def test_agency_responsible_is_the_department_while_it_has_the_case(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    rows = by_id(await get_json(client, "/open311/v2/requests.json"))
    assert rows[seeded["department"]]["agency_responsible"] == "Verkeer"
    assert "Zutphen" in rows[seeded["talking"]]["agency_responsible"]


async def test_expected_datetime_is_the_next_norm_date_and_empty_without_a_norm(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    rows = by_id(await get_json(client, "/open311/v2/requests.json"))
    # In conversation: 10 working days from the status change, 09:00 Dutch time.
    expected = due_at(NOW - timedelta(days=3), 10, ZUTPHEN.closing_days)
    assert rows[seeded["talking"]]["expected_datetime"] == open311.w3c(expected)
    assert rows[seeded["talking"]]["expected_datetime"].endswith("T09:00:00+01:00")
    assert rows[seeded["department"]]["expected_datetime"] is not None
    assert rows[seeded["done"]]["expected_datetime"] is None
    assert rows[seeded["done"]]["address"] is None and rows[seeded["done"]]["lat"] is None


# --- filters -----------------------------------------------------------------------------------


async def test_status_and_service_code_filter(client: TestClient[Any, Any], seeded: dict[str, str]) -> None:
    closed = await get_json(client, "/open311/v2/requests.json?status=closed")
    assert [row["service_request_id"] for row in closed] == [seeded["done"]]
    opened = await get_json(client, "/open311/v2/requests.json?status=open")
    assert {row["service_request_id"] for row in opened} == {seeded["talking"], seeded["department"]}
    both = await get_json(client, "/open311/v2/requests.json?status=open,closed")
    assert len(both) == 3
    traffic = await get_json(client, "/open311/v2/requests.json?service_code=verkeer_veiligheid,zorg")
    assert [row["service_request_id"] for row in traffic] == [seeded["department"]]


async def test_a_date_range_finds_older_requests(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    old = (NOW - timedelta(days=200)).date()
    rows = await get_json(
        client, f"/open311/v2/requests.json?start_date={old}T00:00:00%2B01:00&end_date={old}T23:59:59Z"
    )
    assert [row["service_request_id"] for row in rows] == [seeded["old"]]
    # Only a start: the 90 days after it.
    rows = await get_json(client, f"/open311/v2/requests.json?start_date={old}")
    assert [row["service_request_id"] for row in rows] == [seeded["old"]]


async def test_service_request_ids_override_the_other_filters(
    client: TestClient[Any, Any], seeded: dict[str, str]
) -> None:
    ids = f"{seeded['old']},{seeded['done']},INI-2020-0001"
    rows = await get_json(client, f"/open311/v2/requests.json?service_request_id={ids}&status=open")
    assert [row["service_request_id"] for row in rows] == [seeded["done"], seeded["old"]]


async def test_pages_of_a_chosen_size(client: TestClient[Any, Any], seeded: dict[str, str]) -> None:
    first = await get_json(client, "/open311/v2/requests.json?page_size=2")
    second = await get_json(client, "/open311/v2/requests.json?page_size=2&page=2")
    assert [row["service_request_id"] for row in first + second] == [
        seeded["done"],
        seeded["department"],
        seeded["talking"],
    ]
    assert await get_json(client, "/open311/v2/requests.json?page_size=2&page=3") == []


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("status=pending", "status must be"),
        ("start_date=gisteren", "start_date is not"),
        ("start_date=2026-10-01T00:00:00Z&end_date=2026-09-01T00:00:00Z", "before start_date"),
        ("start_date=2026-01-01T00:00:00Z&end_date=2026-11-01T00:00:00Z", "90 days"),
        ("page=0", "page must be"),
        ("page_size=5000", "at most 1000"),
    ],
)
async def test_a_bad_query_is_a_400_that_says_why(
    client: TestClient[Any, Any], query: str, problem: str
) -> None:
    (error,) = await get_json(client, f"/open311/v2/requests.json?{query}", 400)
    assert error["code"] == 400 and problem in error["description"]
    root = await get_xml(client, f"/open311/v2/requests.xml?{query}", 400)
    assert root.tag == "errors" and problem in (root.findtext("error/description") or "")


def test_without_dates_the_window_is_the_last_90_days() -> None:
    query = open311.parse_query({}, NOW)
    assert isinstance(query, open311.RequestQuery)
    assert (query.start, query.end) == (NOW - timedelta(days=90), NOW)
    assert query.page == 1 and query.page_size == 1000 and query.closed is None
    only_end = open311.parse_query({"end_date": "2026-06-01T00:00:00+02:00"}, NOW)
    assert isinstance(only_end, open311.RequestQuery) and only_end.start is not None
    assert only_end.start.isoformat() == "2026-03-03T00:00:00+02:00"
    spaced = open311.parse_query({"start_date": "2026-06-01T00:00:00 02:00"}, NOW)  # "+" unencoded
    assert isinstance(spaced, open311.RequestQuery) and spaced.start is not None
    assert spaced.start.utcoffset() == timedelta(hours=2)
