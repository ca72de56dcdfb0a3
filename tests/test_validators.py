"""What residents may type at each question, and what the bot makes of it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pytest
from babel.numbers import format_currency
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.text import Msg
from flows.validators import (
    AMOUNT_MAX_CENTS,
    AMOUNT_MIN_CENTS,
    NEIGHBOURS_MAX,
    ContactDetail,
    Invalid,
    clean_text,
    looks_like_postcode,
    validate_amount,
    validate_choice,
    validate_contact,
    validate_description,
    validate_email,
    validate_name,
    validate_neighbours,
    validate_own_contribution,
    validate_phone,
    validate_postcode,
    validate_title,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SINGLE_ARG_VALIDATORS: list[Callable[[str], object]] = [
    validate_title,
    validate_description,
    validate_own_contribution,
    validate_amount,
    validate_neighbours,
    validate_name,
    validate_phone,
    validate_email,
    validate_contact,
    validate_postcode,
    looks_like_postcode,
]

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
TRICKY = (
    BIDI_CONTROLS + ZERO_WIDTH + "\x00\x07\x1b\x7f\x85\x9b\r\n\t\x0b\x0c\u2028\u2029\u00a0\u202f\u3000\u00ad"
)

# Arbitrary Unicode (no surrogates), sometimes long: short text repeated up to 5000 characters.
any_text = st.one_of(
    st.text(max_size=300),
    st.tuples(st.text(min_size=1, max_size=100), st.integers(1, 5000)).map(lambda p: (p[0] * p[1])[:5000]),
)
# Text close to what the validators look for, so the deeper branches are reached too.
near_text = st.text(alphabet="0123456789 .,€-+()/@abeEuroSADzZ\u00e9\u0301" + TRICKY, max_size=40)
fuzz = st.one_of(any_text, near_text)


def assert_friendly(result: object) -> None:
    assert isinstance(result, Invalid)
    assert isinstance(result.reason, Msg)
    assert result.reason.msgid.strip()


# --- clean_text -----------------------------------------------------------------------------------------


def test_clean_text_removes_disguising_characters_and_extra_space() -> None:
    raw = "  Bank\u202e\u200b jes  \u2066in het park\u2069\x00 "
    assert clean_text(raw, keep_newlines=False) == "Bank jes in het park"


def test_clean_text_keeps_paragraphs_but_not_endless_empty_lines() -> None:
    raw = "Eerste alinea.  \r\n\r\n\r\n\r\n\r\nTweede\talinea.\n"
    assert clean_text(raw, keep_newlines=True) == "Eerste alinea.\n\n\nTweede\talinea."
    assert clean_text(raw, keep_newlines=False) == "Eerste alinea. Tweede alinea."


def test_clean_text_composes_accents() -> None:
    assert clean_text("Cafe\u0301 de\u200b\u0301", keep_newlines=False) == "Café dé"


def test_clean_text_keeps_emoji_sequences_but_not_joiners_between_letters() -> None:
    farmer = "\U0001f469\u200d\U0001f33e"
    assert clean_text(f"Tuin {farmer}", keep_newlines=False) == f"Tuin {farmer}"
    assert clean_text("Spee\u200dltuin", keep_newlines=False) == "Speeltuin"


def _only_allowed_characters(text: str, keep_newlines: bool) -> None:
    for i, ch in enumerate(text):
        assert ch not in BIDI_CONTROLS
        assert ch not in "\u200b\u200c\u2060\ufeff"
        category = unicodedata.category(ch)
        if keep_newlines and ch in "\n\t":
            continue
        assert category not in ("Cc", "Cs", "Zl", "Zp"), repr(ch)
        if ch == "\u200d":
            assert 0 < i < len(text) - 1
        else:
            assert category != "Cf", repr(ch)
        assert category != "Zs" or ch == " "


@FAST
@given(raw=fuzz, keep_newlines=st.booleans())
def test_bidi_and_control_characters_never_survive_cleaning(raw: str, keep_newlines: bool) -> None:
    cleaned = clean_text(raw, keep_newlines=keep_newlines)
    _only_allowed_characters(cleaned, keep_newlines)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert "\n\n\n\n" not in cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    if not keep_newlines:
        assert "\n" not in cleaned and "\t" not in cleaned


@FAST
@given(raw=fuzz, keep_newlines=st.booleans())
def test_cleaning_twice_changes_nothing(raw: str, keep_newlines: bool) -> None:
    once = clean_text(raw, keep_newlines=keep_newlines)
    assert clean_text(once, keep_newlines=keep_newlines) == once


@QUICK
@given(raw=st.text(alphabet=st.characters(codec=None, categories=["Cs", "Lu", "Nd", "Zs"]), max_size=30))
def test_lone_surrogates_from_json_are_dropped(raw: str) -> None:
    cleaned = clean_text(raw, keep_newlines=True)
    cleaned.encode("utf-8")  # Telegram needs valid UTF-8


# --- never raise ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("validator", SINGLE_ARG_VALIDATORS, ids=lambda v: v.__name__)
@QUICK
@given(raw=fuzz)
def test_validators_never_raise_on_any_text(validator: Callable[[str], object], raw: str) -> None:
    result = validator(raw)
    if isinstance(result, Invalid):
        assert_friendly(result)


# --- title, description, own contribution, name ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Speeltuin", "Speeltuin"),
        ("  Bankjes   in het\npark ", "Bankjes in het park"),
        ("Moestuin voor iedereen 🌱", "Moestuin voor iedereen 🌱"),
        ("حديقة الحي", "حديقة الحي"),
        ("a" * 80, "a" * 80),
    ],
)
def test_resident_can_give_a_short_title(raw: str, expected: str) -> None:
    assert validate_title(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "Tuin", "12345", "!!!!!!", "a" * 81, "\u202e\u200b\u200b\u200b\u200b"]
)
def test_title_that_is_empty_short_long_or_without_letters_is_refused(raw: str) -> None:
    assert_friendly(validate_title(raw))


def test_title_too_long_says_how_long_it_is() -> None:
    result = validate_title("b" * 95)
    assert isinstance(result, Invalid)
    assert result.reason.params == {"count": 95, "max": 80}


@FAST
@given(raw=fuzz)
def test_accepted_title_is_one_line_within_bounds(raw: str) -> None:
    title = validate_title(raw)
    if isinstance(title, str):
        assert 5 <= len(title) <= 80
        assert "\n" not in title
        assert any(ch.isalpha() for ch in title)
        assert validate_title(title) == title


def test_resident_can_describe_idea_in_paragraphs() -> None:
    raw = "We willen bankjes in het park.\n\n\n\n\nDan kunnen ouderen even rusten."
    assert validate_description(raw) == "We willen bankjes in het park.\n\n\nDan kunnen ouderen even rusten."


@pytest.mark.parametrize("raw", ["", "Bankjes", "1234567890 1234567890", "x" * 2001])
def test_description_that_is_too_short_long_or_without_words_is_refused(raw: str) -> None:
    assert_friendly(validate_description(raw))


@FAST
@given(raw=fuzz)
def test_accepted_description_is_within_bounds(raw: str) -> None:
    text = validate_description(raw)
    if isinstance(text, str):
        assert 20 <= len(text) <= 2000
        assert any(ch.isalpha() for ch in text)
        assert validate_description(text) == text


def test_own_contribution_can_be_short() -> None:
    assert validate_own_contribution("  Koffie zetten. ") == "Koffie zetten."
    assert validate_own_contribution("x") == "x"


@pytest.mark.parametrize("raw", ["", " \n\t ", "\u200b\u202e", "y" * 2001])
def test_own_contribution_that_is_empty_or_too_long_is_refused(raw: str) -> None:
    assert_friendly(validate_own_contribution(raw))


@FAST
@given(raw=fuzz)
def test_accepted_own_contribution_is_within_bounds(raw: str) -> None:
    text = validate_own_contribution(raw)
    if isinstance(text, str):
        assert 1 <= len(text) <= 2000
        assert validate_own_contribution(text) == text


@pytest.mark.parametrize(
    "raw",
    [
        "Jan",
        "Anne-Marie",
        "O'Brien",
        "D’Angelo",
        "J.de Vries",
        "A. van der Berg",
        "أحمد",
        "Мария",
        "王小明",
        "Zoë",
    ],
)
def test_resident_can_give_a_name_in_any_script(raw: str) -> None:
    assert validate_name(raw) == raw


@pytest.mark.parametrize(
    "raw", ["", "   ", "123", "@jan", "jan@example.nl", "www.jan.nl", "jan.com", "Jan <b>", "x" * 61]
)
def test_name_without_letters_or_with_links_or_handles_is_refused(raw: str) -> None:
    assert_friendly(validate_name(raw))


@FAST
@given(raw=fuzz)
def test_accepted_name_is_within_bounds(raw: str) -> None:
    name = validate_name(raw)
    if isinstance(name, str):
        assert 1 <= len(name) <= 60
        assert any(ch.isalpha() for ch in name)
        assert "@" not in name and "\n" not in name
        assert validate_name(name) == name


# --- amount ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cents"),
    [
        ("1250", 125_000),
        ("€ 1.250", 125_000),
        ("€1.250,50", 125_050),
        ("1.250,-", 125_000),
        ("1.250,--", 125_000),
        ("1250 euro", 125_000),
        ("EUR 1250", 125_000),
        ("eur 1.250,00", 125_000),
        ("12,50", 1_250),
        ("12,5", 1_250),
        ("12.50", 1_250),
        ("1 250", 125_000),
        ("€\u00a01.234,56", 123_456),
        ("1", 100),
        ("€ 1.000.000", 100_000_000),
        ("١٢٥٠", 125_000),
    ],
)
def test_resident_can_write_an_amount_the_dutch_way(raw: str, cents: int) -> None:
    assert validate_amount(raw) == cents


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1,250",
        "12,500",
        "1,250.50",
        "-50",
        "€ -50",
        "−50",
        "0",
        "0,99",
        "€ 1.000.000,01",
        "2000000",
        "duizend",
        "1,5 duizend",
        "1k",
        "500 - 1000",
        "500 of 600",
        "12 15",
        "1250.500",
        "1.25.0",
        "9" * 5000,
    ],
)
def test_amount_that_is_unclear_negative_or_out_of_range_is_refused(raw: str) -> None:
    assert_friendly(validate_amount(raw))


def test_ambiguous_comma_asks_for_a_clear_way_of_writing() -> None:
    result = validate_amount("1,250")
    assert isinstance(result, Invalid)
    assert result.reason.params == {"plain": "1250", "formatted": "€ 1.250"}


def dutch_money(cents: int) -> str:
    euros, rest = divmod(cents, 100)
    return f"€ {euros:,}".replace(",", ".") + f",{rest:02d}"


@FAST
@given(cents=st.integers(AMOUNT_MIN_CENTS, AMOUNT_MAX_CENTS))
def test_amount_written_the_dutch_way_reads_back_the_same(cents: int) -> None:
    assert validate_amount(dutch_money(cents)) == cents
    assert validate_amount(format_currency(cents / 100, "EUR", locale="nl_NL")) == cents
    assert validate_amount(dutch_money(cents).replace(".", "")) == cents


@FAST
@given(euros=st.integers(AMOUNT_MIN_CENTS // 100, AMOUNT_MAX_CENTS // 100))
def test_whole_euros_as_plain_digits_read_back_the_same(euros: int) -> None:
    assert validate_amount(str(euros)) == euros * 100
    assert validate_amount(f"{euros} euro") == euros * 100
    assert validate_amount(f"{euros:,}".replace(",", ".") + ",-") == euros * 100


@FAST
@given(raw=fuzz)
def test_accepted_amount_is_within_range(raw: str) -> None:
    cents = validate_amount(raw)
    if not isinstance(cents, Invalid):
        assert isinstance(cents, int)
        assert AMOUNT_MIN_CENTS <= cents <= AMOUNT_MAX_CENTS


# --- neighbours -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "12",
        " 12 ",
        "ongeveer 12",
        "ca. 12",
        "about 12",
        "12 mensen",
        "12 people",
        "12+",
        "+/- 12",
        "ongeveer 12.",
    ],
)
def test_resident_can_say_about_how_many_neighbours_join(raw: str) -> None:
    assert validate_neighbours(raw) == 12


def test_neighbours_in_the_thousands_may_use_a_dot() -> None:
    assert validate_neighbours("1.000") == 1000


@pytest.mark.parametrize(
    "raw", ["", "twaalf", "12 of 13", "10-15", "12,5", "12.5", "-12", "0", "100001", "9" * 5000]
)
def test_neighbours_that_are_not_one_whole_number_are_refused(raw: str) -> None:
    assert_friendly(validate_neighbours(raw))


@FAST
@given(n=st.integers(1, NEIGHBOURS_MAX))
def test_any_number_of_neighbours_reads_back_the_same(n: int) -> None:
    assert validate_neighbours(str(n)) == n
    assert validate_neighbours(f"ongeveer {n} mensen") == n


@FAST
@given(raw=fuzz)
def test_accepted_number_of_neighbours_is_within_range(raw: str) -> None:
    n = validate_neighbours(raw)
    if not isinstance(n, Invalid):
        assert 1 <= n <= NEIGHBOURS_MAX


# --- phone ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06-12345678", "+31612345678"),
        ("06 1234 5678", "+31612345678"),
        ("+31 6 12345678", "+31612345678"),
        ("+31 (0)6 12345678", "+31612345678"),
        ("0031612345678", "+31612345678"),
        ("0575-123456", "+31575123456"),
        ("(0575) 12 34 56", "+31575123456"),
        ("085-1234567", "+31851234567"),
        ("+32 470 12 34 56", "+32470123456"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_resident_can_write_a_phone_number_in_the_usual_ways(raw: str, expected: str) -> None:
    assert validate_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "0612345",
        "061234567890",
        "612345678",
        "+31 6 1234567",
        "+0123456789",
        "+1234567",
        "+1234567890123456",
        "bel me: 0612345678",
        "06 12345678 of 0575 123456",
    ],
)
def test_phone_number_that_cannot_be_right_is_refused(raw: str) -> None:
    assert_friendly(validate_phone(raw))


dutch_phone = st.from_regex(r"\A(\+31 ?|0031|0)[1-9]([ -]?[0-9]){8}\Z")
foreign_phone = st.from_regex(r"\A\+[1-9][0-9]{7,14}\Z").filter(lambda s: not s.startswith("+31"))
phone_like = st.one_of(dutch_phone, foreign_phone, near_text, any_text)


@FAST
@given(raw=dutch_phone)
def test_dutch_numbers_become_plus_31_and_nine_digits(raw: str) -> None:
    phone = validate_phone(raw)
    assert isinstance(phone, str)
    assert re.fullmatch(r"\+31[1-9][0-9]{8}", phone)


@FAST
@given(raw=phone_like)
def test_accepted_phone_is_normalised_and_stays_the_same(raw: str) -> None:
    phone = validate_phone(raw)
    if isinstance(phone, str):
        assert re.fullmatch(r"\+[1-9][0-9]{7,14}", phone)
        if phone.startswith("+31"):
            assert len(phone) == 12
        assert validate_phone(phone) == phone


# --- e-mail ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jan@example.nl", "jan@example.nl"),
        (" Jan.Jansen+buurt@Example.NL ", "Jan.Jansen+buurt@example.nl"),
        ("a_b-c@mail.gemeente.nl", "a_b-c@mail.gemeente.nl"),
        ("info@bücher.DE", "info@bücher.de"),
        ("x@xn--bcher-kva.de", "x@xn--bcher-kva.de"),
    ],
)
def test_resident_can_give_an_email_address(raw: str, expected: str) -> None:
    assert validate_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "jan",
        "jan@",
        "@example.nl",
        "jan@@example.nl",
        "jan@example",
        "jan@example.n",
        "jan@example.123",
        "jan@-example.nl",
        "jan@example..nl",
        "jan..jansen@example.nl",
        ".jan@example.nl",
        "jan jansen@example.nl",
        "jan@example,nl",
        "jän@example.nl",
        "a" * 65 + "@example.nl",
        "a@" + "b" * 250 + ".nl",
    ],
)
def test_email_address_that_cannot_be_right_is_refused(raw: str) -> None:
    assert_friendly(validate_email(raw))


label = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?\Z")
email_like = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.from_regex(r"\A[A-Za-z0-9+_-]{1,10}(\.[A-Za-z0-9+_-]{1,10}){0,2}\Z"),
    st.lists(label, min_size=1, max_size=3),
    st.from_regex(r"\A[A-Za-zé]{2,6}\Z"),
)


@FAST
@given(raw=email_like)
def test_plausible_email_addresses_are_accepted_with_lower_case_domain(raw: str) -> None:
    email = validate_email(raw)
    assert isinstance(email, str)
    local, domain = email.split("@")
    assert local == raw.split("@")[0]
    assert domain == raw.split("@")[1].lower()


@FAST
@given(raw=st.one_of(email_like, near_text, any_text))
def test_accepted_email_is_bounded_and_stays_the_same(raw: str) -> None:
    email = validate_email(raw)
    if isinstance(email, str):
        assert email.count("@") == 1
        assert len(email) <= 254
        local, domain = email.split("@")
        assert 1 <= len(local) <= 64
        assert "." in domain and domain == domain.lower()
        assert validate_email(email) == email


# --- contact --------------------------------------------------------------------------------------------


def test_contact_can_be_a_phone_number_or_an_email_address() -> None:
    assert validate_contact("06 12345678") == ContactDetail("phone", "+31612345678")
    assert validate_contact("Jan@Example.nl") == ContactDetail("email", "Jan@example.nl")


@pytest.mark.parametrize("raw", ["", "hallo", "jan@", "0612"])
def test_contact_that_is_neither_phone_nor_email_is_refused(raw: str) -> None:
    assert_friendly(validate_contact(raw))


@FAST
@given(raw=st.one_of(email_like, dutch_phone, foreign_phone, near_text))
def test_contact_uses_the_matching_check(raw: str) -> None:
    contact = validate_contact(raw)
    if isinstance(contact, ContactDetail):
        check = validate_email if contact.kind == "email" else validate_phone
        assert check(raw) == contact.value


# --- postcode -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7201ab", "7201 AB"),
        ("7201 AB", "7201 AB"),
        (" 7201  aB ", "7201 AB"),
        ("7201", "7201"),
        ("1000", "1000"),
    ],
)
def test_resident_can_write_a_postcode_with_or_without_space(raw: str, expected: str) -> None:
    assert validate_postcode(raw) == expected
    assert looks_like_postcode(raw)


@pytest.mark.parametrize(
    "raw", ["", "0999 AB", "7201 SA", "7201 sd", "7201 SS", "72010", "720 AB", "7201 ABC", "AB 7201"]
)
def test_postcode_that_does_not_exist_is_refused(raw: str) -> None:
    assert_friendly(validate_postcode(raw))


@pytest.mark.parametrize("raw", ["De Hoven", "Wijk 7", "centrum", "", "ik woon in 7201 AB"])
def test_free_text_is_not_taken_for_a_postcode(raw: str) -> None:
    assert not looks_like_postcode(raw)


def test_almost_postcodes_are_recognised_as_an_attempt() -> None:
    assert looks_like_postcode("720 AB")
    assert looks_like_postcode("72010")


postcode_like = st.builds(
    lambda digits, space, letters: f"{digits}{space}{letters}",
    st.integers(0, 99999).map(str),
    st.sampled_from(["", " ", "  "]),
    st.text(alphabet="aAbBsSdDzZ", max_size=3),
)


@FAST
@given(raw=st.one_of(postcode_like, near_text, any_text))
def test_accepted_postcode_is_normalised_and_stays_the_same(raw: str) -> None:
    postcode = validate_postcode(raw)
    if isinstance(postcode, str):
        assert re.fullmatch(r"[1-9][0-9]{3}( [A-Z]{2})?", postcode)
        assert postcode[5:] not in {"SA", "SD", "SS"}
        assert validate_postcode(postcode) == postcode
        assert looks_like_postcode(raw)


# --- buttons --------------------------------------------------------------------------------------------


def test_button_data_must_be_exactly_one_of_the_choices() -> None:
    allowed = {"speeltuin", "groen"}
    assert validate_choice("groen", allowed) == "groen"
    assert_friendly(validate_choice("Groen", allowed))
    assert_friendly(validate_choice(" groen", allowed))
    assert_friendly(validate_choice("", allowed))


@FAST
@given(allowed=st.frozensets(st.text(max_size=20), max_size=8), data=st.data())
def test_choice_accepts_exactly_the_allowed_set(allowed: frozenset[str], data: st.DataObject) -> None:
    candidates = st.one_of(st.sampled_from(sorted(allowed)), st.text(max_size=20)) if allowed else st.text()
    raw = data.draw(candidates)
    result = validate_choice(raw, allowed)
    if raw in allowed:
        assert result == raw
    else:
        assert_friendly(result)
    assert validate_choice(raw, list(allowed)) == result
