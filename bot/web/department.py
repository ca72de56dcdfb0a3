"""A department's answer page: one case behind a contact's personal link from an e-mail, with the
question first, the case, the earlier questions to departments, and the form with the five answers.

No log-in: the link's token is the key, and it opens only while the case waits on that department. The
page never shows the initiator's name or contact details. Its form works without JavaScript and needs
the page's own form token (an HMAC of the link's token) and a same-origin post.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot import mail
from bot.departments import LINK_PATH, Opened, Refused
from bot.notifications import enqueue_for_sweep
from bot.web.cases import telegram_photo
from bot.web.department_questions import department_name, question_views
from bot.web.site import SITE, Site, _same_origin, error_page
from flows import department as rules
from flows.department import AnswerKind, BlockedBy, QuestionState
from flows.intake import NEEDS
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM
from flows.text import Msg, t, verbatim
from flows.validators import clean_text

FORM_TOKEN = "formtoken"
# The form's fields, as ``flows.department.check_answer`` takes them.
FIELDS = ("kind", "text", "blocked_by", "promised_on", "forward_to", "name")
# After a post the browser comes back with one of these (no text in the link, only a code).
SENT = "verstuurd"
ALREADY = "al_beantwoord"
NEED_LABELS: Mapping[str, Msg] = {option.code: option.label for option in NEEDS}
# "Wat houdt het tegen?" under "Nee": a rule or a lack of mandate puts it on the blocker list.
BLOCKER_CHOICES: tuple[tuple[str, Msg], ...] = (
    (BlockedBy.RULE.value, t("A rule")),
    (BlockedBy.MANDATE.value, t("No mandate: we may not decide this")),
    ("", t("Something else")),
)
# Each field's error links to its first input, in the order of the page.
ERROR_ANCHORS: Mapping[str, str] = {
    "kind": "kind-ja",
    "blocked_by": "blocked-regel",
    "promised_on": "f-promised",
    "forward_to": "f-forward",
    "text": "f-text",
    "name": "f-name",
}


def add_routes(app: web.Application) -> None:
    app.router.add_get(LINK_PATH + "{token}", answer_page)
    app.router.add_post(LINK_PATH + "{token}", post_answer)
    app.router.add_get(LINK_PATH + "{token}/foto", case_photo)


def _token(request: web.Request) -> str:
    return request.match_info["token"][:80]


async def form_token(site: Site, token: str) -> str:
    """The form's token for this link: only a page the site served has it."""
    key = await site.cookie_key()
    return hmac.new(key, f"department-form:{token}".encode(), hashlib.sha256).hexdigest()


# --- what the page shows -------------------------------------------------------------------------------


def _map_url(m: Municipality, wijk_code: str | None) -> str | None:
    wijk = m.wijk(wijk_code) if wijk_code else None
    if wijk is None:
        return None
    lat, lon = f"{wijk.centre.lat:.5f}", f"{wijk.centre.lon:.5f}"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"


async def _page_context(session: AsyncSession, site: Site, opened: Opened) -> dict[str, Any]:
    m = site.municipality
    case = opened.case
    views = await question_views(session, m, opened.history, broker_name=case.broker_name)
    current_id = opened.question.id if opened.question is not None else None
    current = next((v for v in views if v.question.id == current_id), None)
    return {
        "case": case,
        "link": opened.link,
        "department": department_name(m, opened.link.department),
        "current": current,
        "earlier": [v for v in views if v.question.id != current_id],
        "open": current is not None and QuestionState(current.state) in rules.ACTIVE_STATES,
        "waiting": current is not None and current.state == QuestionState.INFO,
        "broker": case.broker_name,
        "map_url": _map_url(m, case.wijk_code),
        "needs": [NEED_LABELS.get(code) or verbatim(code) for code in case.needs],
        "amount": case.amount_cents / 100 if case.amount_cents is not None else None,
        "photo": bool(case.photo_file_id),
        "photo_online": bool(case.photo_file_id) and site.bot is not None,
        "others": sorted(
            (d for d in m.departments if d.code != opened.link.department), key=lambda d: d.name.lower()
        ),
        "kinds": [(kind.value, rules.answer_label(kind)) for kind in AnswerKind],
        "blockers": BLOCKER_CHOICES,
        "anchors": ERROR_ANCHORS,
        "max_answer": rules.MAX_ANSWER,
    }


# --- the handlers ----------------------------------------------------------------------------------------


async def answer_page(request: web.Request) -> web.Response:
    """The page behind a link: the question, the case, the history and the form (or the answer given)."""
    site: Site = request.app[SITE]
    token = _token(request)
    async with site.sessions() as session, session.begin():
        opened = await site.desk.open_link(session, token, site.clock())
        if isinstance(opened, Refused):
            context = None
        else:
            context = await _page_context(session, site, opened)
    if context is None:
        assert isinstance(opened, Refused)
        return closed_page(request, opened.reason, sent=SENT in request.query)
    assert isinstance(opened, Opened)
    context |= {
        "values": {**dict.fromkeys(FIELDS, ""), "name": opened.link.name},
        "errors": {},
        "sent": SENT in request.query,
        "already": ALREADY in request.query,
        "form_token": await form_token(site, token),
        "action": LINK_PATH + token,
    }
    return aiohttp_jinja2.render_template("department.html", request, context)


async def post_answer(request: web.Request) -> web.Response:
    """The form: a checked answer goes to the desk (and from there to the broker and the initiator);
    one to look at again comes back with every field as typed and the errors beside them."""
    site: Site = request.app[SITE]
    token = _token(request)
    if not _same_origin(request):
        return error_page(request, 403)
    form = await request.post()
    expected = await form_token(site, token)
    if not hmac.compare_digest(str(form.get(FORM_TOKEN, "")).encode(), expected.encode()):
        return error_page(request, 403)
    values = {name: str(form.get(name, ""))[: rules.MAX_ANSWER * 2] for name in FIELDS}
    values["text"] = clean_text(values["text"], keep_newlines=True)
    values["name"] = clean_text(values["name"], keep_newlines=False)
    now = site.clock()
    today = now.astimezone(AMSTERDAM).date()
    outcome = SENT
    async with site.sessions() as session, session.begin():
        opened = await site.desk.open_link(session, token, now)
        if isinstance(opened, Refused):
            return closed_page(request, opened.reason)
        checked = rules.check_answer(site.municipality, opened.link.department, today, **values)
        if isinstance(checked, dict):
            context = await _page_context(session, site, opened)
        else:
            context = None
            answered = await site.desk.answer(session, opened, checked, now)
            if answered is None:
                outcome = ALREADY
            else:
                await enqueue_for_sweep(session, answered.notifications, site.translator, now)
        queued = mail.queued(session)
    if queued:
        _kick_mailer(site)
    if context is not None:
        assert isinstance(checked, dict)
        context |= {
            "values": values,
            "errors": checked,
            "sent": False,
            "already": False,
            "form_token": expected,
            "action": LINK_PATH + token,
        }
        return aiohttp_jinja2.render_template("department.html", request, context, status=422)
    raise web.HTTPSeeOther(f"{LINK_PATH}{token}?{outcome}=1")


def _kick_mailer(site: Site) -> None:
    """Tell this process's mailer that mail waits (without one, another process's sweep finds it)."""
    if site.mailer is not None:
        site.mailer.kick()


async def case_photo(request: web.Request) -> web.Response:
    """The case's photo, for a valid link only."""
    site: Site = request.app[SITE]
    async with site.sessions() as session, session.begin():
        opened = await site.desk.open_link(session, _token(request), site.clock())
    file_id = opened.case.photo_file_id if isinstance(opened, Opened) else None
    return await telegram_photo(site, file_id)


# --- a link that does not open -------------------------------------------------------------------------

CLOSED: Mapping[str, tuple[int, Msg, Msg]] = {
    "unknown": (
        404,
        t("This link does not work"),
        t("We do not know this link. Perhaps part of it was lost when it was copied from the e-mail."),
    ),
    "revoked": (
        410,
        t("This link has been revoked"),
        t("A staff member of the municipality has revoked this link, so it no longer opens the initiative."),
    ),
    "moved_on": (
        410,
        t("This link no longer works"),
        t("The initiative is no longer with your department, so this link no longer opens it."),
    ),
}


def closed_page(request: web.Request, reason: str, *, sent: bool = False) -> web.Response:
    """What a refused link shows: what happened and what to do, never anything of the case."""
    status, title, text = CLOSED.get(reason, CLOSED["unknown"])
    context = {"title": title, "text": text, "sent": sent and reason == "moved_on"}
    return aiohttp_jinja2.render_template("department_closed.html", request, context, status=status)
