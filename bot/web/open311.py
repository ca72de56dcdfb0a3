"""Open data: a read-only Open311 GeoReport v2 API of the municipality's initiatives, public and in Dutch.

GET /open311/v2/services.{json,xml}        the themes, as services
GET /open311/v2/requests.{json,xml}        initiatives, filtered as GeoReport v2 describes (newest first)
GET /open311/v2/requests/{id}.{json,xml}   one initiative by its reference, e.g. INI-2026-0042

What is published is decided in ``flows.open311``. Anyone may read this (no session), from any web
page (``Access-Control-Allow-Origin: *``); nobody can write through it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from xml.etree import ElementTree as ET

from aiohttp import web

from bot.web.site import SITE
from flows import open311
from flows.text import Msg
from storage import open_data

PREFIX = "/open311/v2"
FORMAT = "{format:json|xml}"
# Open data: the published language is the municipality's own.
LANGUAGE = "nl"
PUBLIC_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"}
_CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}
# XML 1.0 cannot carry these characters at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Value = str | float | bool | None


def add_routes(app: web.Application) -> None:
    """Register the Open311 routes: public GETs, and a POST that explains this API is read-only."""
    app.router.add_get(f"{PREFIX}/services.{FORMAT}", services)
    app.router.add_get(f"{PREFIX}/requests.{FORMAT}", requests)
    app.router.add_get(f"{PREFIX}/requests/{{id}}.{FORMAT}", one_request)
    app.router.add_post(f"{PREFIX}/requests.{FORMAT}", read_only)


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _xml(root: str, item: str, rows: Sequence[Mapping[str, Value]]) -> bytes:
    element = ET.Element(root)
    for row in rows:
        child = ET.SubElement(element, item)
        for name, value in row.items():
            ET.SubElement(child, name).text = _text(value)
    body = ET.tostring(element, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def _respond(
    fmt: str, root: str, item: str, rows: Sequence[Mapping[str, Value]], status: int = 200
) -> web.Response:
    body = _xml(root, item, rows) if fmt == "xml" else json.dumps(list(rows), ensure_ascii=False).encode()
    return web.Response(
        body=body, status=status, content_type=_CONTENT_TYPES[fmt], charset="utf-8", headers=PUBLIC_HEADERS
    )


def error(fmt: str, status: int, description: str) -> web.Response:
    """A GeoReport error: ``[{"code": …, "description": …}]`` or ``<errors><error>…</error></errors>``."""
    return _respond(fmt, "errors", "error", [{"code": status, "description": description}], status)


def _format(request: web.Request) -> str:
    return request.match_info["format"]


async def services(request: web.Request) -> web.Response:
    """GET services: every theme of the municipality."""
    site = request.app[SITE]
    rows = open311.services(site.municipality, _renderer(request))
    return _respond(_format(request), "services", "service", [vars_of(s) for s in rows])


async def requests(request: web.Request) -> web.Response:
    """GET requests: by service_request_id, or by service_code, dates and status, a page at a time."""
    site = request.app[SITE]
    fmt = _format(request)
    query = open311.parse_query(request.query, site.clock())
    if isinstance(query, open311.BadQuery):
        return error(fmt, 400, query.description)
    async with site.sessions() as session, session.begin():
        cases = await open_data.public_cases(session, query)
    render = _renderer(request)
    rows = [open311.service_request(case, site.municipality, render) for case in cases]
    return _respond(fmt, "service_requests", "request", rows)


async def one_request(request: web.Request) -> web.Response:
    """GET a request: one initiative by its reference; 404 when there is none."""
    site = request.app[SITE]
    fmt = _format(request)
    reference = request.match_info["id"]
    async with site.sessions() as session, session.begin():
        case = await open_data.public_case(session, reference)
    if case is None:
        return error(fmt, 404, f"There is no service request {reference}")
    row = open311.service_request(case, site.municipality, _renderer(request))
    return _respond(fmt, "service_requests", "request", [row])


async def read_only(request: web.Request) -> web.Response:
    """POST requests: not offered; residents share their ideas through the Telegram bot."""
    response = error(
        _format(request), 405, "This Open311 API is read-only. Residents share their ideas through the bot."
    )
    response.headers["Allow"] = "GET, HEAD"
    return response


def _renderer(request: web.Request) -> open311.Render:
    translator = request.app[SITE].translator

    def render(msg: Msg) -> str:
        return translator.render(msg, LANGUAGE)

    return render


def vars_of(service: open311.Service) -> dict[str, Value]:
    """A service's fields in the order of the specification."""
    return {field.name: getattr(service, field.name) for field in dataclasses.fields(service)}
