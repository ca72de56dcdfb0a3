"""A municipality's configuration as plain data (wijken, themes, departments, norms) and lookups on it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from types import MappingProxyType

from flows.lifecycle import Status
from flows.privacy import Retention
from flows.text import Msg, localized

STATUS_CODES: tuple[str, ...] = tuple(status.value for status in Status)
# Nobody is expected to act in these statuses, so they cannot have a norm.
STATUSES_WITHOUT_NORM: frozenset[str] = frozenset(
    {Status.AFGEWEZEN.value, Status.GEREALISEERD.value, Status.GESTOPT.value}
)

DEFAULT_NORMS: Mapping[str, int] = MappingProxyType(
    {
        "ingediend": 2,
        "toegewezen": 5,
        "in_gesprek": 10,
        "plan_in_uitwerking": 20,
        "bij_gemeente": 20,
        "goedgekeurd": 10,
        "in_uitvoering": 40,
    }
)
DEFAULT_NO_SIGN_OF_LIFE_DAYS = 15
DEFAULT_WATCHDOG_INTERVAL_MINUTES = 5
DEFAULT_DIGEST_TIME = time(9, 0)
DEFAULT_MAX_LOCATION_DISTANCE_KM = 8.0
DEFAULT_RETENTION_MONTHS = Retention.retention_months
DEFAULT_REFERENCE_PREFIX = "INI"

EARTH_RADIUS_KM = 6371.0088

_POSTCODE = re.compile(r"([1-9][0-9]{3})\s*([A-Za-z]{2})?")


@dataclass(frozen=True)
class GeoPoint:
    """A WGS84 coordinate in decimal degrees."""

    lat: float
    lon: float


@dataclass(frozen=True)
class Wijk:
    """A neighbourhood with its CBS code; ``polygon`` (optional) outlines it, ``centre`` is approximate."""

    code: str
    name: str
    centre: GeoPoint
    polygon: tuple[GeoPoint, ...] = ()


@dataclass(frozen=True)
class Theme:
    """A subject an initiative can be about; ``code`` goes into callback data, so it stays short.

    ``keywords`` (lower case) let the bot guess the theme from an idea's words; ``labels`` holds the
    label in further languages (language code -> label) beside the Dutch and English ones."""

    code: str
    label_nl: str
    label_en: str
    keywords: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def label(self, language: str | None) -> str:
        """The label in ``language`` when configured; Dutch for Dutch and no language, else English."""
        if language is None or language.lower().startswith("nl"):
            return self.label_nl
        return self.labels.get(language.lower(), self.label_en)

    def localized(self) -> Msg:
        """The label in every configured language, rendered in the reader's (else English, else Dutch)."""
        others = {lang: text for lang, text in self.labels.items() if lang not in ("nl", "en")}
        return localized(nl=self.label_nl, en=self.label_en, **others)


@dataclass(frozen=True)
class Contact:
    """Someone at a department who gets e-mail: a name and an address."""

    name: str
    email: str


@dataclass(frozen=True)
class Department:
    """Part of the municipality a case can wait on; ``norm_days`` is its own norm in working days, if any.
    ``contacts`` get the brokers' questions by e-mail; the ``manager`` hears when one is overdue."""

    code: str
    name: str
    norm_days: int | None = None
    contacts: tuple[Contact, ...] = ()
    manager: Contact | None = None


DEFAULT_DEPARTMENTS: tuple[Department, ...] = (
    Department("verkeer", "Verkeer", None),
    Department("groen", "Groen en openbare ruimte", None),
    Department("vergunningen", "Vergunningen", 40),
    Department("subsidies", "Subsidies", 40),
    Department("wijkbudget", "Wijkbudget", None),
)


@dataclass(frozen=True, kw_only=True)
class Municipality:
    """One municipality's configuration; build it with ``bot.settings.load_municipality``, which validates."""

    code: str  # CBS gemeentecode, e.g. "GM0301"
    name: str
    wijken: tuple[Wijk, ...]
    themes: tuple[Theme, ...]
    departments: tuple[Department, ...] = DEFAULT_DEPARTMENTS
    postcodes: Mapping[str, str] = field(default_factory=dict, hash=False)  # PC4 -> wijk code
    # Every PC4 of the municipality as inclusive ranges, e.g. ((7400, 7439),): the [postcodes] table
    # may be smaller, because it holds only areas that lie in one wijk.
    postcode_areas: tuple[tuple[int, int], ...] = ()
    # status -> working days
    norms: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_NORMS), hash=False)
    no_sign_of_life_days: int = DEFAULT_NO_SIGN_OF_LIFE_DAYS
    # At the escalation of a case past its norm, tell the resident in one sentence that it takes longer.
    stall_resident_notice: bool = True
    # How often the watchdog looks for cases past their norm.
    watchdog_interval_minutes: int = DEFAULT_WATCHDOG_INTERVAL_MINUTES
    digest_weekday: int = 0  # the coordinators' weekly digest: Monday …
    digest_time: time = DEFAULT_DIGEST_TIME  # … at 09:00 Amsterdam time
    closing_days: tuple[date, ...] = ()
    max_location_distance_km: float = DEFAULT_MAX_LOCATION_DISTANCE_KM
    privacy_contact: str = ""
    # How long each kind of data is kept ([privacy] in the file); the retention sweep and the consent
    # text both read it, so what the bot promises is what it does.
    retention: Retention = field(default_factory=Retention)
    reference_prefix: str = DEFAULT_REFERENCE_PREFIX
    # The sender of e-mail to departments ("[mail] from" in the file); empty: noreply at localhost.
    mail_from: str = ""
    mail_from_name: str = ""

    def __post_init__(self) -> None:
        # Read-only views, so a shared Municipality cannot be changed by accident.
        object.__setattr__(self, "postcodes", MappingProxyType(dict(self.postcodes)))
        object.__setattr__(self, "norms", MappingProxyType(dict(self.norms)))

    @property
    def retention_months(self) -> int:
        """Months after which an ended initiative is anonymised (``retention.retention_months``)."""
        return self.retention.retention_months

    @property
    def number(self) -> str:
        """The four-digit municipality number, e.g. "0301" for GM0301."""
        return self.code[2:]

    @property
    def wijk_code_prefix(self) -> str:
        """Every wijk code of this municipality starts with this, e.g. "WK0301"."""
        return "WK" + self.number

    def wijk(self, code: str) -> Wijk | None:
        """The wijk with this CBS code, or None."""
        return next((w for w in self.wijken if w.code == code), None)

    def theme(self, code: str) -> Theme | None:
        """The theme with this code, or None."""
        return next((th for th in self.themes if th.code == code), None)

    def department(self, code: str) -> Department | None:
        """The department with this code, or None."""
        return next((d for d in self.departments if d.code == code), None)

    def owns_postcode(self, pc4: str) -> bool:
        """Whether the postcode area ``pc4`` (or a full postcode) lies in this municipality: in the
        [postcodes] table or in one of ``postcode_areas``."""
        area = postcode_area(pc4)
        if area is None:
            return False
        return area in self.postcodes or any(low <= int(area) <= high for low, high in self.postcode_areas)

    def norm(self, status: str) -> int | None:
        """The configured norm of ``status`` in working days, or None; for a case (a department's own norm
        while bij_gemeente) ask ``flows.stalls.norm_for``, as the watchdog and every view do."""
        return self.norms.get(status)


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance between two points in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def point_in_polygon(point: GeoPoint, polygon: tuple[GeoPoint, ...]) -> bool:
    """Ray casting on (lon, lat) as plane coordinates; fine at wijk scale. Fewer than 3 points: False."""
    if len(polygon) < 3:
        return False
    x, y = point.lon, point.lat
    inside = False
    prev = polygon[-1]
    for cur in polygon:
        if (cur.lat > y) != (prev.lat > y):
            x_cross = (prev.lon - cur.lon) * (y - cur.lat) / (prev.lat - cur.lat) + cur.lon
            if x < x_cross:
                inside = not inside
        prev = cur
    return inside


def wijk_for_location(m: Municipality, lat: float, lon: float) -> Wijk | None:
    """The wijk whose polygon holds the point, else the one with the nearest centre within
    ``m.max_location_distance_km``; None outside the municipality or for impossible coordinates."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    point = GeoPoint(float(lat), float(lon))
    for w in m.wijken:
        if point_in_polygon(point, w.polygon):
            return w
    best: Wijk | None = None
    best_km = math.inf
    for w in m.wijken:
        km = haversine_km(point, w.centre)
        if km < best_km:
            best, best_km = w, km
    return best if best_km <= m.max_location_distance_km else None


def postcode_area(text: str) -> str | None:
    """The four digits (PC4) of a Dutch postcode such as "7231 AB", "7231ab" or "7231"; None if not one."""
    match = _POSTCODE.fullmatch(text.strip())
    return match.group(1) if match else None


def normalise_postcode(text: str) -> str | None:
    """A full Dutch postcode in the PostNL form "1234 AB", or None if ``text`` is not one."""
    match = _POSTCODE.fullmatch(text.strip())
    if not match or not match.group(2):
        return None
    return f"{match.group(1)} {match.group(2).upper()}"


def wijk_for_postcode(m: Municipality, text: str) -> Wijk | None:
    """The wijk the postcode's PC4 area belongs to, per the municipality's postcode table, or None."""
    area = postcode_area(text)
    code = m.postcodes.get(area) if area else None
    return m.wijk(code) if code else None
