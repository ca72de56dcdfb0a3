"""The staff web's frame: who is looking (session cookie), CSRF on every form, security headers, the
templates with the bot's translations, static files and friendly error pages.

Handlers for the pages live beside this module (auth, overview, cases, exports, open311, department);
each has an ``add_routes(app)``. Pages under ``/dashboard`` need a session; the middleware refuses everyone
else. A department's answer page (``/afdeling/<token>``) needs no session: its link's token is the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_jinja2 import REQUEST_CONTEXT_KEY
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot

from bot.app import Runtime
from bot.casework import Casework
from bot.departments import LINK_PATH, MAIL_LANGUAGE, DepartmentDesk
from bot.i18n import TIMEZONE, Translator
from bot.mail import Mailer
from flows.cases import StaffView
from flows.lifecycle import Status, staff_label
from flows.municipality import Municipality
from flows.resident import language_for
from flows.text import Msg, ParamValue, t
from storage import people as people_store
from storage import web_sessions
from storage.deployment import shared_secret
from storage.reports import Scope

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STAFF_PREFIX = "/dashboard"
COOKIE = "initiatiefbot_session"
COOKIE_KEY_NAME = "web_cookie_key"
ALL_STATUSES = tuple(s.value for s in Status)
WEB_LANGUAGES = ("nl", "en")


@dataclass
class Site:
    """What the staff web's handlers use: the same database, municipality and case rules as the bot."""

    municipality: Municipality
    sessions: async_sessionmaker[AsyncSession]
    translator: Translator
    clock: Callable[[], datetime]
    casework: Casework
    engine: AsyncEngine
    base_url: str
    # Telegram, for the case photo; None when the site runs without a bot token.
    bot: Bot | None = None
    # The process's mailer, kicked after a page queued mail (its sweep would find it a little later).
    mailer: Mailer | None = None
    _cookie_key: bytes | None = None

    async def cookie_key(self) -> bytes:
        """The key that signs session cookies: a deployment secret every worker shares, made on first use
        (not at start-up, so a worker on a database that is not ready yet still starts)."""
        if self._cookie_key is None:
            key = await shared_secret(self.engine, COOKIE_KEY_NAME, lambda: secrets.token_hex(32))
            self._cookie_key = bytes.fromhex(key)
        return self._cookie_key

    @property
    def desk(self) -> DepartmentDesk:
        """The department desk: the same as the bot's (``Casework.desk``)."""
        return self.casework.desk

    @property
    def secure(self) -> bool:
        """Whether the site is served over HTTPS (then the cookie is Secure)."""
        return self.base_url.startswith("https://")


@dataclass(frozen=True)
class Viewer:
    """The staff member behind a request, in their language, with what they may see."""

    staff: StaffView
    language: str
    csrf: str
    session_id: str

    @property
    def scope(self) -> Scope:
        if not self.staff.is_coordinator:
            return Scope(broker_id=self.staff.id)
        if not self.staff.wijken:
            return Scope()
        return Scope(wijken=frozenset(self.staff.wijken), uncovered_too=self.staff.coordinated_wijken)

    def may_act_on(self, broker_id: int | None, wijk_code: str | None) -> bool:
        """Whether this viewer acts on a case: the broker who has it, or a coordinator who covers it."""
        if self.staff.is_coordinator:
            return self.staff.covers(wijk_code)
        return broker_id == self.staff.id


SITE = web.AppKey("site", Site)
VIEWER = web.RequestKey("viewer", Viewer)
NONCE = web.RequestKey("csp_nonce", str)


# --- the session cookie ------------------------------------------------------------------------------


def sign(key: bytes, session_id: str) -> str:
    """The cookie value: the session id and its HMAC, so a made-up cookie is refused before any lookup."""
    mac = hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()
    return f"{session_id}.{mac}"


def unsign(key: bytes, value: str) -> str | None:
    """The session id in a cookie value, or None when the signature does not match."""
    session_id, _, mac = value.rpartition(".")
    if not session_id or not mac:
        return None
    expected = hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()
    return session_id if hmac.compare_digest(mac.encode(), expected.encode()) else None


async def set_session_cookie(response: web.StreamResponse, site: Site, session_id: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        sign(await site.cookie_key(), session_id),
        max_age=max_age,
        path="/",
        httponly=True,
        secure=site.secure,
        samesite="Strict",
    )


def clear_session_cookie(response: web.StreamResponse, site: Site) -> None:
    response.del_cookie(COOKIE, path="/", secure=site.secure, httponly=True, samesite="Strict")


async def viewer_of(request: web.Request) -> Viewer | None:
    """The logged-in staff member of this request, or None."""
    site = request.app[SITE]
    raw = request.cookies.get(COOKIE)
    session_id = unsign(await site.cookie_key(), raw) if raw else None
    if session_id is None:
        return None
    async with site.sessions() as session:
        live = await web_sessions.load_session(session, session_id, now=site.clock())
        if live is None:  # unknown, ended, expired, or its staff member was removed
            return None
        staff = await site.casework.staff(session, live.telegram_user_id)
        person = await people_store.load_person(session, live.telegram_user_id)
    if staff is None:
        return None
    language = language_for(person.language, person.telegram_language) if person else "nl"
    if language not in WEB_LANGUAGES:
        language = "nl"
    return Viewer(staff, language, live.csrf_token, session_id)


def request_language(request: web.Request) -> str:
    """The viewer's language, or for strangers the first of Dutch and English their browser asks for.
    A department's answer page is always Dutch."""
    if is_department_path(request.path):
        return MAIL_LANGUAGE
    viewer = request.get(VIEWER)
    if isinstance(viewer, Viewer):
        return viewer.language
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in WEB_LANGUAGES:
            return code
    return "nl"


# --- middlewares ---------------------------------------------------------------------------------------


def _is_staff_path(path: str) -> bool:
    return path == STAFF_PREFIX or path.startswith(STAFF_PREFIX + "/")


def is_department_path(path: str) -> bool:
    """A department's answer page (or its photo): no staff session, its link's token is the key."""
    return path.startswith(LINK_PATH)


@web.middleware
async def staff_only(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Pages under /dashboard need a live session; their forms need the session's CSRF token."""
    if not _is_staff_path(request.path) and request.path != "/logout":
        return await handler(request)
    viewer = await viewer_of(request)
    if viewer is None:
        if request.path == "/logout":
            raise web.HTTPSeeOther("/login")
        return error_page(request, 401)
    request[VIEWER] = viewer
    if request.method not in ("GET", "HEAD"):
        if not _same_origin(request):
            return error_page(request, 403)
        form = await request.post()
        token = str(form.get("csrf", ""))
        if not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
            log.warning("staff web: refused a form without the session's CSRF token")
            return error_page(request, 403)
    return await handler(request)


def _same_origin(request: web.Request) -> bool:
    """A browser names the page a form came from; it must be this site (a second line beside CSRF)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.host


@web.middleware
async def friendly_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
):
    """Not found, refused and broken pages as a page of the site, not aiohttp's plain text."""
    if not _renders_pages(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (401, 403, 404, 405) and exc.content_type != "application/json":
            # A page asked for with the wrong method is, for a person, a page that is not there.
            return error_page(request, 404 if exc.status == 405 else exc.status)
        raise
    except Exception:
        log.exception("staff web: %s %s failed", request.method, request.path)
        return error_page(request, 500)


_ERRORS: dict[int, tuple[Msg, Msg]] = {
    401: (
        t("Please log in"),
        t("Send /dashboard to the bot in Telegram. It sends you a link that logs you in for 8 hours."),
    ),
    403: (
        t("This is not allowed"),
        t("The form was too old or did not come from this site. Go back, reload the page and try again."),
    ),
    404: (t("Page not found"), t("This page does not exist, or you may not see it.")),
    500: (t("Something went wrong"), t("Sorry, something went wrong on our side. Please try again later.")),
}


def error_page(request: web.Request, status: int) -> web.Response:
    title, text = _ERRORS[status]
    if REQUEST_CONTEXT_KEY not in request:  # refused before the page's own context was made
        request[REQUEST_CONTEXT_KEY] = _template_context(request)
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"title": title, "text": text, "status": status}, status=status
    )
    return response


@web.middleware
async def template_context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """What every template may use (after staff_only, so it knows the viewer); Telegram's updates,
    the health checks and Open311 render no template and skip it."""
    if not _renders_pages(request.path):
        return await handler(request)
    request[REQUEST_CONTEXT_KEY] = _template_context(request)
    return await handler(request)


def _renders_pages(path: str) -> bool:
    return not path.startswith(("/telegram/", "/open311/", "/healthz", "/readyz", "/static/"))


# --- security headers -------------------------------------------------------------------------------


def nonce_of(request: web.Request) -> str:
    """A fresh value per response that lets the page's own <style> blocks (inside the charts) apply."""
    nonce = request.get(NONCE)
    if nonce is None:
        nonce = request[NONCE] = secrets.token_urlsafe(16)
    return nonce


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """No scripts at all, styles only from this site, nothing framed or sniffed, no referrer elsewhere."""
    if request.path.startswith("/telegram/"):
        return
    nonce = nonce_of(request)
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; "
        "form-action 'self'; "
        "frame-ancestors 'none'; "
        "base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # No address of ours (a login link, a case) ever reaches another site; our own forms still name
    # their origin (under "no-referrer" a browser sends "Origin: null", which _same_origin refuses).
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if _is_staff_path(request.path) or request.path.startswith("/login") or is_department_path(request.path):
        # Pages with personal data are never kept by a shared computer's browser or a proxy.
        response.headers["Cache-Control"] = "no-store"
    if is_department_path(request.path):
        response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")


# --- templates ------------------------------------------------------------------------------------------


def _template_context(request: web.Request) -> dict[str, Any]:
    site = request.app[SITE]
    language = request_language(request)
    tr = site.translator
    m = site.municipality
    viewer = request.get(VIEWER)

    def t(msgid: str, **params: ParamValue) -> str:
        return tr.render(Msg(msgid, dict(params)), language)

    def tn(singular: str, plural: str, n: int, **params: ParamValue) -> str:
        return tr.render(Msg(singular, dict(params), plural=plural, n=n), language)

    def render(msg: Msg) -> str:
        return tr.render(msg, language)

    def fmt_date(value: date | datetime | None, form: str = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(TIMEZONE).date()
        return format_date(value, form, locale=language)

    def fmt_datetime(value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, "d MMM y HH:mm", tzinfo=TIMEZONE, locale=language)

    def fmt_number(value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, pattern, locale=language)

    def wijk_name(code: str | None) -> str:
        wijk = m.wijk(code) if code else None
        return wijk.name if wijk else (code or t("no wijk"))

    def theme_name(code: str | None) -> str:
        theme = m.theme(code) if code else None
        return theme.label(language) if theme else (code or "")

    def department_name(code: str | None) -> str:
        department = m.department(code) if code else None
        return department.name if department else (code or "")

    def status_label(status: str) -> str:
        return tr.render(staff_label(status), language)

    return {
        "t": t,
        "tn": tn,
        "render": render,
        "lang": language,
        "viewer": viewer,
        "csrf": viewer.csrf if isinstance(viewer, Viewer) else "",
        "csp_nonce": nonce_of(request),
        "municipality": m,
        "fmt_date": fmt_date,
        "fmt_datetime": fmt_datetime,
        "fmt_number": fmt_number,
        "wijk_name": wijk_name,
        "theme_name": theme_name,
        "department_name": department_name,
        "status_label": status_label,
        "all_statuses": ALL_STATUSES,
        "path": request.path,
    }


def setup_site(app: web.Application) -> None:
    """Add the staff web and the Open311 API to ``app``; ``app[SITE]`` must be set before it serves."""
    from bot.web import (  # they import this module
        auth,
        blockers,
        cases,
        department,
        exports,
        open311,
        overview,
    )

    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    app.middlewares.append(friendly_errors)
    app.middlewares.append(staff_only)
    app.middlewares.append(template_context)
    app.on_response_prepare.append(security_headers)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    app.router.add_get("/", _home)
    for module in (auth, overview, cases, blockers, exports, open311, department):
        module.add_routes(app)


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound(STAFF_PREFIX)


def open_site(runtime: Runtime, bot: Bot | None = None) -> Site:
    """The site on an open runtime."""
    return Site(
        municipality=runtime.municipality,
        sessions=runtime.sessions,
        translator=runtime.translator,
        clock=runtime.clock,
        casework=runtime.dispatcher.casework,
        engine=runtime.engine,
        base_url=runtime.settings.web_url,
        bot=bot,
        mailer=runtime.mailer(),
    )
