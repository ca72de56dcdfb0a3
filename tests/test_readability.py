"""Every Dutch text a resident reads is B1: short sentences, easy words (Flesch-Douma), no officialese.

Which texts: the msgids babel extracts (keywords ``t`` and ``tn:1,2``, as locales/README.md) from the
modules residents' messages come from, taken whole (flows/resident.py, intake.py, engine.py,
privacy.py, pii.py, validators.py, flood.py, bot/data_export.py, ...) or, where a module writes to
staff too, only the functions, module-level names or msgids listed in
``tests/readability.RESIDENT_SOURCES`` (status labels in flows/lifecycle.py, the resident's timeline
in flows/broker.py, the resident replies in bot/casework.py, ...). Each is rendered from locales/nl
with realistic sample values (``SAMPLES``), every plural form with its own ``{n}``.

How: every line is a sentence of its own (bullets, a heading ending in ':'), and within a line a
sentence ends at '.', '!', '?' or '…' before a space. textstat with ``set_lang("nl")`` gives
Flesch-Douma: its ``LANG_CONFIGS["nl"]`` (textstat/backend/utils/constants.py, 0.7.x) holds Douma's
206.835 - 0.93 x words per sentence - 77 x syllables per word, syllables counted with pyphen's Dutch
dictionary; ``test_flesch_douma_is_doumas_formula`` checks that against the figures by hand. textstat
does not count sentences of two words or fewer ("Hoi Anna!") as sentences, which makes its score a bit
stricter than ours.
"""

from __future__ import annotations

import pytest
import textstat

from tests.readability import (
    FLESCH_FROM_WORDS,
    MAX_WORDS_PER_SENTENCE,
    MIN_FLESCH_DOUMA,
    OFFICIALESE,
    SAMPLES,
    Figures,
    Resident,
    measure,
    placeholders,
    renderings,
    resident_messages,
    sentences,
)


def _measured() -> list[tuple[Resident, str, Figures]]:
    return [(message, text, measure(text)) for message in resident_messages() for text in renderings(message)]


def _fail_if_any(problem: str, lines: list[str]) -> None:
    if lines:
        listed = "\n".join(f"  - {line}" for line in lines)
        pytest.fail(f"{problem} ({len(lines)}):\n{listed}", pytrace=False)


def _show(message: Resident, text: str, figures: Figures) -> str:
    score = "" if figures.flesch_douma is None else f", Flesch-Douma {figures.flesch_douma:.0f}"
    return (
        f"{message.where}: {figures.words} words in {figures.sentences} sentences "
        f"({figures.words_per_sentence:.1f} per sentence{score})\n      msgid {message.msgid!r}\n"
        f"      nl    {text!r}"
    )


def test_the_selection_holds_residents_texts_and_not_staff_texts() -> None:
    msgids = {message.msgid for message in resident_messages()}
    assert len(msgids) > 200
    for resident_text in (
        "in conversation with your initiatiefmakelaar",  # a status label (flows/lifecycle.py)
        "Your initiative “{title}” has a new initiatiefmakelaar: {broker}.",  # bot/casework.py
        "Message to you: {note}",  # the resident's timeline (flows/broker.py)
        "Do you want us to delete your data? Send /vergeetmij.",  # flows/privacy.py
        "Share a new idea",  # the command menu (bot/command_menus.py)
    ):
        assert resident_text in msgids
    for staff_text in (
        "Status changed. The initiator has been told.",  # bot/casework.py, to the broker
        "Message to the initiator: {note}",
        "Rejected",  # the staff's status label
    ):
        assert staff_text not in msgids


def test_every_placeholder_has_a_sample_value() -> None:
    missing = [
        f"{{{name}}} in {message.where} {message.msgid!r}"
        for message in resident_messages()
        for name in sorted(placeholders(message.msgid) | placeholders(message.plural or ""))
        if name not in SAMPLES and name != "n"
    ]
    _fail_if_any("placeholders without a value in tests/readability.SAMPLES", missing)


def test_sentences_are_short() -> None:
    too_long = [
        _show(message, text, figures)
        for message, text, figures in _measured()
        if figures.words_per_sentence > MAX_WORDS_PER_SENTENCE
    ]
    _fail_if_any(f"Dutch texts with more than {MAX_WORDS_PER_SENTENCE} words per sentence", too_long)


def test_longer_texts_are_easy_to_read() -> None:
    hard = [
        _show(message, text, figures)
        for message, text, figures in _measured()
        if figures.flesch_douma is not None and figures.flesch_douma < MIN_FLESCH_DOUMA
    ]
    _fail_if_any(
        f"Dutch texts of {FLESCH_FROM_WORDS}+ words with a Flesch-Douma below {MIN_FLESCH_DOUMA}", hard
    )


def test_no_officialese() -> None:
    stiff = [
        f"{', '.join(f'{w!r} (write {OFFICIALESE[w]!r})' for w in figures.officialese)}: "
        + _show(message, text, figures)
        for message, text, figures in _measured()
        if figures.officialese
    ]
    _fail_if_any("Dutch texts with officialese", stiff)


# The measuring itself, so the checks above cannot pass by measuring nothing.


def test_a_bureaucratic_sentence_fails_every_check() -> None:
    text = (
        "Indien u op de afgesproken datum verhinderd bent, dient u dit onverwijld middels het daartoe "
        "bestemde formulier aan de gemeente kenbaar te maken, teneinde de afhandeling van uw aanvraag "
        "niet te vertragen."
    )
    figures = measure(text)
    assert figures.words_per_sentence > MAX_WORDS_PER_SENTENCE
    assert figures.flesch_douma is not None and figures.flesch_douma < MIN_FLESCH_DOUMA
    assert set(figures.officialese) >= {"indien", "dient u", "onverwijld", "middels", "teneinde", "u", "uw"}


def test_each_bullet_and_each_line_is_a_sentence() -> None:
    text = "Wat bewaren we?\n• Je naam\n• Je idee. En je foto\n/nieuw – deel een nieuw idee"
    assert sentences(text) == [
        "Wat bewaren we?",
        "Je naam",
        "Je idee.",
        "En je foto",
        "/nieuw – deel een nieuw idee",
    ]
    assert measure("Een bedrag van € 1.250 is goed. Mail naar anna@voorbeeld.nl.").sentences == 2


def test_officialese_is_matched_as_whole_words() -> None:
    assert measure("Je bent nu klaar. Kies /nieuw voor een nieuw idee.").officialese == ()
    assert measure("Wil je dat? Dan kan dat.").officialese == ()
    assert measure("Dat is reeds gedaan, t.b.v. de buurt.").officialese == ("reeds", "t.b.v.")


def test_flesch_douma_is_doumas_formula() -> None:
    text = " ".join(["Je idee is verstuurd naar de gemeente. Anna helpt je verder en belt je snel."] * 3)
    figures = measure(text)
    words, syllables = textstat.lexicon_count(text), textstat.syllable_count(text)
    assert figures.flesch_douma == pytest.approx(206.835 - 0.93 * words / 6 - 77 * syllables / words)
