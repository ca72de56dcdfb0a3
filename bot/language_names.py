"""Languages named for staff: "Arabisch (العربية)" on a Dutch card, "Arabic (العربية)" on an English one."""

from __future__ import annotations

from functools import cache

from babel import Locale, UnknownLocaleError

from flows.text import Localized, Msg, verbatim


@cache
def language_name(code: str, readers: tuple[str, ...]) -> Msg:
    """The language ``code`` named in each of the ``readers``' languages (the first is the fallback),
    with its own name beside it when that differs."""
    try:
        language = Locale.parse(code.split("-")[0].split("_")[0].lower())
    except (UnknownLocaleError, ValueError):
        return verbatim(code)
    own = language.get_display_name(language) or code
    texts: list[tuple[str, str]] = []
    for reader in readers:
        name = language.get_display_name(reader) or own
        name = name[:1].upper() + name[1:]
        texts.append((reader, name if name.lower() == own.lower() else f"{name} ({own})"))
    return Msg("{text}", {"text": Localized(tuple(texts))})
