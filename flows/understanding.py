"""Reading what residents mean from how they write it: amounts, counts, a title, a theme, a wijk, a postcode,
navigation words and yes or no. Pure and forgiving: every reader returns None when it is not sure, so the bot
asks instead of guessing wrong."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from rapidfuzz import fuzz

from flows.municipality import Theme, Wijk
from flows.pii import personal_data_in
from flows.validators import NEIGHBOURS_MAX, Invalid, clean_text, validate_title

# --- shared text handling -----------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case without diacritics, with digits of any script as 0-9 and curly quotes as straight ones:
    the form in which two spellings of the same word compare equal ("Leestén" -> "leesten")."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(ch) or ch == "\u0640":  # accents, Arabic harakat and tatweel
            continue
        digit = unicodedata.decimal(ch, None)
        out.append(str(digit) if digit is not None else ch)
    return "".join(out).casefold().translate(_FOLD_MORE)


def _words_of(listed: str) -> frozenset[str]:
    """The folded words or phrases of a "|"-separated list."""
    return frozenset(fold(item) for item in listed.split("|"))


# Quotes that mean an apostrophe, and letters that have no accent to take off but are read as plain ones.
_FOLD_MORE = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u02bc": "'", "ı": "i", "ł": "l", "ø": "o"}
)
_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def _words(text: str) -> list[str]:
    """The folded words of ``text``, without digits and punctuation."""
    return _WORD.findall(fold(text))


# --- numbers ------------------------------------------------------------------------------------------

_UNITS: dict[str, int] = {
    word: value
    for words in (
        "een twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien vijftien zestien "
        "zeventien achttien negentien",
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen",
    )
    for value, word in enumerate(words.split(), start=1)
}
_TENS: dict[str, int] = {
    word: value * 10
    for words in (
        "twintig dertig veertig vijftig zestig zeventig tachtig negentig",
        "twenty thirty forty fifty sixty seventy eighty ninety",
    )
    for value, word in enumerate(words.split(), start=2)
}
_SCALES: dict[str, int] = {
    "honderd": 100,
    "hundred": 100,
    "duizend": 1000,
    "thousand": 1000,
    "mille": 1000,
    "k": 1000,
    "miljoen": 1_000_000,
    "million": 1_000_000,
}
_HALVES = {"anderhalf": Decimal("1.5"), "anderhalve": Decimal("1.5")}
_DOZEN = {"dozijn": 12, "dozen": 12}
# "een" and "één" fold to the same word; only the accented one is surely the number.
_ONE_ACCENTED = re.compile(r"(?<!\w)(?:één|eén|éen)(?!\w)", re.IGNORECASE)
# "ten" is Dutch too ("ten minste", "ten noorden"): it is 10 only before a number word, a scale or nothing.
_NOT_AFTER_TEN = frozenset(
    {"minste", "hoogste", "noorden", "zuiden", "oosten", "westen", "behoeve", "slotte"}
)
_DUTCH_COMPOUND_TENS = re.compile(r"(een|twee|drie|vier|vijf|zes|zeven|acht|negen)en(\w+)")


def _word_value(word: str) -> Decimal | None:
    """The value of one (compound) number word: "vijf", "vijfentwintig", "tweehonderdvijftig",
    "tweeduizend", "twenty"; None for any other word. A bare scale word ("honderd") is 100."""
    if not word or len(word) > 40:
        return None
    if word in _HALVES:
        return _HALVES[word]
    if word in _UNITS:
        return Decimal(_UNITS[word])
    if word in _TENS:
        return Decimal(_TENS[word])
    if word in _DOZEN:
        return Decimal(12)
    for scale_word in ("miljoen", "duizend", "honderd"):
        head, found, tail = word.partition(scale_word)
        if found:
            left = _word_value(head) if head else Decimal(1)
            right = _word_value(tail) if tail else Decimal(0)
            if left is None or right is None or left == 0 or right >= _SCALES[scale_word]:
                return None
            return left * _SCALES[scale_word] + right
    match = _DUTCH_COMPOUND_TENS.fullmatch(word)  # "vijfentwintig", "tweeentwintig" (from tweeëntwintig)
    if match and match.group(2) in _TENS and match.group(2).isascii():
        return Decimal(_UNITS[match.group(1)] + _TENS[match.group(2)])
    return None


@dataclass(frozen=True)
class _Token:
    kind: Literal["num", "scale", "word", "money", "sign", "approx"]
    text: str
    value: Decimal = Decimal(0)


# Digits grouped with spaces ("1 250") or with dots and commas inside ("1.250,50", "1,250.50"), then an
# optional ",-" (Dutch "no cents") and an optional "k" (thousand) directly after.
_TOKEN = re.compile(
    r"(?P<num>\d{1,3}(?: \d{3})+(?:,\d{1,2})?(?![\d.,])|\d+(?:[.,]\d+)*)(?P<dash>,-{1,2}|,=)?(?P<k>k(?![^\W\d_]))?"
    r"|(?P<approx>\+/-|\+-|±|~|≈)"
    r"|(?P<money>€)"
    r"|(?P<sign>-)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)"
)
_MONEY_WORDS = frozenset({"euro", "euros", "euro's", "eur", "eurootjes"})
_APPROX_WORDS = _words_of(
    "ongeveer|ong|ca|circa|zo'n|zon|rond|rondom|plusminus|pakweg|grofweg|zowat|ruwweg|ofzo|"
    "zoiets|schatting|about|around|approximately|approx|roughly|ish|estimate"
)
_RANGE_WORDS = frozenset({"tot", "to", "a", "of", "or", "till", "until", "tm"})  # "à" folds to "a"
_BETWEEN = frozenset({"tussen", "between"})
_FEW = frozenset({"paar", "few", "enkele", "several", "couple", "aantal"})


def _digits_value(number: str) -> Decimal | None:
    """A number written with digits, spaces, dots or commas. A separator followed by exactly three digits groups
    thousands ("1.250", "1,250"); by one or two it starts the decimals ("1250,50", "1.5"). With both kinds,
    the last one is the decimal separator ("1.250,50", "1,250.50"). None when it fits no reading."""
    number = number.replace(" ", "")  # "1 250": spaces only ever group thousands
    if not re.search(r"[.,]", number):
        return Decimal(number) if len(number) <= 12 else None
    parts = re.split(r"([.,])", number)
    groups, seps = parts[0::2], parts[1::2]
    decimals = ""
    if len(set(seps)) == 2 or len(groups[-1]) in (1, 2):
        decimals = groups.pop()
        last = seps.pop()
        if any(sep == last for sep in seps) or len(decimals) > 2:
            return None
    if seps and (len(groups[0]) > 3 or any(len(group) != 3 for group in groups[1:])):
        return None
    whole = "".join(groups)
    if len(whole) > 12:
        return None
    try:
        return Decimal(f"{whole}.{decimals}" if decimals else whole)
    except InvalidOperation:
        return None


def _tokens(text: str) -> list[_Token]:
    text = _DASHES.sub("-", clean_text(text, keep_newlines=False))
    text = _ONE_ACCENTED.sub(" 1 ", text)
    folded = fold(text).replace("t/m", " tm ")
    out: list[_Token] = []
    for match in _TOKEN.finditer(folded):
        kind = match.lastgroup
        if match.group("num") is not None:
            value = _digits_value(match.group("num"))
            if value is None:
                out.append(_Token("word", match.group()))  # unreadable digits stop any number around them
                continue
            out.append(_Token("num", match.group("num"), value))
            if match.group("k"):
                out.append(_Token("scale", "k", Decimal(1000)))
            if match.group("dash"):
                out.append(_Token("money", ",-"))
        elif kind == "word":
            word = match.group()
            if word in _MONEY_WORDS:
                out.append(_Token("money", word))
            elif word in _APPROX_WORDS:
                out.append(_Token("approx", word))
            elif word in _SCALES and word != "k":
                out.append(_Token("scale", word, Decimal(_SCALES[word])))
            elif word not in ("een", "ten") and (value := _word_value(word)) is not None:
                out.append(_Token("num", word, value))
            elif word.endswith("ish") and (value := _word_value(word[:-3])) is not None:
                out.extend((_Token("num", word, value), _Token("approx", "ish")))
            else:
                out.append(_Token("word", word))
        elif kind == "approx":
            out.append(_Token("approx", match.group()))
        elif kind == "money":
            out.append(_Token("money", match.group()))
        else:
            out.append(_Token("sign", match.group()))
    for i, token in enumerate(out):
        following = out[i + 1] if i + 1 < len(out) else None
        if token.text == "ten" and (following is None or following.text not in _NOT_AFTER_TEN):
            if following is None or following.kind != "word" or following.text in _PEOPLE:
                out[i] = _Token("num", "ten", Decimal(10))
    return out


@dataclass(frozen=True)
class _Number:
    value: Decimal
    start: int  # index of its first token
    end: int  # index after its last token
    scale: int | None  # the largest scale word in it ("twee duizend": 1000), for "2 à 3 duizend"
    money: bool = False
    negative: bool = False


def _numbers(tokens: list[_Token]) -> list[_Number]:
    """The numbers in ``tokens``: digit and word numbers joined with scale words ("twee duizend vijfhonderd",
    "1,5 k", "two hundred and fifty") into one value each."""
    numbers: list[_Number] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind not in ("num", "scale"):
            i += 1
            continue
        start = i
        total, current = Decimal(0), None
        open_below: Decimal | None = None  # a following number joins only when smaller than this
        top_scale: int | None = None
        while i < len(tokens):
            token = tokens[i]
            if token.kind == "num":
                if i == start:
                    current = token.value
                elif open_below is not None and token.value < open_below:
                    current = (current or 0) + token.value  # "twee honderd vijftig", "duizend vijfhonderd"
                else:
                    break
                open_below = None
            elif token.kind == "scale":
                factor = token.value
                if current is None:
                    if i != start:
                        break
                    current = Decimal(1)
                if factor == 100 and (current < 100 or current % 100 != 0):
                    current *= 100
                    open_below = Decimal(100)
                else:
                    total += current * factor
                    current = None
                    open_below = factor
                top_scale = max(top_scale or 0, int(factor))
            elif (
                token.kind == "word"
                and token.text == "and"
                and open_below is not None
                and i + 1 < len(tokens)
                and tokens[i + 1].kind == "num"
            ):
                pass  # "two hundred and fifty"
            else:
                break
            i += 1
        value = total + (current or 0)
        before = tokens[start - 1] if start > 0 else None
        after = tokens[i] if i < len(tokens) else None
        money = any(t is not None and t.kind == "money" for t in (before, after))
        if before is not None and before.kind == "money" and start > 1 and tokens[start - 2].kind == "sign":
            negative = not _ends_number(tokens, start - 2)
        else:
            negative = before is not None and before.kind == "sign" and not _ends_number(tokens, start - 1)
        numbers.append(_Number(value, start, i, top_scale, money, negative))
    return numbers


def _ends_number(tokens: list[_Token], index: int) -> bool:
    """Whether a number (or money sign after one) stands right before ``index``, making a "-" a range."""
    j = index - 1
    while j >= 0 and tokens[j].kind == "money":
        j -= 1
    return j >= 0 and tokens[j].kind in ("num", "scale")


def _connects(tokens: list[_Token], first: _Number, second: _Number) -> bool:
    """Whether only a range word ("tot", "à", "-", "en" after "tussen") and money signs stand between."""
    between = [t for t in tokens[first.end : second.start] if t.kind != "money" and t.text not in ("de", "the")]
    if len(between) == 1 and (between[0].kind == "sign" or between[0].text in _RANGE_WORDS):
        return True
    if [t.text for t in between] in (["tot", "en", "met"], ["up", "to"]):
        return True
    if len(between) == 1 and between[0].text in ("en", "and"):
        return any(t.text in _BETWEEN for t in tokens[max(0, first.start - 3) : first.start])
    return False


@dataclass(frozen=True)
class Amount:
    """An amount in euro cents; ``high_cents`` is set for a range, ``approximate`` for "ongeveer" and such."""

    low_cents: int
    high_cents: int | None = None  # set for a range ("800 à 1000", "een paar honderd")
    approximate: bool = False  # "ongeveer", "een paar", "zo'n", "about", "around", "~"


def _cents(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def read_amount(text: str, language: str = "nl") -> Amount | None:
    """The amount of euros in a free answer ("ongeveer 800 euro", "800 à 1000", "een paar honderd",
    "€1,250.50"), or None when there is none, it is zero or negative, or several amounts compete.

    Dutch and English number words and both ways of writing numbers are read whatever ``language`` says:
    a separator followed by three digits groups thousands ("1.250", "€1,250"), one followed by one or two
    starts the cents ("1250,50", "1,250.50"), so the writing itself decides, not the language."""
    tokens = _tokens(text)
    approximate = any(t.kind == "approx" for t in tokens) or _has_phrase(tokens, ("om", "en", "nabij"))
    candidates: list[tuple[Decimal, Decimal | None, bool]] = []  # low, high, money

    for index, token in enumerate(tokens):  # "een paar honderd (euro)": 2 to 5 of the scale
        if token.text in _FEW and index + 1 < len(tokens) and tokens[index + 1].kind == "scale":
            scale = tokens[index + 1].value
            money = index + 2 < len(tokens) and tokens[index + 2].kind == "money"
            candidates.append((2 * scale, 5 * scale, money))
            approximate = True
    if candidates:
        tokens = [t if t.kind != "scale" else _Token("word", t.text) for t in tokens]

    numbers = _numbers(tokens)
    used: set[int] = set()
    for k, number in enumerate(numbers):
        if k in used:
            continue
        if number.negative or number.value <= 0:
            return None
        following = numbers[k + 1] if k + 1 < len(numbers) else None
        if following is not None and _connects(tokens, number, following):
            low, high = number.value, following.value
            if following.negative or high <= 0:
                return None
            if number.scale is None and following.scale and low * following.scale <= high:
                low *= following.scale  # "2 à 3 duizend"
            used.add(k + 1)
            candidates.append((min(low, high), max(low, high), number.money or following.money))
        else:
            candidates.append((number.value, None, number.money))
    if not candidates:
        return None
    chosen = [c for c in candidates if c[2]] or candidates
    if len({(low, high) for low, high, _ in chosen}) != 1:
        return None
    low, high, _ = chosen[0]
    low_cents = _cents(low)
    high_cents = _cents(high) if high is not None and high != low else None
    if low_cents <= 0:
        return None
    return Amount(low_cents, high_cents, approximate)


def _has_phrase(tokens: list[_Token], phrase: tuple[str, ...]) -> bool:
    texts = [t.text for t in tokens]
    n = len(phrase)
    return any(tuple(texts[i : i + n]) == phrase for i in range(len(texts) - n + 1))


# --- people ---------------------------------------------------------------------------------------------

# "met z'n vijven", "met ons drieën": the collective forms of Dutch numbers (folded: "drieen").
_COLLECTIVE: dict[str, int] = {
    word: value
    for value, word in enumerate(
        "beiden tweeen drieen vieren vijven zessen zevenen achten negenen tienen elven twaalven".split(),
        start=1,
    )
    if value > 1
}
_COLLECTIVE["beiden"] = 2
_COLLECTIVE["twintigen"] = 20
_COLLECTIVE_INTRO = re.compile(r"\b(?:met\s+)?(?:z'n|zn|zijn|ons|onze|jullie|hun)\s+([a-z]+)\b")


def _collective(folded: str) -> int | None:
    for match in _COLLECTIVE_INTRO.finditer(folded):
        if match.group(1) in _COLLECTIVE:
            return _COLLECTIVE[match.group(1)]
    return None


def _whole(value: Decimal) -> int | None:
    if value != value.to_integral_value() or not 1 <= value <= NEIGHBOURS_MAX:
        return None
    return int(value)


def read_count(text: str) -> int | None:
    """A number of people in a short answer: "5", "vijf", "een stuk of tien", "twee of drie" (the higher),
    "met z'n vijven", "a dozen", "ik en 4 buren" (5, as ``neighbours_in`` reads it); None when there is
    none, it is not a whole number of 1 or more, or several numbers compete."""
    if (people := neighbours_in(text)) is not None:
        return people
    tokens = _tokens(text)
    numbers = _numbers(tokens)
    if not numbers or any(number.negative for number in numbers):
        return None
    values: list[Decimal] = []
    k = 0
    while k < len(numbers):
        number = numbers[k]
        following = numbers[k + 1] if k + 1 < len(numbers) else None
        if following is not None and _connects(tokens, number, following):
            values.append(max(number.value, following.value))  # "twee of drie": plan for three
            k += 2
        else:
            values.append(number.value)
            k += 1
    if len(set(values)) != 1:
        return None
    return _whole(values[0])


# Plural nouns for people who take part; a number right before one of these is a head count.
_PEOPLE = _words_of(
    "buren|buurtbewoners|bewoners|mensen|personen|vrienden|vriendinnen|kinderen|kids|jongeren|"
    "ouderen|ouders|collega's|collegas|vrijwilligers|buurvrouwen|buurmannen|anderen|"
    "deelnemers|leden|huisgenoten|neighbours|neighbors|people|persons|friends|volunteers|"
    "residents|others|children|members"
)
# Words that may stand between the number and the noun: "5 andere buren", "vijf enthousiaste mensen".
_PEOPLE_ADJECTIVES = frozenset(
    {"andere", "other", "enthousiaste", "lieve", "leuke", "goede", "aardige", "more", "meer", "extra"}
)
_SELF_AND = (
    ("ik", "en"),
    ("ik", "met"),
    ("ik", "samen", "met"),
    ("me", "and"),
    ("i", "and"),
    ("myself", "and"),
)
_POSSESSIVES = frozenset({"mijn", "m'n", "mn", "my", "our", "onze"})
_FOR_WHOM = frozenset({"voor", "for", "van", "of", "aan", "to", "dan", "than"})


def neighbours_in(text: str) -> int | None:
    """How many people take part, when a free answer says so plainly: "ik en 4 buren" (5, the writer too),
    "samen met vijf buurtbewoners" (5), "we zijn met 6 mensen", "met z'n vijven"; None otherwise
    ("met mijn buurvrouw", "ik plant 30 bollen"), and when two counts disagree."""
    folded = fold(clean_text(text, keep_newlines=False))
    found: set[int] = set()
    if (collective := _collective(folded)) is not None:
        found.add(collective)
    tokens = _tokens(text)
    words = [t.text for t in tokens]
    for number in _numbers(tokens):
        count = _whole(number.value)
        if count is None:
            continue
        j = number.end
        while j < len(words) and words[j] in _PEOPLE_ADJECTIVES:
            j += 1
        noun = j < len(words) and tokens[j].kind == "word" and words[j] in _PEOPLE
        before = words[max(0, number.start - 4) : number.start]
        while before and before[-1] in _POSSESSIVES:
            before = before[:-1]
        if before and before[-1] in _FOR_WHOM:
            continue  # "een speeltuin voor 30 kinderen": who it is for, not who takes part
        if noun:
            self_too = any(tuple(before[-len(p) :]) == p for p in _SELF_AND)
            found.add(count + 1 if self_too else count)
        elif tuple(before[-3:]) in (("we", "zijn", "met"), ("wij", "zijn", "met")) or tuple(before[-2:]) in (
            ("we", "are"),
            ("there", "are"),
        ):
            found.add(count)
        elif words[number.end : number.end + 3] == ["of", "us"]:
            found.add(count)
    if len(found) != 1:
        return None
    return found.pop()


# --- title ----------------------------------------------------------------------------------------------

TITLE_SUGGESTION_MAX = 60

_GREETING = re.compile(
    r"^(?:(?:hallo|hoi|hey|hi|hello|dag|goedemorgen|goedemiddag|goedenavond|beste\s+\w+)\b[\s,!.:;-]*)+",
    re.IGNORECASE,
)
_OPENER = re.compile(
    r"^(?:"
    r"(?:ik|wij|we)\s+(?:zou|zouden)\s+(?:heel\s+)?graag\s+(?:willen\s+)?(?:zien\s+dat\s+(?:er\s+)?)?"
    r"|(?:ik|wij|we)\s+(?:zou|zouden)\s+(?:het\s+)?(?:leuk|fijn|mooi)\s+vinden\s+(?:als|om)\s+(?:er\s+)?"
    r"|(?:ik|wij|we)\s+(?:wil|willen)\s+(?:heel\s+)?(?:graag\s+)?(?:dat\s+er\s+)?"
    r"|graag\s+(?:zou|zouden|wil|willen)\s+(?:ik|wij|we)\s+(?:willen\s+)?"
    r"|(?:mijn|ons|het)\s+idee\s+is\s*(?:om\s+|dat\s+|:\s*)?"
    r"|(?:ik|wij|we)\s+(?:heb|hebben)\s+een\s+idee\s*(?:voor\s+|om\s+|:\s*)?"
    r"|(?:ik|wij|we)\s+(?:stel|stellen)\s+voor\s+(?:om\s+)?"
    r"|(?:ik|wij|we)\s+(?:wilde|wilden|wou|wouden)\s+(?:even\s+)?vragen\s+of\s+(?:er\s+)?"
    r"|idee\s*:\s*"
    r"|(?:i|we)\s+(?:would|'d)\s+(?:really\s+)?(?:like|love)\s+(?:to\s+(?:have\s+|see\s+)?)?"
    r"|(?:i|we)'d\s+(?:really\s+)?(?:like|love)\s+(?:to\s+(?:have\s+|see\s+)?)?"
    r"|(?:i|we)\s+(?:want|wish)\s+(?:to\s+(?:have\s+|see\s+)?)?"
    r"|(?:my|our|the)\s+idea\s+is\s*(?:to\s+|that\s+|:\s*)?"
    r"|(?:i|we)\s+have\s+an\s+idea\s*(?:for\s+|to\s+|:\s*)?"
    r"|(?:i|we)\s+propose\s+(?:to\s+)?"
    r"|idea\s*:\s*"
    r")",
    re.IGNORECASE,
)
# Where the first clause ends: punctuation, or a word that starts a reason, purpose or second thought.
_CLAUSE_END = re.compile(
    r"[.!?;:](?:\s|$)|,(?!\d)|\s[-–—]\s|[(\[\n]"
    r"|\s(?:zodat|omdat|want|om|maar|waardoor|waarmee|zoals|so\s+that|because|since|but|which|so)\s",
    re.IGNORECASE,
)
_TRAILING_WORDS = _words_of(
    "en|of|de|het|een|in|op|bij|voor|met|van|aan|te|die|dat|and|or|the|a|an|for|with|to|at|on|that"
    # verbs left at the end of a Dutch clause: "(dat er) een bankje komt", "(graag zou ik) een bank zien"
    "|komt|komen|wordt|worden|zien|krijgen|kan|kunnen"
)
_EDGE_PUNCTUATION = " \t\"'“”‘’«»,.;:!?-–—…()[]"


def _trim(title: str) -> str:
    title = title.strip(_EDGE_PUNCTUATION)
    while True:
        head, _, last = title.rpartition(" ")
        if head and last.lower() in _TRAILING_WORDS:
            title = head.rstrip(_EDGE_PUNCTUATION)
        else:
            return title


def suggest_title(idea: str) -> str | None:
    """A short title (at most 60 characters) drawn from the first clause of an idea, without openers like
    "Ik wil graag" or "We want": "Een moestuin in het park bij de Leesten". None when nothing sensible is
    left, when it would not pass ``validate_title`` or when it holds contact details."""
    text = clean_text(idea, keep_newlines=False)
    for _ in range(3):
        # The space lets an opener that is all there is ("Ik wil") match as well.
        stripped = (
            _OPENER.sub("", _GREETING.sub("", text) + " ", count=1).strip(" ").lstrip(_EDGE_PUNCTUATION)
        )
        if stripped == text:
            break
        text = stripped
    end = _CLAUSE_END.search(text, 1)
    title = _trim(text[: end.start()] if end else text)
    if len(title) > TITLE_SUGGESTION_MAX:
        cut = title.rfind(" ", 0, TITLE_SUGGESTION_MAX + 1)
        title = _trim(title[:cut] if cut > 0 else title[:TITLE_SUGGESTION_MAX])
    if not title or len(title) > TITLE_SUGGESTION_MAX:
        return None
    title = title[0].upper() + title[1:]
    if len(re.findall(r"[^\W\d_]{2,}", title)) < 1 or isinstance(validate_title(title), Invalid):
        return None
    if personal_data_in(title):
        return None
    return title


# --- theme ----------------------------------------------------------------------------------------------

# Shorter keywords only count as a whole word: "art" must not be found in "start" or "parkeren".
_AFFIX_MIN = 4


def guess_themes(text: str, themes: Sequence[Theme]) -> tuple[str, ...]:
    """Theme codes ordered by how many of their keywords the text holds (only those with one), most first,
    ties in configuration order. A keyword also counts at the start or end of a longer word ("tuin" in
    "moestuin", "speel" in "speeltuin"); when keywords of two themes fit one word, the longest wins."""
    words = _words(text)
    joined = " " + " ".join(words) + " "
    hits = dict.fromkeys((theme.code for theme in themes), 0)
    keywords = [(fold(word).strip(), theme.code) for theme in themes for word in theme.keywords]
    for word in words:
        best, winners = 0, set()
        for keyword, code in keywords:
            if " " in keyword or not keyword:
                continue
            fits = word == keyword or (
                len(keyword) >= _AFFIX_MIN and (word.startswith(keyword) or word.endswith(keyword))
            )
            if fits and len(keyword) > best:
                best, winners = len(keyword), {code}
            elif fits and len(keyword) == best:
                winners.add(code)
        for code in winners:
            hits[code] += 1
    for keyword, code in keywords:
        if " " in keyword:
            hits[code] += joined.count(f" {keyword} ")
    order = {theme.code: i for i, theme in enumerate(themes)}
    found = [code for code, n in hits.items() if n > 0]
    return tuple(sorted(found, key=lambda code: (-hits[code], order[code])))


# --- wijk -----------------------------------------------------------------------------------------------

WIJK_SCORE_MIN = 85.0  # rapidfuzz ratio (0-100) a name must reach …
WIJK_MARGIN = 8.0  # … and by which it must beat the best other wijk

_WIJK_FILLER = _words_of(
    "de|het|'t|t|wijk|buurt|in|ik|woon|wonen|we|wij|the|i|live|neighbourhood|neighborhood|"
    "area|district|bij|near|at|op"
)
_WIJK_PARTS = re.compile(r"\s*(?:–|—|/|,|\s-\s|\sen\s|\s&\s)\s*")


def _wijk_names(wijk: Wijk) -> set[str]:
    """The ways a wijk may be called: its name, each part of a double name, all without "de" or "het"."""
    name = fold(wijk.name)
    variants = {name, *(_WIJK_PARTS.split(name))}
    variants |= {v.replace("-", " ") for v in variants}
    out = set()
    for variant in variants:
        words = [w for w in re.findall(r"[\w']+", variant) if w not in ("de", "het", "'t")]
        if words:
            out.add(" ".join(words))
    return out


def _windows(words: list[str], size: int) -> Iterator[str]:
    for i in range(max(1, len(words) - size + 1)):
        yield " ".join(words[i : i + size])


def match_wijk(text: str, wijken: Sequence[Wijk]) -> Wijk | None:
    """The wijk a resident names ("De Leesten", "leesten", "wijk Waterkwartier", "Leestn"), tolerating small
    typos and diacritics; None unless one wijk clearly fits better than every other."""
    words = [w for w in re.findall(r"[\w']+", fold(text).replace("-", " ")) if w not in _WIJK_FILLER]
    if not words or len(words) > 12:
        return None
    scores: list[tuple[float, Wijk]] = []
    for wijk in wijken:
        best = 0.0
        for name in _wijk_names(wijk):
            size = name.count(" ") + 1
            for window in _windows(words, size):
                best = max(
                    best, fuzz.ratio(window, name), fuzz.ratio(window.replace(" ", ""), name.replace(" ", ""))
                )
        scores.append((best, wijk))
    scores.sort(key=lambda pair: pair[0], reverse=True)
    if not scores or scores[0][0] < WIJK_SCORE_MIN:
        return None
    runner_up = scores[1][0] if len(scores) > 1 else 0.0
    return scores[0][1] if scores[0][0] - runner_up >= WIJK_MARGIN else None


# --- postcode -------------------------------------------------------------------------------------------

_LOOKALIKE_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1", "|": "1"})  # read after folding
_POSTCODE_TEXT = re.compile(
    r"(?:(?:(?:mijn|my)\s+)?postcode(?:\s+is)?\s*:?\s*)?"
    r"(?P<digits>[0-9oli|]{4})\s*-?\s*(?P<letters>[a-z]{2})?[\s.!]*"
)


def normalise_postcode(text: str) -> str | None:
    """A Dutch postcode as "7201AB", or its four digits ("7201") alone; a letter O for a zero and an l or I
    for a one are forgiven in the digits ("72O1 AB"). None when the whole text is not one postcode."""
    match = _POSTCODE_TEXT.fullmatch(fold(clean_text(text, keep_newlines=False)).strip())
    if match is None:
        return None
    raw_digits = match.group("digits")
    digits = raw_digits.translate(_LOOKALIKE_DIGITS)
    if sum(ch.isdigit() for ch in raw_digits) < 2 or not re.fullmatch(r"[1-9][0-9]{3}", digits):
        return None
    letters = (match.group("letters") or "").upper()
    if letters in ("SA", "SD", "SS"):  # never used in Dutch postcodes
        return None
    return digits + letters


# --- navigation words -----------------------------------------------------------------------------------

# Dutch and English, then Turkish, Arabic, Polish and Ukrainian.
_INTENT_PHRASES: dict[Literal["stop", "back", "help"], str] = {
    "stop": (
        "stop|stoppen|stoppe|ik stop|ik wil stoppen|ik wil stoppen hiermee|stop ermee|stop ik|"
        "dan stop ik|stop hiermee|ik stop ermee|ophouden|ik wil ophouden|afbreken|annuleren|"
        "annuleer|cancel|quit|exit|i want to stop|i want to quit|dur|durdur|iptal|bitir|cikis|"
        "durmak istiyorum|توقف|قف|ايقاف|الغاء|خروج|zatrzymaj|koniec|anuluj|przerwij|стоп|"
        "зупинити|зупинись|скасувати|вийти|припинити"
    ),
    "back": (
        "terug|ga terug|ik wil terug|een stap terug|stap terug|vorige|vorige vraag|"
        "naar de vorige vraag|terug naar de vorige vraag|back|go back|previous|"
        "previous question|geri|geri don|geri git|onceki|رجوع|ارجع|عودة|السابق|wstecz|cofnij|"
        "wroc|poprzednie|poprzednie pytanie|назад|повернутися|попереднє|попереднє питання"
    ),
    "help": (
        "help|hulp|help me|help mij|hulp nodig|ik heb hulp nodig|ik wil hulp|helpen|"
        "ik snap het niet|ik begrijp het niet|wat moet ik doen|i need help|need help|"
        "what do i do|yardim|yardim et|yardim lazim|yardima ihtiyacim var|مساعدة|مساعده|"
        "ساعدني|pomoc|pomocy|pomoz|potrzebuje pomocy|допомога|допоможіть|допоможи|довідка|"
        "yardim edin"
    ),
}
_INTENTS: dict[str, Literal["stop", "back", "help"]] = {
    phrase: intent for intent, phrases in _INTENT_PHRASES.items() for phrase in _words_of(phrases)
}
# Politeness and filler that may surround a navigation word without changing it.
_FILLER = _words_of(
    "alsjeblieft|alstublieft|aub|a.u.b|graag|please|pls|plz|maar|nu|even|nou|oke|ok|lutfen|"
    "prosze|будь|ласка|من|فضلك|bitte|dan"
)
_QUESTION_MARKS = re.compile(r"[?？؟¿]+")


def intent_of(text: str) -> Literal["stop", "back", "help"] | None:
    """A typed navigation word when the whole message is (nearly) just that: "stoppen", "Stop!", "ga terug",
    "help", "?", also in Turkish, Arabic, Polish and Ukrainian; None for anything else, such as an idea
    that merely contains "stop"."""
    cleaned = clean_text(text, keep_newlines=False).strip()
    if _QUESTION_MARKS.fullmatch(cleaned):
        return "help"
    words = [w for w in re.findall(r"[\w']+", fold(cleaned).lstrip("/")) if w not in _FILLER]
    if not words or len(words) > 6:
        return None
    return _INTENTS.get(" ".join(words))


# --- yes or no ------------------------------------------------------------------------------------------

_YES = _words_of(
    "ja|jazeker|jawel|jaa|jaaa|jep|jup|ja hoor|ja graag|ja prima|ja dat klopt|ja klopt|"
    "ja goed|ja is goed|klopt|dat klopt|klopt helemaal|correct|juist|ok|oke|okay|okee|okido|"
    "prima|goed|is goed|goed zo|helemaal goed|zeker|zeker weten|natuurlijk|akkoord|graag|"
    "doe maar|prima zo|yes|yep|yeah|yes please|sure|of course|right|that's right|fine|y|j|"
    "evet|tamam|نعم|اجل|tak|так|да"
)
_NO = _words_of(
    "nee|neen|nee hoor|nee dank je|nee dankjewel|nee bedankt|nee liever niet|liever niet|niet|"
    "klopt niet|dat klopt niet|niet goed|fout|nope|no|nah|no thanks|no thank you|not really|n|"
    "hayir|yok|لا|nie|ні|нет"
)
_YES_EMOJI = frozenset({"👍", "✅", "👌", "✔", "✔️", "☑️", "🆗"})
_NO_EMOJI = frozenset({"👎", "❌", "✖", "✖️", "🚫"})
_PLAIN_NO = frozenset({"nee", "neen", "no", "nope", "nah", "hayir", "nie", "ні", "нет", "لا"})
_POLITE = frozenset(
    {"hoor", "dank", "je", "dankjewel", "bedankt", "thanks", "thank", "you", "please", "graag"}
)


def yes_or_no(text: str) -> bool | None:
    """True for "ja", "jazeker", "klopt", "ok", "yes", "sure", 👍; False for "nee", "no", "liever niet", 👎;
    None for anything else, including a yes with a "but" in it."""
    cleaned = clean_text(text, keep_newlines=False).strip()
    if cleaned in _YES_EMOJI:
        return True
    if cleaned in _NO_EMOJI:
        return False
    words = re.findall(r"[\w']+", fold(cleaned))
    if not words or len(words) > 6:
        return None
    phrase = " ".join(words)
    if phrase in _NO:
        return False
    if phrase in _YES:
        return True
    if words[0] in _PLAIN_NO and not any(w in _YES for w in words[1:]):
        return False  # "nee, niet doen"
    if words[0] in _YES and all(w in _POLITE for w in words[1:]):
        return True
    return None
