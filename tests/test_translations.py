"""The shipped catalogs match the source, and every text is complete, renders, keeps its placeholders
and has the plural forms of its language; Dutch is informal."""

from __future__ import annotations

import logging
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR, Translator, load_translations, shipped_languages
from flows.resident import LANGUAGES as OFFERED
from flows.text import Msg

ROOT = LOCALES_DIR.parent
TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
LANGUAGES = tuple(OFFERED)  # every language a resident can choose with /taal
# Counts that reach every plural form of the shipped languages (Arabic has six, Polish and Ukrainian three).
PLURAL_COUNTS = (0, 1, 2, 3, 5, 11, 12, 21, 22, 25, 100, 101, 102, 111)
# Keep in step with the extract command in locales/README.md.
EXTRACT_OPTIONS = (
    "-F", "babel.cfg",
    "--no-default-keywords", "-k", "t", "-k", "tn:1,2",
    "--sort-by-file", "--no-wrap",
    "--project", "initiatiefbot", "--copyright-holder", "initiatiefbot contributors",
)  # fmt: skip
FORMAL_DUTCH = re.compile(r"\b(?:u|uw)\b", re.IGNORECASE)
PLACEHOLDER_TEXT = re.compile(r"\{[^{}]*\}")

Key = tuple[str, str | None]  # (msgid, msgid_plural)


def _key(message: Message) -> Key:
    if isinstance(message.id, tuple | list):
        return (message.id[0], message.id[1])
    return (message.id, None)


def _show(key: Key) -> str:
    return f"{key[0]!r}" if key[1] is None else f"{key[0]!r} / plural {key[1]!r}"


def _sorted(keys: set[Key]) -> list[Key]:
    return sorted(keys, key=lambda k: (k[0], k[1] or ""))


def _fail_if_any(problem: str, lines: list[str]) -> None:
    """Fail with every offending entry listed, one per line."""
    if lines:
        listed = "\n".join(f"  - {line}" for line in lines)
        pytest.fail(f"{problem} ({len(lines)}):\n{listed}", pytrace=False)


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale, domain=DOMAIN)


@cache
def _template() -> Catalog:
    return _read(TEMPLATE)


def _po(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _catalog(language: str) -> Catalog:
    path = _po(language)
    if not path.exists():
        # Reported once, by test_the_catalogs_are_exactly_the_offered_languages.
        pytest.skip(f"no catalog for {language} yet: {path.relative_to(ROOT)}")
    return _read(path, locale=language)


def _entries(catalog: Catalog) -> Iterator[Message]:
    return (message for message in catalog if message.id)


def _forms(message: Message) -> list[str]:
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string]


def _placeholders(text: str) -> set[str]:
    """Named fields of a ``str.format`` template; raises ValueError on unbalanced braces."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _msgid_placeholders(key: Key) -> set[str]:
    singular, plural = key
    return _placeholders(singular) | (_placeholders(plural) if plural is not None else set())


def test_template_is_up_to_date_with_the_source(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    pybabel = [sys.executable, "-m", "babel.messages.frontend", "-q"]
    result = subprocess.run(
        [*pybabel, "extract", *EXTRACT_OPTIONS, "-o", str(fresh), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"pybabel extract failed:\n{result.stderr}"
    in_source = {_key(m) for m in _entries(_read(fresh))}
    committed = {_key(m) for m in _entries(_template())}
    problems = [f"not in locales/messages.pot yet: {_show(k)}" for k in _sorted(in_source - committed)]
    problems += [f"no longer in the source: {_show(k)}" for k in _sorted(committed - in_source)]
    _fail_if_any("locales/messages.pot is out of date (run the extract command)", problems)


def test_the_catalogs_are_exactly_the_offered_languages() -> None:
    shipped = set(shipped_languages())
    problems = [f"offered with /taal but no catalog: {lang}" for lang in LANGUAGES if lang not in shipped]
    problems += [f"a catalog nobody can choose: {lang}" for lang in sorted(shipped - set(LANGUAGES))]
    _fail_if_any("locales/ differs from flows.resident.LANGUAGES", problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_forms_header_is_babels_rule(language: str) -> None:
    catalog = _catalog(language)
    wanted_count, wanted_expr = get_plural(language)
    assert (catalog.num_plurals, catalog.plural_expr) == (wanted_count, wanted_expr), (
        f"{language}: Plural-Forms is {catalog.plural_forms!r}, babel says "
        f"nplurals={wanted_count}; plural={wanted_expr};"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_has_exactly_the_messages_of_the_template(language: str) -> None:
    wanted = {_key(m) for m in _entries(_template())}
    present = {_key(m) for m in _entries(_catalog(language))}
    problems = [f"missing: {_show(k)}" for k in _sorted(wanted - present)]
    problems += [f"not in the template: {_show(k)}" for k in _sorted(present - wanted)]
    _fail_if_any(f"{language} catalog differs from the template (run pybabel update)", problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_has_no_obsolete_entries(language: str) -> None:
    obsolete = [_show(_key(m)) for m in _catalog(language).obsolete.values()]
    _fail_if_any(f"{language} catalog has obsolete entries (update with --ignore-obsolete)", obsolete)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_not_fuzzy(language: str) -> None:
    catalog = _catalog(language)
    plurals = get_plural(language)[0]  # babel's rule, not what the header claims
    problems = ["the catalog header is marked fuzzy"] if catalog.fuzzy else []
    for message in _entries(catalog):
        forms = _forms(message)
        if message.fuzzy:
            problems.append(f"fuzzy: {_show(_key(message))}")
        if message.pluralizable and len(forms) != plurals:
            problems.append(f"{len(forms)} of {plurals} plural forms: {_show(_key(message))}")
        empty = [i for i, form in enumerate(forms) if not form]
        if empty:
            where = f" (msgstr{empty})" if message.pluralizable else ""
            problems.append(f"empty{where}: {_show(_key(message))}")
    _fail_if_any(f"{language} catalog has fuzzy or untranslated entries", problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders_of_the_msgid(language: str) -> None:
    problems = []
    for message in _entries(_catalog(language)):
        key = _key(message)
        try:
            expected = _msgid_placeholders(key)
        except ValueError as exc:
            problems.append(f"msgid has broken braces ({exc}): {_show(key)}")
            continue
        for i, form in enumerate(_forms(message)):
            if not form:
                continue  # reported by the completeness test
            try:
                found = _placeholders(form)
            except ValueError as exc:
                problems.append(f"msgstr[{i}] has broken braces ({exc}): {_show(key)} -> {form!r}")
                continue
            if found != expected:
                problems.append(
                    f"msgstr[{i}] has {sorted(found)}, msgid has {sorted(expected)}: {_show(key)} -> {form!r}"
                )
    _fail_if_any(f"{language} translations change placeholders", problems)


def test_dutch_says_je_not_u() -> None:
    problems = []
    for message in _entries(_catalog("nl")):
        for form in _forms(message):
            words = sorted({m.group(0) for m in FORMAL_DUTCH.finditer(PLACEHOLDER_TEXT.sub("", form))})
            if words:
                problems.append(f"uses {words}: {_show(_key(message))} -> {form!r}")
    _fail_if_any("Dutch texts use the formal u/uw instead of je/jouw", problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_renders(language: str, caplog: pytest.LogCaptureFixture) -> None:
    _catalog(language)  # skips a language whose catalog is not there yet
    translator = Translator(LANGUAGES)
    problems = []
    for message in _entries(_template()):
        key = _key(message)
        try:
            names = _msgid_placeholders(key) - {"n"}
        except ValueError as exc:
            problems.append(f"msgid has broken braces ({exc}): {_show(key)}")
            continue
        params: dict[str, str | int] = {name: f"<{name}>" for name in names}
        msgs = [Msg(key[0], dict(params))]
        if key[1] is not None:
            msgs = [Msg(key[0], dict(params), plural=key[1], n=n) for n in PLURAL_COUNTS]
        for msg in msgs:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="bot.i18n"):
                try:
                    translator.render(msg, language)
                except Exception as exc:  # the test's point is to list every message that breaks
                    problems.append(f"raises {exc!r} (n={msg.n}): {_show(key)}")
                    continue
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            if errors:
                problems.append(f"logs {errors} (n={msg.n}): {_show(key)}")
    _fail_if_any(f"messages do not render in {language}", problems)


def test_dutch_catalog_is_used_for_the_main_menu() -> None:
    assert load_translations("nl").gettext("New initiative") == "Nieuw initiatief"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang not in ("nl", "en")])
def test_the_menu_is_translated(language: str) -> None:
    """A new language is really in use: its catalog is loaded and says something else than the Dutch."""
    _catalog(language)
    translator = Translator(LANGUAGES)
    text = translator.render(Msg("New initiative"), language)
    assert text not in ("New initiative", "Nieuw initiatief")


def _write_po(locales: Path, language: str, entries: dict[str, str]) -> None:
    catalog = Catalog(locale=language, domain=DOMAIN)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    path = locales / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    path.parent.mkdir(parents=True)
    with path.open("wb") as fh:
        write_po(fh, catalog)


def test_a_missing_entry_falls_back_to_dutch_and_every_catalog_is_loaded(tmp_path: Path) -> None:
    _write_po(tmp_path, "nl", {"Help": "Hulp", "New initiative": "Nieuw initiatief"})
    _write_po(tmp_path, "en", {"Help": "Help"})
    _write_po(tmp_path, "tr", {"Help": "Yardım", "New initiative": ""})
    _write_po(tmp_path, "pl", {"Help": "Pomoc"})
    translator = Translator(("nl", "en", "tr", "ar"), locales_dir=tmp_path)
    assert translator.render(Msg("Help"), "tr") == "Yardım"
    assert translator.render(Msg("New initiative"), "tr") == "Nieuw initiatief"  # empty in tr
    assert translator.render(Msg("New initiative"), "ar") == "Nieuw initiatief"  # no ar catalog
    assert translator.render(Msg("Help"), "pl") == "Pomoc"  # under locales/, though not offered here
    assert translator.render(Msg("Help"), "xx") == "Hulp"  # a language the bot does not know
    assert translator.render(Msg("New initiative"), "en") == "New initiative"  # the msgid is English
    plural = Msg("{n} day", plural="{n} days", n=3)
    assert translator.render(plural, "tr") == "3 days"  # in no catalog at all: the msgid
    assert shipped_languages(tmp_path) == ("en", "nl", "pl", "tr")
