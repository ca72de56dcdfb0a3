"""The guard that keeps phone numbers, e-mail addresses and BSNs (11-proef) out of a resident's free text:
what it finds, and the kind refusal that asks for the text again. Pure: no I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from flows.text import Msg, t
from flows.validators import Invalid, clean_text


class PersonalData(Enum):
    """A kind of personal data that does not belong in a resident's free text."""

    PHONE = "phone"
    EMAIL = "email"
    BSN = "bsn"


_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
# "jan@example.nl", "jan @ example.nl", "jan(at)example.nl", "jan [at] example [dot] nl"; spaces are
# allowed around the @ only: around a dot they would turn the end of a sentence into a domain.
_AT = r"(?:[ ]?@[ ]?|[ ]?[(\[][ ]?(?:at|apenstaartje)[ ]?[)\]][ ]?)"
_DOT = r"(?:\.|[ ]?[(\[][ ]?(?:dot|punt)[ ]?[)\]][ ]?)"
_LABEL = r"[^\W_](?:[\w-]*\w)?"  # a part of a domain name
_EMAIL = re.compile(
    rf"(?<![\w.+%'-])[\w.+%'-]*\w{_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[^\W\d_]{{2,}}(?![\w@])",
    re.IGNORECASE,
)
# Numbers that are not phone numbers or BSNs but could be read as one: dates, times, bank accounts.
_NOT_A_PHONE = re.compile(
    r"(?<![\d])(?:[0-3]?\d([-./])[01]?\d\1(?:19|20)\d\d|(?:19|20)\d\d([-./])[01]?\d\2[0-3]?\d)(?!\d)"
    r"|(?<![\d])[0-2]?\d[:.][0-5]\d(?:[:.][0-5]\d)?[ ]?(?:uur|u|h)\b"
    r"|(?<![\d])[0-2]?\d:[0-5]\d(?!\d)"
    r"|\b[a-z]{2}\d\d[ ]?[a-z]{4}(?:[ ]?\d){10}(?!\d)",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")
# What may stand between the digit groups of one number: "06-12 34", "(0575) 12", "+31 (0)6", "1234.56.782".
_GROUP_GAP = re.compile(r"[ ]?[-./][ ]?|[ ]{1,2}|[ ]?\([ ]?|[ ]?\)[ ]?|\)\(")
_PLUS = re.compile(r"(?<![\w+])\+[ ]?\(?$")
_AMOUNT_BEFORE = re.compile(r"(?:€|\beur(?:o|os)?\.?)[ ]?$", re.IGNORECASE)
_BARRIER = "#"
_MOST_DIGITS = 17  # "00" and E.164's 15


def personal_data_in(text: str) -> frozenset[PersonalData]:
    """The kinds of contact details and BSNs (numbers passing the 11-proef) found in ``text``.

    Amounts, years, dates, times, postcodes, house numbers and bank accounts are not found.
    """
    text = _normalised(text)
    found: set[PersonalData] = set()
    if _EMAIL.search(text):
        found.add(PersonalData.EMAIL)
        text = _EMAIL.sub(_BARRIER, text)
    text = _NOT_A_PHONE.sub(_BARRIER, text)
    phones = _phone_spans(text)
    if phones:
        found.add(PersonalData.PHONE)
        # A phone number is not also a BSN: take its digits out before looking for one.
        for start, end in phones:
            text = text[:start] + _BARRIER * (end - start) + text[end:]
    if _has_bsn(text):
        found.add(PersonalData.BSN)
    return frozenset(found)


def _normalised(text: str) -> str:
    # NFKC turns full-width digits and signs ("０６", "＠", "＋") into plain ones; other scripts' digits
    # ("٠٦") become 0–9 too; invisible characters go, so "06\u200b12345678" is still found.
    text = unicodedata.normalize("NFKC", clean_text(text, keep_newlines=True))
    if not text.isascii():
        text = "".join(str(d) if (d := unicodedata.decimal(ch, None)) is not None else ch for ch in text)
    return _DASHES.sub("-", text)


_Run = list[tuple[int, int]]  # the (start, end) of each digit group of one written number


def _digit_runs(text: str) -> list[_Run]:
    """Digit groups joined by what may separate the parts of one number."""
    runs: list[_Run] = []
    for match in _DIGITS.finditer(text):
        span = match.span()
        if runs and _GROUP_GAP.fullmatch(text, runs[-1][-1][1], span[0]):
            runs[-1].append(span)
        else:
            runs.append([span])
    return runs


def _phone_spans(text: str) -> list[tuple[int, int]]:
    """Where phone numbers are: any stretch of consecutive groups of a run may be one."""
    spans: list[tuple[int, int]] = []
    for run in _digit_runs(text):
        after_plus = _PLUS.search(text[max(0, run[0][0] - 4) : run[0][0]]) is not None
        for first, (start, end) in enumerate(run):
            head = text[start:end]
            plus = after_plus and first == 0
            if not (plus or head.startswith(("0", "316"))):
                continue
            digits = ""
            for last in range(first, len(run)):
                digits += text[run[last][0] : run[last][1]]
                if len(digits) > _MOST_DIGITS:
                    break
                if _is_phone(digits, head, after_plus=plus) and not (
                    plus and _dotted_amount(text, run[: last + 1])
                ):
                    spans.append((start, run[last][1]))
    return spans


def _is_phone(digits: str, head: str, *, after_plus: bool) -> bool:
    """Whether ``digits`` (written with ``head`` as their first group) make a phone number."""
    if after_plus:
        return _international(digits)
    if head.startswith("00"):
        return _international(digits[2:])
    if len(digits) == 11 and digits.startswith("316"):  # a mobile number without its "+", as in wa.me/316…
        return True
    # Dutch: 10 digits, written as one group or starting with 06 or an area code ("0575", "010").
    return (
        len(digits) == 10
        and digits[0] == "0"
        and digits[1] != "0"
        and (len(head) in (3, 4, 10) or head == "06")
    )


def _international(digits: str) -> bool:
    if digits.startswith("31"):  # the Netherlands: "+31 6 …", "+31 (0)6 …", "+31 06 …"
        national = digits[2:]
        if national.startswith("0"):
            national = national[1:]
        return len(national) == 9 and national[0] != "0"
    return bool(digits) and digits[0] != "0" and 8 <= len(digits) <= 15


def _dotted_amount(text: str, run: _Run) -> bool:
    """ "+12.500.000": thousands grouped with dots make an amount, not a phone number."""
    gaps = [text[run[i][1] : run[i + 1][0]] for i in range(len(run) - 1)]
    return (
        bool(gaps)
        and all(gap == "." for gap in gaps)
        and run[0][1] - run[0][0] <= 3
        and all(end - start == 3 for start, end in run[1:])
    )


def _has_bsn(text: str) -> bool:
    """Whether 9 digits pass the 11-proef, written as one group or as a whole grouped number
    ("1234.56.782", "123 456 782"), and not as an amount ("€ 123.456.782")."""
    for run in _digit_runs(text):
        groups = [(start, text[start:end]) for start, end in run]
        candidates = [(start, group) for start, group in groups if len(group) == 9]
        if 1 < len(run) <= 4 and all(len(group) >= 2 for _, group in groups):
            candidates.append((run[0][0], "".join(group for _, group in groups)))
        for start, digits in candidates:
            if (
                len(digits) == 9
                and digits != "000000000"
                and not _AMOUNT_BEFORE.search(text[max(0, start - 8) : start])
                and _eleven_test(digits)
            ):
                return True
    return False


def _eleven_test(digits: str) -> bool:
    """The 11-proef for a BSN: 9×d1 + 8×d2 + … + 2×d8 − d9 is a multiple of 11."""
    total = sum(int(d) * weight for d, weight in zip(digits[:8], range(9, 1, -1), strict=True))
    return (total - int(digits[8])) % 11 == 0


def personal_data_refusal(found: frozenset[PersonalData], *, during_intake: bool) -> Msg:
    """What the resident hears when their text holds ``found``: what it is (never the data itself),
    why it does not belong there, and to send the text again without it."""
    parts: list[Msg] = []
    phone, email = PersonalData.PHONE in found, PersonalData.EMAIL in found
    if phone and email:
        parts.append(t("I see a phone number and an e-mail address in your text."))
    elif phone:
        parts.append(t("I see a phone number in your text."))
    elif email:
        parts.append(t("I see an e-mail address in your text."))
    if (phone or email) and during_intake:
        parts.append(
            t(
                "I ask for your contact details separately. "
                "They are only for the people of the municipality who help you."
            )
        )
    elif phone or email:
        parts.append(
            t(
                "We keep messages with your initiative, so please leave out contact details. "
                "Your initiatiefmakelaar can reach you here in the chat."
            )
        )
    if PersonalData.BSN in found:
        parts.append(t("I see a number that looks like a citizen service number (BSN)."))
        parts.append(t("The municipality does not need it here. Never share your BSN in a chat."))
    if email:
        what = t("these details") if phone or PersonalData.BSN in found else t("the e-mail address")
    else:
        what = t("the numbers") if phone and PersonalData.BSN in found else t("the number")
    parts.append(t("Please send your text again, without {what}.", what=what))
    return Msg(" ".join(f"{{p{i}}}" for i in range(len(parts))), {f"p{i}": p for i, p in enumerate(parts)})


_Value = TypeVar("_Value")


def without_personal_data(
    validate: Callable[[str], _Value | Invalid], *, during_intake: bool = True
) -> Callable[[str], _Value | Invalid]:
    """``validate``, and then refuse a text that holds a phone number, e-mail address or BSN."""

    def check(raw: str) -> _Value | Invalid:
        value = validate(raw)
        if isinstance(value, str) and (found := personal_data_in(value)):
            return Invalid(personal_data_refusal(found, during_intake=during_intake))
        return value

    check.__name__ = f"{validate.__name__}_without_personal_data"
    check.__doc__ = validate.__doc__
    return check
