"""Logging in without a password: the bot sends a one-time link (``/dashboard``); opening it shows a
button, and pressing that starts an 8-hour session. A link preview that fetches the page uses nothing."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot.web.site import SITE, VIEWER, Viewer, clear_session_cookie, set_session_cookie
from storage import audit, web_sessions
from storage.web_sessions import SESSION_VALIDITY


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", how_to_log_in)
    app.router.add_get("/login/{token}", confirm_login)
    app.router.add_post("/login/{token}", log_in)
    app.router.add_post("/logout", log_out)


async def how_to_log_in(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "login.html", request, {"state": "bye" if "bye" in request.query else "how"}
    )


async def confirm_login(request: web.Request) -> web.Response:
    """The page behind the link: a button, so opening (or previewing) the link does not use it."""
    site = request.app[SITE]
    async with site.sessions() as session:
        usable = await web_sessions.login_link_usable(session, request.match_info["token"], now=site.clock())
    if not usable:
        return aiohttp_jinja2.render_template("login.html", request, {"state": "expired"}, status=410)
    return aiohttp_jinja2.render_template("login.html", request, {"state": "confirm"})


async def log_in(request: web.Request) -> web.Response:
    site = request.app[SITE]
    now = site.clock()
    async with site.sessions() as session, session.begin():
        staff_id = await web_sessions.redeem_login_link(session, request.match_info["token"], now=now)
        if staff_id is None:
            return aiohttp_jinja2.render_template("login.html", request, {"state": "expired"}, status=410)
        session_id = await web_sessions.start_session(session, staff_id, now=now)
        await audit.record(session, staff_id=staff_id, action="login", now=now)
    response = web.HTTPSeeOther("/dashboard")
    await set_session_cookie(response, site, session_id, int(SESSION_VALIDITY.total_seconds()))
    raise response


async def log_out(request: web.Request) -> web.Response:
    site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    now = site.clock()
    async with site.sessions() as session, session.begin():
        await web_sessions.end_session(session, viewer.session_id, now=now)
        await audit.record(session, staff_id=viewer.staff.id, action="logout", now=now)
    response = web.HTTPSeeOther("/login?bye=1")
    clear_session_cookie(response, site)
    raise response
