"""The overview per wijk (placeholder until the overview lands)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", overview)


async def overview(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("overview.html", request, {})
