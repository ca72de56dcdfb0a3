"""Open data: initiatives as Open311 GeoReport v2 service requests, and the query a client may ask.

What is published is decided here and nowhere else: the reference, theme, wijk, status, dates and title
always; the description only when the resident agreed at intake (``publish_consent``); never a name,
contact detail, photo or anything else the resident typed. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flows.lifecycle import Status, staff_label
from flows.municipality import Municipality
from flows.stalls import due_at, norm_for
from flows.text import Msg, t

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# GeoReport v2: without dates a client gets the last 90 days, and a date range may not span more.
WINDOW = timedelta(days=90)
# GeoReport v2 suggests at most 1000 requests per response; ``page`` and ``page_size`` page through more.
MAX_PAGE_SIZE = 1000
CLOSED_STATUSES: frozenset[str] = frozenset({Status.GEREALISEERD, Status.AFGEWEZEN, Status.GESTOPT})
OPEN, CLOSED = "open", "closed"
MAX_IDS = 100  # service_request_id=a,b,c…: more than this in one URL is not a lookup but a crawl

Render = Callable[[Msg], str]


@dataclass(frozen=True, slots=True)
class PublicCase:
    """The columns of an initiative that open data may look at (storage selects nothing else).

    ``description`` is None unless the resident agreed to publish it; ``contact_name`` is only there to
    be scrubbed from the published text, never shown.
    """

    reference: str
    status: str
    theme_code: str
    wijk_code: str | None
    title: str
    description: str | None
    department: str | None
    created_at: datetime
    status_changed_at: datetime
    contact_name: str


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """What a client asked of GET requests: the filters of GeoReport v2 plus paging."""

    ids: tuple[str, ...] = ()  # service_request_id: when given, the other filters do not apply
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()  # "open" and/or "closed"
    page: int = 1
    page_size: int = MAX_PAGE_SIZE

    @property
    def closed(self) -> bool | None:
        """True: only closed, False: only open, None: both."""
        wanted = set(self.statuses)
        if wanted == {CLOSED}:
            return True
        if wanted == {OPEN}:
            return False
        return None


@dataclass(frozen=True, slots=True)
class BadQuery:
    """Why a query cannot be answered (HTTP 400), in English as the GeoReport errors are for developers."""

    description: str


def open_or_closed(status: str) -> str:
    """GeoReport's two statuses: realised, rejected and stopped initiatives are closed."""
    return CLOSED if status in CLOSED_STATUSES else OPEN


_SPACE_FOR_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def _datetime(raw: str, name: str) -> datetime | BadQuery:
    # A "+" in an unencoded query string arrives as a space: 2026-11-05T08:15:30 01:00.
    text = _SPACE_FOR_PLUS.sub(r"\1+\2", raw.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return BadQuery(f"{name} is not a W3C date and time, for example 2026-11-05T08:15:30+01:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=AMSTERDAM)  # a bare date or time is read as Dutch time
    return moment


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))


def _positive(raw: str | None, name: str, default: int, maximum: int | None = None) -> int | BadQuery:
    if raw is None or not raw.strip():
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        return BadQuery(f"{name} must be a whole number of at least 1")
    value = int(raw)
    if maximum is not None and value > maximum:
        return BadQuery(f"{name} may be at most {maximum}")
    return value


def parse_query(params: Mapping[str, str], now: datetime) -> RequestQuery | BadQuery:
    """Read the query string of GET requests: GeoReport v2's arguments, with its defaults and limits."""
    ids = _list(params.get("service_request_id"))
    if len(ids) > MAX_IDS:
        return BadQuery(f"service_request_id may list at most {MAX_IDS} requests")
    statuses = _list(params.get("status"))
    if any(s not in (OPEN, CLOSED) for s in statuses):
        return BadQuery("status must be open, closed, or both separated by a comma")
    page = _positive(params.get("page"), "page", 1)
    page_size = _positive(params.get("page_size"), "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    if isinstance(page, BadQuery):
        return page
    if isinstance(page_size, BadQuery):
        return page_size
    start = _datetime(params["start_date"], "start_date") if params.get("start_date") else None
    end = _datetime(params["end_date"], "end_date") if params.get("end_date") else None
    if isinstance(start, BadQuery):
        return start
    if isinstance(end, BadQuery):
        return end
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - WINDOW
    if end is None:
        end = start + WINDOW
    if end < start:
        return BadQuery("end_date is before start_date")
    if end - start > WINDOW:
        return BadQuery("start_date and end_date may not span more than 90 days")
    return RequestQuery(
        ids=ids,
        service_codes=_list(params.get("service_code")),
        start=start,
        end=end,
        statuses=statuses,
        page=page,
        page_size=page_size,
    )


def w3c(moment: datetime | None) -> str | None:
    """A W3C date and time in Dutch time with its offset, to the second: 2026-11-30T14:05:00+01:00."""
    if moment is None:
        return None
    return moment.astimezone(AMSTERDAM).replace(microsecond=0).isoformat()


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Ten or more digits with the separators people type (06-1234 5678, +31 6 12345678, 0575 123456).
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]*\d){8,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}\s?[A-Z]{4}(?:\s?\d){10}\b", re.IGNORECASE)
REDACTED = "[…]"


def scrub(text: str, name: str) -> str:
    """Take e-mail addresses, phone numbers, bank accounts and the resident's name out of a published text."""
    text = _EMAIL.sub(REDACTED, text)
    text = _IBAN.sub(REDACTED, text)
    text = _PHONE.sub(REDACTED, text)
    # The full name in any case, and each part of it written as a name (capitalised, whole word).
    if name.strip():
        text = re.sub(re.escape(name.strip()), REDACTED, text, flags=re.IGNORECASE)
    for part in name.split():
        if len(part) >= 3 and part[0].isupper():
            text = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", REDACTED, text)
    return text


@dataclass(frozen=True, slots=True)
class Service:
    """One GeoReport service: a theme of the municipality."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


def services(m: Municipality, render: Render) -> list[Service]:
    """The municipality's themes as GeoReport services (no extra attributes: metadata false)."""
    group = render(t("Residents' initiatives"))
    return [
        Service(
            service_code=theme.code,
            service_name=theme.label_nl,
            description=render(t("Residents' initiatives with the theme {theme}", theme=theme.label_nl)),
            metadata=False,
            type="realtime",
            keywords=", ".join(dict.fromkeys((theme.label_nl.lower(), theme.label_en.lower(), theme.code))),
            group=group,
        )
        for theme in m.themes
    ]


# The fields of a GeoReport v2 service request, in the order of the specification.
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
Field = str | float | None


def _department_name(m: Municipality, code: str | None) -> str | None:
    if code is None:
        return None
    dept = m.department(code)
    return dept.name if dept is not None else code


def service_request(case: PublicCase, m: Municipality, render: Render) -> dict[str, Field]:
    """One initiative as a GeoReport v2 service request; ``render`` turns texts into the public language.

    ``description`` is the title, and after a blank line the description when the resident agreed.
    """
    department = _department_name(m, case.department) if case.status == Status.BIJ_GEMEENTE else None
    label = render(staff_label(case.status))  # the neutral names (Bij de gemeente), not "your …"
    notes = render(t("{status} (department {department})", status=label, department=department))
    theme = m.theme(case.theme_code)
    wijk = m.wijk(case.wijk_code) if case.wijk_code else None
    text = case.title if case.description is None else f"{case.title}\n\n{case.description}"
    norm = norm_for(m, case.status, case.department)
    expected = due_at(case.status_changed_at, norm, m.closing_days) if norm is not None else None
    fields: dict[str, Field] = {
        "service_request_id": case.reference,
        "status": open_or_closed(case.status),
        "status_notes": notes if department else label,
        "service_name": theme.label_nl if theme is not None else case.theme_code,
        "service_code": case.theme_code,
        "description": scrub(text, case.contact_name),
        "agency_responsible": department or render(t("Municipality of {name}", name=m.name)),
        "service_notice": None,
        "requested_datetime": w3c(case.created_at),
        "updated_datetime": w3c(case.status_changed_at),
        "expected_datetime": w3c(expected),
        "address": wijk.name if wijk is not None else None,
        "address_id": wijk.code if wijk is not None else None,
        "zipcode": None,
        "lat": wijk.centre.lat if wijk is not None else None,
        "long": wijk.centre.lon if wijk is not None else None,
        "media_url": None,  # photos are personal: never published
    }
    return fields
