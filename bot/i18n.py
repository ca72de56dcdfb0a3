"""Renders flows' messages in a person's language with babel: catalogs, plurals, dates and money."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from flows.text import Localized, Money, Msg, ParamValue

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
TIMEZONE = ZoneInfo("Europe/Amsterdam")


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

    def __init__(self, languages: tuple[str, ...], locales_dir: Path = LOCALES_DIR) -> None:
        self.languages = languages
        self._translations = {lang: load_translations(lang, locales_dir) for lang in languages}
        self._locales = {lang: Locale.parse(lang) for lang in languages}

    def render(self, msg: Msg, language: str) -> str:
        tr = self._translations.get(language) or NullTranslations()
        if msg.plural is not None and msg.n is not None:
            template = tr.ngettext(msg.msgid, msg.plural, msg.n)
        elif msg.msgid == "{text}":
            template = msg.msgid
        else:
            template = tr.gettext(msg.msgid)
        params = {name: self._param(value, language) for name, value in msg.params.items()}
        if msg.n is not None:
            params.setdefault("n", self._number(msg.n, language))
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            log.error("bad placeholders in translation", extra={"msgid": msg.msgid, "language": language})
            return msg.msgid.format(**params)

    def _locale(self, language: str) -> Locale:
        return self._locales.get(language) or Locale.parse("nl")

    def _number(self, value: int, language: str) -> str:
        if 0 <= value < 1000:  # no grouping or sign to localise: the digits as they are
            return str(value)
        return format_decimal(value, locale=self._locale(language))

    def _param(self, value: ParamValue, language: str) -> str:
        locale = self._locale(language)
        if isinstance(value, Msg):
            return self.render(value, language)
        if isinstance(value, Localized):
            return value.get(language)
        if isinstance(value, Money):
            if value.cents % 100 == 0:  # whole euros read better without ",00"
                pattern = locale.currency_formats["standard"].pattern.replace(".00", "")
                return format_currency(
                    value.cents // 100, "EUR", format=pattern, locale=locale, currency_digits=False
                )
            return format_currency(value.cents / 100, "EUR", locale=locale)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return self._number(value, language)
        if isinstance(value, datetime):
            return format_datetime(value.astimezone(TIMEZONE), format="medium", locale=locale)
        if isinstance(value, date):
            return format_date(value, format="long", locale=locale)
        return str(value)
