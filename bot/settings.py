"""Settings from the environment, and the municipality's TOML configuration, strictly validated."""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import tomllib
from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import email_validator

from bot.smtp import SmtpTarget, SmtpUrlError
from flows.municipality import (
    DEFAULT_DEPARTMENTS,
    DEFAULT_DIGEST_TIME,
    DEFAULT_MAX_LOCATION_DISTANCE_KM,
    DEFAULT_NO_SIGN_OF_LIFE_DAYS,
    DEFAULT_NORMS,
    DEFAULT_REFERENCE_PREFIX,
    DEFAULT_WATCHDOG_INTERVAL_MINUTES,
    STATUS_CODES,
    STATUSES_WITHOUT_NORM,
    Contact,
    Department,
    GeoPoint,
    Municipality,
    Theme,
    Wijk,
)
from flows.privacy import LOWER_BOUNDS, RETENTION_KEYS, RETENTION_WHY, Retention
from storage import crypto

BUNDLED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_CONFIG = "zutphen"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///initiatiefbot.db"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_PORT = 8080
DEFAULT_WEBHOOK_HOST = "0.0.0.0"
# What Telegram accepts as a webhook's secret_token.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# The watchdog sweeps at least once a day, or its alerts would come a day late.
MAX_WATCHDOG_INTERVAL_MINUTES = 24 * 60

# The languages a theme may have a label in beside Dutch and English ("label_tr" …).
THEME_LANGUAGES = ("tr", "ar", "pl", "uk")

# Generous bounding box of the Netherlands (WGS84), to catch swapped or mistyped coordinates.
NL_LAT_RANGE = (50.7, 53.6)
NL_LON_RANGE = (3.3, 7.3)

KeyPath = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration problem, located as precisely as we can: file, line and dotted field."""

    def __init__(self, path: Path | None, line: int | None, field: str, message: str) -> None:
        super().__init__(path, line, field, message)
        self.path = path
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = (
                f"{_display_path(self.path)}:{self.line}: " if self.line else f"{_display_path(self.path)}: "
            )
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


def _display_path(path: Path) -> str:
    """The path relative to the working directory when it lies below it, as people typed it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


# --- where a key lives in the file ------------------------------------------------------------------------
# tomllib reports no positions for keys, so we scan the text ourselves. This follows table headers
# ([x], [[x]], dotted keys), strings of all four kinds, arrays and inline tables, which is all our
# configuration files use; on anything it does not understand it skips to the next line.

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_ERROR_LINE = re.compile(r"at line (\d+), column \d+")


class _KeyScanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.newlines = [i for i, c in enumerate(text) if c == "\n"]
        self.lines: dict[KeyPath, int] = {}
        self.array_tables: dict[KeyPath, int] = {}  # [[x]] path -> index of its latest table

    def line_of(self, pos: int) -> int:
        return bisect_left(self.newlines, pos) + 1

    def record(self, path: KeyPath, pos: int) -> None:
        line = self.line_of(pos)
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    def resolve(self, keys: list[str]) -> KeyPath:
        """Header keys to a path, with the current index after every array-of-tables prefix."""
        out: list[str | int] = []
        for key in keys:
            out.append(key)
            if (idx := self.array_tables.get(tuple(out))) is not None:
                out.append(idx)
        return tuple(out)

    def skip_blank(self, i: int, *, newlines: bool) -> int:
        """Skip spaces, tabs and comments; also line breaks when ``newlines``."""
        text, n = self.text, self.n
        while i < n:
            c = text[i]
            if c in " \t" or (newlines and c in "\r\n"):
                i += 1
            elif c == "#":
                while i < n and text[i] != "\n":
                    i += 1
            else:
                break
        return i

    def to_next_line(self, i: int) -> int:
        end = self.text.find("\n", i)
        return self.n if end < 0 else end + 1

    def string(self, i: int) -> tuple[str, int]:
        """Parse the string starting at ``i``; returns its raw contents and the index after it."""
        text = self.text
        for quote in ('"""', "'''"):
            if text.startswith(quote, i):
                j = i + 3
                while j < self.n and not text.startswith(quote, j):
                    j += 2 if quote == '"""' and text[j] == "\\" else 1
                end = min(j + 3, self.n)
                while end < self.n and text[end] == quote[0] and end < j + 5:  # up to two quotes inside
                    end += 1
                return text[i + 3 : j], end
        quote = text[i]
        j = i + 1
        while j < self.n and text[j] != quote and text[j] != "\n":
            j += 2 if quote == '"' and text[j] == "\\" else 1
        raw = text[i + 1 : min(j, self.n)]
        if quote == '"' and "\\" in raw:
            try:
                raw = tomllib.loads(f'k = "{raw}"')["k"]
            except tomllib.TOMLDecodeError:
                pass
        return raw, min(j + 1, self.n)

    def key(self, i: int) -> tuple[list[str], int] | None:
        """Parse a (dotted) key at ``i``; None if there is none."""
        keys: list[str] = []
        while True:
            i = self.skip_blank(i, newlines=False)
            if i < self.n and self.text[i] in "\"'":
                part, i = self.string(i)
            elif match := _BARE_KEY.match(self.text, i):
                part, i = match.group(), match.end()
            else:
                return None
            keys.append(part)
            i = self.skip_blank(i, newlines=False)
            if i < self.n and self.text[i] == ".":
                i += 1
                continue
            return keys, i

    def value(self, i: int, path: KeyPath) -> int:
        """Skip the value at ``i``, recording positions of array elements and inline-table keys."""
        text, n = self.text, self.n
        if i >= n:
            return i
        c = text[i]
        if c in "\"'":
            return self.string(i)[1]
        if c == "[":
            i += 1
            index = 0
            while True:
                i = self.skip_blank(i, newlines=True)
                if i >= n or text[i] == "]":
                    return i + 1
                self.record((*path, index), i)
                i = self.skip_blank(self.value(i, (*path, index)), newlines=True)
                index += 1
                if i < n and text[i] == ",":
                    i += 1
                elif i >= n or text[i] != "]":
                    return i
        if c == "{":
            i += 1
            while True:
                i = self.skip_blank(i, newlines=False)
                if i >= n or text[i] in "}\n":
                    return i + 1
                parsed = self.key(i)
                if parsed is None or parsed[1] >= n or text[parsed[1]] != "=":
                    return i
                keys, j = parsed
                self.record((*path, *keys), i)
                i = self.skip_blank(
                    self.value(self.skip_blank(j + 1, newlines=False), (*path, *keys)), newlines=False
                )
                if i < n and text[i] == ",":
                    i += 1
        while i < n and text[i] not in " \t\r\n,]}#":
            i += 1
        return i

    def scan(self) -> dict[KeyPath, int]:
        text, n = self.text, self.n
        current: KeyPath = ()
        i = 0
        while i < n:
            i = self.skip_blank(i, newlines=True)
            if i >= n:
                break
            start = i
            if text.startswith("[[", i):
                parsed = self.key(i + 2)
                if parsed and text.startswith("]]", parsed[1]):
                    keys = parsed[0]
                    base = (*self.resolve(keys[:-1]), keys[-1])
                    index = self.array_tables.get(base, -1) + 1
                    self.array_tables[base] = index
                    current = (*base, index)
                    self.record(current, start)
            elif text[i] == "[":
                parsed = self.key(i + 1)
                if parsed and text.startswith("]", parsed[1]):
                    current = self.resolve(parsed[0])
                    self.record(current, start)
            else:
                parsed = self.key(i)
                if parsed and parsed[1] < n and text[parsed[1]] == "=":
                    keys, j = parsed
                    path = (*current, *keys)
                    self.record(path, start)
                    i = self.value(self.skip_blank(j + 1, newlines=False), path)
            i = self.to_next_line(max(i, start))
        return self.lines


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path in a TOML text (``("wijken", 2, "code")``) to the 1-based line it is on."""
    return _KeyScanner(text).scan()


def _nearest_line(lines: Mapping[KeyPath, int], path: KeyPath) -> int:
    for k in range(len(path), 0, -1):
        if path[:k] in lines:
            return lines[path[:k]]
    return 1


def locate_key(text: str, path: KeyPath) -> int:
    """The line of ``path`` in a TOML text, else of its nearest enclosing key or table, else 1."""
    return _nearest_line(key_lines(text), path)


def format_field(path: KeyPath) -> str:
    """A key path as people write it: ``wijken[2].centre.lat``, ``postcodes.7231``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{name}" if out else name
    return out


# --- validation -------------------------------------------------------------------------------------------

_MUNICIPALITY_CODE = re.compile(r"GM[0-9]{4}")
_WIJK_CODE = re.compile(r"WK[0-9]{6}")
_SHORT_CODE = re.compile(r"[a-z][a-z0-9_]{0,19}")
_REFERENCE_PREFIX = re.compile(r"[A-Z]{2,8}")
_PC4 = re.compile(r"[1-9][0-9]{3}")
_PC4_RANGE = re.compile(r"([1-9][0-9]{3})(?:\s*-\s*([1-9][0-9]{3}))?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# Every table and the keys it knows, to suggest where a misplaced key belongs.
_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "municipality",
        "wijken",
        "themes",
        "departments",
        "norms",
        "postcodes",
        "privacy",
        "location",
        "calendar",
        "reminders",
        "stalls",
        "mail",
    ),
    "municipality": ("code", "name", "reference_prefix", "postcode_areas"),
    "wijken": ("code", "name", "centre", "polygon"),
    "centre": ("lat", "lon"),
    "themes": ("code", "label_nl", "label_en", "keywords", *(f"label_{lang}" for lang in THEME_LANGUAGES)),
    "departments": ("code", "name", "norm_days", "contacts", "manager"),
    "contacts": ("name", "email"),
    "manager": ("name", "email"),
    "mail": ("from", "from_name"),
    "privacy": ("contact", *RETENTION_KEYS),
    "location": ("max_distance_km",),
    "calendar": ("closing_days",),
    "reminders": ("no_sign_of_life_days",),
    "stalls": ("resident_notice", "watchdog_interval_minutes", "digest_day", "digest_time"),
}
_ARRAY_TABLES = frozenset({"wijken", "themes", "departments", "contacts"})


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    return type(value).__name__


def _did_you_mean(word: str, options: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _where_it_belongs(key: str) -> str:
    """A hint for a key that is valid in exactly one other table, e.g. a top-level key under a table."""
    if key in _TABLE_KEYS[""]:
        return f"; [{key}] must not be inside another table"
    homes = [name for name, keys in _TABLE_KEYS.items() if key in keys]
    if len(homes) != 1 or homes[0] == "centre":
        return ""
    header = f"[[{homes[0]}]]" if homes[0] in _ARRAY_TABLES else f"[{homes[0]}]"
    return f"; it belongs under {header}"


class _Checker:
    """Validates parsed TOML, raising a located ConfigError at the first problem."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self._lines: dict[KeyPath, int] | None = None

    def fail(self, keypath: KeyPath, message: str) -> NoReturn:
        if self._lines is None:
            self._lines = key_lines(self.text)
        raise ConfigError(self.path, _nearest_line(self._lines, keypath), format_field(keypath), message)

    def table(
        self, value: Any, keypath: KeyPath, schema: str, required: Collection[str] = ()
    ) -> dict[str, Any]:
        value = self.mapping(value, keypath)
        allowed = _TABLE_KEYS[schema]
        for key in value:
            if key not in allowed:
                hint = _did_you_mean(key, allowed) or _where_it_belongs(key)
                self.fail((*keypath, key), f"unknown key '{key}'{hint} (allowed here: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                if keypath:
                    self.fail((*keypath, key), f"missing required key '{key}'")
                header = f"[[{key}]]" if key in _ARRAY_TABLES else f"[{key}]"
                self.fail((key,), f"missing table {header}")
        return value

    def mapping(self, value: Any, keypath: KeyPath) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(keypath, f"expected a table, got {_type_name(value)}")
        return value

    def tables(
        self, value: Any, keypath: KeyPath, schema: str, required: Collection[str]
    ) -> list[dict[str, Any]]:
        name = format_field(keypath)
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(keypath, f"expected tables written as [[{name}]], got {_type_name(value)}")
        return [self.table(item, (*keypath, i), schema, required) for i, item in enumerate(value)]

    def string(
        self, value: Any, keypath: KeyPath, pattern: re.Pattern[str] | None = None, shape: str = ""
    ) -> str:
        if not isinstance(value, str):
            self.fail(keypath, f"expected a string, got {_type_name(value)}")
        if not value.strip():
            self.fail(keypath, "must not be empty")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(keypath, f"{value!r} is not {shape}")
        return value

    def positive_int(self, value: Any, keypath: KeyPath, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            got = (
                value if isinstance(value, int | float) and not isinstance(value, bool) else _type_name(value)
            )
            self.fail(keypath, f"{what} must be a positive whole number, got {got}")
        return value

    def boolean(self, value: Any, keypath: KeyPath) -> bool:
        if not isinstance(value, bool):
            shown = repr(value) if isinstance(value, str | int | float) else _type_name(value)
            self.fail(keypath, f"expected true or false, got {shown}")
        return value

    def number(self, value: Any, keypath: KeyPath) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(keypath, f"expected a number, got {_type_name(value)}")
        if not math.isfinite(value):
            self.fail(keypath, f"expected a finite number, got {value}")
        return float(value)

    def point(self, value: Any, keypath: KeyPath) -> GeoPoint:
        """A point written as ``{ lat = 52.1, lon = 6.2 }`` or ``[52.1, 6.2]``."""
        if isinstance(value, list):
            if len(value) != 2:
                self.fail(keypath, f"a point is [lat, lon], got {len(value)} values")
            lat, lon = self.number(value[0], (*keypath, 0)), self.number(value[1], (*keypath, 1))
            lat_path, lon_path = (*keypath, 0), (*keypath, 1)
        else:
            table = self.table(value, keypath, "centre", required=("lat", "lon"))
            lat, lon = (
                self.number(table["lat"], (*keypath, "lat")),
                self.number(table["lon"], (*keypath, "lon")),
            )
            lat_path, lon_path = (*keypath, "lat"), (*keypath, "lon")
        if not NL_LAT_RANGE[0] <= lat <= NL_LAT_RANGE[1]:
            self.fail(
                lat_path, f"latitude {lat} is outside the Netherlands ({NL_LAT_RANGE[0]}–{NL_LAT_RANGE[1]})"
            )
        if not NL_LON_RANGE[0] <= lon <= NL_LON_RANGE[1]:
            self.fail(
                lon_path, f"longitude {lon} is outside the Netherlands ({NL_LON_RANGE[0]}–{NL_LON_RANGE[1]})"
            )
        return GeoPoint(lat, lon)

    def unique(self, code: str, seen: set[str], keypath: KeyPath, what: str) -> None:
        if code in seen:
            self.fail(keypath, f"duplicate {what} code '{code}'")
        seen.add(code)

    # -- sections --

    def municipality(self, data: dict[str, Any]) -> Municipality:
        root = self.table(data, (), "", required=("municipality", "wijken", "themes", "privacy"))
        head = self.table(root["municipality"], ("municipality",), "municipality", required=("code", "name"))
        code = self.string(
            head["code"],
            ("municipality", "code"),
            _MUNICIPALITY_CODE,
            "a CBS municipality code like 'GM0301'",
        )
        name = self.string(head["name"], ("municipality", "name"))
        prefix = DEFAULT_REFERENCE_PREFIX
        if "reference_prefix" in head:
            prefix = self.string(
                head["reference_prefix"],
                ("municipality", "reference_prefix"),
                _REFERENCE_PREFIX,
                "2 to 8 capital letters, like 'INI'",
            )
        wijken = self.wijken(root["wijken"], code)
        areas = self.postcode_areas(head.get("postcode_areas", []))
        privacy = self.table(root["privacy"], ("privacy",), "privacy", required=("contact",))
        contact = self.string(privacy["contact"], ("privacy", "contact"), _EMAIL, "an e-mail address")
        retention = self.retention(privacy)
        location = self.table(root.get("location", {}), ("location",), "location")
        max_km = DEFAULT_MAX_LOCATION_DISTANCE_KM
        if "max_distance_km" in location:
            max_km = self.number(location["max_distance_km"], ("location", "max_distance_km"))
            if max_km <= 0:
                self.fail(("location", "max_distance_km"), f"must be more than 0, got {max_km}")
        reminders = self.table(root.get("reminders", {}), ("reminders",), "reminders")
        no_sign = DEFAULT_NO_SIGN_OF_LIFE_DAYS
        if "no_sign_of_life_days" in reminders:
            no_sign = self.positive_int(
                reminders["no_sign_of_life_days"],
                ("reminders", "no_sign_of_life_days"),
                "no_sign_of_life_days",
            )
        stalls = self.table(root.get("stalls", {}), ("stalls",), "stalls")
        resident_notice = True
        if "resident_notice" in stalls:
            resident_notice = self.boolean(stalls["resident_notice"], ("stalls", "resident_notice"))
        interval = DEFAULT_WATCHDOG_INTERVAL_MINUTES
        if "watchdog_interval_minutes" in stalls:
            keypath = ("stalls", "watchdog_interval_minutes")
            interval = self.positive_int(stalls["watchdog_interval_minutes"], keypath, keypath[1])
            if interval > MAX_WATCHDOG_INTERVAL_MINUTES:
                self.fail(
                    keypath,
                    f"at most {MAX_WATCHDOG_INTERVAL_MINUTES} minutes (once a day), got {interval}",
                )
        digest_day, digest_time = 0, DEFAULT_DIGEST_TIME
        if "digest_day" in stalls:
            keypath = ("stalls", "digest_day")
            day = stalls["digest_day"]
            if not isinstance(day, str) or day.lower() not in WEEKDAYS:
                self.fail(keypath, f"a day of the week ({', '.join(WEEKDAYS)}), got {day!r}")
            digest_day = WEEKDAYS.index(day.lower())
        if "digest_time" in stalls:
            keypath = ("stalls", "digest_time")
            raw = stalls["digest_time"]
            try:
                digest_time = raw if isinstance(raw, time) else time.fromisoformat(str(raw))
            except ValueError:
                self.fail(keypath, f'a time like "09:00", got {raw!r}')
        calendar = self.table(root.get("calendar", {}), ("calendar",), "calendar")
        mail = self.table(root.get("mail", {}), ("mail",), "mail")
        mail_from = self.email(mail["from"], ("mail", "from")) if "from" in mail else ""
        mail_from_name = self.string(mail["from_name"], ("mail", "from_name")) if "from_name" in mail else ""
        return Municipality(
            code=code,
            name=name,
            reference_prefix=prefix,
            wijken=wijken,
            themes=self.themes(root["themes"]),
            departments=self.departments(root["departments"])
            if "departments" in root
            else DEFAULT_DEPARTMENTS,
            postcodes=self.postcodes(root.get("postcodes", {}), {w.code for w in wijken}, areas),
            postcode_areas=areas,
            norms=self.norms(root.get("norms", {})),
            no_sign_of_life_days=no_sign,
            stall_resident_notice=resident_notice,
            watchdog_interval_minutes=interval,
            digest_weekday=digest_day,
            digest_time=digest_time,
            closing_days=self.closing_days(calendar.get("closing_days", [])),
            max_location_distance_km=max_km,
            privacy_contact=contact,
            retention=retention,
            mail_from=mail_from,
            mail_from_name=mail_from_name,
        )

    def retention(self, privacy: Mapping[str, Any]) -> Retention:
        """The retention periods of [privacy]: each a whole number, never below its lower bound."""
        periods: dict[str, int] = {}
        for key in RETENTION_KEYS:
            if key not in privacy:
                continue
            value, keypath = privacy[key], ("privacy", key)
            if isinstance(value, bool) or not isinstance(value, int):
                got = value if isinstance(value, float) else _type_name(value)
                self.fail(keypath, f"{key} must be a whole number, got {got}")
            least = LOWER_BOUNDS[key]
            if value < least:
                unit = "months" if key.endswith("_months") else "days"
                self.fail(
                    keypath, f"{key} must be at least {least} {unit}, got {value}: {RETENTION_WHY[key]}"
                )
            periods[key] = value
        retention = Retention(**periods)
        if retention.sent_message_days > 28 * retention.retention_months:
            # Anonymising an ended case leaves the outbox to this rule: its copies must be gone by then.
            self.fail(
                ("privacy", "sent_message_days"),
                f"sent_message_days must not be longer than the retention period "
                f"({retention.retention_months} months), got {retention.sent_message_days}: copies of "
                "messages would outlive the initiative they are about",
            )
        return retention

    def wijken(self, value: Any, municipality_code: str) -> tuple[Wijk, ...]:
        tables = self.tables(value, ("wijken",), "wijken", required=("code", "name", "centre"))
        if not tables:
            self.fail(("wijken",), "add at least one wijk")
        prefix = "WK" + municipality_code[2:]
        seen: set[str] = set()
        out = []
        for i, table in enumerate(tables):
            code = self.string(
                table["code"],
                ("wijken", i, "code"),
                _WIJK_CODE,
                "a CBS wijk code: 'WK' and 6 digits, like 'WK030101'",
            )
            if not code.startswith(prefix):
                self.fail(
                    ("wijken", i, "code"),
                    f"wijk code '{code}' is not in {municipality_code}: its wijk codes start with '{prefix}'",
                )
            self.unique(code, seen, ("wijken", i, "code"), "wijk")
            polygon: tuple[GeoPoint, ...] = ()
            if "polygon" in table:
                points = table["polygon"]
                if not isinstance(points, list):
                    self.fail(
                        ("wijken", i, "polygon"), f"expected an array of points, got {_type_name(points)}"
                    )
                if len(points) < 3:
                    self.fail(
                        ("wijken", i, "polygon"), f"a polygon needs at least 3 points, got {len(points)}"
                    )
                polygon = tuple(self.point(p, ("wijken", i, "polygon", k)) for k, p in enumerate(points))
            out.append(
                Wijk(
                    code=code,
                    name=self.string(table["name"], ("wijken", i, "name")),
                    centre=self.point(table["centre"], ("wijken", i, "centre")),
                    polygon=polygon,
                )
            )
        return tuple(out)

    def themes(self, value: Any) -> tuple[Theme, ...]:
        tables = self.tables(value, ("themes",), "themes", required=("code", "label_nl", "label_en"))
        if not tables:
            self.fail(("themes",), "add at least one theme")
        seen: set[str] = set()
        out = []
        for i, table in enumerate(tables):
            code = self.string(
                table["code"],
                ("themes", i, "code"),
                _SHORT_CODE,
                "a short code: lower-case letters, digits and _, at most 20, like 'groen'",
            )
            self.unique(code, seen, ("themes", i, "code"), "theme")
            labels = {
                lang: self.string(table[f"label_{lang}"], ("themes", i, f"label_{lang}"))
                for lang in THEME_LANGUAGES
                if f"label_{lang}" in table
            }
            out.append(
                Theme(
                    code,
                    self.string(table["label_nl"], ("themes", i, "label_nl")),
                    self.string(table["label_en"], ("themes", i, "label_en")),
                    keywords=self.keywords(table.get("keywords", []), ("themes", i, "keywords")),
                    labels=labels,
                )
            )
        return tuple(out)

    def keywords(self, value: Any, keypath: KeyPath) -> tuple[str, ...]:
        """A theme's keywords: an array of non-empty strings, kept in lower case without repeats."""
        if not isinstance(value, list):
            self.fail(keypath, f'expected an array of words like ["tuin", "bomen"], got {_type_name(value)}')
        words: list[str] = []
        for k, item in enumerate(value):
            word = self.string(item, (*keypath, k)).strip().lower()
            if word not in words:
                words.append(word)
        return tuple(words)

    def departments(self, value: Any) -> tuple[Department, ...]:
        tables = self.tables(value, ("departments",), "departments", required=("code", "name"))
        seen: set[str] = set()
        out = []
        for i, table in enumerate(tables):
            code = self.string(
                table["code"],
                ("departments", i, "code"),
                _SHORT_CODE,
                "a short code: lower-case letters, digits and _, at most 20, like 'verkeer'",
            )
            self.unique(code, seen, ("departments", i, "code"), "department")
            norm = None
            if "norm_days" in table:
                norm = self.positive_int(table["norm_days"], ("departments", i, "norm_days"), "norm_days")
            where = ("departments", i)
            listed = self.tables(table.get("contacts", []), (*where, "contacts"), "contacts", ())
            contacts = tuple(self.contact(item, (*where, "contacts", j)) for j, item in enumerate(listed))
            manager = self.contact(table["manager"], (*where, "manager")) if "manager" in table else None
            name = self.string(table["name"], (*where, "name"))
            out.append(Department(code, name, norm, contacts, manager))
        return tuple(out)

    def contact(self, value: Any, keypath: KeyPath) -> Contact:
        schema = "manager" if keypath[-1] == "manager" else "contacts"
        table = self.table(value, keypath, schema, required=("name", "email"))
        name = self.string(table["name"], (*keypath, "name"))
        return Contact(name, self.email(table["email"], (*keypath, "email")))

    def email(self, value: Any, keypath: KeyPath) -> str:
        address = self.string(value, keypath)
        try:
            return email_validator.validate_email(address, check_deliverability=False).normalized
        except email_validator.EmailNotValidError as error:
            self.fail(keypath, f"{address!r} is not an e-mail address: {error}")

    def norms(self, value: Any) -> dict[str, int]:
        table = self.mapping(value, ("norms",))
        norms = dict(DEFAULT_NORMS)
        for status, days in table.items():
            keypath: KeyPath = ("norms", status)
            if status in STATUSES_WITHOUT_NORM:
                self.fail(
                    keypath, f"'{status}' cannot have a norm (afgewezen, gerealiseerd and gestopt have none)"
                )
            if status not in STATUS_CODES:
                self.fail(keypath, f"unknown status '{status}'{_did_you_mean(status, STATUS_CODES)}")
            norms[status] = self.positive_int(days, keypath, "a norm (working days)")
        return norms

    def postcode_areas(self, value: Any) -> tuple[tuple[int, int], ...]:
        """[municipality] postcode_areas: PC4 ranges like "7400-7439" or single areas like "7411"."""
        keypath: KeyPath = ("municipality", "postcode_areas")
        if not isinstance(value, list):
            self.fail(keypath, f'expected an array like ["7400-7439"], got {_type_name(value)}')
        out = []
        for k, item in enumerate(value):
            text = self.string(item, (*keypath, k))
            match = _PC4_RANGE.fullmatch(text.strip())
            if match is None:
                self.fail((*keypath, k), f'{text!r} is not a postcode area or range like "7400-7439"')
            low = int(match.group(1))
            high = int(match.group(2) or low)
            if high < low:
                self.fail((*keypath, k), f"{text!r} runs backwards: write the lower postcode first")
            out.append((low, high))
        return tuple(out)

    def postcodes(
        self, value: Any, wijk_codes: set[str], areas: tuple[tuple[int, int], ...] = ()
    ) -> dict[str, str]:
        table = self.mapping(value, ("postcodes",))
        out = {}
        for area, code in table.items():
            keypath: KeyPath = ("postcodes", area)
            if not _PC4.fullmatch(area):
                self.fail(
                    keypath, f"'{area}' is not a postcode area: use its 4 digits (1000–9999), like 7231"
                )
            if areas and not any(low <= int(area) <= high for low, high in areas):
                self.fail(keypath, f"{area} is outside [municipality] postcode_areas")
            code = self.string(code, keypath)
            if code not in wijk_codes:
                self.fail(keypath, f"unknown wijk code '{code}'{_did_you_mean(code, wijk_codes)}")
            out[area] = code
        return out

    def closing_days(self, value: Any) -> tuple[date, ...]:
        keypath: KeyPath = ("calendar", "closing_days")
        if not isinstance(value, list):
            self.fail(keypath, f"expected an array of dates like [2026-12-24], got {_type_name(value)}")
        days = set()
        for i, item in enumerate(value):
            if isinstance(item, date) and not isinstance(item, datetime):
                days.add(item)
                continue
            if isinstance(item, str):
                try:
                    days.add(date.fromisoformat(item.strip()))
                    continue
                except ValueError:
                    pass
            shown = item.isoformat() if isinstance(item, date | time) else repr(item)
            self.fail((*keypath, i), f"expected an ISO date like 2026-12-24, got {shown}")
        return tuple(sorted(days))


def _syntax_error(path: Path, text: str, error: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(error)
    match = _TOML_ERROR_LINE.search(message)
    if match:
        line = int(match.group(1))
    else:  # "(at end of document)"
        line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    message = re.sub(r"\s*\(at [^)]*\)\s*$", "", message)
    return ConfigError(path, line, "", f"TOML syntax error: {message}")


def parse_municipality(text: str, path: Path) -> Municipality:
    """Parse and validate a municipality configuration; ``path`` is only used in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(path, text, error) from None
    return _Checker(path, text).municipality(data)


def load_municipality(path: Path) -> Municipality:
    """Read, parse and validate a municipality TOML file; every problem raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "", "file not found") from None
    except UnicodeDecodeError as error:
        raise ConfigError(path, None, "", f"not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ConfigError(path, None, "", f"cannot read: {error.strerror or error}") from None
    return parse_municipality(text, path)


# --- environment ------------------------------------------------------------------------------------------


def bundled_config_names() -> tuple[str, ...]:
    """Names of the configurations shipped in ``config/``, e.g. ("deventer", "zutphen")."""
    return tuple(sorted(p.stem for p in BUNDLED_CONFIG_DIR.glob("*.toml")))


def resolve_config_path(value: str) -> Path:
    """A bundled config's name (``zutphen``) or a path to a TOML file, as a path."""
    value = value.strip() or DEFAULT_CONFIG
    names = bundled_config_names()
    if value.lower() in names:
        return BUNDLED_CONFIG_DIR / f"{value.lower()}.toml"
    path = Path(value).expanduser()
    if "/" in value or os.sep in value or value.endswith(".toml") or path.is_file():
        return path
    raise ConfigError(
        None,
        None,
        "INITIATIEFBOT_CONFIG",
        f"no bundled config named '{value}'{_did_you_mean(value.lower(), names)} "
        f"(available: {', '.join(names) or 'none'}); or give the path to a .toml file",
    )


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _webhook_secret(environ: Mapping[str, str]) -> str | None:
    secret = _optional(environ, "TELEGRAM_WEBHOOK_SECRET")
    if secret is not None and not WEBHOOK_SECRET.fullmatch(secret):
        raise ConfigError(
            None,
            None,
            "TELEGRAM_WEBHOOK_SECRET",
            "use 1 to 256 characters: letters A-Z and a-z, digits, '_' and '-' (Telegram's rule)",
        )
    return secret


DEFAULT_FLOOD_LIMIT = 20


def _port(environ: Mapping[str, str]) -> int:
    raw = _optional(environ, "PORT")
    if raw is None:
        return DEFAULT_PORT
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(None, None, "PORT", f"'{raw}' is not a port number (1 to 65535)")
    return int(raw)


def _base_url(environ: Mapping[str, str]) -> str | None:
    raw = _optional(environ, "WEB_BASE_URL")
    if raw is None:
        return None
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", raw):
        raise ConfigError(None, None, "WEB_BASE_URL", f"'{raw}' is not a URL like https://bot.example.nl")
    return raw.rstrip("/")


def _flood_limit(environ: Mapping[str, str]) -> int:
    raw = _optional(environ, "FLOOD_LIMIT")
    if raw is None:
        return DEFAULT_FLOOD_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(None, None, "FLOOD_LIMIT", f"'{raw}' is not a positive whole number")
    return int(raw)


DEFAULT_OUTBOX_LEASE_SECONDS = 30
DEFAULT_WEBHOOK_TIMEOUT = 10.0
DEFAULT_WEBHOOK_MAX_CONNECTIONS = 100
SEND_COORDINATIONS = ("local", "database")


def _outbox_lease(environ: Mapping[str, str]) -> int:
    raw = _optional(environ, "OUTBOX_LEASE_SECONDS")
    if raw is None:
        return DEFAULT_OUTBOX_LEASE_SECONDS
    if not raw.isdigit() or not 1 <= int(raw) <= 3600:
        raise ConfigError(None, None, "OUTBOX_LEASE_SECONDS", f"'{raw}' is not a whole number from 1 to 3600")
    return int(raw)


DEFAULT_OUTBOX_MAX_AGE_HOURS = 72
DEFAULT_TELEGRAM_SEND_TIMEOUT = 15.0


def _outbox_max_age(environ: Mapping[str, str]) -> int:
    raw = _optional(environ, "OUTBOX_MAX_AGE_HOURS")
    if raw is None:
        return DEFAULT_OUTBOX_MAX_AGE_HOURS
    if not raw.isdigit() or not 1 <= int(raw) <= 24 * 90:
        raise ConfigError(
            None, None, "OUTBOX_MAX_AGE_HOURS", f"'{raw}' is not a whole number of hours from 1 to 2160"
        )
    return int(raw)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = _optional(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 600:
        raise ConfigError(None, None, name, f"'{raw}' is not a number of seconds from 0.1 to 600")
    return value


def _max_connections(environ: Mapping[str, str]) -> int:
    raw = _optional(environ, "WEBHOOK_MAX_CONNECTIONS")
    if raw is None:
        return DEFAULT_WEBHOOK_MAX_CONNECTIONS
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise ConfigError(
            None, None, "WEBHOOK_MAX_CONNECTIONS", f"'{raw}' is not a whole number from 1 to 100000"
        )
    return int(raw)


PSEUDONYM_KEY_MIN = 16


def _pseudonym_key(environ: Mapping[str, str]) -> str | None:
    raw = _optional(environ, "LOG_PSEUDONYM_KEY")
    if raw is not None and len(raw) < PSEUDONYM_KEY_MIN:
        raise ConfigError(
            None, None, "LOG_PSEUDONYM_KEY", f"too short: use {PSEUDONYM_KEY_MIN} or more random characters"
        )
    return raw


def _send_coordination(environ: Mapping[str, str]) -> str | None:
    raw = _optional(environ, "SEND_COORDINATION")
    if raw is None:
        return None
    if raw.lower() not in SEND_COORDINATIONS:
        raise ConfigError(
            None, None, "SEND_COORDINATION", f"unknown value '{raw}'; use {' or '.join(SEND_COORDINATIONS)}"
        )
    return raw.lower()


def _per_second(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = _optional(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100_000 or value != value:
        raise ConfigError(None, None, name, f"'{raw}' is not a number of messages per second (0: no limit)")
    return value


def _smtp_url(environ: Mapping[str, str]) -> str | None:
    raw = _optional(environ, "SMTP_URL")
    if raw is not None:
        try:
            SmtpTarget.parse(raw)
        except SmtpUrlError as exc:
            raise ConfigError(None, None, "SMTP_URL", str(exc)) from None
    return raw


def _data_encryption_keys(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = _optional(environ, crypto.KEYS_VARIABLE)
    if raw is None:
        return ()
    try:
        return crypto.check_keys(raw.split(","), crypto.KEYS_VARIABLE)
    except crypto.KeySetupError as exc:
        raise ConfigError(
            None, None, crypto.KEYS_VARIABLE, str(exc).removeprefix(f"{crypto.KEYS_VARIABLE}: ")
        ) from None


@dataclass(frozen=True)
class Settings:
    """Everything the runtime needs from its environment; the municipality is read on first use."""

    telegram_bot_token: str | None = None
    telegram_api_base_url: str | None = None  # passed to PTB's base_url, e.g. a local Bot API server
    telegram_bot_username: str | None = None  # for invitation links; asked with getMe when not set
    database_url: str = DEFAULT_DATABASE_URL
    config_path: Path = field(default_factory=lambda: BUNDLED_CONFIG_DIR / f"{DEFAULT_CONFIG}.toml")
    log_level: str = "INFO"
    telegram_webhook_secret: str | None = None  # checked against X-Telegram-Bot-Api-Secret-Token
    port: int = DEFAULT_PORT
    webhook_host: str = DEFAULT_WEBHOOK_HOST
    flood_limit: int = DEFAULT_FLOOD_LIMIT  # updates per person per 10 seconds before "rustig aan"
    # How long a freshly queued message is left to the process that queued it before the sweep of any
    # process takes it over (the time a crashed sender's messages wait).
    outbox_lease_seconds: int = DEFAULT_OUTBOX_LEASE_SECONDS
    # How long a message is retried through an outage before it is given up on and reported to staff.
    outbox_max_age_hours: int = DEFAULT_OUTBOX_MAX_AGE_HOURS
    # Where Telegram's send budget and the per-chat order live: "local" (this process) or "database"
    # (shared by every process on the database); None: local on SQLite and for `run`, else database
    # (bot.app.default_send_coordination).
    send_coordination: str | None = None
    # Telegram's limits: messages per second for the whole bot and per chat (0: no limit, e.g. for a
    # local Bot API server in tests and benchmarks).
    telegram_max_per_second: float = 30.0
    telegram_chat_max_per_second: float = 1.0
    # How long a send waits for Telegram's answer before it counts as timed out (then retried in 60 s).
    telegram_send_timeout: float = DEFAULT_TELEGRAM_SEND_TIMEOUT
    # The webhook's HTTP server: seconds a connection may take to send a request's head (and may stay
    # idle between requests), seconds for the body, and open connections beyond which it refuses more.
    webhook_header_timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    webhook_body_timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    webhook_max_connections: int = DEFAULT_WEBHOOK_MAX_CONNECTIONS
    # The key that turns Telegram ids into log pseudonyms; None: one made on first start, in the database.
    log_pseudonym_key: str | None = field(default=None, repr=False)
    # Where staff reach the staff web (login links start with it); None: http://localhost:PORT.
    web_base_url: str | None = None
    # Whether PORT was set: then `run` (polling) serves the staff web on it too.
    port_set: bool = False
    # E-mail to departments: smtp[s]://user:password@host:port (bot.mail.SmtpTarget checks it); None:
    # written as .eml files to ``mail_dir`` (default: a "mail" folder beside the SQLite database).
    smtp_url: str | None = field(default=None, repr=False)
    mail_dir: Path | None = None
    # The Fernet keys for residents' phone numbers and e-mail addresses, newest first; empty: the key
    # file beside the SQLite database (storage.crypto.setup), refused on PostgreSQL.
    data_encryption_keys: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL, TELEGRAM_BOT_USERNAME, DATABASE_URL,
        INITIATIEFBOT_CONFIG, LOG_LEVEL, TELEGRAM_WEBHOOK_SECRET, PORT, WEBHOOK_HOST, FLOOD_LIMIT,
        OUTBOX_LEASE_SECONDS, OUTBOX_MAX_AGE_HOURS, SEND_COORDINATION, TELEGRAM_MAX_PER_SECOND,
        TELEGRAM_CHAT_MAX_PER_SECOND, TELEGRAM_SEND_TIMEOUT, WEBHOOK_HEADER_TIMEOUT, WEBHOOK_BODY_TIMEOUT,
        WEBHOOK_MAX_CONNECTIONS, LOG_PSEUDONYM_KEY, WEB_BASE_URL, SMTP_URL, MAIL_DIR and
        DATA_ENCRYPTION_KEYS."""
        log_level = (_optional(environ, "LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(
                None,
                None,
                "LOG_LEVEL",
                f"unknown log level '{log_level}'; use one of {', '.join(LOG_LEVELS)}",
            )
        return cls(
            telegram_bot_token=_optional(environ, "TELEGRAM_BOT_TOKEN"),
            telegram_api_base_url=_optional(environ, "TELEGRAM_API_BASE_URL"),
            telegram_bot_username=_optional(environ, "TELEGRAM_BOT_USERNAME"),
            database_url=_optional(environ, "DATABASE_URL") or DEFAULT_DATABASE_URL,
            config_path=resolve_config_path(environ.get("INITIATIEFBOT_CONFIG", DEFAULT_CONFIG)),
            log_level=log_level,
            telegram_webhook_secret=_webhook_secret(environ),
            port=_port(environ),
            webhook_host=_optional(environ, "WEBHOOK_HOST") or DEFAULT_WEBHOOK_HOST,
            flood_limit=_flood_limit(environ),
            outbox_lease_seconds=_outbox_lease(environ),
            outbox_max_age_hours=_outbox_max_age(environ),
            send_coordination=_send_coordination(environ),
            telegram_max_per_second=_per_second(environ, "TELEGRAM_MAX_PER_SECOND", 30.0),
            telegram_chat_max_per_second=_per_second(environ, "TELEGRAM_CHAT_MAX_PER_SECOND", 1.0),
            telegram_send_timeout=_seconds(environ, "TELEGRAM_SEND_TIMEOUT", DEFAULT_TELEGRAM_SEND_TIMEOUT),
            webhook_header_timeout=_seconds(environ, "WEBHOOK_HEADER_TIMEOUT", DEFAULT_WEBHOOK_TIMEOUT),
            webhook_body_timeout=_seconds(environ, "WEBHOOK_BODY_TIMEOUT", DEFAULT_WEBHOOK_TIMEOUT),
            webhook_max_connections=_max_connections(environ),
            log_pseudonym_key=_pseudonym_key(environ),
            web_base_url=_base_url(environ),
            port_set=_optional(environ, "PORT") is not None,
            smtp_url=_smtp_url(environ),
            mail_dir=Path(raw_dir) if (raw_dir := _optional(environ, "MAIL_DIR")) else None,
            data_encryption_keys=_data_encryption_keys(environ),
        )

    @property
    def web_url(self) -> str:
        """The staff web's base URL without a trailing slash."""
        return (self.web_base_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def log_level_number(self) -> int:
        """The log level as the number ``logging`` uses."""
        return logging.getLevelNamesMapping()[self.log_level]

    @cached_property
    def municipality(self) -> Municipality:
        """The municipality configuration at ``config_path``, loaded and validated once."""
        return load_municipality(self.config_path)
