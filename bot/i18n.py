"""Renders flows' messages in a person's language with babel: catalogs, plurals, dates and money.

Every catalog under locales/ is read. A text missing from a language's catalog is shown in Dutch (the
municipality's language, always complete), except in English, whose msgids are the English texts."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from flows.text import Capital, Localized, Moment, Money, Msg, ParamValue

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
TIMEZONE = ZoneInfo("Europe/Amsterdam")
FALLBACK_LANGUAGE = "nl"
# The msgids are English: an English text missing from its catalog is the msgid itself.
SOURCE_LANGUAGE = "en"


def shipped_languages(locales_dir: Path = LOCALES_DIR) -> tuple[str, ...]:
    """The languages with a catalog under ``locales_dir``, sorted."""
    return tuple(sorted(po.parent.parent.name for po in locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")))


def load_translations(language: str, locales_dir: Path = LOCALES_DIR) -> NullTranslations:
    """Read ``<lang>/LC_MESSAGES/messages.po`` and compile it in memory (no build step needed)."""
    po = locales_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


class Translator:
    """Turns ``Msg`` values into text for one of the shipped languages."""

    def __init__(self, languages: tuple[str, ...] | None = None, locales_dir: Path = LOCALES_DIR) -> None:
        """``languages`` are the ones offered (the bot's command menu is set in each); every catalog
        under ``locales_dir`` is loaded as well, and a language without one is shown in Dutch."""
        self.languages = languages if languages is not None else shipped_languages(locales_dir)
        loaded = dict.fromkeys((*shipped_languages(locales_dir), *self.languages, FALLBACK_LANGUAGE))
        self._translations = {lang: load_translations(lang, locales_dir) for lang in loaded}
        fallback = self._fallback = self._translations[FALLBACK_LANGUAGE]
        for lang, translations in self._translations.items():
            if lang not in (FALLBACK_LANGUAGE, SOURCE_LANGUAGE):
                translations.add_fallback(fallback)
        self._locales = {lang: Locale.parse(lang) for lang in loaded}
        # (language, msgid) -> the catalog's text: a case card looks up some twenty of them.
        self._templates: dict[tuple[str, str], str] = {}
        self._plain: dict[tuple[str, str], str] = {}  # (language, msgid) -> a text without parameters
        # babel parses the locale's number pattern on every call; the watchdog's cards and the overviews
        # format the same few day counts, norms and amounts for every case. (value, language) -> text.
        self._numbers: dict[tuple[int, str], str] = {}
        self._amounts: dict[tuple[int, str], str] = {}

    def render(self, msg: Msg, language: str) -> str:
        if not msg.params and msg.plural is None and msg.n is None:
            # A fixed text (a button or status label): the same for every case, so rendered once.
            key = (language, msg.msgid)
            text = self._plain.get(key)
            if text is None:
                text = self._render(msg, language)
                if len(self._plain) < _TEMPLATES_KEPT:
                    self._plain[key] = text
            return text
        return self._render(msg, language)

    def _render(self, msg: Msg, language: str) -> str:
        if msg.plural is not None and msg.n is not None:
            tr = self._translations.get(language) or self._fallback
            template = tr.ngettext(msg.msgid, msg.plural, msg.n)
        elif msg.msgid == "{text}":
            template = msg.msgid
        else:
            template = self._template(msg.msgid, language)
        # Strings (references, titles, names, free text) are most parameters: taken as they are.
        params = {
            name: value if type(value) is str else self._param(value, language)
            for name, value in msg.params.items()
        }
        if msg.n is not None:
            params.setdefault("n", self._decimal(msg.n, language))
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            log.error("bad placeholders in translation", extra={"msgid": msg.msgid, "language": language})
            return msg.msgid.format(**params)

    def _template(self, msgid: str, language: str) -> str:
        key = (language, msgid)
        template = self._templates.get(key)
        if template is None:
            template = (self._translations.get(language) or self._fallback).gettext(msgid)
            if len(self._templates) < _TEMPLATES_KEPT:  # msgids are the catalog's, plus a few joins
                self._templates[key] = template
        return template

    def _locale(self, language: str) -> Locale:
        return self._locales.get(language) or Locale.parse("nl")

    def _decimal(self, value: int, language: str) -> str:
        if type(value) is not int:  # a bool or an IntEnum takes babel's own way, as before
            return format_decimal(value, locale=self._locale(language))
        if 0 <= value < 1000:  # no grouping or sign to localise: the digits as they are
            return str(value)
        key = (value, language)
        text = self._numbers.get(key)
        if text is None:
            text = format_decimal(value, locale=self._locale(language))
            _remember(self._numbers, key, text)
        return text

    def _money(self, cents: int, language: str) -> str:
        key = (cents, language)
        text = self._amounts.get(key)
        if text is None:
            locale = self._locale(language)
            if cents % 100 == 0:  # whole euros read better without ",00"
                pattern = locale.currency_formats["standard"].pattern.replace(".00", "")
                text = format_currency(
                    cents // 100, "EUR", format=pattern, locale=locale, currency_digits=False
                )
            else:
                text = format_currency(cents / 100, "EUR", locale=locale)
            _remember(self._amounts, key, text)
        return text

    def _param(self, value: ParamValue, language: str) -> str:
        if type(value) is str:  # most parameters: references, titles, names, free text
            return value
        if isinstance(value, Msg):
            return self.render(value, language)
        if isinstance(value, Localized):
            # Data (a theme's label) may lack the reader's language: English is read more widely
            # than Dutch by those who chose another language, and Dutch is always configured.
            texts = dict(value.texts)
            return texts.get(language) or texts.get("en") or texts.get("nl") or value.get(language)
        if isinstance(value, Money):
            return self._money(value.cents, language)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return self._decimal(value, language)
        if isinstance(value, Capital):
            text = self.render(value.msg, language)
            return text[:1].upper() + text[1:]
        locale = self._locale(language)
        if isinstance(value, Moment):
            at = value.at.astimezone(TIMEZONE)
            day = format_skeleton("yMMMd" if value.with_year else "MMMd", at, locale=locale)
            return f"{day} {format_time(at, format='short', locale=locale)}"
        if isinstance(value, datetime):
            return format_datetime(value.astimezone(TIMEZONE), format="medium", locale=locale)
        if isinstance(value, date):
            return format_date(value, format="long", locale=locale)
        return str(value)


_TEMPLATES_KEPT = 8192
_NUMBERS_KEPT = 4096


def _remember(cache: dict[tuple[int, str], str], key: tuple[int, str], text: str) -> None:
    if len(cache) >= _NUMBERS_KEPT:  # amounts vary without end; start over rather than grow
        cache.clear()
    cache[key] = text
