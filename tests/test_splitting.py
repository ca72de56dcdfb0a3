"""Splitting long texts into messages: every part fits Telegram's limit, nothing is lost, words stay whole."""

from __future__ import annotations

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.splitting import MESSAGE_LIMIT, shorten, split_text, utf16_len

BREAKS = regex.compile(r"[^\S\xa0\u2007\u202f]")

# Letters, spaces and newlines, astral emoji (two UTF-16 units each), a family (one grapheme cluster
# of several code points), a flag, combining marks, no-break spaces and right-to-left script.
PIECES = [
    "a",
    "woord",
    " ",
    "\n",
    "\n\n",
    ". ",
    "😀",
    "👨\u200d👩\u200d👧",
    "🇳🇱",
    "e\u0301",
    "\xa0",
    "€\xa01.250",
    "مرحبا",
    "𝔘",
]
texts = st.one_of(
    st.text(),
    st.lists(st.sampled_from(PIECES), max_size=300).map("".join),
    # No whitespace at all: one very long word.
    st.lists(st.sampled_from(["x", "😀", "e\u0301", "👨\u200d👩\u200d👧"]), max_size=300).map("".join),
)


def assert_split_well(text: str, parts: list[str], limit: int) -> None:
    assert "".join(parts) == text
    assert all(utf16_len(part) <= limit for part in parts)
    assert all(parts) or parts == [""]
    clusters = [(m.start(), m.end()) for m in regex.finditer(r"\X", text)]
    cut = 0
    for part in parts[:-1]:
        cut += len(part)
        if BREAKS.search(part):
            # A part that had a place to break ends at one: never inside a word.
            assert BREAKS.fullmatch(part[-1]), (part, parts)
        else:
            # A word longer than a message is cut between grapheme clusters (a cluster that alone
            # is longer than the limit cannot be kept whole).
            inside = [(s, e) for s, e in clusters if s < cut < e]
            assert all(utf16_len(text[s:e]) > limit for s, e in inside), (text, parts)


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(min_value=2, max_value=60))
def test_parts_fit_join_back_and_keep_words_and_emoji_whole(text: str, limit: int) -> None:
    assert_split_well(text, split_text(text, limit), limit)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1000, max_size=3000).map("".join))
def test_at_telegrams_own_limit(text: str) -> None:
    assert_split_well(text, split_text(text), MESSAGE_LIMIT)


def test_a_text_that_fits_is_one_part() -> None:
    assert split_text("Hallo!") == ["Hallo!"]
    assert split_text("") == [""]
    assert split_text("😀" * 2048) == ["😀" * 2048]
    assert split_text("😀" * 2049) == ["😀" * 2048, "😀"]  # counted as Telegram does: two units each


def test_a_blank_line_is_the_first_choice_then_a_line_then_a_sentence_then_a_word() -> None:
    first, second = "Eerste alinea. " * 150, "Tweede alinea.\nMet een regel. " * 200
    parts = split_text(first + "\n\n" + second)
    assert len(parts) == 3 and parts[0] == first + "\n\n"
    assert parts[1].endswith("Tweede alinea.\n")  # no blank line left: the last line end that fits
    lines = "Een regel van een bericht. En nog een zin.\n" * 120
    parts = split_text(lines)
    assert len(parts) == 2 and parts[0].endswith("zin.\n")
    sentences = "Een zin van een bericht met woorden. " * 150
    assert split_text(sentences)[0].endswith("woorden. ")
    words = "woord " * 1000
    assert split_text(words)[0] == "woord " * 682


def test_a_short_heading_does_not_become_a_message_of_its_own() -> None:
    text = "Kop\n\n" + "Een regel tekst van een lang bericht.\n" * 150
    first, second = split_text(text)
    assert first.startswith("Kop\n\nEen regel") and first.endswith("bericht.\n")
    assert second.startswith("Een regel")


def test_amounts_and_dates_with_no_break_spaces_stay_together() -> None:
    text = "x" * 10 + " " + "€\xa012.345\xa0678"
    assert split_text(text, 16) == ["x" * 10 + " ", "€\xa012.345\xa0678"]


def test_a_word_longer_than_a_message_is_cut_between_emoji() -> None:
    family = "👨\u200d👩\u200d👧"  # 8 units
    assert split_text(family * 3, 20) == [family * 2, family]
    assert split_text("x" * 5000 + " y") == ["x" * 4096, "x" * 904 + " y"]


def test_shorten_cuts_a_label_at_a_word_with_an_ellipsis() -> None:
    assert shorten("Kort", 64) == "Kort"
    assert shorten("Anna de Vries-van der Berg (3 open, afwezig tot 12 maart 2026)", 30) == (
        "Anna de Vries-van der Berg…"
    )
    assert utf16_len(shorten("😀" * 100, 9)) <= 9
