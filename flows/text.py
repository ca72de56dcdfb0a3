"""Translatable messages as plain data: flows say *what* to say, the bot layer renders it per locale."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Union

ParamValue = Union[str, int, "Money", date, datetime, "Msg", "Localized", "Moment", "Capital"]


@dataclass(frozen=True)
class Money:
    """An amount in euro cents, rendered with babel as currency in the reader's locale."""

    cents: int


@dataclass(frozen=True)
class Moment:
    """A moment shown to a person: day, month and hour:minute in their locale, without seconds; the
    year only when ``with_year`` (another year than now)."""

    at: datetime
    with_year: bool = False


@dataclass(frozen=True)
class Capital:
    """A message rendered with its first letter upper-case: a label that begins a sentence."""

    msg: Msg


@dataclass(frozen=True)
class Localized:
    """Text that comes from data (a municipality config) in several languages, not from the catalogs."""

    texts: tuple[tuple[str, str], ...]  # (language, text); the first is the fallback

    def get(self, language: str) -> str:
        for lang, text in self.texts:
            if lang == language:
                return text
        return self.texts[0][1]


@dataclass(frozen=True)
class Msg:
    """A gettext message id with named placeholders, translated when rendered.

    ``plural`` and ``n`` make it an ngettext message; ``n`` is also available as ``{n}``.
    """

    msgid: str
    params: dict[str, ParamValue] = field(default_factory=dict)
    plural: str | None = None
    n: int | None = None

    def __hash__(self) -> int:  # params is a dict; hash on what identifies the text
        return hash((self.msgid, self.plural, self.n, tuple(sorted(self.params))))


def t(msgid: str, **params: ParamValue) -> Msg:
    """Mark ``msgid`` for translation (extracted by babel with keyword ``t``)."""
    return Msg(msgid, dict(params))


def tn(singular: str, plural: str, n: int, **params: ParamValue) -> Msg:
    """Mark a plural message for translation (babel keyword ``tn:1,2``)."""
    return Msg(singular, dict(params), plural=plural, n=n)


def verbatim(text: str) -> Msg:
    """Text that is not translated (user input, names, references), shown as is."""
    return Msg("{text}", {"text": text})


def localized(**texts: str) -> Msg:
    """Text from data in several languages, e.g. ``localized(nl="Groen", en="Greenery")``."""
    return Msg("{text}", {"text": Localized(tuple(texts.items()))})


def capital(msg: Msg) -> Msg:
    """``msg`` as the start of a sentence: its first letter upper-case in every language."""
    return Msg("{text}", {"text": Capital(msg)})
