"""Finds the Dutch texts residents read and measures them: sentence length, Flesch-Douma, officialese.

textstat with ``set_lang("nl")`` scores reading ease with Douma's Dutch constants
(206.835 - 0.93 x words per sentence - 77 x syllables per word; ``LANG_CONFIGS["nl"]`` in textstat's
``backend/utils/constants.py``, commented "Flesch-Douma") and counts syllables with pyphen's Dutch
hyphenation dictionary (its English-only CMU dictionary is not used for "nl").
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import textstat
from babel.messages.extract import extract_from_file
from babel.support import NullTranslations

from bot.i18n import LOCALES_DIR, load_translations

ROOT = LOCALES_DIR.parent
KEYWORDS = {"t": None, "tn": (1, 2)}  # the extract command's -k t -k tn:1,2 (locales/README.md)

# Where residents' texts come from. A module is taken whole, or only the texts of the named functions
# or module-level names (found with ast, so they survive line shifts), or only the listed msgids where
# one function writes to residents and staff alike. Everything else (staff menus, case cards, mails to
# departments, the staff web) is read by professionals and is not measured here.
ALL = "all"
RESIDENT_SOURCES: dict[str, object] = {
    "flows/resident.py": ALL,
    "flows/intake.py": ALL,
    "flows/engine.py": ALL,
    "flows/privacy.py": ALL,  # except erasure_told_staff, below
    "flows/pii.py": ALL,
    "flows/validators.py": ALL,
    "bot/data_export.py": ALL,  # role names in the resident's own export file
    "bot/erasure.py": ALL,  # speaks through flows/privacy.py today; kept so a new text is measured
    "bot/notifications.py": ALL,  # idem: no texts of its own today
    "flows/flood.py": ALL,
    "flows/resident_messages.py": ALL,  # messages to the broker: "✔ Sent to …", "for whom?"
    "bot/dispatcher.py": {"functions": {"_apologise"}},
    # The command menu every chat sees (descriptions of /start, /nieuw, ...); the staff get their own.
    "bot/command_menus.py": {"functions": {"RESIDENT_COMMANDS", "ENGLISH_COMMANDS"}},
    "flows/lifecycle.py": {
        "functions": {"_STATUS_LABELS"},  # status_label(): the words a resident sees
        "msgids": {
            "Only the initiators can withdraw this initiative.",
            "You can stop your initiative. Your initiatiefmakelaar changes its other statuses.",
        },
    },
    "flows/alerts.py": {
        "functions": {"RESIDENT_NOTICE", "NOTICE_WITHOUT_BROKER", "NOTICE_BROKER_AWAY", "resident_notice"}
    },
    "flows/department.py": {"functions": {"resident_sentence"}},
    # The resident's /mijn timeline (timeline_text(for_resident=True)): its head and the entries a
    # resident can see; staff-only entries (internal notes, hand-backs) are left out by msgid.
    "flows/broker.py": {
        "msgids": {
            "Timeline of {reference} · {title}",
            "Newest first · {first}–{last} of {total}",
            "{date} · {who}\n{what}",
            "Earlier messages",
            "you",
            "the bot",
            "the municipality",
            "{status} — {broker}",
            "{status} (department: {department}): {note}",
            "{status} (department: {department})",
            "{status}: {note}",
            "Initiatiefmakelaar assigned.",
            "{broker} is your initiatiefmakelaar now.",
            "Handed over to {broker}: {note}",
            "Handed over to {broker}.",
            "another initiatiefmakelaar",
            "Message to you: {note}",
            "Your message: {note}",
        }
    },
    # Casework carries out both staff and resident replies in one method; these reach the resident.
    "bot/casework.py": {
        "msgids": {
            "Your initiative “{title}” has a new initiatiefmakelaar: {broker}.",
            "Sent to your initiatiefmakelaar {broker}.",
            "There is no initiatiefmakelaar yet, so your message went to the coordinator.",
            "Your message is saved with your initiative. An initiatiefmakelaar will read it.",
            "Your initiative “{title}” is stopped. Thank you for letting us know.",
        }
    },
}
STAFF_FUNCTIONS = {"flows/privacy.py": {"erasure_told_staff"}}

# Realistic values for placeholders, so a sentence is measured as a resident reads it.
SAMPLES: dict[str, str | int] = {
    "title": "Moestuin in het park",
    "value": "Moestuin in het park",
    "text": "Een moestuin voor de hele buurt.",
    "broker": "Anna",
    "name": "Anna",
    "length": "0:12",
    "attachment": "🎤 spraakbericht (0:12)",
    "coordinator": "Mehmet",
    "who": "Anna",
    "reference": "BI-2026-0042",
    "references": "BI-2026-0042",
    "cases": "• BI-2026-0042 · Moestuin in het park",
    "status": "in gesprek met je initiatiefmakelaar",
    "current": "ingediend",
    "target": "goedgekeurd",
    "department": "Groen",
    "answer": "Ja, dat kan",
    "blocker": "een regel",
    "note": "Ik bel je morgen.",
    "what": "het nummer",
    "municipality": "Zwolle",
    "wijk": "Assendorp",
    "wijken": "Assendorp, Diezerpoort",
    "theme": "Groen",
    "needs": "geld",
    "date": "3 december 2026",
    "day": "3 december 2026",
    "when": "3 december",
    "url": "https://initiatieven.zwolle.nl/inloggen/x7Kq",
    "email": "anna@voorbeeld.nl",
    "phone": "06 12345678",
    "contact": "06 12345678",
    "example": "06 12345678",
    "plain": "1250",
    "formatted": "€ 1.250",
    "amount": "€ 1.250",
    "language": "Türkçe",
    "low": "€ 800",
    "high": "€ 1.000",
    "skip": "Overslaan",
    "mark": "",
    "command": "toewijzen",
    "retention": "12 maanden",
    "period": "12 maanden",
    "draft_days": "14 dagen",
    "message_days": "30 dagen",
    "reminder": "14 dagen",
    "delete": "30 dagen",
    "count": 3,
    "max": 500,
    "min": 2,
    "number": 2,
    "total": 12,
    "first": 1,
    "last": 10,
    "days": 5,
    "norm": 10,
    "open": 3,
    "hours": 24,
}
PLURAL_SAMPLES = (1, 3)  # {n} in both forms of a tn()

# Officialese a B1 reader stumbles on, each with the plain word to use instead. Matched as whole words,
# case-insensitive. "welke" is left out: as a question word ("Welke wijk?") it is plain Dutch, and
# telling it apart from the relative pronoun needs a parser.
OFFICIALESE: dict[str, str] = {
    "indien": "als",
    "middels": "met",
    "teneinde": "om",
    "inzake": "over",
    "t.b.v.": "voor",
    "ten behoeve van": "voor",
    "dient te": "moet",
    "dienen te": "moeten",
    "dient u": "je moet",
    "alsmede": "en",
    "derhalve": "daarom",
    "reeds": "al",
    "thans": "nu",
    "conform": "volgens",
    "omtrent": "over",
    "aldus": "zo",
    "hetgeen": "wat",
    "onverwijld": "meteen",
    "voornoemd": "die",
    "voornoemde": "die",
    "ingevolge": "door",
    "tevens": "ook",
    "echter": "maar",
    "doch": "maar",
    "mits": "als",
    "alvorens": "voordat",
    "zulks": "dat",
    "gelieve": "wil je",
    "desgewenst": "als je wilt",
    "bijgaand": "hierbij",
    "ten aanzien van": "over",
    "met betrekking tot": "over",
    "in het kader van": "voor",
    "naar aanleiding van": "door",
    "ter attentie van": "voor",
    "onderhavig": "dit",
    "behoudens": "behalve",
    "dan wel": "of",
    "c.q.": "of",
    "woonachtig": "wonen",
    "verstrekken": "geven",
    "aanvang": "begin",
    "u": "je",  # the formal "you": we write "je"
    "uw": "je",
}
OFFICIALESE_PATTERN = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(w) for w in sorted(OFFICIALESE, key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)

MAX_WORDS_PER_SENTENCE = 15
MIN_FLESCH_DOUMA = 60
FLESCH_FROM_WORDS = 30  # shorter texts (buttons, labels, one question) are too short for the formula

BULLETS = "•-*·–"
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")  # "€ 1.250" and "anna@voorbeeld.nl" are not two sentences


@dataclass(frozen=True)
class Resident:
    """One resident-facing message: its msgid (and plural), where it is, and the Dutch renderings."""

    msgid: str
    plural: str | None
    where: str  # "flows/intake.py:76"


@dataclass(frozen=True)
class Figures:
    words: int
    sentences: int
    words_per_sentence: float
    flesch_douma: float | None  # None below FLESCH_FROM_WORDS words
    officialese: tuple[str, ...]


def _names_by_line(path: Path) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of every function, class and module-level assignment."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            spans.append((node.lineno, node.end_lineno or node.lineno, node.name))
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        spans += [(node.lineno, node.end_lineno or node.lineno, name) for name in targets]
    return spans


def _enclosing(spans: list[tuple[int, int, str]], line: int) -> set[str]:
    return {name for first, last, name in spans if first <= line <= last}


def _wanted(rule: object, msgid: str, names: set[str]) -> bool:
    if rule == ALL:
        return True
    assert isinstance(rule, dict)
    return msgid in rule.get("msgids", set()) or bool(names & rule.get("functions", set()))


@cache
def resident_messages() -> tuple[Resident, ...]:
    """Every resident-facing msgid in RESIDENT_SOURCES, once, with its first place in the source."""
    found: dict[tuple[str, str | None], Resident] = {}
    for relative, rule in RESIDENT_SOURCES.items():
        path = ROOT / relative
        if not path.exists():
            continue
        spans = _names_by_line(path)
        for line, message, _, _ in extract_from_file("python", str(path), keywords=KEYWORDS):
            msgid, plural = (message[0], message[1]) if isinstance(message, tuple) else (message, None)
            names = _enclosing(spans, line)
            if names & STAFF_FUNCTIONS.get(relative, set()) or not _wanted(rule, msgid, names):
                continue
            found.setdefault((msgid, plural), Resident(msgid, plural, f"{relative}:{line}"))
    return tuple(found.values())


@cache
def dutch() -> NullTranslations:
    return load_translations("nl")


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def renderings(message: Resident) -> list[str]:
    """The Dutch text as a resident reads it (as bot.i18n renders it), samples filled in, each plural
    form with its own n."""
    if message.plural is None:
        return [dutch().gettext(message.msgid).format_map({**SAMPLES, "n": 3})]
    return [
        dutch().ngettext(message.msgid, message.plural, n).format_map({**SAMPLES, "n": n})
        for n in PLURAL_SAMPLES
    ]


def sentences(text: str) -> list[str]:
    """Sentences, with every line (a bullet, a heading ending in ':') a sentence of its own."""
    found = []
    for line in text.splitlines():
        line = line.strip().lstrip(BULLETS).strip()
        found += [s for s in SENTENCE_END.split(line) if textstat.lexicon_count(s) > 0]
    return found


def measure(text: str) -> Figures:
    parts = sentences(text)
    words = sum(textstat.lexicon_count(s) for s in parts)
    # Each part ends with a full stop, so textstat sees the same sentence boundaries as above.
    closed = " ".join(s if s[-1] in ".!?" else f"{s}." for s in parts)
    textstat.set_lang("nl")
    flesch = textstat.flesch_reading_ease(closed) if words >= FLESCH_FROM_WORDS else None
    hits = tuple(sorted({m.group(1).lower() for m in OFFICIALESE_PATTERN.finditer(text)}))
    return Figures(words, len(parts), words / len(parts) if parts else 0.0, flesch, hits)
