"""Pure checks for what residents type: each returns a clean value or an ``Invalid`` with a friendly reason.

Validators never raise, whatever the input, so they are safe to call on any text from Telegram.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from flows.text import Money, Msg, t, tn

TITLE_MIN = 5
TITLE_MAX = 80
DESCRIPTION_MIN = 20
DESCRIPTION_MAX = 2000
CONTRIBUTION_MAX = 2000
NAME_MAX = 60
AMOUNT_MIN_CENTS = 100
AMOUNT_MAX_CENTS = 100_000_000
NEIGHBOURS_MAX = 100_000
EMAIL_MAX = 254
EMAIL_LOCAL_MAX = 64


@dataclass(frozen=True)
class Invalid:
    """The input was not accepted; ``reason`` says what is wrong and what to do."""

    reason: Msg


@dataclass(frozen=True)
class ContactDetail:
    """A validated way to reach the resident."""

    kind: Literal["phone", "email"]
    value: str


# --- cleaning -------------------------------------------------------------------------------------------

# Line breaks in all their Unicode disguises; Python's str.splitlines treats all of these as a new line.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ZWJ = "\u200d"
# Invisible characters that are letters or marks by category, so a category check alone misses them;
# they are used to make blank names or to make two texts look identical.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u3164\uffa0")
_VARIATION_SELECTORS = frozenset("\ufe0e\ufe0f")


def _is_removed(ch: str) -> bool:
    if ch == "\n" or ch == "\t":
        return False  # handled by the whitespace step
    if ch in _INVISIBLE:
        return True
    # Cc: control codes; Cs: lone surrogates (possible from JSON escapes, cannot be sent back);
    # Cf: format characters, i.e. zero-width spaces/joiners, BOM, soft hyphen, bidi marks,
    # overrides and isolates (U+202A–U+202E, U+2066–U+2069) and tag characters.
    return unicodedata.category(ch) in ("Cc", "Cs", "Cf") and ch != _ZWJ


def _is_emoji_part(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk") or ch in _VARIATION_SELECTORS


def _drop_stray_joiners(text: str) -> str:
    # A zero-width joiner is only kept inside an emoji sequence (👩‍🌾); between letters it would make
    # two texts that look the same differ, which defeats search and duplicate checks.
    if _ZWJ not in text:
        return text
    out = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch == _ZWJ and not (0 < i < last and _is_emoji_part(text[i - 1]) and _is_emoji_part(text[i + 1])):
            continue
        out.append(ch)
    return "".join(out)


_SPACES = re.compile(" {2,}")
_TRAILING_SPACE = re.compile("[ \t]+\n")
_MANY_NEWLINES = re.compile("\n{4,}")


def clean_text(raw: str, *, keep_newlines: bool) -> str:
    """Normalise typed text (NFC) and remove invisible and control characters and extra whitespace.

    With ``keep_newlines`` line breaks and tabs stay (at most three newlines in a row), else become spaces.
    """
    text = unicodedata.normalize("NFC", raw)
    text = _LINE_BREAKS.sub("\n", text)
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text if not _is_removed(ch))
    text = _drop_stray_joiners(text)
    if keep_newlines:
        text = _SPACES.sub(" ", text)
        text = _TRAILING_SPACE.sub("\n", text)
        text = _MANY_NEWLINES.sub("\n\n\n", text)
        text = text.strip(" \t\n")
    else:
        text = text.replace("\n", " ").replace("\t", " ")
        text = _SPACES.sub(" ", text).strip(" ")
    # Removing characters can bring a letter and a combining mark together again.
    return unicodedata.normalize("NFC", text)


def _ascii_digits(text: str) -> str:
    """Replace digits from any script (Arabic-Indic, full-width …) by 0–9."""
    if text.isascii():
        return text
    return "".join(str(d) if (d := unicodedata.decimal(ch, None)) is not None else ch for ch in text)


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _strip_digit_zeros(digits: str) -> str:
    return digits.lstrip("0") or "0"


# --- free text ------------------------------------------------------------------------------------------


def validate_title(raw: str) -> str | Invalid:
    """A one-line title of 5–80 characters with at least one letter."""
    text = clean_text(raw, keep_newlines=False)
    if not text:
        return Invalid(t("Please write a title for your idea."))
    if len(text) < TITLE_MIN:
        return Invalid(t("Your title is too short. Use at least {min} characters.", min=TITLE_MIN))
    if len(text) > TITLE_MAX:
        return Invalid(
            t(
                "Your title is too long. It has {count} characters. Use at most {max} characters.",
                count=len(text),
                max=TITLE_MAX,
            )
        )
    if not _has_letter(text):
        return Invalid(t("Please use words in your title, not only numbers or signs."))
    return text


def validate_description(raw: str) -> str | Invalid:
    """A description of 20–2000 characters with letters; line breaks are kept."""
    text = clean_text(raw, keep_newlines=True)
    if not text:
        return Invalid(t("Please describe your idea in a few sentences."))
    if len(text) < DESCRIPTION_MIN:
        return Invalid(
            t(
                "Your description is too short. Use at least {min} characters. Tell us what you want to do.",
                min=DESCRIPTION_MIN,
            )
        )
    if len(text) > DESCRIPTION_MAX:
        return Invalid(
            t(
                "Your description is too long. It has {count} characters. Use at most {max} characters.",
                count=len(text),
                max=DESCRIPTION_MAX,
            )
        )
    if not _has_letter(text):
        return Invalid(t("Please describe your idea in words."))
    return text


def validate_own_contribution(raw: str) -> str | Invalid:
    """What the resident will do themselves: 1–2000 characters (skipping is a button, not text)."""
    text = clean_text(raw, keep_newlines=True)
    if not text:
        return Invalid(t("Please write what you will do yourself. Or choose “Skip”."))
    if len(text) > CONTRIBUTION_MAX:
        return Invalid(
            t(
                "Your text is too long. It has {count} characters. Use at most {max} characters.",
                count=len(text),
                max=CONTRIBUTION_MAX,
            )
        )
    return text


# --- amount ---------------------------------------------------------------------------------------------

_MINUS = re.compile("[\u2212\u2012\u2013\u2014\ufe63\uff0d]")
_CURRENCY_PREFIX = re.compile(r"^(?:€|eur(?:o)?\.?(?![a-z]))\s*")
_CURRENCY_SUFFIX = re.compile(r"\s*(?:€|euros?|eur\.?)$")
_DASH_CENTS = re.compile(r",--?$")
# Dutch: dots or spaces group thousands, a comma starts the cents.
_DUTCH_AMOUNT = re.compile(
    r"(?P<int>[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+)(?:,(?P<cents>[0-9]{1,2}))?"
)
# A single dot followed by one or two digits at the end can only be a decimal point.
_DOT_DECIMAL = re.compile(r"(?P<int>[0-9]+|[0-9]{1,3}(?: [0-9]{3})+)\.(?P<cents>[0-9]{1,2})")
_COMMA_THOUSANDS = re.compile(r",[0-9]{3}(?![0-9])")
_NUMBER_RUN = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
# Examples are placeholders, not part of the msgid, so a translation cannot turn them into a format we reject.
_AMOUNT_EXAMPLE = "1250"
_AMOUNT_EXAMPLE_DUTCH = "€ 1.250"


def _amount_format_error() -> Invalid:
    return Invalid(
        t(
            "Write an amount like {plain} or {formatted}.",
            plain=_AMOUNT_EXAMPLE,
            formatted=_AMOUNT_EXAMPLE_DUTCH,
        )
    )


def validate_amount(raw: str) -> int | Invalid:
    """An amount written the Dutch way ("€ 1.250,50", "1250 euro", "1.250,-") as cents, € 1 to € 1.000.000."""
    text = _ascii_digits(clean_text(raw, keep_newlines=False)).lower()
    text = _MINUS.sub("-", text)
    if not text:
        return Invalid(t("Please write an amount in euros. For example: {plain}.", plain=_AMOUNT_EXAMPLE))
    text = _CURRENCY_PREFIX.sub("", text)
    negative = text.startswith("-")
    if negative:
        text = _CURRENCY_PREFIX.sub("", text[1:].lstrip())
    text = _CURRENCY_SUFFIX.sub("", text)
    text = _DASH_CENTS.sub("", text)
    if negative and text[:1].isdigit():
        return Invalid(t("The amount must be more than zero. Write it without a minus sign."))

    match = _DUTCH_AMOUNT.fullmatch(text) or _DOT_DECIMAL.fullmatch(text)
    if match is None:
        runs = _NUMBER_RUN.findall(text)
        if len(runs) > 1:
            return Invalid(
                t(
                    "Please write one amount, not more. For example: {plain} or {formatted}.",
                    plain=_AMOUNT_EXAMPLE,
                    formatted=_AMOUNT_EXAMPLE_DUTCH,
                )
            )
        if not runs:
            return Invalid(
                t(
                    "I could not find an amount. Write it in numbers, like {plain} or {formatted}.",
                    plain=_AMOUNT_EXAMPLE,
                    formatted=_AMOUNT_EXAMPLE_DUTCH,
                )
            )
        if _COMMA_THOUSANDS.search(text):
            return Invalid(
                t(
                    "I am not sure what amount you mean. Please write it like {plain} or {formatted}. "
                    "Use a comma only for cents, like 12,50.",
                    plain=_AMOUNT_EXAMPLE,
                    formatted=_AMOUNT_EXAMPLE_DUTCH,
                )
            )
        if _has_letter(text):
            return Invalid(
                t(
                    "Please write only the amount in numbers, no words. For example: {plain} or {formatted}.",
                    plain=_AMOUNT_EXAMPLE,
                    formatted=_AMOUNT_EXAMPLE_DUTCH,
                )
            )
        return _amount_format_error()

    whole = _strip_digit_zeros(re.sub("[. ]", "", match["int"]))
    if len(whole) > len(str(AMOUNT_MAX_CENTS // 100)):  # also keeps int() away from huge digit strings
        return _amount_too_high()
    cents_text = match["cents"] or "0"
    cents = int(whole) * 100 + int(cents_text.ljust(2, "0"))
    if cents < AMOUNT_MIN_CENTS:
        return Invalid(t("The amount must be at least {min}.", min=Money(AMOUNT_MIN_CENTS)))
    if cents > AMOUNT_MAX_CENTS:
        return _amount_too_high()
    return cents


def _amount_too_high() -> Invalid:
    return Invalid(t("That amount is too high. The maximum is {max}.", max=Money(AMOUNT_MAX_CENTS)))


# --- number of neighbours -------------------------------------------------------------------------------

# Dutch thousands use a dot ("1.000"); any other dot or comma inside a number means a fraction.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+")
# A minus right before the number, but not the "+/-" or "+-" that means "about".
_NEGATIVE_NUMBER = re.compile(r"(?<![+/])-\s*[0-9]")


def validate_neighbours(raw: str) -> int | Invalid:
    """How many neighbours take part: one whole number, 1–100000; words around it are fine ("ongeveer 12")."""
    text = _MINUS.sub("-", _ascii_digits(clean_text(raw, keep_newlines=False)))
    runs = _NUMBER_RUN.findall(text)
    if not runs:
        return Invalid(t("Please write a number, like 12."))
    if len(runs) > 1:
        return Invalid(t("Please write one number, like 12. Make a guess if you are not sure."))
    if _NEGATIVE_NUMBER.search(text):
        return Invalid(t("Please write a number of 1 or more, like 12."))
    number = runs[0]
    if not _WHOLE_NUMBER.fullmatch(number):
        return Invalid(t("Please write a whole number, like 12."))
    digits = _strip_digit_zeros(number.replace(".", ""))
    if len(digits) > len(str(NEIGHBOURS_MAX)) or int(digits) > NEIGHBOURS_MAX:
        return Invalid(t("That number is too high. Write a number up to {max}.", max=NEIGHBOURS_MAX))
    if int(digits) < 1:
        return Invalid(t("Please write a number of 1 or more, like 12."))
    return int(digits)


# --- name -----------------------------------------------------------------------------------------------

_NAME_PUNCTUATION = frozenset(" .'’ʼ‘`-‐‑")
_URL_LIKE = re.compile(
    # "de" and "be" are left out: "J.de Vries" is a name.
    r"www\.|\.(?:com|nl|org|net|eu|io|info|app|ly|link|xyz|ru|tk|uk)(?![^\W\d_])",
    re.IGNORECASE,
)


def validate_name(raw: str) -> str | Invalid:
    """How the bot addresses the resident: 1–60 characters in any script; no links or @handles."""
    text = clean_text(raw, keep_newlines=False)
    if not text:
        return Invalid(t("Please write your name."))
    if len(text) > NAME_MAX:
        return Invalid(t("Your name is too long. Use at most {max} characters.", max=NAME_MAX))
    if "@" in text or _URL_LIKE.search(text):
        return Invalid(t("Please write your name, not a username, e-mail address or website."))
    if not _has_letter(text):
        return Invalid(t("Please write your name with letters."))
    for ch in text:
        if not (
            ch.isalpha() or ch.isdigit() or ch in _NAME_PUNCTUATION or unicodedata.category(ch)[0] == "M"
        ):
            return Invalid(
                t("Please use only letters in your name. Spaces, dots, hyphens and apostrophes are fine.")
            )
    return text


# --- phone ----------------------------------------------------------------------------------------------

_PHONE_CHARS = re.compile(r"\+?[0-9 ()./-]*")
_PHONE_EXAMPLE = "06 12345678"
_FOREIGN_MIN_DIGITS = 8
_FOREIGN_MAX_DIGITS = 15  # E.164, including the country code


def _phone_international(digits: str) -> str | Invalid:
    """``digits`` start with the country code (after "+" or "00")."""
    if digits.startswith("31"):
        national = digits[2:]
        if len(national) == 10 and national.startswith("0"):  # "+31 06 …": the 0 written out of habit
            national = national[1:]
        if len(national) == 9 and not national.startswith("0"):
            return "+31" + national
        return Invalid(
            t(
                "This Dutch number is not complete. Write it like +31 6 12345678 or {example}.",
                example=_PHONE_EXAMPLE,
            )
        )
    if digits.startswith("0") or not _FOREIGN_MIN_DIGITS <= len(digits) <= _FOREIGN_MAX_DIGITS:
        return Invalid(
            t(
                "This phone number does not look right. "
                "A number from abroad starts with + and the country code, like +32 470 12 34 56."
            )
        )
    return "+" + digits


def validate_phone(raw: str) -> str | Invalid:
    """A phone number as "+<digits>": Dutch ones (0…, +31…, 0031…) become "+31…", foreign ones need a "+"."""
    text = _ascii_digits(clean_text(raw, keep_newlines=False))
    text = _MINUS.sub("-", text)
    if not text:
        return Invalid(t("Please write your phone number, like {example}.", example=_PHONE_EXAMPLE))
    if not _PHONE_CHARS.fullmatch(text):
        return Invalid(
            t(
                "Please write only your phone number, with digits. For example: {example}.",
                example=_PHONE_EXAMPLE,
            )
        )
    if text.startswith("+") or text.startswith("00"):
        # "+31 (0)6 …" is a common way to show the 0 that is dropped after a country code.
        digits = re.sub("[^0-9]", "", text.replace("(0)", ""))
        if text.startswith("+"):
            return _phone_international(digits)
        return _phone_international(digits[2:])
    digits = re.sub("[^0-9]", "", text)
    if not digits.startswith("0"):
        return Invalid(
            t(
                "Start your phone number with 0, or with + and the country code. For example: {example}.",
                example=_PHONE_EXAMPLE,
            )
        )
    if len(digits) != 10:
        return Invalid(
            tn(
                "Your number has {n} digit. A Dutch phone number has 10 digits, like {example}.",
                "Your number has {n} digits. A Dutch phone number has 10 digits, like {example}.",
                len(digits),
                example=_PHONE_EXAMPLE,
            )
        )
    return "+31" + digits[1:]


# --- e-mail ---------------------------------------------------------------------------------------------

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_EXAMPLE = "name@example.nl"


def _domain_label_ok(label: str) -> bool:
    if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
        return False
    if unicodedata.category(label[0])[0] == "M":
        return False
    return all(ch.isalnum() or ch == "-" or unicodedata.category(ch) in ("Mn", "Mc") for ch in label)


def validate_email(raw: str) -> str | Invalid:
    """A plausible e-mail address (syntax only, no DNS); the domain is lower-cased, the part before @ kept."""
    text = clean_text(raw, keep_newlines=False)
    if not text:
        return Invalid(t("Please write your e-mail address, like {example}.", example=_EMAIL_EXAMPLE))
    if " " in text:
        return Invalid(t("An e-mail address has no spaces. Write it like {example}.", example=_EMAIL_EXAMPLE))
    if text.count("@") != 1:
        return Invalid(
            t("An e-mail address has exactly one @. Write it like {example}.", example=_EMAIL_EXAMPLE)
        )
    local, domain = text.split("@")
    domain = unicodedata.normalize("NFC", domain.lower())
    labels = domain.split(".")
    if (
        not 1 <= len(local) <= EMAIL_LOCAL_MAX
        or not _EMAIL_LOCAL.fullmatch(local)
        or len(labels) < 2
        or not all(_domain_label_ok(label) for label in labels)
        or len(labels[-1]) < 2
        or not all(ch.isalpha() for ch in labels[-1])
    ):
        return Invalid(
            t(
                "This does not look like an e-mail address. Please check it. Write it like {example}.",
                example=_EMAIL_EXAMPLE,
            )
        )
    address = f"{local}@{domain}"
    if len(address) > EMAIL_MAX:
        return Invalid(t("This e-mail address is too long. Please check it."))
    return address


def validate_contact(raw: str) -> ContactDetail | Invalid:
    """A phone number or e-mail address: text with an @ is checked as e-mail, text with digits as phone."""
    text = clean_text(raw, keep_newlines=False)
    if "@" in text:
        email = validate_email(text)
        return email if isinstance(email, Invalid) else ContactDetail("email", email)
    if any(ch.isdigit() for ch in text):
        phone = validate_phone(text)
        return phone if isinstance(phone, Invalid) else ContactDetail("phone", phone)
    return Invalid(
        t(
            "Please write your phone number or e-mail address. For example: {phone} or {email}.",
            phone=_PHONE_EXAMPLE,
            email=_EMAIL_EXAMPLE,
        )
    )


# --- postcode -------------------------------------------------------------------------------------------

_POSTCODE = re.compile(r"([0-9]{4}) ?([A-Za-z]{2})?")
_POSTCODE_ATTEMPT = re.compile(r"[0-9]{3,5} ?[A-Za-z]{0,3}")
# Not used by PostNL, because of their associations.
_POSTCODE_UNUSED_LETTERS = frozenset({"SA", "SD", "SS"})


def looks_like_postcode(raw: str) -> bool:
    """True when the text seems meant as a postcode (a few digits, maybe letters), right or wrong."""
    return _POSTCODE_ATTEMPT.fullmatch(_ascii_digits(clean_text(raw, keep_newlines=False))) is not None


def validate_postcode(raw: str) -> str | Invalid:
    """A Dutch postcode, normalised to "7201 AB"; only the four digits ("7201") is accepted too."""
    text = _ascii_digits(clean_text(raw, keep_newlines=False))
    match = _POSTCODE.fullmatch(text)
    if match is None:
        return Invalid(t("A postcode has 4 digits and 2 letters, like 7201 AB. Please check it."))
    digits, letters = match[1], (match[2] or "").upper()
    if digits.startswith("0") or letters in _POSTCODE_UNUSED_LETTERS:
        return Invalid(t("This postcode does not exist. Please check it."))
    return f"{digits} {letters}" if letters else digits


# --- buttons --------------------------------------------------------------------------------------------


def validate_choice(raw: str, allowed: Collection[str]) -> str | Invalid:
    """Exactly one of ``allowed`` (button data is never trusted; nothing is cleaned or guessed)."""
    if isinstance(raw, str) and raw in allowed:
        return raw
    return Invalid(t("Please choose one of the buttons."))
